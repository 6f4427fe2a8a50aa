/* fuzz_safetensors.c — libFuzzer target: the .safetensors reader on any
 * bytes (vtl_st_open_memory, then every tensor read).
 *
 * Contract checked (engine/safetensors.h, the checks listed in
 * engine/safetensors.c):
 *   1. opening never crashes, leaks, hangs or reads outside the bytes,
 *      whatever they are (libFuzzer hands over an exact-size buffer, so
 *      AddressSanitizer sees any read past its end);
 *   2. a refused input returns a VTL_E* code from the table, leaves *out
 *      NULL, and writes a NUL-terminated message starting with the label;
 *   3. an accepted file's tensors tile its data region exactly, in order,
 *      each end - begin == numel * dtype size, each found again by name;
 *   4. every F32 / F16 / BF16 tensor reads whole, and in two parts giving
 *      the same bits; every other dtype is refused with VTL_EUNSUPPORTED;
 *      ranges past the end are refused with VTL_ERANGE.
 * A broken invariant prints what differs and abort()s, which libFuzzer
 * reports as a crash with the input saved.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "vtl_error.h"

static void die(const char *what, const char *detail) __attribute__((noreturn));
static void die(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_safetensors: invariant broken: %s%s%s\n", what,
          detail ? ": " : "", detail ? detail : "");
  abort();
}

#define LABEL "fuzz-input"

static void check_tensor(const vtl_st_file *f, size_t i, uint64_t *at) {
  const vtl_st_tensor *t = vtl_st_at(f, i);
  char msg[512];
  if (!t) die("vtl_st_at returned NULL inside count", NULL);
  if (t->begin != *at) die("tensors do not tile the data region", t->name);
  if (t->end < t->begin) die("end before begin", t->name);
  *at = t->end;
  if ((uint64_t)t->numel * vtl_st_dtype_size(t->dtype) != t->end - t->begin)
    die("byte size differs from numel * dtype size", t->name);
  if (vtl_st_find(f, t->name) != t) die("lookup by name finds another", t->name);
  if (vtl_st_index(f, t) != i) die("index differs", t->name);
  if (t->ndim < 0 || t->ndim > VTL_ST_MAX_DIMS) die("ndim out of range", t->name);

  float *all = malloc((t->numel ? t->numel : 1) * sizeof *all);
  float *part = malloc((t->numel ? t->numel : 1) * sizeof *part);
  if (!all || !part) die("out of memory", NULL);
  int rc = vtl_st_read_f32(f, t, 0, t->numel, all, msg, sizeof msg);
  int readable = t->dtype == VTL_ST_F32 || t->dtype == VTL_ST_F16 ||
                 t->dtype == VTL_ST_BF16;
  if (readable && rc) die("a float tensor failed to read", msg);
  if (!readable && rc != VTL_EUNSUPPORTED)
    die("a non-float dtype was not refused", t->name);
  if (readable) {
    size_t h = t->numel / 2;
    if (vtl_st_read_f32(f, t, 0, h, part, msg, sizeof msg) ||
        vtl_st_read_f32(f, t, h, t->numel - h, part + h, msg, sizeof msg))
      die("a partial read failed", msg);
    if (t->numel && memcmp(all, part, t->numel * sizeof *all) != 0)
      die("two partial reads differ from one whole read", t->name);
    if (vtl_st_read_f32(f, t, t->numel, 1, part, msg, sizeof msg) !=
        VTL_ERANGE)
      die("a read past the end was not refused", t->name);
  }
  free(all);
  free(part);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vtl_st_file *f = (vtl_st_file *)&f; /* must be reset to NULL on failure */
  char msg[512];
  memset(msg, 'x', sizeof msg);
  int rc = vtl_st_open_memory(&f, data, size, LABEL, msg, sizeof msg);
  if (rc) {
    if (rc >= 0 || rc <= VTL__EFIRST || rc >= VTL__ELAST)
      die("a code outside the VTL_E* table", NULL);
    if (f) die("a failed open set *out", NULL);
    if (!memchr(msg, 0, sizeof msg)) die("unterminated message", NULL);
    if (strncmp(msg, LABEL ": ", strlen(LABEL) + 2) != 0 ||
        !msg[strlen(LABEL) + 2])
      die("the message does not name the input", msg);
    return 0;
  }
  if (!f) die("open succeeded without a file", NULL);
  uint64_t at = 0;
  for (size_t i = 0; i < vtl_st_count(f); i++) check_tensor(f, i, &at);
  if (vtl_st_at(f, vtl_st_count(f))) die("vtl_st_at past count", NULL);
  /* the data region ends where the last tensor ends (no trailing bytes) */
  if (vtl_st_count(f)) {
    const vtl_st_tensor *last = vtl_st_at(f, vtl_st_count(f) - 1);
    const uint8_t *end = (const uint8_t *)vtl_st_data(f, last) +
                         (last->end - last->begin);
    if (end != data + size) die("the last tensor does not end the file", NULL);
  }
  vtl_st_close(f);
  return 0;
}
