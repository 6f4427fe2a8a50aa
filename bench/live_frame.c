/* live_frame.c — what the live playhead costs: a model's frames rendered
 * the way the render service chains them, each an img2img of the previous
 * frame (the camera warp is the render service's and not included), after
 * one txt2img first frame.
 *
 *   cmake --build build --target live_frame_bench
 *   ./build/bench/live_frame_bench --model models/tiny [--steps 4]
 *       [--strength 0.5] [--guidance 1] [--sampler ddim] [--frames 30]
 *       [--prompt TEXT]
 *
 * Prints the first frame's time and the min / median / max of the chained
 * frames (wall clock around vtl_pipeline_img2img: tokenizing, text
 * encoding, the denoising steps, and the copies back to the host), and the
 * frames per second the median allows. Nothing is asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *model = NULL, *sampler = "ddim",
             *prompt = "a red circle on the left in the sky";
  int steps = 4, frames = 30;
  double strength = 0.5, guidance = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--model")) model = v;
    else if (!strcmp(a, "--sampler")) sampler = v;
    else if (!strcmp(a, "--prompt")) prompt = v;
    else if (!strcmp(a, "--steps")) steps = atoi(v);
    else if (!strcmp(a, "--frames")) frames = atoi(v);
    else if (!strcmp(a, "--strength")) strength = atof(v);
    else if (!strcmp(a, "--guidance")) guidance = atof(v);
    else model = NULL, i = argc;
  }
  if (!model || steps < 1 || frames < 1 || argc % 2 == 0) {
    fprintf(stderr, "usage: live_frame_bench --model DIR [--steps 4] [--strength 0.5] "
                    "[--guidance 1] [--sampler ddim] [--frames 30] [--prompt TEXT]\n");
    return 2;
  }
  char msg[1024];
  vtl_cl *cl = NULL;
  vtl_pipeline *p = NULL;
  vtl_scheduler_config sc;
  double *ms = calloc((size_t)frames, sizeof *ms);
  if (!ms || vtl_cl_init(&cl, NULL, msg, sizeof msg) ||
      vtl_pipeline_load(cl, model, &(vtl_pipeline_opts){0}, &p, msg, sizeof msg) ||
      vtl_pipeline_scheduler_config(p, sampler, -1, &sc, msg, sizeof msg)) {
    fprintf(stderr, "live_frame_bench: %s\n", msg);
    return 1;
  }
  int size = vtl_pipeline_native_size(p);
  vtl_noise_philox_state ns = {.seed = 1, .frame = 0};
  vtl_gen_params g = {.prompt = prompt, .guidance_scale = guidance, .steps = steps,
                      .strength = strength, .scheduler = &sc, .width = size,
                      .height = size, .noise = vtl_noise_philox(&ns)};
  vtl_gen_result prev = {0}, cur = {0};
  double t0 = now_ms();
  if (vtl_pipeline_txt2img(p, &g, &prev, msg, sizeof msg)) goto fail;
  double first = now_ms() - t0;
  int run = 0;
  for (int f = 0; f < frames; f++) {
    ns.frame = (uint32_t)f + 1;
    t0 = now_ms();
    if (vtl_pipeline_img2img(p, &g, prev.image, &cur, msg, sizeof msg)) goto fail;
    ms[f] = now_ms() - t0;
    run = cur.steps_run;
    vtl_gen_result_free(&prev);
    prev = cur;
    memset(&cur, 0, sizeof cur);
  }
  qsort(ms, (size_t)frames, sizeof *ms, cmp_double);
  double med = ms[frames / 2];
  printf("device: %s\nmodel: %s  %dx%d  %s, %d steps, strength %g (%d run), guidance %g\n",
         vtl_cl_device_name(cl), model, size, size, sampler, steps, strength, run, guidance);
  printf("first frame (txt2img, %d steps): %.1f ms\n", steps, first);
  printf("chained img2img frames (%d): min %.1f  median %.1f  max %.1f ms  -> %.1f frames/s\n",
         frames, ms[0], med, ms[frames - 1], 1e3 / med);
  vtl_gen_result_free(&prev);
  vtl_scheduler_config_free(&sc);
  vtl_pipeline_free(p);
  vtl_cl_close(cl);
  free(ms);
  return 0;
fail:
  fprintf(stderr, "live_frame_bench: %s\n", msg);
  return 1;
}
