/* clip.h — the CLIP text encoder (transformers' CLIPTextModel) that turns
 * token ids into the UNet's conditioning.
 *
 * Dimension letters (as in ops.h): B batch of sequences, T tokens (<= P, the
 * config's max_position_embeddings), E hidden size, F MLP width
 * (intermediate_size), V vocabulary, L layers, H heads, D = E / H.
 *
 *   x = token_embedding[ids] + position_embedding[0..T)        [B, T, E]
 *   for l in 0 .. L-1:                      (pre-LN transformer layer)
 *     x += out_proj(attention(q, k, v of layer_norm1(x), causal))
 *     x += fc2(act(fc1(layer_norm2(x))))    act: config hidden_act
 *   last_hidden_state = final_layer_norm(x)                     [B, T, E]
 *   penultimate_ln    = final_layer_norm(input of layer L-1)    [B, T, E]
 *                       ("CLIP skip 2": hidden_states[-2] through the LN)
 *   pooled            = last_hidden_state[b, eos position of b] [B, E]
 *
 * The eos position is the first t with ids[b, t] == config eos_token_id, or
 * (as transformers does for old configs with eos_token_id == 2) the first
 * maximum of ids[b]; 0 when the row has no eos. Every size, the activation
 * and the LayerNorm eps come from the config (vtl_clip_config).
 *
 *   vtl_clip *clip;
 *   if (vtl_clip_load(cl, model_files, &clip, msg, sizeof msg)) die(msg);
 *   vtl_tensor last;  vtl_tensor_alloc(cl, &last, 3, VTL_SHAPE(B, T, E));
 *   rc = vtl_clip_encode(clip, ids, B, T, &last, NULL, NULL);
 *   ...
 *   vtl_clip_free(clip);
 *
 * A vtl_clip borrows its vtl_cl (close the clip first) and is used from one
 * thread at a time, like the runtime.
 */
#ifndef VTL_CLIP_H
#define VTL_CLIP_H

#include <stddef.h>
#include <stdint.h>

#include "model_files.h"
#include "tensor.h"

typedef struct vtl_clip vtl_clip;

/* Loads the text encoder of m (its VTL_COMP_TEXT_ENCODER weights, by
 * transformers name, into the arenas of params.h). Returns 0 and *out, or
 * VTL_ENOENT (no text encoder; a weight missing), VTL_ERANGE (a weight's
 * shape differs from what the config implies), VTL_EUNSUPPORTED (a
 * CLIPTextModelWithProjection, or weights the architecture does not use),
 * VTL_ENOMEM, or an OpenCL code; msg says which. m may be closed after. */
int vtl_clip_load(vtl_cl *cl, vtl_model_files *m, vtl_clip **out, char *msg,
                  size_t msglen);
void vtl_clip_free(vtl_clip *clip); /* NULL is a no-op */

const vtl_clip_config *vtl_clip_config_of(const vtl_clip *clip);

/* Encodes ids [B, T] (row-major). Each output may be NULL; the others must
 * have the shapes above (out_last and out_penultimate_ln [B, T, E],
 * out_pooled [B, E]). Returns 0, or VTL_EINVAL (a shape, T > P, an id
 * outside the vocabulary: vtl_cl_errmsg says which) or an OpenCL code.
 * Work is queued; vtl_tensor_read waits for it. */
int vtl_clip_encode(vtl_clip *clip, const int32_t *ids, int B, int T,
                    const vtl_tensor *out_last,
                    const vtl_tensor *out_penultimate_ln,
                    const vtl_tensor *out_pooled);

/* The position whose hidden state is pooled for row ids[T] (see above). */
int vtl_clip_pool_index(const vtl_clip_config *cfg, const int32_t *ids,
                        int T);

#endif /* VTL_CLIP_H */
