/* case_unet.c — kind `unet`: inputs sample [B, C, h, w] float32, timestep
 * float32 [1] or [B] (int64 accepted too), encoder_hidden_states [B, T, Dc]
 * through the model's UNet (engine/unet.h); compared output noise_pred
 * [B, Cout, h, w].
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

static struct {
  char key[8192]; /* "format|path|variant|config_dir" of unet */
  vtl_unet *unet; /* owned, NULL before the first case */
  bool atexit_set;
} cache;

static void free_cache(void) {
  vtl_unet_free(cache.unet);
  cache.unet = NULL;
  cache.key[0] = '\0';
}

static const char *str_or(json_t *o, const char *key, const char *dflt) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : dflt;
}

/* The UNet of case c: cached, or loaded (then cached). */
static int case_unet(rc_case *c, vtl_cl *cl, vtl_unet **out) {
  json_t *model = json_object_get(c->json, "model");
  const char *format = str_or(model, "format", "diffusers");
  const char *rel = str_or(model, "path", NULL);
  const char *variant = str_or(model, "variant", NULL);
  const char *cdir_rel = str_or(model, "config_dir", NULL);
  if (!rel) return rc_case_error(c, VTL_EPARSE, "model.path missing");
  bool ldm = strcmp(format, "ldm_single_file") == 0;
  if (!ldm && strcmp(format, "diffusers") != 0)
    return rc_case_error(c, VTL_EUNSUPPORTED, "model.format \"%s\"", format);
  if (ldm && !cdir_rel)
    return rc_case_error(c, VTL_EPARSE, "ldm_single_file without config_dir");

  char path[4096], cdir[4096] = "", key[sizeof cache.key];
  rc_path(c, rel, path, sizeof path);
  if (cdir_rel) rc_path(c, cdir_rel, cdir, sizeof cdir);
  int kn = snprintf(key, sizeof key, "%s|%s|%s|%s", format, path,
                    variant ? variant : "", ldm ? cdir : "");
  if (kn < 0 || (size_t)kn >= sizeof key)
    return rc_case_error(c, VTL_ETOOLONG, "model path too long");
  if (cache.unet && strcmp(cache.key, key) == 0) {
    *out = cache.unet;
    return 0;
  }
  free_cache();
  if (!cache.atexit_set) { /* after rc_runtime's: runs before it */
    atexit(free_cache);
    cache.atexit_set = true;
  }

  char msg[512];
  vtl_model_files *m = NULL;
  vtl_model_open_opts o = {.variant = variant,
                           .config_dir = ldm ? cdir : NULL};
  int rc = vtl_model_files_open(&m, path, &o, msg, sizeof msg);
  if (rc) return rc_case_error(c, rc, "%s", msg);
  rc = vtl_unet_load(cl, m, &cache.unet, msg, sizeof msg);
  vtl_model_files_close(m);
  if (rc) return rc_case_error(c, rc, "%s", msg);
  snprintf(cache.key, sizeof cache.key, "%s", key);
  *out = cache.unet;
  return 0;
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

  vtl_npy sample = {0}, ts = {0}, ctx = {0};
  float *tv = NULL, *host = NULL;
  vtl_tensor ts_in = {0}, tc_in = {0}, out = {0};
  rc = rc_input(c, "sample", &sample);
  if (!rc) rc = rc_input(c, "timestep", &ts);
  if (!rc) rc = rc_input(c, "encoder_hidden_states", &ctx);
  if (rc) goto done;
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
  if (!rc) rc = vtl_tensor_alloc(cl, &out, 4, oshape);
  tap_ctx tctx = {c, cl};
  const char *taps_env = getenv("VTL_REFCHECK_TAPS");
  vtl_unet_extra ex = {.tap = tap_compare, .tap_user = &tctx};
  bool taps = taps_env && strcmp(taps_env, "1") == 0 &&
              json_object_get(c->json, "taps");
  if (!rc)
    rc = vtl_unet_forward(unet, &ts_in, tv, (int)ts.count, &tc_in,
                          taps ? &ex : NULL, &out);
  if (!rc) rc = vtl_tensor_read(cl, &out, host);
  if (rc) {
    rc_case_error(c, rc, "%s", vtl_cl_errmsg(cl));
    goto done;
  }
  rc_check_f32(c, "noise_pred", host, 4, oshape);
done:
  vtl_tensor_release(cl, &ts_in);
  vtl_tensor_release(cl, &tc_in);
  vtl_tensor_release(cl, &out);
  vtl_npy_free(&sample);
  vtl_npy_free(&ts);
  vtl_npy_free(&ctx);
  free(tv);
  free(host);
  return rc;
}
