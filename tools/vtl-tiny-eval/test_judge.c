/* test_judge.c — judge.c on images drawn here from the vocabulary (no
 * model): the caption's own background with a disc of the caption's colour
 * in its cell is judged right; the wrong colour, the wrong cell, or no
 * object at all is judged wrong; a disc painted on the WRONG background is
 * not excused (the background is the caption's, not the image's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "judge.h"
#include "task.h"

#define VOCAB VTL_SOURCE_DIR "/tools/train-tiny/vocabulary.json"

static vtl_vocab *voc;

static vtl_vocab *vocab(void) {
  char msg[256];
  if (!voc && vtl_vocab_load(VOCAB, &voc, msg, sizeof msg)) {
    fprintf(stderr, "%s\n", msg);
    abort();
  }
  return voc;
}

/* image [1, 3, n, n] in [-1, 1]: background bg/time with a disc of rgb at
 * the centre of cell (col, row), radius r (0: none). */
static float *draw(const char *bg, const char *time, const float rgb[3],
                   int col, int row, float r) {
  int n = vtl_vocab_size(vocab());
  size_t np = (size_t)n * n;
  float *back = malloc(np * 3 * sizeof *back), *img = malloc(np * 3 * sizeof *img);
  if (!back || !img) abort();
  vtl_vocab_background(vocab(), bg, time, back);
  float cx = (col + 0.5f) * n / 3, cy = (row + 0.5f) * n / 3;
  for (size_t p = 0; p < np; p++) {
    float x = (float)(p % n) + 0.5f - cx, y = (float)(p / n) + 0.5f - cy;
    bool in = r > 0 && x * x + y * y <= r * r;
    for (int ch = 0; ch < 3; ch++)
      img[ch * np + p] = (in ? rgb[ch] : back[p * 3 + ch]) / 127.5f - 1.0f;
  }
  free(back);
  return img;
}

static const vtl_vocab_case *case_named(const char *colour, const char *bg) {
  for (size_t i = 0; i < vtl_vocab_cases(vocab()); i++) {
    const vtl_vocab_case *c = vtl_vocab_case_at(vocab(), i);
    if (!strcmp(c->colour, colour) && !strcmp(c->background, bg)) return c;
  }
  abort();
}

static const float RED[3] = {215, 35, 35}, BLUE[3] = {35, 75, 215};

TEST_IMPL(judge_right) {
  const vtl_vocab_case *c = case_named("red", "sea"); /* red star, top left */
  float *img = draw(c->background, c->time, RED, c->col, c->row, 8);
  vtl_judgement j;
  ASSERT(vtl_judge(vocab(), c, img, &j));
  ASSERT(j.found);
  ASSERT_EQ(strcmp(j.colour, "red"), 0);
  ASSERT_EQ(j.col, 0);
  ASSERT_EQ(j.row, 0);
  ASSERT(j.pixels > 150 && j.pixels < 250); /* pi * 8^2 */
  free(img);
  return 0;
}

TEST_IMPL(judge_wrong) {
  const vtl_vocab_case *c = case_named("red", "sea");
  vtl_judgement j;
  float *blue = draw(c->background, c->time, BLUE, c->col, c->row, 8);
  ASSERT(!vtl_judge(vocab(), c, blue, &j));
  ASSERT_EQ(strcmp(j.colour, "blue"), 0);
  float *moved = draw(c->background, c->time, RED, 2, 2, 8);
  ASSERT(!vtl_judge(vocab(), c, moved, &j));
  ASSERT_EQ(j.col, 2);
  ASSERT_EQ(j.row, 2);
  float *none = draw(c->background, c->time, RED, 0, 0, 0);
  ASSERT(!vtl_judge(vocab(), c, none, &j));
  ASSERT(!j.found);
  /* the right disc on another background: the background itself differs
   * from the caption's sea, so the biggest "object" is not the disc */
  float *desert = draw("desert", "", RED, c->col, c->row, 8);
  ASSERT(!vtl_judge(vocab(), c, desert, &j));
  free(blue), free(moved), free(none), free(desert);
  return 0;
}

TEST_IMPL(judge_caption) {
  const vtl_vocab_case *c = case_named("red", "sea");
  char text[256];
  vtl_vocab_caption(vocab(), c, text, sizeof text);
  ASSERT_EQ(strcmp(text, "a red star at the top left over the sea"), 0);
  char msg[256];
  vtl_vocab *bad = NULL;
  ASSERT(vtl_vocab_load(VTL_SOURCE_DIR "/tools/train-tiny/dataset.py", &bad, msg, sizeof msg) != 0);
  ASSERT(bad == NULL);
  return 0;
}

TEST_LIST(TEST_ENTRY(judge_right) TEST_ENTRY(judge_wrong) TEST_ENTRY(judge_caption))
