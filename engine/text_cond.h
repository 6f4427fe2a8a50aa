/* text_cond.h — a render's text conditioning, on the host: prompts (one, or
 * the weighted blend of a timeline's overlapping prompt clips) to the UNet's
 * context rows [windows * 77, C] and the pooled output [C].
 *
 *   one prompt   windows as the tokenizer splits it (tokenizer.h: weights,
 *                75-token windows, BREAK), each window encoded by CLIP and
 *                weighted AUTOMATIC1111-style; pooled = the first window's
 *                pooled output before weighting. plain: one kit-exact window
 *                without weight syntax (diffusers' pipelines).
 *   padding      a prompt of fewer windows than asked is padded with the
 *                empty prompt's window (so CFG's two halves and a blend's
 *                terms line up).
 *   blend        rows = sum_i w_i * rows_i / sum_i w_i, pooled likewise
 *                (weights > 0); one term of weight w gives its rows exactly.
 *
 * Encodings are cached (the last VTL_TEXT_COND_CACHE distinct prompts, least
 * recently used out), so a live playhead that renders frame after frame
 * with the same prompts runs CLIP only when a prompt changes. A cached
 * encoding is the same bytes as a fresh one.
 *
 * Borrows the device, tokenizer and text encoder (free this first); one
 * thread.
 */
#ifndef VTL_TEXT_COND_H
#define VTL_TEXT_COND_H

#include <stdbool.h>
#include <stddef.h>

#include "clip.h"
#include "tokenizer.h"

#define VTL_TEXT_COND_CACHE 16

typedef struct vtl_text_cond vtl_text_cond;

typedef struct {
  const char *text;
  double weight; /* > 0 */
} vtl_prompt_term;

int vtl_text_cond_new(vtl_cl *cl, vtl_tokenizer *tok, vtl_clip *clip,
                      vtl_text_cond **out);
void vtl_text_cond_free(vtl_text_cond *tc); /* NULL is a no-op */

/* The number of 77-token windows text needs (encoding it into the cache). */
int vtl_text_cond_windows(vtl_text_cond *tc, const char *text, bool plain,
                          int *count, char *msg, size_t msglen);

/* The blend of terms[0..n) padded to `windows` windows (at least each
 * term's own count): rows [windows * 77 * C]; pooled [C] unless NULL.
 * VTL_EINVAL for no terms, a weight <= 0 or too few windows; tokenizer and
 * OpenCL errors with msg. */
int vtl_text_cond_blend(vtl_text_cond *tc, const vtl_prompt_term *terms,
                        int n, bool plain, int windows, float *rows,
                        float *pooled, char *msg, size_t msglen);

#endif /* VTL_TEXT_COND_H */
