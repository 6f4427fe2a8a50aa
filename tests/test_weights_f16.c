/* test_weights_f16.c — the refkit's tiny-sd loaded with f16 weight storage
 * (runtime.h "Weight storage", forced through vtl_cl_options.weights as
 * VTL_WEIGHTS=f16 would) against the same model with f32 storage, on the
 * refkit's own inputs (cases/text_encoder_b3, cases/unet_t500).
 *
 * Tolerance: f16 keeps 11 significant bits, so each stored weight moves by
 * at most 2^-12 relative (4.9e-4 / 2 after rounding to nearest). A layer's
 * output error is a sum of such independent errors and stays near that
 * relative size; through the residual stacks (CLIP: 2 layers, tiny UNet:
 * 2 levels) it grows by a small factor. We require
 *
 *   max |y_f16 - y_f32| <= 8 * 2^-11 * max |y_f32|   (~0.4 % of the range)
 *
 * which the measured differences meet with room (printed), and which a
 * wrong conversion (a swapped byte, a truncation of the exponent, f16 read
 * as f32) misses by orders of magnitude. The weights must also take about
 * half the device bytes (1-D parameters and CLIP's embeddings stay f32).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "clip.h"
#include "model_files.h"
#include "npy.h"
#include "unet.h"
#include "engine_test.h"
#include "task.h"
#include "vtl_error.h"

#define KIT VTL_SOURCE_DIR "/../shared/refkit"
#define TOL_BITS (8.0 / 2048.0)

static vtl_cl *open_rt(vtl_weights_store ws) {
  vtl_cl_options o;
  vtl_cl_options_init(&o);
  o.cache_dir = VTL_BINARY_DIR "/kernel-cache";
  o.profile = 0;
  o.weights = ws;
  vtl_cl *cl;
  char msg[512];
  if (vtl_cl_init(&cl, &o, msg, sizeof msg) != 0) {
    fprintf(stderr, "no OpenCL device: %s\n", msg);
    abort();
  }
  return cl;
}

static vtl_model_files *open_model(void) {
  vtl_model_files *m;
  char msg[512];
  if (vtl_model_files_open(&m, KIT "/models/tiny-sd", NULL, msg,
                           sizeof msg) != 0) {
    fprintf(stderr, "%s\n", msg);
    abort();
  }
  return m;
}

static vtl_npy case_npy(const char *c, const char *name) {
  char path[512], msg[512];
  snprintf(path, sizeof path, KIT "/cases/%s/%s.npy", c, name);
  vtl_npy a;
  if (vtl_npy_load(path, &a, msg, sizeof msg) != 0) {
    fprintf(stderr, "%s\n", msg);
    abort();
  }
  return a;
}

/* 0 when f16 is within TOL_BITS of f32's range; prints the figures. */
static int compare(const char *what, const float *f16, const float *f32,
                   size_t n, size_t bytes16, size_t bytes32) {
  double diff = 0, range = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)f16[i] - f32[i]);
    if (!(d <= diff)) diff = d; /* NaN sticks */
    if (fabs(f32[i]) > range) range = fabs(f32[i]);
  }
  fprintf(stderr, "%s: max |f16 - f32| %.3g, max |f32| %.3g (limit %.3g); "
          "weights %zu -> %zu bytes\n", what, diff, range, TOL_BITS * range,
          bytes32, bytes16);
  return !(diff <= TOL_BITS * range);
}

/* The encoder's last hidden state for the case's ids, and its weight bytes. */
static float *clip_run(vtl_weights_store ws, size_t *n, size_t *bytes) {
  vtl_cl *cl = open_rt(ws);
  vtl_model_files *m = open_model();
  vtl_npy ids = case_npy("text_encoder_b3", "input_ids");
  int B = (int)ids.shape[0], T = (int)ids.shape[1];
  int32_t *id = malloc(ids.count * sizeof *id);
  for (size_t i = 0; i < ids.count; i++) id[i] = (int32_t)((int64_t *)ids.data)[i];
  vtl_clip *clip;
  char msg[512];
  size_t before = vtl_cl_bytes_in_use(cl);
  CHECK(vtl_clip_load(cl, m, &clip, msg, sizeof msg));
  *bytes = vtl_cl_bytes_in_use(cl) - before;
  int E = vtl_clip_config_of(clip)->hidden_size;
  vtl_tensor out;
  CHECK(vtl_tensor_alloc(cl, &out, 3, VTL_SHAPE(B, T, E)));
  CHECK(vtl_clip_encode(clip, id, B, T, &out, NULL, NULL));
  *n = vtl_tensor_numel(&out);
  float *y = malloc(*n * sizeof *y);
  CHECK(vtl_tensor_read(cl, &out, y));
  vtl_tensor_release(cl, &out);
  vtl_clip_free(clip);
  vtl_model_files_close(m);
  vtl_npy_free(&ids);
  free(id);
  vtl_cl_close(cl);
  return y;
}

TEST_IMPL(clip_f16_vs_f32) {
  size_t n32, n16, b32, b16;
  float *y32 = clip_run(VTL_WEIGHTS_F32, &n32, &b32);
  float *y16 = clip_run(VTL_WEIGHTS_F16, &n16, &b16);
  ASSERT_EQ(n16, n32);
  ASSERT_OK(compare("text_encoder_b3 last_hidden_state", y16, y32, n32, b16,
                    b32));
  ASSERT(b16 < b32); /* the embeddings (most of tiny CLIP) stay f32 */
  free(y32);
  free(y16);
  return 0;
}

static float *unet_run(vtl_weights_store ws, size_t *n, size_t *bytes) {
  vtl_cl *cl = open_rt(ws);
  vtl_model_files *m = open_model();
  vtl_npy s = case_npy("unet_t500", "sample"),
          ctx = case_npy("unet_t500", "encoder_hidden_states"),
          ts = case_npy("unet_t500", "timestep");
  vtl_unet *u;
  char msg[512];
  size_t before = vtl_cl_bytes_in_use(cl);
  CHECK(vtl_unet_load(cl, m, &u, msg, sizeof msg));
  *bytes = vtl_cl_bytes_in_use(cl) - before;
  vtl_tensor xs, xc, out;
  CHECK(vtl_tensor_alloc(cl, &xs, 4, s.shape));
  CHECK(vtl_tensor_write(cl, &xs, s.data));
  CHECK(vtl_tensor_alloc(cl, &xc, 3, ctx.shape));
  CHECK(vtl_tensor_write(cl, &xc, ctx.data));
  CHECK(vtl_tensor_alloc(cl, &out, 4, VTL_SHAPE(s.shape[0],
        vtl_unet_config_of(u)->out_channels, s.shape[2], s.shape[3])));
  float t = ((float *)ts.data)[0];
  CHECK(vtl_unet_forward(u, &xs, &t, 1, &xc, NULL, &out));
  *n = vtl_tensor_numel(&out);
  float *y = malloc(*n * sizeof *y);
  CHECK(vtl_tensor_read(cl, &out, y));
  vtl_tensor_release(cl, &xs);
  vtl_tensor_release(cl, &xc);
  vtl_tensor_release(cl, &out);
  vtl_unet_free(u);
  vtl_model_files_close(m);
  vtl_npy_free(&s);
  vtl_npy_free(&ctx);
  vtl_npy_free(&ts);
  vtl_cl_close(cl);
  return y;
}

TEST_IMPL(unet_f16_vs_f32) {
  size_t n32, n16, b32, b16;
  float *y32 = unet_run(VTL_WEIGHTS_F32, &n32, &b32);
  float *y16 = unet_run(VTL_WEIGHTS_F16, &n16, &b16);
  ASSERT_EQ(n16, n32);
  ASSERT_OK(compare("unet_t500 noise_pred", y16, y32, n32, b16, b32));
  /* conv / linear weights are nearly all of a UNet: about half the bytes */
  ASSERT(b16 < b32 * 0.56);
  free(y32);
  free(y16);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(clip_f16_vs_f32)
  TEST_ENTRY(unet_f16_vs_f32)
)
