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

static int load(vtl_cl *cl, vtl_model_files *files, void **obj, char *msg,
                size_t msglen) {
  vtl_vae *model = NULL;
  int rc = vtl_vae_load(cl, files, &model, msg, msglen);
  *obj = model;
  return rc;
}

static void unload(void *obj) { vtl_vae_free(obj); }

static rc_model_cache cache = {.load_files = load, .unload = unload};

static int case_vae(rc_case *c, vtl_cl *cl, vtl_vae **out) {
  void *obj = NULL;
  int rc = rc_model(c, cl, &cache, &obj);
  *out = obj;
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
  rc = rc_input_tensor4(c, cl, "image", cfg->in_channels, &img);
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
  rc = rc_check_tensor(c, cl, "mean", &mean);
  if (!rc) rc = rc_check_tensor(c, cl, "logvar", &logvar);
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
  rc = rc_input_tensor4(c, cl, "latents", cfg->latent_channels, &lat);
  if (rc) return rc;
  int64_t f = (int64_t)1 << (cfg->num_blocks - 1);
  const int64_t s[4] = {lat.shape[0], cfg->out_channels, lat.shape[2] * f,
                        lat.shape[3] * f};
  rc = vtl_tensor_alloc(cl, &img, 4, s);
  if (!rc) rc = vtl_vae_decode(vae, &lat, &img);
  if (rc) rc_case_error(c, rc, "%s", vtl_cl_errmsg(cl));
  else rc = rc_check_tensor(c, cl, "image", &img);
  vtl_tensor_release(cl, &lat);
  vtl_tensor_release(cl, &img);
  return rc;
}
