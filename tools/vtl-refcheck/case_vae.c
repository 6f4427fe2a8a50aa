/* case_vae.c — kinds `vae_encode` (inputs.image [N, 3, H, W] -> outputs
 * mean, logvar [N, L, h, w]) and `vae_decode` (inputs.latents [N, L, h, w],
 * already divided by scaling_factor -> outputs.image) through the model's
 * AutoencoderKL (engine/vae.h).
 *
 * model: {"format": "diffusers", "path", "variant"} or {"format":
 * "ldm_single_file", "path", "config_dir"}. The last loaded VAE is kept for
 * the next case while (format, path, variant, config_dir) stay the same; it
 * is freed at exit, before the shared runtime closes (rc_runtime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_files.h"
#include "refcheck.h"
#include "vae.h"
#include "vtl_error.h"

static struct {
  char key[8192]; /* "format|path|variant|config_dir" of vae */
  vtl_vae *vae;   /* owned, NULL before the first case */
  bool atexit_set;
} cache;

static void free_cache(void) {
  vtl_vae_free(cache.vae);
  cache.vae = NULL;
  cache.key[0] = '\0';
}

static const char *str_or(json_t *o, const char *key, const char *dflt) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : dflt;
}

static int case_vae(rc_case *c, vtl_cl *cl, vtl_vae **out) {
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
  if (cache.vae && strcmp(cache.key, key) == 0) {
    *out = cache.vae;
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
  rc = vtl_vae_load(cl, m, &cache.vae, msg, sizeof msg);
  vtl_model_files_close(m);
  if (rc) return rc_case_error(c, rc, "%s", msg);
  snprintf(cache.key, sizeof cache.key, "%s", key);
  *out = cache.vae;
  return 0;
}

/* Reads input `name` as float32 [N, C, H, W] into a new device tensor. */
static int input4(rc_case *c, vtl_cl *cl, const char *name, int C,
                  vtl_tensor *t) {
  vtl_npy in = {0};
  int rc = rc_input(c, name, &in);
  if (rc) return rc;
  if (in.dtype != VTL_NPY_F32 || in.ndim != 4 || in.shape[1] != C ||
      in.shape[0] < 1 || in.shape[2] < 1 || in.shape[3] < 1) {
    vtl_npy_free(&in);
    return rc_case_error(c, VTL_EINVAL, "%s must be float32 [N, %d, H, W]",
                         name, C);
  }
  int64_t s[4] = {in.shape[0], in.shape[1], in.shape[2], in.shape[3]};
  rc = vtl_tensor_alloc(cl, t, 4, s);
  if (!rc) rc = vtl_tensor_write(cl, t, in.data);
  vtl_npy_free(&in);
  if (rc) return rc_case_error(c, rc, "%s: %s", name, vtl_cl_errmsg(cl));
  return 0;
}

/* Reads t back and compares it with outputs.<name>. */
static int check(rc_case *c, vtl_cl *cl, const char *name,
                 const vtl_tensor *t) {
  float *host = malloc(vtl_tensor_numel(t) * sizeof *host);
  if (!host) return rc_case_error(c, VTL_ENOMEM, "out of memory");
  int rc = vtl_tensor_read(cl, t, host);
  if (rc) rc_case_error(c, rc, "read %s: %s", name, vtl_cl_errmsg(cl));
  else rc_check_f32(c, name, host, t->ndim, t->shape);
  free(host);
  return rc;
}

int run_vae_encode(rc_case *c) {
  vtl_cl *cl = NULL;
  vtl_vae *vae = NULL;
  int rc = rc_runtime(c, &cl);
  if (!rc) rc = case_vae(c, cl, &vae);
  if (rc) return rc;
  const vtl_vae_config *cfg = vtl_vae_config_of(vae);
  vtl_tensor img = {0}, mean = {0}, logvar = {0};
  rc = input4(c, cl, "image", cfg->in_channels, &img);
  if (rc) return rc;
  int h, w;
  vtl_vae_latent_size(vae, (int)img.shape[2], (int)img.shape[3], &h, &w);
  const int64_t s[4] = {img.shape[0], cfg->latent_channels, h, w};
  if (h < 1 || w < 1) {
    rc = rc_case_error(c, VTL_EINVAL, "image too small");
    goto done;
  }
  rc = vtl_tensor_alloc(cl, &mean, 4, s);
  if (!rc) rc = vtl_tensor_alloc(cl, &logvar, 4, s);
  if (!rc) rc = vtl_vae_encode(vae, &img, &mean, &logvar);
  if (rc) {
    rc_case_error(c, rc, "%s", vtl_cl_errmsg(cl));
    goto done;
  }
  rc = check(c, cl, "mean", &mean);
  if (!rc) rc = check(c, cl, "logvar", &logvar);
done:
  vtl_tensor_release(cl, &img);
  vtl_tensor_release(cl, &mean);
  vtl_tensor_release(cl, &logvar);
  return rc;
}

int run_vae_decode(rc_case *c) {
  vtl_cl *cl = NULL;
  vtl_vae *vae = NULL;
  int rc = rc_runtime(c, &cl);
  if (!rc) rc = case_vae(c, cl, &vae);
  if (rc) return rc;
  const vtl_vae_config *cfg = vtl_vae_config_of(vae);
  vtl_tensor lat = {0}, img = {0};
  rc = input4(c, cl, "latents", cfg->latent_channels, &lat);
  if (rc) return rc;
  int64_t f = (int64_t)1 << (cfg->num_blocks - 1);
  const int64_t s[4] = {lat.shape[0], cfg->out_channels, lat.shape[2] * f,
                        lat.shape[3] * f};
  rc = vtl_tensor_alloc(cl, &img, 4, s);
  if (!rc) rc = vtl_vae_decode(vae, &lat, &img);
  if (rc) rc_case_error(c, rc, "%s", vtl_cl_errmsg(cl));
  else rc = check(c, cl, "image", &img);
  vtl_tensor_release(cl, &lat);
  vtl_tensor_release(cl, &img);
  return rc;
}
