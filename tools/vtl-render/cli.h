/* cli.h — what vtl-render's modes share: strict flag parsing, the usage
 * error, the clock and the per-step progress line. */
#ifndef VTL_RENDER_CLI_H
#define VTL_RENDER_CLI_H

#define EXIT_USAGE 2

/* Prints "vtl-render: <message>" on stderr; returns EXIT_USAGE. */
int die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

double now_s(void); /* monotonic seconds */

/* Strict number parsing: the whole string, in range; 0 or -1. */
int parse_long(const char *s, long long lo, long long hi, long long *out);
int parse_u64(const char *s, unsigned long long *out);
int parse_double(const char *s, double lo, double hi, double *out);

/* The pipeline's progress callback: a line per step on stderr (rewritten
 * in place on a terminal). user is a progress_state. */
typedef struct {
  double start;
  int tty;
} progress_state;
int progress(void *user, int done, int total, float t);

/* `vtl-render --film ...` (film_export.c). */
int film_main(int argc, char **argv);

#endif /* VTL_RENDER_CLI_H */
