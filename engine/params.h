/* params.h — a model's parameter table and its upload (STYLE.md 12),
 * shared by every loader (unet.c, clip.c, vae.c, taesd.c); internal to the
 * engine (vtl__ names).
 *
 * A loader walks its architecture and adds one entry per weight: the
 * vtl_tensor field that becomes a view (the slot), its diffusers key and
 * the shape the config implies. vtl__params_load then packs the entries in
 * order into arenas of at most VTL__ARENA_BYTES each (one buffer per model
 * would exceed the per-allocation limit of many devices at SD sizes),
 * stages each arena on the host, writes it once, and gives the weight
 * file's pages back (vtl_weights_drop_pages) before the next.
 *
 * Storage (runtime.h "Weight storage"): when vtl_cl_weights is f16, every
 * entry of two or more dimensions (a conv or linear weight, what the GEMM
 * reads) is stored as F16, rounded to nearest even on the host from
 * whatever the file holds (F32, F16: exact, BF16); entries marked with
 * vtl__param_keep_f32 (lookup tables: CLIP's embeddings, read by row
 * copies) and every 1-D entry (biases, norms) stay F32. An arena is
 * bytes: each entry starts on a 4-byte boundary.
 */
#ifndef VTL_PARAMS_H
#define VTL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "model_files.h"
#include "tensor.h"

#define VTL__ARENA_BYTES ((size_t)256 << 20)

typedef struct {
  vtl_tensor *slot;  /* the field the view goes to */
  char key[192];     /* diffusers name */
  int ndim;
  int64_t shape[4];
  size_t numel;
  int keep_f32;      /* a lookup table: never f16 */
  vtl_type type;     /* set by vtl__params_load */
  int arena;         /* and where: arena index, byte offset */
  size_t off;
} vtl__param;

typedef struct {
  vtl__param *p;
  size_t n, cap;
  int err; /* VTL_ENOMEM / VTL_ETOOLONG once an add failed */
} vtl__params;

/* A model's weight buffers. */
typedef struct {
  vtl_tensor *arena; /* [n] each owns a range of the weights */
  int n;
  size_t bytes;      /* device bytes of the weights (what the arenas hold) */
  size_t f16_elems;  /* elements stored as f16 */
} vtl__arenas;

/* Appends slot <- key (printf format) with shape[ndim] (1..4 dims). */
void vtl__param_add(vtl__params *ps, vtl_tensor *slot, int ndim,
                    const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Marks the entry added last as a lookup table (stays F32). */
void vtl__param_keep_f32(vtl__params *ps);
void vtl__params_free(vtl__params *ps);

/* Chooses each entry's type, allocates the arenas (labelled what.N), makes
 * every slot a view, reads every weight of w (vtl_weights_get_shaped),
 * uploads, and checks that w has no other tensor. 0, or a VTL_E* code with
 * msg set (the arenas are then released). */
int vtl__params_load(vtl_cl *cl, vtl_weights *w, vtl__params *ps,
                     vtl__arenas *out, const char *what, char *msg,
                     size_t msglen);
void vtl__arenas_free(vtl_cl *cl, vtl__arenas *a); /* zeroed: no-op */

#endif /* VTL_PARAMS_H */
