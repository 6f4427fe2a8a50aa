/* vtl-tiny-eval — the default model's quality test, through the engine:
 *
 *   vtl-tiny-eval --model DIR --vocabulary FILE [--steps N] [--guidance G]
 *                 [--sampler NAME] [--seed S] [--min-accuracy A]
 *                 [--min-changed F] [--grid OUT.png] [--device SPEC]
 *
 * Renders every held-out case of the vocabulary (captions whose colour,
 * shape, position and background the training data never combined) from
 * noise with the live playhead's settings, judges each (judge.h), and
 * checks that different prompts give clearly different images: every pair
 * of renders must differ by more than 0.25 (of the [-1, 1] range) in some
 * channel on at least --min-changed of the pixels. Prints one line per
 * case; exits 0 when accuracy >= --min-accuracy and every pair differs, 1
 * when not, 2 on a usage or loading error. --grid writes the renders as one
 * PNG (5 per row, 2x nearest upscale) in the order printed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "judge.h"
#include "pipeline.h"
#include "png_io.h"
#include "vtl_error.h"

#define EXIT_USAGE 2
#define GRID_COLUMNS 5
#define GRID_SCALE 2

typedef struct {
  const char *model, *vocabulary, *sampler, *grid, *device;
  int steps;
  double guidance, min_accuracy, min_changed;
  unsigned long long seed;
} options;

static int usage(const char *why) {
  fprintf(stderr,
          "vtl-tiny-eval: %s\n"
          "usage: vtl-tiny-eval --model DIR --vocabulary FILE [--steps N] "
          "[--guidance G]\n"
          "         [--sampler NAME] [--seed S] [--min-accuracy A] "
          "[--min-changed F]\n"
          "         [--grid OUT.png] [--device SPEC]\n",
          why);
  return EXIT_USAGE;
}

static int parse(int argc, char **argv, options *o) {
  *o = (options){.sampler = "ddim", .steps = 4, .guidance = 1.0,
                 .min_accuracy = 0.8, .min_changed = 0.02, .seed = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (!v) return usage("every option needs a value");
    i++;
    if (!strcmp(a, "--model")) o->model = v;
    else if (!strcmp(a, "--vocabulary")) o->vocabulary = v;
    else if (!strcmp(a, "--sampler")) o->sampler = v;
    else if (!strcmp(a, "--grid")) o->grid = v;
    else if (!strcmp(a, "--device")) o->device = v;
    else if (!strcmp(a, "--steps")) o->steps = (int)strtol(v, &end, 10);
    else if (!strcmp(a, "--seed")) o->seed = strtoull(v, &end, 10);
    else if (!strcmp(a, "--guidance")) o->guidance = strtod(v, &end);
    else if (!strcmp(a, "--min-accuracy")) o->min_accuracy = strtod(v, &end);
    else if (!strcmp(a, "--min-changed")) o->min_changed = strtod(v, &end);
    else {
      fprintf(stderr, "vtl-tiny-eval: unknown option %s\n", a);
      return usage("see above");
    }
    if (end && *end) {
      fprintf(stderr, "vtl-tiny-eval: %s \"%s\": not a number\n", a, v);
      return usage("see above");
    }
  }
  if (!o->model || !o->vocabulary) return usage("--model and --vocabulary are required");
  if (o->steps < 1 || o->steps > 1000) return usage("--steps: 1..1000");
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Fraction of pixels where a and b differ by more than 0.25 in a channel. */
static double changed(const float *a, const float *b, size_t np) {
  size_t n = 0;
  for (size_t p = 0; p < np; p++)
    for (int ch = 0; ch < 3; ch++)
      if (fabsf(a[ch * np + p] - b[ch * np + p]) > 0.25f) {
        n++;
        break;
      }
  return (double)n / np;
}

static int write_grid(const char *path, float **images, size_t count, int n) {
  int cols = GRID_COLUMNS, rows = (int)((count + GRID_COLUMNS - 1) / GRID_COLUMNS);
  int W = cols * n * GRID_SCALE, H = rows * n * GRID_SCALE;
  unsigned char *grid = calloc((size_t)W * H * 3, 1);
  unsigned char *tile = malloc((size_t)n * n * 3);
  char msg[512];
  int rc = 0;
  if (!grid || !tile) rc = VTL_ENOMEM;
  for (size_t i = 0; !rc && i < count; i++) {
    vtl_png_to_rgb8(images[i], n, n, tile);
    int ox = (int)(i % GRID_COLUMNS) * n * GRID_SCALE, oy = (int)(i / GRID_COLUMNS) * n * GRID_SCALE;
    for (int y = 0; y < n * GRID_SCALE; y++)
      for (int x = 0; x < n * GRID_SCALE; x++)
        memcpy(&grid[((size_t)(oy + y) * W + ox + x) * 3],
               &tile[((size_t)(y / GRID_SCALE) * n + x / GRID_SCALE) * 3], 3);
  }
  if (!rc && (rc = vtl_png_write_rgb8(path, grid, W, H, msg, sizeof msg)))
    fprintf(stderr, "vtl-tiny-eval: --grid %s\n", msg);
  free(grid);
  free(tile);
  return rc;
}

int main(int argc, char **argv) {
  options o;
  int rc = parse(argc, argv, &o);
  if (rc) return rc;
  char msg[1024];
  vtl_vocab *voc = NULL;
  if ((rc = vtl_vocab_load(o.vocabulary, &voc, msg, sizeof msg))) {
    fprintf(stderr, "vtl-tiny-eval: %s\n", msg);
    return EXIT_USAGE;
  }
  vtl_cl_options co;
  vtl_cl_options_init(&co);
  co.device = o.device;
  vtl_cl *cl = NULL;
  vtl_pipeline *p = NULL;
  vtl_scheduler_config sc;
  memset(&sc, 0, sizeof sc);
  bool sc_open = false;
  size_t count = vtl_vocab_cases(voc);
  int n = vtl_vocab_size(voc);
  size_t np = (size_t)n * n;
  float **images = calloc(count, sizeof *images);
  int status = EXIT_USAGE, passed = 0;
  double render_s = 0;
  if (!images) goto done;
  if ((rc = vtl_cl_init(&cl, &co, msg, sizeof msg)) ||
      (rc = vtl_pipeline_load(cl, o.model, &(vtl_pipeline_opts){0}, &p, msg, sizeof msg)) ||
      (rc = vtl_pipeline_scheduler_config(p, o.sampler, -1, &sc, msg, sizeof msg))) {
    fprintf(stderr, "vtl-tiny-eval: %s: %s\n", o.model, msg);
    goto done;
  }
  sc_open = true;
  status = 1;
  for (size_t i = 0; i < count; i++) {
    const vtl_vocab_case *c = vtl_vocab_case_at(voc, i);
    char caption[256];
    vtl_vocab_caption(voc, c, caption, sizeof caption);
    vtl_noise_philox_state ns = {.seed = o.seed, .frame = 0};
    vtl_gen_params g = {.prompt = caption, .guidance_scale = o.guidance,
                        .steps = o.steps, .scheduler = &sc, .width = n,
                        .height = n, .noise = vtl_noise_philox(&ns)};
    vtl_gen_result res = {0};
    double t0 = now_s();
    if ((rc = vtl_pipeline_txt2img(p, &g, &res, msg, sizeof msg))) {
      fprintf(stderr, "vtl-tiny-eval: \"%s\": %s\n", caption, msg);
      status = EXIT_USAGE;
      goto done;
    }
    render_s += now_s() - t0;
    images[i] = res.image;
    res.image = NULL;
    vtl_gen_result_free(&res);
    vtl_judgement j;
    bool ok = vtl_judge(voc, c, images[i], &j);
    passed += ok;
    static const char *cols[] = {"left", "centre", "right"}, *rows[] = {"top", "middle", "bottom"};
    if (j.found)
      printf("%-4s %-58s found %s at %s %s (%d px)\n", ok ? "ok" : "FAIL", caption,
             j.colour, rows[j.row], cols[j.col], j.pixels);
    else
      printf("%-4s %-58s found no object\n", "FAIL", caption);
  }
  double worst = 1.0;
  size_t wa = 0, wb = 0;
  for (size_t a = 0; a < count; a++)
    for (size_t b = a + 1; b < count; b++) {
      double f = changed(images[a], images[b], np);
      if (f < worst) {
        worst = f;
        wa = a;
        wb = b;
      }
    }
  double acc = (double)passed / count;
  printf("accuracy %d/%zu = %.0f%% (need %.0f%%); least different pair: %zu and "
         "%zu, %.1f%% of pixels changed (need %.1f%%); %.1f ms per render "
         "(%d steps, guidance %g, %s)\n",
         passed, count, acc * 100, o.min_accuracy * 100, wa + 1, wb + 1,
         worst * 100, o.min_changed * 100, render_s / count * 1e3, o.steps,
         o.guidance, o.sampler);
  if (o.grid && write_grid(o.grid, images, count, n)) goto done;
  status = acc >= o.min_accuracy && worst >= o.min_changed ? 0 : 1;
done:
  for (size_t i = 0; images && i < count; i++) free(images[i]);
  free(images);
  if (sc_open) vtl_scheduler_config_free(&sc);
  vtl_pipeline_free(p);
  vtl_cl_close(cl);
  vtl_vocab_free(voc);
  return status;
}
