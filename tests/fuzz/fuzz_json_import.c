/* fuzz_json_import.c — libFuzzer target: vtl_json_import on any bytes.
 *
 * Contract checked (docs/timeline-format.md, vtl_import.h):
 *   1. import never crashes, leaks or hangs, whatever the bytes;
 *   2. a rejected input returns a VTL_E* code equal to err.code, with a
 *      non-empty, NUL-terminated message naming the place;
 *   3. an accepted document exports; the export imports again and exports
 *      to the same bytes (export -> import -> export is the identity);
 *   4. vtl_params_at() on an accepted document returns 0 with finite
 *      values at the first, middle and last frame.
 * A broken invariant prints what differs and abort()s, which libFuzzer
 * reports as a crash with the input saved.
 *
 * Seeds: tests/fuzz/corpus/json/; dictionary: tests/fuzz/json.dict.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtl_import.h"
#include "vtl_timeline.h"

static void die(const char *what, const char *detail) __attribute__((noreturn));
static void die(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_json_import: invariant broken: %s%s%s\n", what,
          detail ? ": " : "", detail ? detail : "");
  abort();
}

static void check_error(int rc, const vtl_error *err) {
  if (rc >= 0 || rc <= VTL__EFIRST || rc >= VTL__ELAST)
    die("import returned a code outside the VTL_E* table", NULL);
  if (err->code != rc) die("err.code differs from the return value", NULL);
  if (!memchr(err->message, 0, sizeof err->message))
    die("unterminated error message", NULL);
  if (!err->message[0]) die("empty error message", vtl_err_name(rc));
}

static void check_eval(vtl_doc *doc) {
  int64_t len = vtl_doc_timeline(doc)->length;
  int64_t frames[3] = {0, len / 2, len - 1};
  for (int i = 0; i < 3; i++) {
    vtl_params p;
    if (vtl_params_at(doc, frames[i], &p)) die("vtl_params_at failed", NULL);
    for (int k = 0; k < VTL_PARAM__COUNT; k++)
      if (!isfinite(p.values[k]))
        die("non-finite parameter", vtl_param_table[k].name);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vtl_doc *doc = NULL;
  vtl_error err;
  int rc = vtl_json_import((const char *)data, size, &doc, &err);
  if (rc) {
    check_error(rc, &err);
    if (doc) die("a failed import set *out", NULL);
    return 0;
  }

  char *first = NULL, *second = NULL;
  if (vtl_json_export(doc, &first)) die("export of an imported document", NULL);
  vtl_doc *again = NULL;
  rc = vtl_json_import(first, strlen(first), &again, &err);
  if (rc) {
    fprintf(stderr, "--- export:\n%s\n", first);
    die("re-import of an export failed", err.message);
  }
  if (vtl_json_export(again, &second)) die("second export", NULL);
  if (strcmp(first, second)) {
    fprintf(stderr, "--- first export:\n%s\n--- second export:\n%s\n", first,
            second);
    die("export -> import -> export is not the identity", NULL);
  }
  check_eval(doc);

  free(first);
  free(second);
  vtl_doc_free(again);
  vtl_doc_free(doc);
  return 0;
}
