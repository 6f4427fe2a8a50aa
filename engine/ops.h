/* ops.h — the tensor ops the models are written with (llm.c's layer
 * functions, STYLE.md 11): output first, then inputs, then weights, then
 * the op's own parameters. Each runs on the handle's backend (runtime.h) and
 * has a plain-C reference, vtl_<op>_ref, on host floats, that the tests hold
 * it to. Ops enqueue work and return; reads (vtl_tensor_read) wait for it.
 *
 * Dimension letters:
 *   N batch of images, C channels (Co out, Ci in), H W height and width,
 *   OH OW output size, KH KW kernel size, S spatial size H*W;
 *   B batch of sequences, T tokens (Tq queries, Tk keys), H heads, D head
 *   size, E embedding width; R rows of a matrix, M N K GEMM sizes, G groups.
 *
 * Every op returns 0 or a negative VTL_E* code; VTL_EINVAL when shapes do not
 * fit (the message in vtl_cl_errmsg says which), other codes from OpenCL.
 * Unless said otherwise, y may be the same tensor as an input (in place).
 *
 * Files: op_gemm.c (gemm, linear), op_conv.c (conv2d), op_norm.c (group
 * norm, layer norm), op_attention.c (attention), op_elementwise.c (the rest);
 * kernels in kernels/<family>.cl.
 */
#ifndef VTL_OPS_H
#define VTL_OPS_H

#include "act.h"
#include "tensor.h"


/* ---- op_gemm.c ------------------------------------------------------- */

/* c[M, N] = alpha * op(a) * op(b) + beta * c; a [M, K] ([K, M] when
 * trans_a), b [K, N] ([N, K] when trans_b). Tensors are read as matrices of
 * their last dim by the product of the others. y may not alias a or b. */
int vtl_gemm(vtl_cl *cl, const vtl_tensor *c, const vtl_tensor *a,
             const vtl_tensor *b, int trans_a, int trans_b, float alpha,
             float beta);
void vtl_gemm_ref(float *c, const float *a, const float *b, int M, int N,
                  int K, int trans_a, int trans_b, float alpha, float beta);

/* y [..., Eo] = act(x [..., Ei] * w^T + b); w [Eo, Ei] (PyTorch Linear),
 * b [Eo] or NULL. y may not alias x. */
int vtl_linear(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
               const vtl_tensor *w, const vtl_tensor *b, vtl_act act);
/* y = act(x * w^T + b + r): vtl_linear with a residual r of y's shape (NULL:
 * none) added in the GEMM's epilogue (a pre-norm block's x + f(norm(x))).
 * r may not alias y. */
int vtl_linear_res(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   const vtl_tensor *w, const vtl_tensor *b,
                   const vtl_tensor *r, vtl_act act);
/* The reference of both; r NULL: none. */
void vtl_linear_ref(float *y, const float *x, const float *w, const float *b,
                    const float *r, int R, int Ei, int Eo, vtl_act act);

/* ---- op_conv.c ------------------------------------------------------- */

/* y [N, Co, OH, OW] = act(conv(x [N, Ci, H, W], w [Co, Ci, KH, KW]) + b[Co])
 * with the given stride and zero padding pad on every side; b may be NULL.
 * OH = (H + 2 pad - KH) / stride + 1 (same for OW) must match y. y may not
 * alias x. Computed as im2col + GEMM, or for 3x3 with stride 1 and padding
 * 1 as Winograd F(2x2, 3x3) where op_conv.c's measured rule says it is
 * faster (enough channels and pixels); $VTL_CONV=im2col|winograd forces
 * one (tests, benchmarks; winograd only applies to those 3x3 shapes). The
 * two differ by float rounding only (tests/test_ops.c states the bound). */
int vtl_conv2d(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
               const vtl_tensor *w, const vtl_tensor *b, int stride, int pad,
               vtl_act act);
/* The same with padding pad_t above and pad_l left, and whatever bottom and
 * right padding y's size implies (the VAE's downsampler pads (0, 1, 0, 1):
 * pad_t = pad_l = 0 and y one row and column larger than pad 0 gives). */
int vtl_conv2d_ex(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                  const vtl_tensor *w, const vtl_tensor *b, int stride,
                  int pad_t, int pad_l, vtl_act act);
/* y = act(conv(x, w) + b + r): vtl_conv2d with a residual r of y's shape
 * (NULL: none) added before the activation in the same pass (TAESD's block:
 * relu(conv(...) + x)). r may not alias y. */
int vtl_conv2d_res(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   const vtl_tensor *w, const vtl_tensor *b,
                   const vtl_tensor *r, int stride, int pad, vtl_act act);
/* The reference of all three; r NULL: none. */
void vtl_conv2d_ref(float *y, const float *x, const float *w, const float *b,
                    const float *r, int N, int Ci, int H, int W, int Co,
                    int KH, int KW, int stride, int pad_t, int pad_l, int OH,
                    int OW, vtl_act act);

/* ---- op_norm.c ------------------------------------------------------- */

/* y = group_norm(x) * gamma + beta, then SiLU when silu: x [N, C, ...]
 * (statistics per image and group over C/G channels x the rest), gamma and
 * beta [C]. G must divide C. */
int vtl_group_norm(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   const vtl_tensor *gamma, const vtl_tensor *beta, int groups,
                   float eps, int silu);
void vtl_group_norm_ref(float *y, const float *x, const float *gamma,
                        const float *beta, int N, int C, int S, int G,
                        float eps, int silu);

/* y = layer_norm(x) * gamma + beta over the last dim E; gamma, beta [E]. */
int vtl_layer_norm(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   const vtl_tensor *gamma, const vtl_tensor *beta, float eps);
void vtl_layer_norm_ref(float *y, const float *x, const float *gamma,
                        const float *beta, int R, int E, float eps);

/* ---- op_attention.c -------------------------------------------------- */

/* o [B, Tq, H*D] = softmax(q k^T / sqrt(D) [+ causal mask]) v per head:
 * q [B, Tq, H*D], k and v [B, Tk, H*D] (self-attention: Tk = Tq; cross:
 * k, v from the context). causal masks key j > query i (CLIP; needs
 * Tq == Tk). o may not alias q, k or v. */
int vtl_attention(vtl_cl *cl, const vtl_tensor *o, const vtl_tensor *q,
                  const vtl_tensor *k, const vtl_tensor *v, int heads,
                  int causal);
void vtl_attention_ref(float *o, const float *q, const float *k,
                       const float *v, int B, int Tq, int Tk, int H, int D,
                       int causal);

/* ---- op_elementwise.c ------------------------------------------------ */

/* y = act(x), any shape. */
int vtl_activation(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                   vtl_act act);
static inline int vtl_gelu(vtl_cl *cl, const vtl_tensor *y,
                           const vtl_tensor *x) {
  return vtl_activation(cl, y, x, VTL_ACT_GELU);
}
static inline int vtl_quick_gelu(vtl_cl *cl, const vtl_tensor *y,
                                 const vtl_tensor *x) {
  return vtl_activation(cl, y, x, VTL_ACT_QUICK_GELU);
}
static inline int vtl_relu(vtl_cl *cl, const vtl_tensor *y,
                           const vtl_tensor *x) {
  return vtl_activation(cl, y, x, VTL_ACT_RELU);
}
static inline int vtl_silu(vtl_cl *cl, const vtl_tensor *y,
                           const vtl_tensor *x) {
  return vtl_activation(cl, y, x, VTL_ACT_SILU);
}
void vtl_activation_ref(float *y, const float *x, size_t n, vtl_act act);

/* GEGLU (diffusers): x [..., 2F] -> y [..., F] = x[..., :F] * gelu(x[..., F:]).
 * y may not alias x. */
int vtl_geglu(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x);
void vtl_geglu_ref(float *y, const float *x, int R, int F);

/* Nearest 2x upsampling: x [N, C, H, W] -> y [N, C, 2H, 2W]. No aliasing. */
int vtl_upsample2x(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x);
void vtl_upsample2x_ref(float *y, const float *x, int NC, int H, int W);

/* Channel concat: a [N, Ca, ...], b [N, Cb, ...] -> y [N, Ca+Cb, ...]
 * (the UNet's skip connections). No aliasing. */
int vtl_concat_channels(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *a,
                        const vtl_tensor *b);
void vtl_concat_ref(float *y, const float *a, const float *b, int N, int sa,
                    int sb);

/* y = a + b, y = a * b. b has a's shape, or a's ndim with 1 in some dims
 * such that its other dims form one run of a's dims: [1, C, 1, 1] (per
 * channel), [N, C, 1, 1] (the UNet's time embedding), [1, 1, E] (per column).
 * Then b[j] applies to a[i] with j = (i / inner) % nb. */
int vtl_add(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *a,
            const vtl_tensor *b);
int vtl_mul(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *a,
            const vtl_tensor *b);
void vtl_add_ref(float *y, const float *a, const float *b, size_t n,
                 size_t inner, size_t nb);
void vtl_mul_ref(float *y, const float *a, const float *b, size_t n,
                 size_t inner, size_t nb);

/* y = act(x * (1 + t[n, c]) + t[n, C + c]): x, y [N, C, H, W], t [N, 2C]
 * (a resnet's scale and shift per sample and channel, resnet_time_scale_
 * shift "scale_shift"). y may alias x. */
int vtl_scale_shift_act(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x,
                        const vtl_tensor *t, vtl_act act);
void vtl_scale_shift_act_ref(float *y, const float *x, const float *t, int N,
                             int C, int hw, vtl_act act);

/* y = s * x. */
int vtl_scale(vtl_cl *cl, const vtl_tensor *y, const vtl_tensor *x, float s);
void vtl_scale_ref(float *y, const float *x, size_t n, float s);

/* The sinusoidal timestep embedding (diffusers get_timestep_embedding with
 * max_period 10000): t [N] -> y [N, dim]; half = dim / 2,
 * freq_j = exp(-ln(10000) j / (half - shift)), y = [sin(t freq), cos(t freq)]
 * or [cos, sin] when flip_sin_to_cos (SD's UNet: flip 1, shift 0), a zero
 * column last when dim is odd. */
int vtl_timestep_embedding(vtl_cl *cl, const vtl_tensor *y,
                           const vtl_tensor *t, int flip_sin_to_cos,
                           float shift);
void vtl_timestep_embedding_ref(float *y, const float *t, int N, int dim,
                                int flip_sin_to_cos, float shift);

#endif /* VTL_OPS_H */
