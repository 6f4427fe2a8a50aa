/* judge.h — reads a rendered image of the default model the way a strict
 * viewer would: the object is what differs from the background the caption
 * asked for (computed from tools/train-tiny/vocabulary.json exactly as the
 * training data draws it), not from whatever the image's own background
 * drifted to.
 *
 *   object pixels  RGB distance to the caption's background > VTL_JUDGE_DIFF
 *   the object     the largest 4-connected group of them
 *                  (>= VTL_JUDGE_MIN_PIXELS, else "no object")
 *   position       its centroid's third of the image, column and row
 *   colour         the palette colour nearest (RGB distance) to the mean of
 *                  its pixels that differ most (the upper half of their
 *                  distances: antialiased edges are mixtures)
 */
#ifndef VTL_JUDGE_H
#define VTL_JUDGE_H

#include <stdbool.h>
#include <stddef.h>

#define VTL_JUDGE_DIFF 60.0
#define VTL_JUDGE_MIN_PIXELS 12

typedef struct vtl_vocab vtl_vocab;

/* One held-out test case: what the caption asks for. */
typedef struct {
  const char *colour, *shape, *position, *background, *time;
  int col, row; /* the position's third: 0 left/top, 1 centre, 2 right/bottom */
} vtl_vocab_case;

int vtl_vocab_load(const char *path, vtl_vocab **out, char *msg,
                   size_t msglen);
void vtl_vocab_free(vtl_vocab *v);

int vtl_vocab_size(const vtl_vocab *v); /* the model's image side */
size_t vtl_vocab_cases(const vtl_vocab *v); /* held_out entries */
const vtl_vocab_case *vtl_vocab_case_at(const vtl_vocab *v, size_t i);

/* The caption of a case in the test's wording (first phrase of each
 * attribute): "a red star at the top left over the sea at night". */
void vtl_vocab_caption(const vtl_vocab *v, const vtl_vocab_case *c, char *out,
                       size_t outlen);

/* The caption's background, [size * size * 3] interleaved RGB 0..255. */
void vtl_vocab_background(const vtl_vocab *v, const char *background,
                          const char *time, float *rgb);

typedef struct {
  bool found;         /* an object of at least VTL_JUDGE_MIN_PIXELS */
  const char *colour; /* nearest palette name (borrowed from v) */
  int col, row;       /* centroid's thirds */
  int pixels;         /* object size */
} vtl_judgement;

/* Judges image [1, 3, size, size] in [-1, 1] against case c. Returns true
 * when colour, column and row all match. */
bool vtl_judge(const vtl_vocab *v, const vtl_vocab_case *c,
               const float *image, vtl_judgement *out);

#endif /* VTL_JUDGE_H */
