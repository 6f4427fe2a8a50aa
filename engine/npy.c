/* npy.c — reading and writing NumPy .npy arrays.
 *
 * File layout (numpy/lib/format.py; all integers little-endian):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *   0       6     magic "\x93NUMPY"
 *   6       1     major version: 1 or 2 (3 is 2 with a UTF-8 header: refused)
 *   7       1     minor version: 0
 *   8       2|4   HLEN, header length: 2 bytes in 1.0, 4 bytes in 2.0
 *   10|12   HLEN  header: a Python dict literal, ASCII, padded with spaces
 *                 and ended by '\n' so that the data starts 64-aligned:
 *                   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *   ...     DATA  count * itemsize bytes, C order; nothing after them
 *
 * What we accept: descr '<f4' (float32) or '<i8' (int64) ('|' or '=' byte
 * orders are not written by numpy for these types, so they are refused like
 * every other dtype), fortran_order False, up to VTL_NPY_MAX_DIMS dims, each
 * >= 0 (a shape () is a scalar: one element).
 *
 * Damaged files are refused with a message, never read past: HLEN larger
 * than the file or than NPY_MAX_HEADER, a header that is not a well-formed
 * dict with exactly the three keys, a shape whose element count or byte size
 * overflows size_t, data shorter (truncated) or longer (trailing bytes) than
 * the shape says.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "npy.h"
#include "vtl_error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads little-endian data with memcpy: add byte swapping"
#endif

#define NPY_MAX_HEADER (1u << 20) /* numpy writes < 1 KiB; 2.0 allows 4 GiB */

static int npy_fail(char *msg, size_t msglen, int code, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Formats "path: problem" into msg (may be NULL) and returns code. */
static int npy_fail(char *msg, size_t msglen, int code, const char *path,
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

/* ---- the header dict ---------------------------------------------------- */

typedef struct {
  const char *p, *end; /* cursor into the header text (borrowed) */
} npy_lex;

static void lex_ws(npy_lex *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' ||
                           *l->p == '\r'))
    l->p++;
}

static bool lex_char(npy_lex *l, char c) {
  lex_ws(l);
  if (l->p < l->end && *l->p == c) {
    l->p++;
    return true;
  }
  return false;
}

/* A quoted Python string without escapes into buf. Returns false when there
 * is none or it does not fit. */
static bool lex_string(npy_lex *l, char *buf, size_t len) {
  lex_ws(l);
  if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return false;
  char q = *l->p++;
  size_t n = 0;
  while (l->p < l->end && *l->p != q) {
    if (*l->p == '\\' || n + 1 >= len) return false;
    buf[n++] = *l->p++;
  }
  if (l->p >= l->end) return false;
  l->p++;
  buf[n] = '\0';
  return true;
}

static bool lex_word(npy_lex *l, const char *w) {
  lex_ws(l);
  size_t n = strlen(w);
  if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n) != 0) return false;
  l->p += n;
  return true;
}

/* A non-negative decimal integer (Python 2 headers may add 'L'). */
static bool lex_dim(npy_lex *l, int64_t *out) {
  lex_ws(l);
  if (l->p >= l->end || *l->p < '0' || *l->p > '9') return false;
  int64_t v = 0;
  while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
    int d = *l->p++ - '0';
    if (v > (INT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (l->p < l->end && *l->p == 'L') l->p++;
  *out = v;
  return true;
}

/* Parses the header dict into a (dtype, ndim, shape). Returns 0 or a VTL_E*
 * code with msg set. */
static int parse_header(const char *path, const char *h, size_t hlen,
                        vtl_npy *a, char *msg, size_t msglen) {
  npy_lex l = {h, h + hlen};
  bool have_descr = false, have_fortran = false, have_shape = false;
  char key[32], descr[32];
  if (!lex_char(&l, '{'))
    return npy_fail(msg, msglen, VTL_EPARSE, path, "header is not a dict");
  while (!lex_char(&l, '}')) {
    if (!lex_string(&l, key, sizeof key) || !lex_char(&l, ':'))
      return npy_fail(msg, msglen, VTL_EPARSE, path, "malformed header");
    if (strcmp(key, "descr") == 0 && !have_descr) {
      if (!lex_string(&l, descr, sizeof descr))
        return npy_fail(msg, msglen, VTL_EPARSE, path, "malformed descr");
      have_descr = true;
    } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
      if (lex_word(&l, "True"))
        return npy_fail(msg, msglen, VTL_EUNSUPPORTED, path,
                        "fortran order is not supported");
      if (!lex_word(&l, "False"))
        return npy_fail(msg, msglen, VTL_EPARSE, path,
                        "malformed fortran_order");
      have_fortran = true;
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      if (!lex_char(&l, '('))
        return npy_fail(msg, msglen, VTL_EPARSE, path, "malformed shape");
      a->ndim = 0;
      while (!lex_char(&l, ')')) {
        int64_t d;
        if (a->ndim == VTL_NPY_MAX_DIMS)
          return npy_fail(msg, msglen, VTL_EUNSUPPORTED, path,
                          "more than %d dimensions", VTL_NPY_MAX_DIMS);
        if (!lex_dim(&l, &d))
          return npy_fail(msg, msglen, VTL_EPARSE, path,
                          "malformed shape (negative or huge dimension?)");
        a->shape[a->ndim++] = d;
        if (!lex_char(&l, ',')) {
          if (!lex_char(&l, ')'))
            return npy_fail(msg, msglen, VTL_EPARSE, path, "malformed shape");
          break;
        }
      }
      have_shape = true;
    } else {
      return npy_fail(msg, msglen, VTL_EPARSE, path,
                      "unexpected or repeated header key '%s'", key);
    }
    if (!lex_char(&l, ',')) {
      if (!lex_char(&l, '}'))
        return npy_fail(msg, msglen, VTL_EPARSE, path, "malformed header");
      break;
    }
  }
  lex_ws(&l);
  if (l.p != l.end)
    return npy_fail(msg, msglen, VTL_EPARSE, path, "garbage after header");
  if (!have_descr || !have_fortran || !have_shape)
    return npy_fail(msg, msglen, VTL_EPARSE, path,
                    "header lacks descr, fortran_order or shape");
  if (strcmp(descr, "<f4") == 0)
    a->dtype = VTL_NPY_F32;
  else if (strcmp(descr, "<i8") == 0)
    a->dtype = VTL_NPY_I64;
  else
    return npy_fail(msg, msglen, VTL_EUNSUPPORTED, path,
                    "unsupported dtype \"%s\" (only <f4 and <i8)", descr);
  return 0;
}

/* ---- loading ------------------------------------------------------------ */

static size_t dtype_size(vtl_npy_dtype t) { return t == VTL_NPY_F32 ? 4 : 8; }

int vtl_npy_load(const char *path, vtl_npy *out, char *msg, size_t msglen) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f)
    return npy_fail(msg, msglen, VTL_EIO, path, "%s", strerror(errno));

  int rc = 0;
  char *header = NULL;
  unsigned char pre[12];
  struct stat st;
  bool sized = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
  uint64_t fsize = sized ? (uint64_t)st.st_size : 0;

  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    rc = npy_fail(msg, msglen, VTL_EPARSE, path, "not a .npy file (bad magic)");
    goto done;
  }
  if ((pre[6] != 1 && pre[6] != 2) || pre[7] != 0) {
    rc = npy_fail(msg, msglen, VTL_EUNSUPPORTED, path,
                  "unsupported .npy version %u.%u (only 1.0 and 2.0)", pre[6],
                  pre[7]);
    goto done;
  }
  uint64_t hlen, preamble = pre[6] == 1 ? 10 : 12;
  if (pre[6] == 1) {
    hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
  } else {
    if (fread(pre + 10, 1, 2, f) != 2) {
      rc = npy_fail(msg, msglen, VTL_EPARSE, path, "truncated header");
      goto done;
    }
    hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 |
           (uint64_t)pre[11] << 24;
  }
  if (hlen > NPY_MAX_HEADER || (sized && hlen > fsize - preamble)) {
    rc = npy_fail(msg, msglen, VTL_EPARSE, path,
                  "header length %llu is larger than the %s",
                  (unsigned long long)hlen,
                  hlen > NPY_MAX_HEADER ? "limit" : "file");
    goto done;
  }
  header = malloc(hlen + 1);
  if (!header) {
    rc = npy_fail(msg, msglen, VTL_ENOMEM, path, "out of memory");
    goto done;
  }
  if (fread(header, 1, hlen, f) != hlen) {
    rc = npy_fail(msg, msglen, VTL_EPARSE, path, "truncated header");
    goto done;
  }
  header[hlen] = '\0';
  if ((rc = parse_header(path, header, hlen, out, msg, msglen)) != 0) goto done;

  size_t count = 1, isz = dtype_size(out->dtype);
  for (int i = 0; i < out->ndim; i++) {
    uint64_t d = (uint64_t)out->shape[i];
    if (d != 0 && count > SIZE_MAX / isz / d) {
      rc = npy_fail(msg, msglen, VTL_ERANGE, path, "shape is too large");
      goto done;
    }
    count *= (size_t)d;
  }
  size_t bytes = count * isz;
  if (sized && bytes != fsize - preamble - hlen) {
    uint64_t have = fsize - preamble - hlen;
    rc = npy_fail(msg, msglen, VTL_EPARSE, path,
                  have < bytes ? "truncated data (%llu of %zu bytes)"
                               : "%llu bytes of data where the shape says %zu",
                  (unsigned long long)have, bytes);
    goto done;
  }
  out->count = count;
  out->data = malloc(bytes ? bytes : 1);
  if (!out->data) {
    rc = npy_fail(msg, msglen, VTL_ENOMEM, path, "out of memory (%zu bytes)",
                  bytes);
    goto done;
  }
  if (fread(out->data, 1, bytes, f) != bytes) {
    rc = npy_fail(msg, msglen, VTL_EPARSE, path, "truncated data");
    goto done;
  }
  if (fgetc(f) != EOF) {
    rc = npy_fail(msg, msglen, VTL_EPARSE, path, "trailing bytes after data");
    goto done;
  }

done:
  free(header);
  fclose(f);
  if (rc) vtl_npy_free(out);
  return rc;
}

void vtl_npy_free(vtl_npy *a) {
  free(a->data);
  memset(a, 0, sizeof *a);
}

/* ---- saving ------------------------------------------------------------- */

int vtl_npy_save_f32(const char *path, const float *data, int ndim,
                     const int64_t *shape) {
  if (ndim < 0 || ndim > VTL_NPY_MAX_DIMS) return VTL_EINVAL;
  char h[512];
  size_t count = 1;
  int n = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, "
                                "'shape': (");
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return VTL_EINVAL;
    if (shape[i] != 0 && count > SIZE_MAX / 4 / (uint64_t)shape[i])
      return VTL_ERANGE;
    count *= (size_t)shape[i];
    n += snprintf(h + n, sizeof h - (size_t)n, "%s%lld", i ? ", " : "",
                  (long long)shape[i]);
  }
  /* a 1-tuple is written "(3,)" */
  n += snprintf(h + n, sizeof h - (size_t)n, ndim == 1 ? ",), }" : "), }");
  /* pad with spaces so that 10 + header (with its '\n') is 64-aligned */
  while ((10 + n + 1) % 64) h[n++] = ' ';
  h[n++] = '\n';

  FILE *f = fopen(path, "wb");
  if (!f) return VTL_EIO;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                           (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
  bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(h, 1, (size_t)n, f) == (size_t)n &&
            fwrite(data, 4, count, f) == count;
  if (fclose(f) != 0) ok = false;
  return ok ? 0 : VTL_EIO;
}
