/* log.h — the server's one-line structured logs (logfmt), on stderr:
 *
 *   ts=2026-11-25T12:30:00.123Z level=info event=room.loaded msg="room \"demo\" loaded at seq 12"
 *
 * One write(2) per line, so lines from the store thread and the loop thread
 * never interleave. `event` is a stable dotted name to filter on; msg is
 * free text with quotes and backslashes escaped and newlines as \n. The
 * command-line sub-commands (room create/list, usage) print plain text. */
#ifndef VTL_SERVER_LOG_H
#define VTL_SERVER_LOG_H

typedef enum { VTL_LOG_DEBUG, VTL_LOG_INFO, VTL_LOG_WARN,
               VTL_LOG_ERROR } vtl_log_level;

void vtl_log(vtl_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* VTL_SERVER_LOG_H */
