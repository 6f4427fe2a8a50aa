/* unet.h — the denoiser: diffusers' UNet2DConditionModel (SD 1.x / 2.x
 * layout), predicting noise (or v, or x0: the config's prediction_type) from
 * a latent sample, a timestep and the text conditioning.
 *
 * Dimension letters (as in ops.h): B batch, C channels, H W latent size,
 * Ci / Co resnet in / out channels, Tt time embedding width (time_embed_dim),
 * C0 = block_out_channels[0], Te context tokens (77), Dc context width
 * (cross_attention_dim), S = H*W pixels of a level, N levels (blocks).
 *
 *   temb = linear_2(act(linear_1(sinusoid(t) [B, C0]))) [B, Tt]
 *          (+ cond_proj(timestep_cond) before linear_1 for LCM UNets)
          (+ class_embedding.linear_2(silu(class_embedding.linear_1(
             class_labels [B, P]))) for class_embed_type "projection")
 *   h = conv_in(sample)                                  skips = [h]
 *   down block i:  (resnet [+ transformer]) x layers_per_block[i], each
 *                  output pushed; then (i < N-1) a stride-2 3x3 conv, pushed
 *   mid:           resnet, transformer, resnet (mid_block_scale_factor)
 *   up block i:    (concat(h, skips.pop()) -> resnet [+ transformer]) x
 *                  (layers_per_block[N-1-i] + 1); then (i < N-1) nearest 2x
 *                  + 3x3 conv
 *   out = conv_out(act(group_norm(h)))
 *
 *   resnet(x):      h = conv1(act(gn1(x))) + time_emb_proj(act(temb));
 *                   h = conv2(act(gn2(h)));  (shortcut(x) + h) / scale
 *                   shortcut: 1x1 conv when Ci != Co, else identity
 *   transformer(x): [B, C, H, W] -> GroupNorm (eps 1e-6) -> proj_in (1x1
 *                   conv, or Linear when use_linear_projection) -> [B, S, C]
 *                   -> BasicTransformerBlock x transformer_layers
 *                   (x += attn1(ln1 x); x += attn2(ln2 x, context);
 *                    x += ff(ln3 x) with GEGLU; LayerNorm eps 1e-5; q/k/v
 *                    without bias) -> proj_out -> [B, C, H, W] + x
 *
 * Heads per block come from the config (attention_head_dim is the head
 * count, model_files.h); every width, depth and count is read from the
 * config, every weight by its diffusers name (a single-file checkpoint is
 * renamed by model_files). Any H and W: as in diffusers, each upsampler
 * resizes (nearest) to the size of the skip it meets next, which is 2x
 * unless H or W is not divisible by 2^(N-1) (then a slower host path).
 *
 *   vtl_unet *u;
 *   if (vtl_unet_load(cl, model_files, &u, msg, sizeof msg)) die(msg);
 *   rc = vtl_unet_forward(u, &sample, t, 1, &context, NULL, &noise_pred);
 *   vtl_unet_free(u);
 *
 * A vtl_unet borrows its vtl_cl (free the UNet first) and is used from one
 * thread at a time, like the runtime.
 */
#ifndef VTL_UNET_H
#define VTL_UNET_H

#include <stddef.h>

#include "model_files.h"
#include "tensor.h"

typedef struct vtl_unet vtl_unet;

/* Loads the UNet of m (VTL_COMP_UNET weights, by diffusers name, into a few
 * large device buffers). Returns 0 and *out, or VTL_ENOENT (no UNet; a
 * weight missing), VTL_ERANGE (a weight's shape differs from what the
 * config implies), VTL_EUNSUPPORTED (weights the architecture does not
 * use), VTL_EINVAL (a config the engine cannot run), VTL_ENOMEM, or an
 * OpenCL code; msg says which. Nothing stays allocated on failure. m may be
 * closed after. */
int vtl_unet_load(vtl_cl *cl, vtl_model_files *m, vtl_unet **out, char *msg,
                  size_t msglen);
void vtl_unet_free(vtl_unet *u); /* NULL is a no-op */

const vtl_unet_config *vtl_unet_config_of(const vtl_unet *u);
/* Weights, in elements (their device bytes: 4 each, or 2 for conv / linear
 * weights stored as f16, runtime.h "Weight storage"). */
size_t vtl_unet_param_count(const vtl_unet *u);

/* Optional extras of one forward pass (NULL: none). */
typedef struct {
  /* Called with intermediate tensors (diffusers' names: "time_proj"
   * [B, C0], "time_embedding" [B, Tt], "conv_in", "down_block_<i>",
   * "mid_block", "up_block_<i>"), valid only during the call; for
   * debugging (reading one waits for the queue). */
  void (*tap)(void *user, const char *name, const vtl_tensor *t);
  void *tap_user;
  /* [B, time_cond_proj_dim]: the guidance embedding of LCM-distilled UNets
   * (ignored by UNets without time_embedding.cond_proj; NULL: none). */
  const vtl_tensor *timestep_cond;
  /* [B, P]: the class labels of a UNet with class_embed_type "projection"
   * (P = projection_class_embeddings_input_dim; the pipeline passes the
   * text encoder's pooled output). Required by such a UNet, refused by
   * any other. */
  const vtl_tensor *class_labels;
} vtl_unet_extra;

/* out [B, Cout, H, W] = unet(sample [B, Cin, H, W], timesteps, context
 * [B, Te, Dc], extra->class_labels [B, P] when the UNet has a class
 * embedding). timesteps: n_timesteps = 1 (one value for the batch) or B
 * floats (may be fractional). Returns 0, VTL_EINVAL (a shape,
 * n_timesteps, class labels missing or not expected: vtl_cl_errmsg says
 * which) or an
 * OpenCL code. Work is queued; vtl_tensor_read waits for it. Scratch comes
 * from the runtime's pool and goes back before the call returns. */
int vtl_unet_forward(vtl_unet *u, const vtl_tensor *sample,
                     const float *timesteps, int n_timesteps,
                     const vtl_tensor *context, const vtl_unet_extra *extra,
                     const vtl_tensor *out);

#endif /* VTL_UNET_H */
