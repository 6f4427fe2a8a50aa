/* case_unet.c — kind `unet`: inputs sample [B, C, h, w] float32, timestep
 * float32 [1] or [B] (int64 accepted too), encoder_hidden_states [B, T, Dc]
 * and, for a UNet with class_embed_type "projection", class_labels [B, P]
 * (diffusers' forward argument), through the model's UNet (engine/unet.h);
 * compared output noise_pred [B, Cout, h, w].
 *
 * model: {"format": "diffusers", "path", "variant"} or {"format":
 * "ldm_single_file", "path", "config_dir"}. The last loaded UNet is kept for
 * the next case while (format, path, variant, config_dir) stay the same;
 * another model replaces it. The cache is freed at exit, before the shared
 * runtime closes (rc_runtime).
 *
 * Debugging: with VTL_REFCHECK_TAPS=1 in the environment, every tap the
 * case lists (time_proj, conv_in, down_block_i, ...) is compared with the
 * engine's tensor of that name and its max abs error printed (taps are
 * never part of pass / fail).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_files.h"
#include "refcheck.h"
#include "unet.h"
#include "vtl_error.h"

static int load(vtl_cl *cl, vtl_model_files *files, void **obj, char *msg,
                size_t msglen) {
  vtl_unet *model = NULL;
  int rc = vtl_unet_load(cl, files, &model, msg, msglen);
  *obj = model;
  return rc;
}

static void unload(void *obj) { vtl_unet_free(obj); }

static rc_model_cache cache = {.load_files = load, .unload = unload};

static int case_unet(rc_case *c, vtl_cl *cl, vtl_unet **out) {
  void *obj = NULL;
  int rc = rc_model(c, cl, &cache, &obj);
  *out = obj;
  return rc;
}

/* ---- taps (debugging) --------------------------------------------------- */

typedef struct {
  rc_case *c;
  vtl_cl *cl;
} tap_ctx;

static void tap_compare(void *user, const char *name, const vtl_tensor *t) {
  tap_ctx *tc = user;
  json_t *e = json_object_get(json_object_get(tc->c->json, "taps"), name);
  const char *file = json_string_value(json_object_get(e, "file"));
  if (!file) return;
  char path[4096], msg[256];
  rc_path(tc->c, file, path, sizeof path);
  vtl_npy ref = {0};
  if (vtl_npy_load(path, &ref, msg, sizeof msg) != 0) {
    printf("  tap %-16s cannot read: %s\n", name, msg);
    return;
  }
  size_t n = vtl_tensor_numel(t);
  float *got = malloc(n * sizeof *got);
  if (ref.dtype != VTL_NPY_F32 || ref.count != n || !got) {
    printf("  tap %-16s size %zu vs expected %zu\n", name, n, ref.count);
  } else if (vtl_tensor_read(tc->cl, t, got) == 0) {
    const float *e32 = ref.data;
    double err = 0, peak = 0;
    for (size_t i = 0; i < n; i++) {
      double d = fabs((double)got[i] - e32[i]);
      if (d > err || isnan(d)) err = d;
      if (fabs(e32[i]) > peak) peak = fabs(e32[i]);
    }
    printf("  tap %-16s max_abs %.3g (peak %.3g)\n", name, err, peak);
  }
  free(got);
  vtl_npy_free(&ref);
}

/* ---- the case ----------------------------------------------------------- */

int run_unet(rc_case *c) {
  vtl_cl *cl = NULL;
  int rc = rc_runtime(c, &cl);
  if (rc) return rc;
  vtl_unet *unet = NULL;
  rc = case_unet(c, cl, &unet);
  if (rc) return rc;
  const vtl_unet_config *cfg = vtl_unet_config_of(unet);

  vtl_npy sample = {0}, ts = {0}, ctx = {0}, labels = {0};
  float *tv = NULL, *host = NULL;
  vtl_tensor ts_in = {0}, tc_in = {0}, tl_in = {0}, out = {0};
  rc = rc_input(c, "sample", &sample);
  if (!rc) rc = rc_input(c, "timestep", &ts);
  if (!rc) rc = rc_input(c, "encoder_hidden_states", &ctx);
  bool has_labels = json_object_get(json_object_get(c->json, "inputs"), "class_labels");
  if (!rc && has_labels) rc = rc_input(c, "class_labels", &labels);
  if (rc) goto done;
  if (has_labels && (labels.dtype != VTL_NPY_F32 || labels.ndim != 2 ||
                     labels.shape[0] != sample.shape[0])) {
    rc = rc_case_error(c, VTL_EINVAL, "class_labels must be float32 [B, P]");
    goto done;
  }
  if (sample.dtype != VTL_NPY_F32 || sample.ndim != 4 ||
      ctx.dtype != VTL_NPY_F32 || ctx.ndim != 3 ||
      ctx.shape[0] != sample.shape[0] || ts.count < 1) {
    rc = rc_case_error(c, VTL_EINVAL, "sample must be float32 [B, C, h, w], "
                       "encoder_hidden_states float32 [B, T, D], timestep "
                       "[1] or [B]");
    goto done;
  }
  tv = malloc(ts.count * sizeof *tv);
  if (!tv) {
    rc = rc_case_error(c, VTL_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < ts.count; i++)
    tv[i] = ts.dtype == VTL_NPY_F32 ? ((const float *)ts.data)[i]
                                    : (float)((const int64_t *)ts.data)[i];
  int64_t B = sample.shape[0], h = sample.shape[2], w = sample.shape[3];
  const int64_t oshape[4] = {B, cfg->out_channels, h, w};
  host = malloc((size_t)B * cfg->out_channels * h * w * sizeof *host);
  if (!host) {
    rc = rc_case_error(c, VTL_ENOMEM, "out of memory");
    goto done;
  }
  rc = vtl_tensor_alloc(cl, &ts_in, 4, sample.shape);
  if (!rc) rc = vtl_tensor_write(cl, &ts_in, sample.data);
  if (!rc) rc = vtl_tensor_alloc(cl, &tc_in, 3, ctx.shape);
  if (!rc) rc = vtl_tensor_write(cl, &tc_in, ctx.data);
  if (!rc && has_labels) rc = vtl_tensor_alloc(cl, &tl_in, 2, labels.shape);
  if (!rc && has_labels) rc = vtl_tensor_write(cl, &tl_in, labels.data);
  if (!rc) rc = vtl_tensor_alloc(cl, &out, 4, oshape);
  tap_ctx tctx = {c, cl};
  const char *taps_env = getenv("VTL_REFCHECK_TAPS");
  bool taps = taps_env && strcmp(taps_env, "1") == 0 &&
              json_object_get(c->json, "taps");
  vtl_unet_extra ex = {.tap = taps ? tap_compare : NULL, .tap_user = &tctx,
                       .class_labels = has_labels ? &tl_in : NULL};
  if (!rc)
    rc = vtl_unet_forward(unet, &ts_in, tv, (int)ts.count, &tc_in, &ex, &out);
  if (!rc) rc = vtl_tensor_read(cl, &out, host);
  if (rc) {
    rc_case_error(c, rc, "%s", vtl_cl_errmsg(cl));
    goto done;
  }
  rc_check_f32(c, "noise_pred", host, 4, oshape);
done:
  vtl_tensor_release(cl, &ts_in);
  vtl_tensor_release(cl, &tc_in);
  vtl_tensor_release(cl, &tl_in);
  vtl_tensor_release(cl, &out);
  vtl_npy_free(&sample);
  vtl_npy_free(&ts);
  vtl_npy_free(&ctx);
  vtl_npy_free(&labels);
  free(tv);
  free(host);
  return rc;
}
