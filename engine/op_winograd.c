/* op_winograd.c — conv2d 3x3, stride 1, padding 1 as Winograd F(2x2, 3x3)
 * (Lavin & Gray 2015): 16 products of [Co, Ci] x [Ci, T] instead of one of
 * [Co, 9 Ci] x [9 Ci, 4 T], 2.25x fewer multiply-adds than im2col + GEMM.
 * op_conv.c decides when (use_winograd there); kernels:
 * kernels/winograd.cl (the transforms and their formulas). Per call:
 *
 *   U [16][Co, Ci]  = G g G^T              once (an f16 g widened first)
 *   per image n, per chunk of NTY tile rows (T = NTY * ceil(W/2) tiles):
 *     V [16][Ci, T] = B^T d B              wino_input
 *     M [16][Co, T] = U[k] x V[k]          vtl__sgemm, batch 16
 *     y[n] rows     = act(A^T M A + b + r) wino_output (act: ReLU or none)
 *   y = act(y)                             one pass, for other activations
 *
 * U is transformed on every call rather than cached with the model: it is
 * 16/9 of the weight's bytes written once per call, against a product of
 * 2 Co Ci 16 T FLOPs, and the rule in op_conv.c only sends convolutions
 * with many tiles here; measured, wino_weight was 5 % of the Winograd
 * time over the engine_ops_bench conv rows (bench/README.md "Winograd
 * 3x3"), while a cache would hold 16/9 of every 3x3 weight in memory.
 * V and M together stay within vtl__conv_wino_chunk floats (whole tile rows,
 * at least one), so the VAE at 512x512 (512 channels, 65536 tiles an image:
 * 4 GiB of V and M) runs in bounded scratch. Below that cap a chunk aims
 * at CACHE_FLOATS of V and M, so that the products read V while it is
 * still in cache, but at least MIN_TILES tiles, so that the 16 products do
 * not get too thin (measured, 2 cores: 64 channels at 256x256 ran 1.5x
 * faster with 4 MiB chunks than 32 MiB ones; 512 channels at 64x64 1.2x
 * slower with 64 tiles a chunk than with 1024).
 *
 * The output transform adds the bias and the residual and applies a ReLU
 * (TAESD's, the one activation the models' 3x3 convolutions have: as a
 * separate pass it was 10 % of TAESD's decode, bench/README.md "Fused
 * epilogues");
 * other activations are a separate pass (vtl__bias_act: elementwise.cl
 * owns the activation functions). */
#include <string.h>

#include "ops.h"
#include "runtime_int.h"

size_t vtl__conv_wino_chunk = (size_t)8 << 20; /* V + M scratch: 32 MiB */

#define ARG_MEM(t) sizeof(cl_mem), &(t)->buf
#define ARG(v) sizeof(v), &(v)

/* The chunk's V [16][Ci, nt] and M [16][Co, nt] lie PAD floats more than
 * their size apart: at C*nt floats, often a power of two, the 16 streams a
 * transform writes fall on the same cache sets (measured on the 2-core
 * EPYC, 64 channels at 128x128: input transform 13.8 -> 5.9 ms a call). */
#define PAD 64

/* What a chunk aims at (floats of V and M; tiles): see the top. */
#define CACHE_FLOATS ((size_t)1 << 20)
#define MIN_TILES 512

/* The work-group of the 3-D transforms (GPUs): 16 tiles of a row x 16
 * channels. */
static const size_t WINO_LWS[3] = {16, 1, 16};

static int weight_transform(vtl_cl *cl, const vtl_tensor *u,
                            const vtl_tensor *g, int Co, int Ci) {
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_WINOGRAD, "wino_weight", &k));
  cl_ulong uo = u->off, go = g->off;
  VTL__TRY(vtl__args(cl, k, "wino_weight", ARG_MEM(u), ARG(uo), ARG_MEM(g),
                     ARG(go), ARG(Co), ARG(Ci), (size_t)0));
  size_t gws[2] = {(size_t)Ci, (size_t)Co}, lws[2] = {16, 4};
  return vtl__launch(cl, k, "wino_weight", 2, gws, lws);
}

/* What the output transform adds and applies: bias b, residual r (laid
 * out as y: its offsets are y's), relu. */
typedef struct {
  const vtl_tensor *b, *r;
  int relu;
} output_epilogue;

/* The input (ep NULL) or output transform of tile rows ty0 .. ty0+nty-1 of
 * one image: on the host backend (a CPU device) the _rows variant
 * (winograd.cl), on the CL backend one work-item per tile (GPUs; the tests
 * force the CL backend on PoCL, which runs this variant too). */
static int transform(vtl_cl *cl, const output_epilogue *ep,
                     const vtl_tensor *dst, size_t dst_off,
                     const vtl_tensor *src, size_t src_off, cl_ulong plane,
                     int C, int H, int W, int TW, int ty0, int nty) {
  int rows = vtl_cl_backend(cl) == VTL_BACKEND_HOST;
  static const char *const names[2][2] = {
      {"wino_input", "wino_input_rows"}, {"wino_output", "wino_output_rows"}};
  const char *name = names[ep != NULL][rows];
  cl_kernel k;
  VTL__TRY(vtl__kernel(cl, VTL_PROG_WINOGRAD, name, &k));
  cl_ulong d_o = dst->off + dst_off, s_o = src->off + src_off;
  int rc;
  if (ep) { /* absent b or r: dst, read but unused */
    const vtl_tensor *b = ep->b ? ep->b : dst, *r = ep->r ? ep->r : dst;
    cl_ulong bo = b->off, ro = ep->r ? r->off + dst_off : d_o;
    cl_int has_b = ep->b != NULL, has_r = ep->r != NULL, relu = ep->relu;
    rc = vtl__args(cl, k, name, ARG_MEM(dst), ARG(d_o), ARG_MEM(src),
                   ARG(s_o), ARG(plane), ARG_MEM(b), ARG(bo), ARG(has_b),
                   ARG_MEM(r), ARG(ro), ARG(has_r), ARG(relu), ARG(C), ARG(H),
                   ARG(W), ARG(TW), ARG(ty0), ARG(nty), (size_t)0);
  } else {
    rc = vtl__args(cl, k, name, ARG_MEM(dst), ARG(d_o), ARG(plane),
                   ARG_MEM(src), ARG(s_o), ARG(C), ARG(H), ARG(W), ARG(TW),
                   ARG(ty0), ARG(nty), (size_t)0);
  }
  VTL__TRY(rc);
  if (rows) { /* tile rows are few, channels many: groups of 1 x 16 */
    size_t gws[2] = {(size_t)nty, (size_t)C}, lws[2] = {1, 16};
    return vtl__launch(cl, k, name, 2, gws, lws);
  }
  size_t gws[3] = {(size_t)TW, (size_t)nty, (size_t)C};
  return vtl__launch(cl, k, name, 3, gws, WINO_LWS);
}

int vtl__conv3x3_winograd(vtl_cl *cl, const vtl_tensor *y,
                          const vtl_tensor *x, const vtl_tensor *w,
                          const vtl_tensor *b, const vtl_tensor *r, int act) {
  int N = (int)x->shape[0], Ci = (int)x->shape[1], H = (int)x->shape[2],
      W = (int)x->shape[3], Co = (int)w->shape[0];
  int TH = (H + 1) / 2, TW = (W + 1) / 2;
  size_t row = (size_t)16 * (Ci + Co) * TW; /* V + M floats a tile row */
  size_t nty = CACHE_FLOATS / row, min_rows = (MIN_TILES + TW - 1) / TW;
  if (nty < min_rows) nty = min_rows;
  if (nty > vtl__conv_wino_chunk / row) nty = vtl__conv_wino_chunk / row;
  if (nty < 1) nty = 1;
  if (nty > (size_t)TH) nty = (size_t)TH;
  size_t T = nty * TW;
  VTL__REQUIRE(cl, x->type == VTL_F32 && y->type == VTL_F32 &&
                       (!b || b->type == VTL_F32) && (!r || r->type == VTL_F32),
               "conv2d winograd: x, y, the bias and the residual must be f32");
  VTL__REQUIRE(cl, (size_t)16 * Co * Ci <= VTL__MAX_ELEMS &&
                       row * nty <= VTL__MAX_ELEMS,
               "conv2d winograd: too large (%d -> %d channels, width %d)",
               Ci, Co, W);
  vtl_tensor ww, u, v, m;
  memset(&u, 0, sizeof u), memset(&v, 0, sizeof v), memset(&m, 0, sizeof m);
  int rc = vtl__widen(cl, &w, &ww);
  if (rc == 0)
    rc = vtl_tensor_alloc(cl, &u, 3, VTL_SHAPE(16, Co, Ci));
  if (rc == 0) rc = weight_transform(cl, &u, w, Co, Ci);
  vtl_tensor_release(cl, &ww); /* the in-order queue reads it first */
  if (rc == 0)
    rc = vtl_tensor_alloc(cl, &v, 2, VTL_SHAPE(16, (int64_t)(Ci * T + PAD)));
  if (rc == 0)
    rc = vtl_tensor_alloc(cl, &m, 2, VTL_SHAPE(16, (int64_t)(Co * T + PAD)));
  size_t xs = (size_t)Ci * H * W, ys = (size_t)Co * H * W;
  output_epilogue ep = {b, r, act == VTL_ACT_RELU};
  for (int n = 0; n < N && rc == 0; n++)
    for (int ty0 = 0; ty0 < TH && rc == 0; ty0 += (int)nty) {
      int ny = TH - ty0 < (int)nty ? TH - ty0 : (int)nty, nt = ny * TW;
      size_t vp = (size_t)Ci * nt + PAD, mp = (size_t)Co * nt + PAD;
      rc = transform(cl, NULL, &v, 0, x, n * xs, vp, Ci, H, W, TW, ty0, ny);
      if (rc == 0)
        rc = vtl__sgemm(cl, 16, 0, 0, Co, nt, Ci, 1.0f, &u, 0,
                        (size_t)Co * Ci, Ci, &v, 0, vp, nt, 0.0f, &m, 0, mp,
                        nt, NULL);
      if (rc == 0)
        rc = transform(cl, &ep, y, n * ys, &m, 0, mp, Co, H, W, TW, ty0, ny);
    }
  if (rc == 0 && act != VTL_ACT_NONE && act != VTL_ACT_RELU)
    rc = vtl__bias_act(cl, y, 0, y, 0, NULL, vtl_tensor_numel(y), 1, 1, act);
  vtl_tensor_release(cl, &u);
  vtl_tensor_release(cl, &v);
  vtl_tensor_release(cl, &m);
  return rc;
}
