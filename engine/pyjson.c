/* pyjson.c — JSON files written by Python's json module (see pyjson.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyjson.h"
#include "vtl_error.h"

static int cfail(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int cfail(char *msg, size_t msglen, int code, const char *fmt, ...) {
  if (msg && msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return code;
}

int vtl_json_load_python(const char *path, json_t **out, char *msg,
                         size_t msglen) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return cfail(msg, msglen, VTL_EIO, "%s: %s", path, strerror(errno));
  char *text = NULL, *conv = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (len + 4096 > cap) {
      cap = cap ? cap * 2 : 65536;
      char *t = realloc(text, cap);
      if (!t) {
        rc = cfail(msg, msglen, VTL_ENOMEM, "%s: out of memory", path);
        goto done;
      }
      text = t;
    }
    size_t got = fread(text + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    rc = cfail(msg, msglen, VTL_EIO, "%s: read error", path);
    goto done;
  }
  /* Outside strings, quote the bare literals: each grows by 2 bytes and is
   * at least 3 long, so 2 * len + 1 bytes always suffice. */
  conv = malloc(2 * len + 1);
  if (!conv) {
    rc = cfail(msg, msglen, VTL_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  size_t o = 0;
  bool in_str = false;
  for (size_t k = 0; k < len; k++) {
    char ch = text[k];
    if (in_str) {
      conv[o++] = ch;
      if (ch == '\\' && k + 1 < len) conv[o++] = text[++k];
      else if (ch == '"') in_str = false;
      continue;
    }
    static const char *const lits[] = {"-Infinity", "Infinity", "NaN"};
    size_t l = 0;
    for (int q = 0; q < 3 && !l; q++) {
      size_t ql = strlen(lits[q]);
      if (len - k >= ql && memcmp(text + k, lits[q], ql) == 0) l = ql;
    }
    if (l) {
      conv[o++] = '"';
      memcpy(conv + o, text + k, l);
      o += l;
      conv[o++] = '"';
      k += l - 1;
      continue;
    }
    if (ch == '"') in_str = true;
    conv[o++] = ch;
  }
  json_error_t err;
  *out = json_loadb(conv, o, 0, &err);
  if (!*out)
    rc = cfail(msg, msglen, VTL_EPARSE, "%s:%d:%d: %s", path, err.line,
               err.column, err.text);
done:
  free(text);
  free(conv);
  fclose(f);
  return rc;
}
