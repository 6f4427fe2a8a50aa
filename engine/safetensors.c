/* safetensors.c — mapping, validating and reading .safetensors files.
 *
 * File layout (huggingface/safetensors, README "Format"; integers are
 * little-endian):
 *
 *   OFFSET     SIZE   DESCRIPTION
 *   0          8      N: header length in bytes (unsigned 64-bit)
 *   8          N      header: UTF-8 JSON object, starting with '{', padded
 *                     with spaces (writers pad to a multiple of 8 so that
 *                     the data starts aligned; readers may not rely on it)
 *   8 + N      D      data region: the raw tensors, row-major, little-endian;
 *                     D = file size - 8 - N
 *
 * The header maps each tensor name to its entry, and may hold one
 * "__metadata__" object of string -> string (e.g. {"format": "pt"}):
 *
 *   { "conv_in.weight": { "dtype": "F16", "shape": [320, 4, 3, 3],
 *                         "data_offsets": [0, 23040] },
 *     "__metadata__":   { "format": "pt" }, ... }
 *
 *   data_offsets [begin, end) are byte offsets into the data region, not
 *   into the file:
 *
 *   +--------+--------------------+----------+----------+-----+----------+
 *   |   N    |  JSON header ...   | tensor a | tensor b | ... | tensor z |
 *   +--------+--------------------+----------+----------+-----+----------+
 *   0        8                  8+N          ^ 8+N+begin(b)              EOF
 *
 *   dtype   bytes   read as
 *   F32     4       float32
 *   F16     2       IEEE binary16, converted exactly (vtl_f16_to_f32)
 *   BF16    2       bfloat16: float32 bits = bf16 bits << 16
 *   F64 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2
 *           8/4/2/1 validated (sizes and offsets), never read
 *
 * Validation at open, ALWAYS complete (a file that passes can be read
 * anywhere in its tensors without a bounds check failing); each failure is
 * VTL_EPARSE with a message naming the file and, where there is one, the
 * tensor:
 *
 *   1. the file holds the 8-byte length; 2 <= N <= file size - 8 and
 *      N <= ST_MAX_HEADER (the reference library's limit);
 *   2. the header starts with '{', is valid UTF-8 JSON, is an object, and
 *      has no duplicate keys;
 *   3. "__metadata__", if present, is an object whose values are strings;
 *   4. every other entry is an object with a known "dtype" string, a
 *      "shape" array of at most VTL_ST_MAX_DIMS integers >= 0 whose product
 *      (and its size in bytes) does not overflow, and a "data_offsets" array
 *      of two integers with begin <= end <= D; other keys are ignored;
 *   5. end - begin == product(shape) * dtype size;
 *   6. sorted by begin, the tensors tile the data region exactly as the
 *      format demands: no two overlap, no bytes lie between them (a
 *      "hole") and none after the last one.
 *
 * Names are kept (in a strmap, also the lookup index); the JSON is freed.
 */
#define _DEFAULT_SOURCE /* madvise (MADV_DONTNEED: posix_madvise ignores it) */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strmap.h"
#include "vtl_error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data with memcpy: add byte swapping"
#endif

#define ST_MAX_HEADER 100000000u /* bytes; safetensors' MAX_HEADER_SIZE */

struct vtl_st_file {
  char *path;               /* malloc'd: path or label, for messages */
  const uint8_t *base;      /* first byte of the file (mapping or borrowed) */
  size_t size;              /* bytes of the file */
  void *map;                /* mmap'd region to unmap; NULL: borrowed memory */
  const uint8_t *data;      /* base + 8 + N: the data region */
  uint64_t data_size;       /* D */
  vtl_st_tensor *tensors;   /* [count] malloc'd, sorted by begin */
  size_t count;
  vtl_strmap *by_name;      /* name -> index in tensors; owns the name text */
  char **meta;              /* [2 * nmeta] malloc'd key, value strings */
  size_t nmeta;
};

static const struct {
  const char *name;
  size_t size;
} dtypes[VTL_ST__NDTYPES] = {
  [VTL_ST_F32] = {"F32", 4},         [VTL_ST_F16] = {"F16", 2},
  [VTL_ST_BF16] = {"BF16", 2},       [VTL_ST_F64] = {"F64", 8},
  [VTL_ST_I64] = {"I64", 8},         [VTL_ST_I32] = {"I32", 4},
  [VTL_ST_I16] = {"I16", 2},         [VTL_ST_I8] = {"I8", 1},
  [VTL_ST_U64] = {"U64", 8},         [VTL_ST_U32] = {"U32", 4},
  [VTL_ST_U16] = {"U16", 2},         [VTL_ST_U8] = {"U8", 1},
  [VTL_ST_BOOL] = {"BOOL", 1},       [VTL_ST_F8_E4M3] = {"F8_E4M3", 1},
  [VTL_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *vtl_st_dtype_name(vtl_st_dtype d) {
  return (unsigned)d < VTL_ST__NDTYPES ? dtypes[d].name : "?";
}

size_t vtl_st_dtype_size(vtl_st_dtype d) {
  return (unsigned)d < VTL_ST__NDTYPES ? dtypes[d].size : 0;
}

/* ---- conversions --------------------------------------------------------- */

float vtl_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  float f;
  if (exp == 0) {
    /* zero or subnormal: man * 2^-24, exact in float32 (a normal there) */
    f = (float)man * 0x1p-24f;
    memcpy(&bits, &f, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13); /* inf, NaN keeps its payload */
  } else {
    bits = sign | ((exp + 112u) << 23) | (man << 13); /* rebias 15 -> 127 */
  }
  memcpy(&f, &bits, 4);
  return f;
}

float vtl_bf16_to_f32(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t vtl_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
  if (exp == 255) /* inf stays inf; NaN stays a (quiet) NaN */
    return sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0);
  int e = (int)exp - 127 + 15; /* rebias 127 -> 15 */
  if (e >= 31) return sign | 0x7c00u; /* past 65504 after rounding: inf */
  uint32_t m = man | 0x800000u;     /* 24 significant bits */
  int shift = e > 0 ? 13 : 14 - e;  /* bits dropped (subnormal: more) */
  if (exp == 0 || shift > 24) return sign; /* below half the least subnormal */
  uint32_t kept = m >> shift, rest = m & ((1u << shift) - 1),
           half = 1u << (shift - 1);
  if (rest > half || (rest == half && (kept & 1))) kept++; /* nearest even */
  /* normal: the implicit bit lands on the exponent, and a carry out of the
   * mantissa rounds up to the next binade (or inf) by itself */
  return sign | (uint16_t)(e > 0 ? ((uint32_t)e << 10) + kept - 0x400u
                                 : kept);
}

/* ---- messages ------------------------------------------------------------ */

static int st_fail(char *msg, size_t msglen, int code, const char *path,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Formats "path: problem" into msg (may be NULL) and returns code. */
static int st_fail(char *msg, size_t msglen, int code, const char *path,
                   const char *fmt, ...) {
  if (msg && msglen) {
    int k = snprintf(msg, msglen, "%s: ", path);
    if (k >= 0 && (size_t)k < msglen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(msg + k, msglen - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return code;
}

/* "[320, 4, 3, 3]" into buf. */
static const char *shape_str(const int64_t *shape, int ndim, char *buf,
                             size_t len) {
  size_t k = 0;
  buf[0] = 0;
  k += (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < ndim && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? ", " : "",
                          (long long)shape[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
  return buf;
}

/* ---- header parsing ------------------------------------------------------ */

static int parse_dtype(const char *s, vtl_st_dtype *out) {
  for (int d = 0; d < VTL_ST__NDTYPES; d++)
    if (strcmp(s, dtypes[d].name) == 0) {
      *out = (vtl_st_dtype)d;
      return 0;
    }
  return -1;
}

/* Validates one tensor entry (rules 4 and 5) into *t; t->name is set by the
 * caller. */
static int parse_entry(vtl_st_file *f, const char *name, json_t *v,
                       vtl_st_tensor *t, char *msg, size_t msglen) {
  const char *p = f->path;
  if (!json_is_object(v))
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': entry is not a JSON object", name);

  json_t *jd = json_object_get(v, "dtype");
  if (!json_is_string(jd))
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': \"dtype\" missing or not a string", name);
  if (parse_dtype(json_string_value(jd), &t->dtype))
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': unknown dtype '%.40s' (known: F32 F16 BF16 "
                   "F64 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2)",
                   name, json_string_value(jd));

  json_t *js = json_object_get(v, "shape");
  if (!json_is_array(js))
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': \"shape\" missing or not an array", name);
  size_t nd = json_array_size(js);
  if (nd > VTL_ST_MAX_DIMS)
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': %zu dimensions, at most %d supported", name,
                   nd, VTL_ST_MAX_DIMS);
  t->ndim = (int)nd;
  uint64_t numel = 1;
  const uint64_t limit = (uint64_t)(SIZE_MAX / 8); /* bytes fit size_t */
  for (size_t i = 0; i < nd; i++) {
    json_t *e = json_array_get(js, i);
    if (!json_is_integer(e) || json_integer_value(e) < 0)
      return st_fail(msg, msglen, VTL_EPARSE, p,
                     "tensor '%s': shape entry %zu is not an integer >= 0",
                     name, i);
    uint64_t dim = (uint64_t)json_integer_value(e);
    t->shape[i] = (int64_t)dim;
    if (dim != 0 && numel > limit / dim)
      return st_fail(msg, msglen, VTL_EPARSE, p,
                     "tensor '%s': shape's element count overflows", name);
    numel *= dim;
  }
  t->numel = (size_t)numel;

  json_t *jo = json_object_get(v, "data_offsets");
  if (!json_is_array(jo) || json_array_size(jo) != 2 ||
      !json_is_integer(json_array_get(jo, 0)) ||
      !json_is_integer(json_array_get(jo, 1)))
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': \"data_offsets\" is not [begin, end]", name);
  json_int_t b = json_integer_value(json_array_get(jo, 0));
  json_int_t e = json_integer_value(json_array_get(jo, 1));
  if (b < 0 || e < b)
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': data_offsets [%lld, %lld] are not a range",
                   name, (long long)b, (long long)e);
  if ((uint64_t)e > f->data_size)
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': data_offsets [%lld, %lld] outside the data "
                   "region of %llu bytes", name, (long long)b, (long long)e,
                   (unsigned long long)f->data_size);
  t->begin = (uint64_t)b;
  t->end = (uint64_t)e;
  uint64_t need = numel * dtypes[t->dtype].size;
  if (t->end - t->begin != need) {
    char sb[160];
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "tensor '%s': data_offsets [%lld, %lld] hold %llu bytes, "
                   "but shape %s of %s needs %llu", name, (long long)b,
                   (long long)e, (unsigned long long)(t->end - t->begin),
                   shape_str(t->shape, t->ndim, sb, sizeof sb),
                   dtypes[t->dtype].name, (unsigned long long)need);
  }
  return 0;
}

static int parse_metadata(vtl_st_file *f, json_t *v, char *msg,
                          size_t msglen) {
  if (!json_is_object(v))
    return st_fail(msg, msglen, VTL_EPARSE, f->path,
                   "\"__metadata__\" is not an object");
  size_t n = json_object_size(v);
  f->meta = calloc(2 * n + 1, sizeof *f->meta);
  if (!f->meta)
    return st_fail(msg, msglen, VTL_ENOMEM, f->path, "out of memory");
  const char *k;
  json_t *val;
  json_object_foreach(v, k, val) {
    if (!json_is_string(val))
      return st_fail(msg, msglen, VTL_EPARSE, f->path,
                     "\"__metadata__\" value of '%s' is not a string", k);
    char *ks = strdup(k), *vs = strdup(json_string_value(val));
    f->meta[2 * f->nmeta] = ks;
    f->meta[2 * f->nmeta + 1] = vs;
    f->nmeta++; /* counted before the check: close frees whatever was set */
    if (!ks || !vs)
      return st_fail(msg, msglen, VTL_ENOMEM, f->path, "out of memory");
  }
  return 0;
}

static int cmp_begin(const void *a, const void *b) {
  const vtl_st_tensor *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* Rule 6 on the sorted tensors. */
static int check_tiling(vtl_st_file *f, char *msg, size_t msglen) {
  uint64_t at = 0;
  const vtl_st_tensor *prev = NULL;
  for (size_t i = 0; i < f->count; i++) {
    const vtl_st_tensor *t = &f->tensors[i];
    if (t->begin < at)
      return st_fail(msg, msglen, VTL_EPARSE, f->path,
                     "tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                     prev->name, (unsigned long long)prev->begin,
                     (unsigned long long)prev->end, t->name,
                     (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->begin > at)
      return st_fail(msg, msglen, VTL_EPARSE, f->path,
                     "%llu bytes at data offset %llu belong to no tensor "
                     "(a hole before '%s')",
                     (unsigned long long)(t->begin - at),
                     (unsigned long long)at, t->name);
    at = t->end;
    prev = t;
  }
  if (at != f->data_size)
    return st_fail(msg, msglen, VTL_EPARSE, f->path,
                   "%llu bytes after the last tensor belong to no tensor",
                   (unsigned long long)(f->data_size - at));
  return 0;
}

/* Rules 1-6 on f->base[0, f->size). */
static int parse(vtl_st_file *f, char *msg, size_t msglen) {
  const char *p = f->path;
  if (f->size < 8)
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "%zu bytes: too short for the 8-byte header length",
                   f->size);
  uint64_t n;
  memcpy(&n, f->base, 8);
  if (n > f->size - 8)
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "header length %llu exceeds the file (%zu bytes): "
                   "truncated, or not a safetensors file",
                   (unsigned long long)n, f->size);
  if (n > ST_MAX_HEADER)
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "header length %llu exceeds the limit of %u bytes",
                   (unsigned long long)n, ST_MAX_HEADER);
  if (n < 2 || f->base[8] != '{')
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "header does not start with '{': not a safetensors file");
  f->data = f->base + 8 + n;
  f->data_size = (uint64_t)f->size - 8 - n;

  json_error_t je;
  json_t *root = json_loadb((const char *)f->base + 8, (size_t)n,
                            JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return st_fail(msg, msglen, VTL_EPARSE, p,
                   "header is not valid JSON (line %d, column %d: %s)",
                   je.line, je.column, je.text);
  int rc = 0;
  if (!json_is_object(root)) {
    rc = st_fail(msg, msglen, VTL_EPARSE, p, "header is not a JSON object");
    goto out;
  }

  size_t cap = json_object_size(root);
  f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
  f->by_name = vtl_strmap_create(cap);
  if (!f->tensors || !f->by_name) {
    rc = st_fail(msg, msglen, VTL_ENOMEM, p, "out of memory");
    goto out;
  }
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (strcmp(key, "__metadata__") == 0) {
      if ((rc = parse_metadata(f, v, msg, msglen))) goto out;
      continue;
    }
    vtl_st_tensor *t = &f->tensors[f->count];
    if ((rc = parse_entry(f, key, v, t, msg, msglen))) goto out;
    /* The strmap keeps the name text; the index is set after sorting. */
    if (vtl_strmap_put(f->by_name, key, strlen(key), 0, &t->name)) {
      rc = st_fail(msg, msglen, VTL_ENOMEM, p, "out of memory");
      goto out;
    }
    f->count++;
  }
  qsort(f->tensors, f->count, sizeof *f->tensors, cmp_begin);
  if ((rc = check_tiling(f, msg, msglen))) goto out;
  for (size_t i = 0; i < f->count; i++)
    if (vtl_strmap_put(f->by_name, f->tensors[i].name,
                       strlen(f->tensors[i].name), (int64_t)i, NULL)) {
      rc = st_fail(msg, msglen, VTL_ENOMEM, p, "out of memory");
      goto out;
    }
out:
  json_decref(root);
  return rc;
}

/* ---- open / close -------------------------------------------------------- */

static vtl_st_file *file_new(const char *path) {
  vtl_st_file *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->path = strdup(path ? path : "(memory)");
  if (!f->path) {
    free(f);
    return NULL;
  }
  return f;
}

int vtl_st_open_memory(vtl_st_file **out, const void *data, size_t size,
                       const char *label, char *msg, size_t msglen) {
  *out = NULL;
  vtl_st_file *f = file_new(label);
  if (!f)
    return st_fail(msg, msglen, VTL_ENOMEM, label ? label : "(memory)",
                   "out of memory");
  f->base = data;
  f->size = data ? size : 0;
  int rc = parse(f, msg, msglen);
  if (rc) {
    vtl_st_close(f);
    return rc;
  }
  *out = f;
  return 0;
}

int vtl_st_open(vtl_st_file **out, const char *path, char *msg,
                size_t msglen) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return st_fail(msg, msglen, errno == ENOENT ? VTL_ENOENT : VTL_EIO, path,
                   "cannot open: %s", strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return st_fail(msg, msglen, VTL_EIO, path, "cannot stat: %s", strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return st_fail(msg, msglen, VTL_EIO, path, "not a regular file");
  }
  vtl_st_file *f = file_new(path);
  if (!f) {
    close(fd);
    return st_fail(msg, msglen, VTL_ENOMEM, path, "out of memory");
  }
  f->size = (size_t)sb.st_size;
  if (f->size > 0) {
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      vtl_st_close(f);
      return st_fail(msg, msglen, e == ENOMEM ? VTL_ENOMEM : VTL_EIO, path,
                     "cannot map %zu bytes: %s", (size_t)sb.st_size,
                     strerror(e));
    }
    f->map = m;
    f->base = m;
  }
  close(fd); /* the mapping keeps the file */
  int rc = parse(f, msg, msglen);
  if (rc) {
    vtl_st_close(f);
    return rc;
  }
  *out = f;
  return 0;
}

void vtl_st_close(vtl_st_file *f) {
  if (!f) return;
  if (f->map) munmap(f->map, f->size);
  for (size_t i = 0; i < 2 * f->nmeta; i++) free(f->meta[i]);
  free(f->meta);
  vtl_strmap_release(f->by_name);
  free(f->tensors);
  free(f->path);
  free(f);
}

void vtl_st_drop_pages(vtl_st_file *f) {
  if (f && f->map) madvise(f->map, f->size, MADV_DONTNEED);
}

/* ---- lookup -------------------------------------------------------------- */

const char *vtl_st_path(const vtl_st_file *f) { return f->path; }
size_t vtl_st_count(const vtl_st_file *f) { return f->count; }

const vtl_st_tensor *vtl_st_at(const vtl_st_file *f, size_t i) {
  return i < f->count ? &f->tensors[i] : NULL;
}

size_t vtl_st_index(const vtl_st_file *f, const vtl_st_tensor *t) {
  return (size_t)(t - f->tensors);
}

const vtl_st_tensor *vtl_st_find(const vtl_st_file *f, const char *name) {
  int64_t i;
  if (!vtl_strmap_get(f->by_name, name, strlen(name), &i)) return NULL;
  return &f->tensors[i];
}

int vtl_st_lookup(const vtl_st_file *f, const char *name,
                  const vtl_st_tensor **out, char *msg, size_t msglen) {
  *out = vtl_st_find(f, name);
  if (!*out)
    return st_fail(msg, msglen, VTL_ENOENT, f->path, "no tensor named '%s'",
                   name);
  return 0;
}

const char *vtl_st_metadata(const vtl_st_file *f, const char *key) {
  for (size_t i = 0; i < f->nmeta; i++)
    if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
  return NULL;
}

/* ---- reading ------------------------------------------------------------- */

const void *vtl_st_data(const vtl_st_file *f, const vtl_st_tensor *t) {
  return f->data + t->begin;
}

int vtl_st_read_f32(const vtl_st_file *f, const vtl_st_tensor *t,
                    size_t first, size_t count, float *dst, char *msg,
                    size_t msglen) {
  if (first > t->numel || count > t->numel - first)
    return st_fail(msg, msglen, VTL_ERANGE, f->path,
                   "tensor '%s': elements [%zu, %zu) asked of %zu", t->name,
                   first, first + count, t->numel);
  const uint8_t *src = f->data + t->begin;
  switch (t->dtype) {
  case VTL_ST_F32:
    if (count) memcpy(dst, src + first * 4, count * 4);
    return 0;
  case VTL_ST_F16:
    src += first * 2;
    for (size_t i = 0; i < count; i++) {
      uint16_t h;
      memcpy(&h, src + 2 * i, 2);
      dst[i] = vtl_f16_to_f32(h);
    }
    return 0;
  case VTL_ST_BF16:
    src += first * 2;
    for (size_t i = 0; i < count; i++) {
      uint16_t h;
      memcpy(&h, src + 2 * i, 2);
      dst[i] = vtl_bf16_to_f32(h);
    }
    return 0;
  default:
    return st_fail(msg, msglen, VTL_EUNSUPPORTED, f->path,
                   "tensor '%s' has dtype %s; only F32, F16 and BF16 "
                   "weights can be read", t->name, dtypes[t->dtype].name);
  }
}
