/* vae.h — the Stable Diffusion VAE (diffusers' AutoencoderKL): images to
 * latent distributions and latents back to images.
 *
 * Dimension letters: N batch, C channels, H W image size, h w latent size,
 * L latent channels, B levels (len(block_out_channels)), Ci the channels of
 * level i, R layers_per_block, G norm_num_groups, eps 1e-6 (fixed by
 * diffusers), act the config's act_fn.
 *
 *   resnet(x)  = shortcut(x) + conv2(act(gn2(conv1(act(gn1(x))))))
 *                shortcut: 1x1 conv when channels change, else identity
 *   attn(x)    = x + to_out(attention(to_q, to_k, to_v of gn(x)))
 *                one head over all h*w pixels, scale C^-1/2
 *   mid(x)     = resnet(attn(resnet(x)))       (no attn when the config
 *                                               says mid_block_add_attention
 *                                               false)
 *   encode: x = conv_in(image)                                 [N, C0, H, W]
 *           level i: R resnets (C(i-1) -> Ci), then but for the last level
 *                    a stride-2 3x3 conv on x padded (0, 1, 0, 1)
 *           x = conv_out(silu(gn(mid(x))))                     [N, 2L, h, w]
 *           moments = quant_conv(x) (1x1);  mean = moments[:, :L],
 *           logvar = clamp(moments[:, L:], -30, 20)
 *   decode: x = conv_in(post_quant_conv(z))         z: latents already
 *                                                   divided by scaling_factor
 *           x = mid(x); level i (deepest first, channels reversed):
 *                    R+1 resnets, then but for the last level nearest 2x
 *                    upsampling and a 3x3 conv
 *           image = conv_out(silu(gn(x)))                      [N, 3, H, W]
 *
 * h = H halved (rounding down) B-1 times (every level needs a side >= 2);
 * decode gives H = h * 2^(B-1).
 *
 *   vtl_vae *vae;
 *   if (vtl_vae_load(cl, model_files, &vae, msg, sizeof msg)) die(msg);
 *   rc = vtl_vae_decode(vae, &latents, &image);
 *   vtl_vae_free(vae);
 *
 * A vtl_vae borrows its vtl_cl (free the VAE first) and is used from one
 * thread at a time.
 */
#ifndef VTL_VAE_H
#define VTL_VAE_H

#include <stddef.h>

#include "model_files.h"
#include "tensor.h"

typedef struct vtl_vae vtl_vae;

/* Loads the AutoencoderKL of m (VTL_COMP_VAE, diffusers names; single-file
 * checkpoints are renamed by model_files). 0 and *out, or VTL_ENOENT (no
 * AutoencoderKL; a weight missing), VTL_ERANGE (a shape differs from the
 * config), VTL_EUNSUPPORTED (weights the architecture does not use),
 * VTL_ENOMEM or an OpenCL code; msg says which. m may be closed after. */
int vtl_vae_load(vtl_cl *cl, vtl_model_files *m, vtl_vae **out, char *msg,
                 size_t msglen);
void vtl_vae_free(vtl_vae *vae); /* NULL is a no-op */

const vtl_vae_config *vtl_vae_config_of(const vtl_vae *vae);

/* The latent size of an H x W image (0 x 0 when too small). */
void vtl_vae_latent_size(const vtl_vae *vae, int H, int W, int *h, int *w);

/* image [N, in_channels, H, W] -> mean, logvar [N, L, h, w] (either may be
 * NULL). 0, or VTL_EINVAL (a shape: vtl_cl_errmsg says which) or an OpenCL
 * code. Work is queued; vtl_tensor_read waits for it. */
int vtl_vae_encode(vtl_vae *vae, const vtl_tensor *image,
                   const vtl_tensor *mean, const vtl_tensor *logvar);

/* latents [N, L, h, w] (already divided by scaling_factor) -> image
 * [N, out_channels, h * 2^(B-1), w * 2^(B-1)], not clamped. */
int vtl_vae_decode(vtl_vae *vae, const vtl_tensor *latents,
                   const vtl_tensor *image);

#endif /* VTL_VAE_H */
