/* taesd.h — TAESD, the tiny autoencoder (diffusers' AutoencoderTiny): a
 * fast stand-in for the VAE (previews).
 *
 * Dimension letters: N batch, C channels (all stages of a coder have the
 * same count, as diffusers' layer wiring requires), L latent channels,
 * H W image size, h w latent size, act the config's act_fn (relu).
 *
 *   block(x) = relu(conv(act(conv(act(conv(x))))) + x)     3x3 convs, bias
 *   encode:  x = (image + 1) / 2                       [N, 3, H, W] in [0, 1]
 *            stage i: a 3x3 conv (stage 0: from 3 channels, bias; others:
 *                     stride 2, no bias), then num_encoder_blocks[i] blocks
 *            latents = conv(x) (3x3, bias, to L)
 *   decode:  x = act(conv(tanh(latents / 3) * 3))        (3 is fixed in
 *                                                       diffusers' DecoderTiny)
 *            stage i: num_decoder_blocks[i] blocks, then but for the last
 *                     stage nearest 2x upsampling and a 3x3 conv without
 *                     bias; the last stage's conv has a bias and gives
 *                     out_channels
 *            image = x * 2 - 1                          not clamped
 *
 * Weights are the diffusers keys encoder.layers.<i>.* / decoder.layers.<i>.*
 * (nn.Sequential indices; activations and upsamplers take an index too).
 * The latents are the raw latent space (scaling_factor 1 for TAESD).
 */
#ifndef VTL_TAESD_H
#define VTL_TAESD_H

#include <stddef.h>

#include "model_files.h"
#include "tensor.h"

typedef struct vtl_taesd vtl_taesd;

/* Loads the AutoencoderTiny of m. 0 and *out, or VTL_ENOENT (no
 * AutoencoderTiny; a weight missing), VTL_ERANGE (a shape), VTL_EUNSUPPORTED
 * (unused weights; an upsampling factor other than 2; stages of different
 * channel counts), VTL_ENOMEM or an OpenCL code; msg says which. */
int vtl_taesd_load(vtl_cl *cl, vtl_model_files *m, vtl_taesd **out,
                   char *msg, size_t msglen);
void vtl_taesd_free(vtl_taesd *t); /* NULL is a no-op */

const vtl_taesd_config *vtl_taesd_config_of(const vtl_taesd *t);

/* Latent size of an H x W image: each stride-2 stage maps S to (S-1)/2+1. */
void vtl_taesd_latent_size(const vtl_taesd *t, int H, int W, int *h, int *w);

/* image [N, in_channels, H, W] in [-1, 1] -> latents [N, L, h, w]. 0, or
 * VTL_EINVAL (a shape: vtl_cl_errmsg says which) or an OpenCL code. */
int vtl_taesd_encode(vtl_taesd *t, const vtl_tensor *image,
                     const vtl_tensor *latents);
/* latents [N, L, h, w] -> image [N, out_channels, h * 2^(S-1), w * 2^(S-1)]
 * with S decoder stages. */
int vtl_taesd_decode(vtl_taesd *t, const vtl_tensor *latents,
                     const vtl_tensor *image);

#endif /* VTL_TAESD_H */
