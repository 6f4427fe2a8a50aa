/* cli.c — vtl-render's shared command-line helpers (cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int die_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("vtl-render: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return EXIT_USAGE;
}

double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Strict number parsing: the whole string, in range. */
int parse_long(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}
int parse_u64(const char *s, unsigned long long *out) {
  char *end;
  errno = 0;
  if (*s == '-' || *s == '\0') return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}
int parse_double(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
  *out = v;
  return 0;
}


int progress(void *user, int done, int total, float t) {
  progress_state *ps = user;
  double el = now_s() - ps->start;
  fprintf(stderr, "%sstep %d/%d  t=%g  %.2f s (%.3f s/step)%s",
          ps->tty ? "\r" : "", done, total, t, el, el / done,
          ps->tty && done < total ? "" : "\n");
  fflush(stderr);
  return 0;
}

