/* params.c — parameter tables and their upload (contract: params.h). */
#include "params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime_int.h"

void vtl__param_add(vtl__params *ps, vtl_tensor *slot, int ndim,
                    const int64_t *shape, const char *fmt, ...) {
  if (ps->err) return;
  if (ps->n == ps->cap) {
    size_t cap = ps->cap ? 2 * ps->cap : 256;
    vtl__param *p = realloc(ps->p, cap * sizeof *p);
    if (!p) {
      ps->err = VTL_ENOMEM;
      return;
    }
    ps->p = p;
    ps->cap = cap;
  }
  vtl__param *q = &ps->p[ps->n];
  memset(q, 0, sizeof *q);
  va_list ap;
  va_start(ap, fmt);
  int kn = vsnprintf(q->key, sizeof q->key, fmt, ap);
  va_end(ap);
  if (kn < 0 || (size_t)kn >= sizeof q->key) {
    ps->err = VTL_ETOOLONG;
    return;
  }
  q->slot = slot;
  q->ndim = ndim;
  q->numel = 1;
  for (int i = 0; i < ndim; i++) {
    q->shape[i] = shape[i];
    q->numel *= (size_t)shape[i];
  }
  ps->n++;
}

void vtl__param_keep_f32(vtl__params *ps) {
  if (!ps->err && ps->n) ps->p[ps->n - 1].keep_f32 = 1;
}

void vtl__params_free(vtl__params *ps) {
  free(ps->p);
  memset(ps, 0, sizeof *ps);
}

void vtl__arenas_free(vtl_cl *cl, vtl__arenas *a) {
  for (int i = 0; i < a->n; i++) vtl_tensor_release(cl, &a->arena[i]);
  free(a->arena);
  memset(a, 0, sizeof *a);
}

static size_t entry_bytes(const vtl__param *p) {
  size_t b = p->numel * vtl_type_size(p->type);
  return (b + 3) & ~(size_t)3; /* the next entry starts 4-aligned */
}

/* Types, arenas and byte offsets, in order; returns the number of arenas. */
static int pack(vtl_cl *cl, vtl__params *ps, vtl__arenas *out) {
  int f16 = vtl_cl_weights(cl) == VTL_WEIGHTS_F16, a = 0;
  size_t off = 0;
  for (size_t i = 0; i < ps->n; i++) {
    vtl__param *p = &ps->p[i];
    p->type = f16 && p->ndim >= 2 && !p->keep_f32 ? VTL_F16 : VTL_F32;
    if (p->type == VTL_F16) out->f16_elems += p->numel;
    size_t b = entry_bytes(p);
    if (off && off + b > VTL__ARENA_BYTES) {
      a++;
      off = 0;
    }
    p->arena = a;
    p->off = off;
    off += b;
    out->bytes += b;
  }
  return ps->n ? a + 1 : 0;
}

/* Reads p into its place in the staged arena; f16 entries through tmp. */
static int stage(vtl_weights *w, const vtl__param *p, unsigned char *host,
                 float *tmp, char *msg, size_t msglen) {
  float *dst = p->type == VTL_F32 ? (float *)(host + p->off) : tmp;
  int rc = vtl_weights_get_shaped(w, p->key, p->ndim, p->shape, dst, msg,
                                  msglen);
  if (rc || p->type == VTL_F32) return rc;
  uint16_t *h = (uint16_t *)(host + p->off);
  for (size_t i = 0; i < p->numel; i++) h[i] = vtl_f32_to_f16(tmp[i]);
  return 0;
}

/* Allocates arena a, views its entries, stages them and uploads. */
static int load_arena(vtl_cl *cl, vtl_weights *w, vtl__params *ps,
                      vtl__arenas *out, int a, const char *what, float *tmp,
                      char *msg, size_t msglen) {
  size_t total = 0, first = ps->n;
  for (size_t i = 0; i < ps->n; i++)
    if (ps->p[i].arena == a) {
      if (first == ps->n) first = i;
      total = ps->p[i].off + entry_bytes(&ps->p[i]);
    }
  unsigned char *host = malloc(total);
  if (!host) {
    snprintf(msg, msglen, "%s: out of host memory (%zu bytes)", what, total);
    return VTL_ENOMEM;
  }
  vtl_tensor *ar = &out->arena[a];
  int rc = vtl_tensor_alloc(cl, ar, 1, VTL_SHAPE((int64_t)(total / 4)));
  if (rc) {
    snprintf(msg, msglen, "%s weights (%zu bytes): %s", what, total,
             vtl_cl_errmsg(cl));
    free(host);
    return rc;
  }
  snprintf(ar->name, sizeof ar->name, "%s.%d", what, a);
  for (size_t i = first; i < ps->n && ps->p[i].arena == a && !rc; i++) {
    vtl__param *p = &ps->p[i];
    rc = vtl_tensor_view_as(p->slot, ar, p->type, p->off, p->ndim, p->shape);
    if (rc) {
      snprintf(msg, msglen, "%s: view of %zu elements at byte %zu", p->key,
               p->numel, p->off);
      break;
    }
    size_t kl = strlen(p->key), room = sizeof p->slot->name - 1;
    const char *k = p->key; /* a debug label: keep the tail */
    if (kl > room) {
      k += kl - room;
      kl = room;
    }
    memcpy(p->slot->name, k, kl);
    p->slot->name[kl] = '\0';
    rc = stage(w, p, host, tmp, msg, msglen);
  }
  if (!rc) {
    rc = vtl_tensor_write(cl, ar, host);
    if (rc) snprintf(msg, msglen, "%s upload: %s", what, vtl_cl_errmsg(cl));
  }
  free(host);
  vtl_weights_drop_pages(w); /* uploaded: the file's pages can go */
  return rc;
}

int vtl__params_load(vtl_cl *cl, vtl_weights *w, vtl__params *ps,
                     vtl__arenas *out, const char *what, char *msg,
                     size_t msglen) {
  memset(out, 0, sizeof *out);
  if (ps->err || ps->n == 0) {
    snprintf(msg, msglen, "%s: %s while listing the weights", what,
             ps->err == VTL_ETOOLONG ? "a name too long"
             : ps->err             ? "out of memory"
                                   : "no weights");
    return ps->err ? ps->err : VTL_EINVAL;
  }
  int na = pack(cl, ps, out);
  size_t tmp_n = 1;
  for (size_t i = 0; i < ps->n; i++)
    if (ps->p[i].type == VTL_F16 && ps->p[i].numel > tmp_n)
      tmp_n = ps->p[i].numel;
  float *tmp = out->f16_elems ? malloc(tmp_n * sizeof *tmp) : NULL;
  out->arena = calloc((size_t)na, sizeof *out->arena);
  if (!out->arena || (out->f16_elems && !tmp)) {
    free(tmp);
    vtl__arenas_free(cl, out);
    snprintf(msg, msglen, "%s: out of memory", what);
    return VTL_ENOMEM;
  }
  out->n = na;
  int rc = 0;
  for (int a = 0; a < na && !rc; a++)
    rc = load_arena(cl, w, ps, out, a, what, tmp, msg, msglen);
  free(tmp);
  if (!rc) rc = vtl_weights_check_unused(w, msg, msglen);
  if (rc) vtl__arenas_free(cl, out);
  return rc;
}
