/* tensor.h — tensors in device buffers, the data every op reads and writes:
 * f32, and f16 for stored conv / linear weights (runtime.h "Weight storage").
 *
 * A tensor is a description (ggml's struct ggml_tensor, STYLE.md 14): type,
 * shape, and where its elements live (a cl_mem and an element offset). Ops
 * here run eagerly (engine/ops.h); they do not record a graph. Two choices
 * differ from ggml, on purpose:
 *
 *   - shape[] is outermost first, as PyTorch and the checkpoints write it:
 *     NCHW images are {N, C, H, W}, sequences {B, T, C}, conv weights
 *     {Cout, Cin, KH, KW}, linear weights {out, in}. Weight shapes then read
 *     exactly as the safetensors headers do.
 *   - tensors are contiguous (no nb[] strides): every op kernel indexes
 *     densely. A view is a contiguous range of another tensor's buffer, which
 *     is how one model keeps all its weights in one cl_mem (STYLE.md 12).
 *
 *   data:  buf + off*S .. buf + (off + numel)*S   (bytes; S = 4 for F32,
 *                                                   2 for F16)
 *
 * Ops compute in f32. An F16 tensor is accepted only where a weight is
 * read: the a and b operands of vtl_gemm, the w of vtl_linear and
 * vtl_conv2d (op_gemm.c widens it to pooled f32 scratch). Every other input
 * and every output is f32; the GEMM and the host backend's mapping refuse
 * an F16 there with VTL_EINVAL.
 *
 * A tensor from vtl_tensor_alloc owns a pooled buffer (runtime.h) until
 * vtl_tensor_release; a view borrows its base's buffer and must not outlive
 * it (releasing a view is a no-op).
 */
#ifndef VTL_TENSOR_H
#define VTL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#define VTL_MAX_DIMS 4

typedef enum {
  VTL_F32 = 0,
  VTL_F16 /* IEEE binary16, stored weights only */
} vtl_type;

typedef struct vtl_tensor {
  vtl_type type;                 /* F32, or F16 (weights) */
  int ndim;                      /* 1..VTL_MAX_DIMS */
  int64_t shape[VTL_MAX_DIMS];   /* outermost first; unused dims are 1 */
  cl_mem buf;                    /* device buffer: owned (pool) or borrowed */
  size_t off;                    /* first element, in elements (of type)
                                    from buf start */
  size_t buf_elems;              /* elements (of type) buf holds */
  int owner;                     /* 1: buf goes back to the pool on release */
  char name[64];                 /* checkpoint key or debug label; may be "" */
} vtl_tensor;

/* A shape literal: vtl_tensor_alloc(cl, &t, 4, VTL_SHAPE(n, c, h, w)). */
#define VTL_SHAPE(...) ((const int64_t[]){__VA_ARGS__})

size_t vtl_tensor_numel(const vtl_tensor *t);
size_t vtl_type_size(vtl_type type); /* bytes per element: 4, 2 */
size_t vtl_tensor_bytes(const vtl_tensor *t); /* numel * type size */

/* Sets ndim and shape (1 <= ndim <= 4, every dim >= 1) without touching the
 * buffer; VTL_EINVAL for a bad shape. */
int vtl_tensor_set_shape(vtl_tensor *t, int ndim, const int64_t *shape);

/* Allocates an uninitialised tensor from the pool. VTL_ENOMEM with a message
 * in vtl_cl_errmsg when the device refuses. */
int vtl_tensor_alloc(vtl_cl *cl, vtl_tensor *t, int ndim, const int64_t *shape);
/* The same with another element type. */
int vtl_tensor_alloc_as(vtl_cl *cl, vtl_tensor *t, vtl_type type, int ndim,
                        const int64_t *shape);
/* Returns an owned buffer to the pool and zeroes *t. NULL buf is a no-op. */
void vtl_tensor_release(vtl_cl *cl, vtl_tensor *t);

/* A view of base: elements base.off + off .. + numel(shape). VTL_ERANGE if
 * it reaches past base's elements. */
int vtl_tensor_view(vtl_tensor *v, const vtl_tensor *base, size_t off,
                    int ndim, const int64_t *shape);
/* A view of another type: its first element at byte byte_off of base's
 * data (a multiple of the type's size); VTL_ERANGE past base's end, VTL_EINVAL
 * misaligned. How one arena holds f32 and f16 weights side by side. */
int vtl_tensor_view_as(vtl_tensor *v, const vtl_tensor *base, vtl_type type,
                       size_t byte_off, int ndim, const int64_t *shape);
/* Same elements, another shape with the same count (VTL_EINVAL otherwise). */
int vtl_tensor_reshape(vtl_tensor *t, int ndim, const int64_t *shape);

/* Blocking copies between host memory (numel elements of t's type: floats,
 * or uint16_t halves) and the tensor. */
int vtl_tensor_write(vtl_cl *cl, const vtl_tensor *t, const void *src);
int vtl_tensor_read(vtl_cl *cl, const vtl_tensor *t, void *dst);

#endif /* VTL_TENSOR_H */
