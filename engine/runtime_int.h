/* runtime_int.h — what the op files share with the runtime (vtl__ names:
 * internal to the engine, not part of its API).
 *
 * An op file does, in this order:
 *
 *   cl_kernel k; int rc = vtl__kernel(cl, VTL_PROG_NORM, "group_norm", &k);
 *   VTL__ARG(k, 0, y->buf) ...                    (vtl__args checks them all)
 *   rc = vtl__launch(cl, k, "group_norm", 1, gws, lws);
 *
 * and on the host backend maps its tensors with vtl__map / vtl__unmap.
 */
#ifndef VTL_RUNTIME_INT_H
#define VTL_RUNTIME_INT_H

#include <stdarg.h>
#include <stdint.h>

#include "vtl_error.h"

#include "runtime.h"
#include "tensor.h"

/* The kernel families: engine/kernels/<name>.cl, one program each. */
#define VTL_PROGRAM_MAP(X)                                                   \
  X(ELEMENTWISE, "elementwise")                                              \
  X(NORM,        "norm")                                                     \
  X(CONV,        "conv")                                                     \
  X(ATTENTION,   "attention")                                             \
  X(CONVERT,     "convert")                                                \
  X(WINOGRAD,    "winograd")

typedef enum {
#define X(id, file) VTL_PROG_##id,
  VTL_PROGRAM_MAP(X)
#undef X
  VTL_PROG_COUNT
} vtl__program_id;

/* Generated at build time from engine/kernels/<family>.cl (vtl_kernels.c in the
 * build tree). */
typedef struct {
  const char *name; /* file name without .cl */
  const char *src;  /* NUL-terminated source */
} vtl__kernel_source;
extern const vtl__kernel_source vtl__kernel_sources[];
extern const int vtl__kernel_source_count;

/* Formats the handle's error message and returns code (always < 0). */
int vtl__fail(vtl_cl *cl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 0 for CL_SUCCESS; otherwise the VTL_E* code for err, with the message
 * "what: CL_NAME (err)". */
int vtl__check(vtl_cl *cl, cl_int err, const char *what);
const char *vtl__cl_errname(cl_int err);

/* The kernel `name` of program `prog` (program built on first use; kernel
 * objects cached by name). */
int vtl__kernel(vtl_cl *cl, vtl__program_id prog, const char *name,
                cl_kernel *out);

/* Sets kernel arguments from (size, pointer) pairs, ended by 0:
 *   vtl__args(cl, k, "im2col", sizeof(cl_mem), &buf, sizeof(int), &n, 0) */
int vtl__args(vtl_cl *cl, cl_kernel k, const char *name, ...);

/* Enqueues k over a dims-dimensional range; gws is rounded up to lws when lws
 * is given (kernels check their bounds). Records the event under `name` when
 * profiling. */
int vtl__launch(vtl_cl *cl, cl_kernel k, const char *name, int dims,
                const size_t *gws, const size_t *lws);

/* Adds a host-side duration (seconds) to the profile under name. */
void vtl__profile_host(vtl_cl *cl, const char *name, double seconds);
double vtl__now(void);

/* Pool: a buffer of at least bytes (CL_MEM_ALLOC_HOST_PTR on a CPU device so
 * mapping it is free). *got is its real size. */
int vtl__buf_get(vtl_cl *cl, size_t bytes, cl_mem *out, size_t *got);
void vtl__buf_put(vtl_cl *cl, cl_mem m);

/* Host backend: maps n tensors for reading and writing (each distinct cl_mem
 * once, whole) after everything queued before has finished; ptr[i] points at
 * tensor i's first element. vtl__unmap gives them back. At most 8. */
typedef struct {
  int n;
  cl_mem mem[8];
  void *base[8];
} vtl__mapping;
int vtl__map(vtl_cl *cl, vtl__mapping *m, int n, const vtl_tensor *const *t,
             float **ptr);
int vtl__unmap(vtl_cl *cl, vtl__mapping *m);

/* What vtl__sgemm applies to each C block after the product, while it is
 * still in cache on the host: C = act(C + bias + res), bias [m] (per_row)
 * or [n], res a tensor laid out as C (the same offsets and ldc: a residual
 * of the output's shape), not C itself. */
typedef struct {
  const vtl_tensor *bias; /* NULL: none */
  int per_row;            /* 1: bias[i] for row i (conv), 0: bias[j] (linear) */
  int act;                /* vtl_act */
  const vtl_tensor *res;  /* NULL: none */
} vtl__epilogue;

/* For i in 0..batch-1:
 *   C_i = act(alpha * op(A_i) * op(B_i) + beta * C_i + bias + res_i)
 * with X_i at x_off + i * x_stride; row-major, offsets in elements from each
 * tensor's first element; ep may be NULL. A and B may be F16 (widened by
 * vtl__widen first); C and the bias must be F32. The one GEMM entry point of the
 * engine (op_gemm.c): CLBlast + a bias_act_mat kernel on VTL_BACKEND_CL,
 * cblas_sgemm + a C loop on mapped buffers (mapped once for the whole batch)
 * on VTL_BACKEND_HOST. */
int vtl__sgemm(vtl_cl *cl, int batch, int trans_a, int trans_b, int m, int n,
               int k, float alpha, const vtl_tensor *a, size_t a_off,
               size_t a_stride, int lda, const vtl_tensor *b, size_t b_off,
               size_t b_stride, int ldb, float beta, const vtl_tensor *c,
               size_t c_off, size_t c_stride, int ldc,
               const vtl__epilogue *ep);
/* The f32 operand of a GEMM: *t itself when it is F32; when it is F16
 * (a stored weight), a pooled f32 tensor of the same shape in *scratch,
 * converted by convert.cl half_to_float (on both backends), and *t then
 * points at it. Release *scratch after the product (a no-op when unused:
 * it is zeroed). The one place weights are widened (op_gemm.c). */
int vtl__widen(vtl_cl *cl, const vtl_tensor **t, vtl_tensor *scratch);
/* The epilogue's two halves (op_elementwise.c). */
int vtl__epilogue_cl(vtl_cl *cl, const vtl_tensor *c, size_t c_off, int ldc,
                     int m, int n, const vtl__epilogue *ep);
void vtl__epilogue_host(float *c, int ldc, int m, int n, const float *bias,
                        const float *res, const vtl__epilogue *ep);

/* For CLBlast: the queue, and an event to add to the profile under name
 * (released by the runtime). */
cl_command_queue vtl__queue(vtl_cl *cl);
void vtl__profile_event(vtl_cl *cl, cl_event ev, const char *name);
int vtl__profiling(const vtl_cl *cl);

/* The grid-stride global size for n items. */
size_t vtl__gws(const vtl_cl *cl, size_t n);

/* y[i] = act(x[i] + b[(i / inner) % nb]) (b may be NULL: no bias), over n
 * elements of y (y may be x). elementwise.cl bias_act. */
int vtl__bias_act(vtl_cl *cl, const vtl_tensor *y, size_t y_off,
                  const vtl_tensor *x, size_t x_off, const vtl_tensor *b,
                  size_t n, size_t inner, size_t nb, int act);

/* Shape checks of the ops: VTL_EINVAL with a message when cond is false. */
#define VTL__REQUIRE(cl, cond, ...)                                          \
  do {                                                                       \
    if (!(cond)) return vtl__fail((cl), VTL_EINVAL, __VA_ARGS__);            \
  } while (0)
#define VTL__TRY(expr)                                                       \
  do {                                                                       \
    int rc_ = (expr);                                                        \
    if (rc_ < 0) return rc_;                                                 \
  } while (0)
/* Kernels index with int: every tensor an op touches stays below this. */
#define VTL__MAX_ELEMS ((size_t)INT32_MAX)

/* Scratch sizes, in floats, that split big ops into chunks (op_conv.c,
 * op_attention.c). Variables, not constants, so that tests can make them small
 * and exercise the chunking on small shapes. */
extern size_t vtl__conv_col_chunk;
extern size_t vtl__conv_wino_chunk; /* V + M of op_winograd.c */
extern size_t vtl__attention_score_chunk;

/* conv2d 3x3, stride 1, padding 1, y the size of x, as Winograd F(2x2, 3x3)
 * (op_winograd.c): y = act(conv + b + r), b and r NULL or as vtl_conv2d_res
 * has them; op_conv.c has checked the shapes and chosen it. */
int vtl__conv3x3_winograd(vtl_cl *cl, const vtl_tensor *y,
                          const vtl_tensor *x, const vtl_tensor *w,
                          const vtl_tensor *b, const vtl_tensor *r, int act);

/* One work-group size for a 1-D launch of n items. */
size_t vtl__wgs(const vtl_cl *cl);

#endif /* VTL_RUNTIME_INT_H */
