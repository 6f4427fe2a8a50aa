/* op_elementwise.c — activations, GEGLU, resize, concat, add/mul/scale, the
 * timestep embedding, and the bias + activation epilogue of the GEMM ops.
 * Kernels: kernels/elementwise.cl (one item per element, 2-D where a
 * broadcast would need a division per element). Contracts:
 * ops.h. These run as OpenCL kernels on both backends: they are memory-bound,
 * and PoCL spreads them over the cores, which a plain C loop would not. */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "runtime_int.h"

#define ARG_MEM(t) sizeof(cl_mem), &(t)->buf
#define ARG(v) sizeof(v), &(v)

static int same_count(const vtl_tensor *a, const vtl_tensor *b) {
  return vtl_tensor_numel(a) == vtl_tensor_numel(b);
}

/* ---- bias + activation (the epilogue of linear and conv2d) ----------- */

/* The kernel names of one broadcast family, in BROADCAST_KERNELS' order. */
typedef struct {
  const char *all, *cols, *rows;
} broadcast_names;
/* bias + activation: one family per activation (elementwise.cl says why) */
static const broadcast_names BIAS_ACT[] = {
    [VTL_ACT_NONE] = {"bias_none_all", "bias_none_cols", "bias_none_rows"},
    [VTL_ACT_SILU] = {"bias_silu_all", "bias_silu_cols", "bias_silu_rows"},
    [VTL_ACT_GELU] = {"bias_gelu_all", "bias_gelu_cols", "bias_gelu_rows"},
    [VTL_ACT_QUICK_GELU] = {"bias_quick_gelu_all", "bias_quick_gelu_cols",
                            "bias_quick_gelu_rows"},
    [VTL_ACT_RELU] = {"bias_relu_all", "bias_relu_cols", "bias_relu_rows"},
};
static const broadcast_names ADD = {"add_all", "add_cols", "add_rows"};
static const broadcast_names MUL = {"mul_all", "mul_cols", "mul_rows"};

/* y[i] = f(x[i], b[(i / inner) % nb]) for i < n, offsets in elements; b
 * NULL: has_b = 0. The three ranges: elementwise.cl's header. */
static int broadcast_launch(vtl_cl *cl, const broadcast_names *names,
                            const vtl_tensor *y, size_t y_off,
                            const vtl_tensor *x, size_t x_off,
                            const vtl_tensor *b, size_t n, size_t inner,
                            size_t nb, int act) {
  VTL__REQUIRE(cl, n <= VTL__MAX_ELEMS, "%s: %zu elements", names->all, n);
  if (!b || (inner <= 1 && nb >= n)) inner = 1, nb = n;
  const char *name = nb == n ? names->all : inner == 1 ? names->cols : names->rows;
  size_t lws[2] = {vtl__wgs(cl), 1};
  size_t gws[2] = {name == names->all ? n : inner == 1 ? nb : inner,
                   name == names->all ? 1 : inner == 1 ? n / nb : n / inner};
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ELEMENTWISE, name, &k));
  cl_ulong yo = y->off + y_off, xo = x->off + x_off, bo = b ? b->off : xo;
  cl_int has_b = b != NULL, a = act, ni = (cl_int)n, inr = (cl_int)inner,
         nbi = (cl_int)nb;
  cl_mem bm = b ? b->buf : x->buf; /* has_b = 0: x, read but unused */
  VTL__TRY(vtl__args(cl, k, name, ARG_MEM(y), ARG(yo), ARG_MEM(x), ARG(xo),
                     sizeof(cl_mem), &bm, ARG(bo), ARG(ni), ARG(inr), ARG(nbi),
                     ARG(has_b), ARG(a), (size_t)0));
  return vtl__launch(cl, k, name, name == names->all ? 1 : 2, gws, lws);
}

int vtl__bias_act(vtl_cl *cl, const vtl_tensor *y, size_t y_off,
                  const vtl_tensor *x, size_t x_off, const vtl_tensor *b,
                  size_t n, size_t inner, size_t nb, int act) {
  VTL__REQUIRE(cl, act >= 0 && act < (int)(sizeof BIAS_ACT / sizeof *BIAS_ACT),
               "bias_act: unknown activation %d", act);
  return broadcast_launch(cl, b && act == VTL_ACT_NONE ? &ADD : &BIAS_ACT[act], y, y_off, x, x_off, b, n,
                          inner ? inner : 1, nb ? nb : 1, act);
}

int vtl__epilogue_cl(vtl_cl *cl, const vtl_tensor *c, size_t c_off, int ldc,
                     int m, int n, const vtl__epilogue *ep) {
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ELEMENTWISE, "bias_act_mat", &k));
  cl_ulong co = c->off + c_off, bo = ep->bias ? ep->bias->off : 0,
           ro = ep->res ? ep->res->off + c_off : 0;
  cl_int has_b = ep->bias != NULL, pr = ep->per_row != 0, a = ep->act,
         has_r = ep->res != NULL;
  /* absent: c, read but unused */
  cl_mem bm = ep->bias ? ep->bias->buf : c->buf,
         rm = ep->res ? ep->res->buf : c->buf;
  VTL__TRY(vtl__args(cl, k, "bias_act_mat", ARG_MEM(c), ARG(co), ARG(ldc),
                     ARG(m), ARG(n), sizeof(cl_mem), &bm, ARG(bo), ARG(has_b),
                     ARG(pr), sizeof(cl_mem), &rm, ARG(ro), ARG(has_r), ARG(a),
                     (size_t)0));
  size_t lws[2] = {16, 1}, gws[2] = {(size_t)n, (size_t)m};
  return vtl__launch(cl, k, "bias_act_mat", 2, gws, lws);
}

void vtl__epilogue_host(float *c, int ldc, int m, int n, const float *bias,
                        const float *res, const vtl__epilogue *ep) {
  for (int i = 0; i < m; i++) {
    float *row = c + (size_t)i * ldc;
    if (bias && ep->per_row)
      for (int j = 0; j < n; j++) row[j] += bias[i];
    else if (bias)
      for (int j = 0; j < n; j++) row[j] += bias[j];
    if (res)
      for (int j = 0; j < n; j++) row[j] += res[(size_t)i * ldc + j];
    if (ep->act != VTL_ACT_NONE) vtl_activation_ref(row, row, n, ep->act);
  }
}

/* ---- activations ------------------------------------------------------ */

static float act_ref(float x, vtl_act act) {
  switch (act) {
    case VTL_ACT_SILU: return x / (1.0f + expf(-x));
    case VTL_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case VTL_ACT_QUICK_GELU: return x / (1.0f + expf(-1.702f * x));
    case VTL_ACT_RELU: return x > 0.0f ? x : 0.0f;
    default: return x;
  }
}

void vtl_activation_ref(float *y, const float *x, size_t n, vtl_act act) {
  for (size_t i = 0; i < n; i++) y[i] = act_ref(x[i], act);
}

int vtl_activation(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   vtl_act act) {
  VTL__REQUIRE(cl, same_count(y, x), "activation: y and x differ in size");
  size_t n = vtl_tensor_numel(x);
  return vtl__bias_act(cl, y, 0, x, 0, NULL, n, 1, 1, act);
}

/* ---- GEGLU ------------------------------------------------------------ */

void vtl_geglu_ref(float *y, const float *x, int R, int F) {
  for (int r = 0; r < R; r++)
    for (int f = 0; f < F; f++)
      y[(size_t)r * F + f] =
          x[(size_t)r * 2 * F + f] *
          act_ref(x[(size_t)r * 2 * F + F + f], VTL_ACT_GELU);
}

int vtl_geglu(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x) {
  int64_t f2 = x->shape[x->ndim - 1], f = y->shape[y->ndim - 1];
  VTL__REQUIRE(cl, f2 == 2 * f && vtl_tensor_numel(x) == 2 * vtl_tensor_numel(y),
               "geglu: x [..., %lld] needs y [..., %lld] of the same rows",
               (long long)f2, (long long)f2 / 2);
  VTL__REQUIRE(cl, vtl_tensor_numel(x) <= VTL__MAX_ELEMS, "geglu: too large");
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ELEMENTWISE, "geglu", &k));
  cl_ulong yo = y->off, xo = x->off;
  cl_int fi = (cl_int)f;
  VTL__TRY(vtl__args(cl, k, "geglu", ARG_MEM(y), ARG(yo), ARG_MEM(x), ARG(xo),
                     ARG(fi), (size_t)0));
  size_t gws[2] = {(size_t)f, vtl_tensor_numel(y) / f}, lws[2] = {vtl__wgs(cl), 1};
  return vtl__launch(cl, k, "geglu", 2, gws, lws);
}

/* ---- nearest 2x upsampling -------------------------------------------- */

void vtl_upsample2x_ref(float *y, const float *x, int NC, int H, int W) {
  for (int c = 0; c < NC; c++)
    for (int oy = 0; oy < 2 * H; oy++)
      for (int ox = 0; ox < 2 * W; ox++)
        y[((size_t)c * 2 * H + oy) * 2 * W + ox] =
            x[((size_t)c * H + oy / 2) * W + ox / 2];
}

int vtl_upsample2x(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x) {
  VTL__REQUIRE(cl, x->ndim == 4 && y->ndim == 4 &&
                       y->shape[0] == x->shape[0] && y->shape[1] == x->shape[1] &&
                       y->shape[2] == 2 * x->shape[2] &&
                       y->shape[3] == 2 * x->shape[3],
               "upsample2x: needs x [N, C, H, W] and y [N, C, 2H, 2W]");
  VTL__REQUIRE(cl, vtl_tensor_numel(y) <= VTL__MAX_ELEMS, "upsample2x: too large");
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ELEMENTWISE, "upsample2x", &k));
  cl_ulong yo = y->off, xo = x->off;
  cl_int h = (cl_int)x->shape[2], w = (cl_int)x->shape[3];
  VTL__TRY(vtl__args(cl, k, "upsample2x", ARG_MEM(y), ARG(yo), ARG_MEM(x),
                     ARG(xo), ARG(h), ARG(w), (size_t)0));
  size_t gws[2] = {(size_t)(2 * w), (size_t)(x->shape[0] * x->shape[1] * 2 * h)},
         lws[2] = {vtl__wgs(cl), 1};
  return vtl__launch(cl, k, "upsample2x", 2, gws, lws);
}

/* ---- channel concat ----------------------------------------------------- */

void vtl_concat_ref(float *y, const float *a, const float *b, int N, int sa,
                    int sb) {
  for (int n = 0; n < N; n++) {
    memcpy(y + (size_t)n * (sa + sb), a + (size_t)n * sa, sa * sizeof *y);
    memcpy(y + (size_t)n * (sa + sb) + sa, b + (size_t)n * sb, sb * sizeof *y);
  }
}

int vtl_concat_channels(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *a,
                        const vtl_tensor *b) {
  int ok = a->ndim >= 2 && a->ndim == b->ndim && y->ndim == a->ndim &&
           a->shape[0] == b->shape[0] && y->shape[0] == a->shape[0] &&
           y->shape[1] == a->shape[1] + b->shape[1];
  for (int i = 2; ok && i < a->ndim; i++)
    ok = a->shape[i] == b->shape[i] && y->shape[i] == a->shape[i];
  VTL__REQUIRE(cl, ok, "concat: needs a [N, Ca, ...], b [N, Cb, ...], "
                       "y [N, Ca+Cb, ...]");
  VTL__REQUIRE(cl, vtl_tensor_numel(y) <= VTL__MAX_ELEMS, "concat: too large");
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ELEMENTWISE, "concat", &k));
  cl_ulong yo = y->off, ao = a->off, bo = b->off;
  cl_int n = (cl_int)a->shape[0], sa = (cl_int)(vtl_tensor_numel(a) / n),
         sb = (cl_int)(vtl_tensor_numel(b) / n);
  VTL__TRY(vtl__args(cl, k, "concat", ARG_MEM(y), ARG(yo), ARG_MEM(a), ARG(ao),
                     ARG_MEM(b), ARG(bo), ARG(sa), ARG(sb), (size_t)0));
  size_t gws[2] = {(size_t)(sa + sb), (size_t)n}, lws[2] = {vtl__wgs(cl), 1};
  return vtl__launch(cl, k, "concat", 2, gws, lws);
}

/* ---- add, mul, scale ---------------------------------------------------- */

void vtl_add_ref(float *y, const float *a, const float *b, size_t n,
                 size_t inner, size_t nb) {
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[(i / inner) % nb];
}
void vtl_mul_ref(float *y, const float *a, const float *b, size_t n,
                 size_t inner, size_t nb) {
  for (size_t i = 0; i < n; i++) y[i] = a[i] * b[(i / inner) % nb];
}

/* (inner, nb) of ops.h's broadcast rule, or -1 when b does not fit a. */
static int broadcast(const vtl_tensor *a, const vtl_tensor *b, size_t *inner,
                     size_t *nb) {
  if (same_count(a, b)) {
    *inner = 1;
    *nb = vtl_tensor_numel(a);
    return 0;
  }
  if (b->ndim != a->ndim) return -1;
  int lo = -1, hi = -1; /* the run of dims where b is not 1 */
  for (int i = 0; i < a->ndim; i++) {
    if (b->shape[i] == 1 && a->shape[i] != 1) continue;
    if (b->shape[i] != a->shape[i]) return -1;
    if (b->shape[i] == 1) continue; /* both 1: fits either way */
    if (lo < 0) lo = i;
    else if (hi != i) return -1; /* a gap: not one run */
    hi = i + 1;
  }
  *inner = 1;
  for (int i = hi < 0 ? a->ndim : hi; i < a->ndim; i++) *inner *= a->shape[i];
  *nb = vtl_tensor_numel(b);
  return 0;
}

static int binary(vtl_cl *cl, const broadcast_names *names, const char *what,
                  const vtl_tensor *y, const vtl_tensor *a, const vtl_tensor *b) {
  size_t inner, nb;
  VTL__REQUIRE(cl, same_count(y, a), "%s: y and a differ in size", what);
  VTL__REQUIRE(cl, broadcast(a, b, &inner, &nb) == 0,
               "%s: b does not broadcast over a (ops.h)", what);
  return broadcast_launch(cl, names, y, 0, a, 0, b, vtl_tensor_numel(a), inner,
                          nb, VTL_ACT_NONE);
}

int vtl_add(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *a,
            const vtl_tensor *b) {
  return binary(cl, &ADD, "add", y, a, b);
}
int vtl_mul(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *a,
            const vtl_tensor *b) {
  return binary(cl, &MUL, "mul", y, a, b);
}

void vtl_scale_ref(float *y, const float *x, size_t n, float s) {
  for (size_t i = 0; i < n; i++) y[i] = s * x[i];
}

int vtl_scale(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x, float s) {
  VTL__REQUIRE(cl, same_count(y, x), "scale: y and x differ in size");
  size_t n = vtl_tensor_numel(x);
  VTL__REQUIRE(cl, n <= VTL__MAX_ELEMS, "scale: too large");
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ELEMENTWISE, "scale", &k));
  cl_ulong yo = y->off, xo = x->off;
  cl_int ni = (cl_int)n;
  VTL__TRY(vtl__args(cl, k, "scale", ARG_MEM(y), ARG(yo), ARG_MEM(x), ARG(xo),
                     ARG(s), ARG(ni), (size_t)0));
  size_t gws = n, lws = vtl__wgs(cl);
  return vtl__launch(cl, k, "scale", 1, &gws, &lws);
}

/* ---- a resnet's time scale and shift -------------------------------------- */

void vtl_scale_shift_act_ref(float *y, const float *x, const float *t, int N,
                             int C, int hw, vtl_act act) {
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) {
      float s = t[(size_t)n * 2 * C + c], b = t[(size_t)n * 2 * C + C + c];
      size_t o = ((size_t)n * C + c) * hw;
      for (int j = 0; j < hw; j++) y[o + j] = act_ref(x[o + j] * (1.0f + s) + b, act);
    }
}

int vtl_scale_shift_act(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                        const vtl_tensor *t, vtl_act act) {
  VTL__REQUIRE(cl, x->ndim == 4 && same_count(y, x) && t->ndim == 2 &&
                       t->shape[0] == x->shape[0] && t->shape[1] == 2 * x->shape[1],
               "scale_shift_act: needs x, y [N, C, H, W] and t [N, 2C]");
  VTL__REQUIRE(cl, vtl_tensor_numel(x) <= VTL__MAX_ELEMS, "scale_shift_act: too large");
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ELEMENTWISE, "scale_shift_act", &k));
  cl_ulong yo = y->off, xo = x->off, to = t->off;
  cl_int hw = (cl_int)(x->shape[2] * x->shape[3]), a = (cl_int)act;
  VTL__TRY(vtl__args(cl, k, "scale_shift_act", ARG_MEM(y), ARG(yo), ARG_MEM(x),
                     ARG(xo), ARG_MEM(t), ARG(to), ARG(hw), ARG(a), (size_t)0));
  size_t gws[3] = {(size_t)hw, (size_t)x->shape[1], (size_t)x->shape[0]},
         lws[3] = {vtl__wgs(cl), 1, 1};
  return vtl__launch(cl, k, "scale_shift_act", 3, gws, lws);
}

/* ---- timestep embedding ------------------------------------------------- */

#define LOG_MAX_PERIOD 9.2103403719761836f /* ln 10000, as torch's float32 */

void vtl_timestep_embedding_ref(float *y, const float *t, int N, int dim,
                                int flip, float shift) {
  int half = dim / 2;
  for (int n = 0; n < N; n++)
    for (int j = 0; j < dim; j++) {
      float v = 0.0f;
      if (j < 2 * half) {
        int f = j < half ? j : j - half;
        float freq = expf(-LOG_MAX_PERIOD * (float)f / ((float)half - shift));
        float arg = t[n] * freq;
        v = ((j < half) != (flip != 0)) ? sinf(arg) : cosf(arg);
      }
      y[(size_t)n * dim + j] = v;
    }
}

int vtl_timestep_embedding(vtl_cl *cl, const vtl_tensor *y,
                           const vtl_tensor *t, int flip, float shift) {
  int64_t n = (int64_t)vtl_tensor_numel(t);
  VTL__REQUIRE(cl, y->ndim == 2 && y->shape[0] == n && y->shape[1] >= 2,
               "timestep_embedding: needs t [N] and y [N, dim >= 2]");
  VTL__REQUIRE(cl, (float)(y->shape[1] / 2) != shift,
               "timestep_embedding: shift equals half the width");
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_ELEMENTWISE, "timestep_emb", &k));
  cl_ulong yo = y->off, to = t->off;
  cl_int ni = (cl_int)n, dim = (cl_int)y->shape[1], fl = flip != 0;
  float lmp = LOG_MAX_PERIOD;
  VTL__TRY(vtl__args(cl, k, "timestep_emb", ARG_MEM(y), ARG(yo), ARG_MEM(t),
                     ARG(to), ARG(ni), ARG(dim), ARG(fl), ARG(shift), ARG(lmp),
                     (size_t)0));
  size_t gws = vtl__gws(cl, vtl_tensor_numel(y)), lws = vtl__wgs(cl);
  return vtl__launch(cl, k, "timestep_emb", 1, &gws, &lws);
}
