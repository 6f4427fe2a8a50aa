/* log.c — logfmt lines on stderr (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void vtl_log(vtl_log_level level, const char *event, const char *fmt, ...) {
  char text[1024], line[2300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);

  struct timespec now;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  int n = snprintf(line, sizeof line,
                   "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s msg=\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000,
                   level_names[level], event);
  size_t o = n > 0 ? (size_t)n : 0;
  /* escape into the rest; 2 bytes per input byte at most, +2 for "\"\n" */
  for (const char *p = text; *p && o + 4 < sizeof line; p++) {
    if (*p == '"' || *p == '\\') line[o++] = '\\';
    if (*p == '\n') {
      line[o++] = '\\';
      line[o++] = 'n';
      continue;
    }
    line[o++] = *p;
  }
  line[o++] = '"';
  line[o++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, line, o);
  (void)ignored;
}
