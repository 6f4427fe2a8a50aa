/* warnings.c — the growable list of messages importers fill (vtl_import.h).
 *
 * A vtl_warnings is a plain struct the caller zero-initialises; every item
 * is a malloc'd NUL-terminated string owned by the list. Adding to a NULL
 * list is allowed and does nothing, so importers can be called without one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "vtl_import.h"

/* Appends one formatted message. Returns 0, or VTL_ENOMEM with the list
 * unchanged. */
int vtl_warnings_add(vtl_warnings *w, const char *fmt, ...) {
  if (!w) return 0;
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0) return VTL_EINVAL;
  char *msg = malloc((size_t)len + 1);
  if (!msg) return VTL_ENOMEM;
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)len + 1, fmt, ap);
  va_end(ap);
  char **items = realloc(w->items, (w->n + 1) * sizeof *items);
  if (!items) {
    free(msg);
    return VTL_ENOMEM;
  }
  items[w->n++] = msg;
  w->items = items;
  return 0;
}

/* Frees every message and leaves an empty list that can be reused. */
void vtl_warnings_free(vtl_warnings *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n; i++) free(w->items[i]);
  free(w->items);
  w->items = NULL;
  w->n = 0;
}
