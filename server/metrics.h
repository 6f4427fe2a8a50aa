/* metrics.h — the server's counters and the /metrics page (Prometheus text
 * exposition format 0.0.4).
 *
 * Counters are process-wide and live on the loop thread: call
 * vtl_metrics_add() only from it (never from store.c's worker; hand the
 * figure to the loop first, as commit latency does through the request's
 * callback). Gauges (sessions, rooms, queue depths) are not counted: they
 * are read from the server's state when /metrics is scraped.
 *
 * Adding a counter is one line in VTL_METRIC_MAP:
 *   X(ENUM_SUFFIX, "metric_name_total", "help text")
 * and a call vtl_metrics_add(VTL_M_ENUM_SUFFIX, n) where it happens.
 */
#ifndef VTL_METRICS_H
#define VTL_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vtl_server vtl_server;

#define VTL_METRIC_MAP(X)                                                     \
  X(SESSIONS_OPENED, "vtl_sessions_opened_total",                             \
    "Websocket sessions accepted")                                            \
  X(MESSAGES_IN, "vtl_messages_in_total",                                     \
    "Websocket messages received from clients (whole messages)")              \
  X(BYTES_IN, "vtl_bytes_in_total",                                           \
    "Websocket payload bytes received from clients")                          \
  X(MESSAGES_OUT, "vtl_messages_out_total",                                   \
    "Websocket messages written to clients (frames included)")                \
  X(BYTES_OUT, "vtl_bytes_out_total",                                         \
    "Websocket payload bytes written to clients (frames included)")           \
  X(BATCHES_APPLIED, "vtl_batches_applied_total",                             \
    "OpBatches committed and broadcast")                                      \
  X(OPS_APPLIED, "vtl_ops_applied_total",                                     \
    "Ops in committed OpBatches")                                             \
  X(BATCHES_DUPLICATE, "vtl_batches_duplicate_total",                         \
    "OpBatches re-sent with a batch_id already applied (acked, not applied)") \
  X(OFFENCES, "vtl_offences_total",                                           \
    "Malformed or oversized client messages (MALFORMED, TOO_LARGE)")          \
  X(FRAMES_PUBLISHED, "vtl_frames_published_total",                           \
    "Frames published to rooms (render service, worker or test pattern)")     \
  X(FRAMES_ENCODED, "vtl_frames_encoded_total",                               \
    "Frames encoded for a room stream (once per stream, not per viewer)")     \
  X(FRAMES_OUT, "vtl_frames_out_total",                                       \
    "Frame messages written to sessions")                                     \
  X(FRAME_BYTES_OUT, "vtl_frame_bytes_out_total",                             \
    "Payload bytes of Frame messages written to sessions")                    \
  X(FRAMES_DROPPED, "vtl_frames_dropped_total",                               \
    "Frames replaced in a session's slot before they were written")           \
  X(PRESENCE_OUT, "vtl_presence_out_total",                                   \
    "Presence messages queued to sessions")                                   \
  X(PRESENCE_COALESCED, "vtl_presence_coalesced_total",                       \
    "Presence updates dropped by coalescing (newest wins)")                   \
  X(TRANSPORT_CHANGES, "vtl_transport_changes_total",                         \
    "Transport changes accepted and broadcast")                               \
  X(HTTP_REQUESTS, "vtl_http_requests_total",                                 \
    "Plain HTTP requests (static files, /metrics)")                           \
  X(RENDER_FRAMES, "vtl_render_frames_total",                                 \
    "Frames the render service rendered (published or cached)")               \
  X(RENDER_MS, "vtl_render_milliseconds_total",                               \
    "Milliseconds the render service spent on the frames it rendered")        \
  X(RENDER_CANCELLED, "vtl_render_cancelled_total",                           \
    "Renders cancelled: the frame became stale or unwanted, or shutdown")     \
  X(RENDER_FAILED, "vtl_render_failed_total",                                 \
    "Render attempts that failed (model refused or missing, engine error)")

typedef enum {
#define X(e, name, help) VTL_M_##e,
  VTL_METRIC_MAP(X)
#undef X
  VTL_M__COUNT
} vtl_metric;

/* Adds n to a counter (loop thread only). */
void vtl_metrics_add(vtl_metric m, uint64_t n);
/* Counts a rejected OpBatch by its wire Error.Code (loop thread only). */
void vtl_metrics_rejected(int wire_code);
/* Records one commit: seconds from the batch's submission to the store
 * until its commit callback ran on the loop (fsync included). */
void vtl_metrics_commit_latency(double seconds);
/* The current value of a counter (tests, logs). */
uint64_t vtl_metrics_get(vtl_metric m);

/* Renders every metric, counters and the gauges read from `sv`, as
 * Prometheus text into a malloc'd NUL-terminated buffer (*out, *len bytes
 * without the NUL). Returns 0 or VTL_ENOMEM. */
int vtl_metrics_render(const vtl_server *sv, char **out, size_t *len);

#endif /* VTL_METRICS_H */
