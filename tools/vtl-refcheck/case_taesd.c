/* case_taesd.c — kinds `taesd_encode` (inputs.image [N, 3, H, W] in [-1, 1]
 * -> outputs.latents [N, L, h, w]) and `taesd_decode` (inputs.latents ->
 * outputs.image) through an AutoencoderTiny (engine/taesd.h).
 *
 * model: {"format": "diffusers", "path", "variant"} (a folder holding the
 * AutoencoderTiny config.json). The last loaded model is kept for the next
 * case while (path, variant) stay the same; it is freed at exit, before the
 * shared runtime closes (rc_runtime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_files.h"
#include "refcheck.h"
#include "taesd.h"
#include "vtl_error.h"

static int load(vtl_cl *cl, vtl_model_files *files, void **obj, char *msg,
                size_t msglen) {
  vtl_taesd *model = NULL;
  int rc = vtl_taesd_load(cl, files, &model, msg, msglen);
  *obj = model;
  return rc;
}

static void unload(void *obj) { vtl_taesd_free(obj); }

static rc_model_cache cache = {.load_files = load, .unload = unload};

static int case_taesd(rc_case *c, vtl_cl *cl, vtl_taesd **out) {
  void *obj = NULL;
  int rc = rc_model(c, cl, &cache, &obj);
  *out = obj;
  return rc;
}

int run_taesd_encode(rc_case *c) {
  vtl_cl *cl = NULL;
  vtl_taesd *t = NULL;
  int rc = rc_runtime(c, &cl);
  if (!rc) rc = case_taesd(c, cl, &t);
  if (rc) return rc;
  const vtl_taesd_config *cfg = vtl_taesd_config_of(t);
  vtl_tensor img = {0}, lat = {0};
  rc = rc_input_tensor4(c, cl, "image", cfg->in_channels, &img);
  if (rc) return rc;
  int h, w;
  vtl_taesd_latent_size(t, (int)img.shape[2], (int)img.shape[3], &h, &w);
  const int64_t s[4] = {img.shape[0], cfg->latent_channels, h, w};
  rc = vtl_tensor_alloc(cl, &lat, 4, s);
  if (!rc) rc = vtl_taesd_encode(t, &img, &lat);
  if (rc) rc_case_error(c, rc, "%s", vtl_cl_errmsg(cl));
  else rc = rc_check_tensor(c, cl, "latents", &lat);
  vtl_tensor_release(cl, &img);
  vtl_tensor_release(cl, &lat);
  return rc;
}

int run_taesd_decode(rc_case *c) {
  vtl_cl *cl = NULL;
  vtl_taesd *t = NULL;
  int rc = rc_runtime(c, &cl);
  if (!rc) rc = case_taesd(c, cl, &t);
  if (rc) return rc;
  const vtl_taesd_config *cfg = vtl_taesd_config_of(t);
  vtl_tensor lat = {0}, img = {0};
  rc = rc_input_tensor4(c, cl, "latents", cfg->latent_channels, &lat);
  if (rc) return rc;
  int64_t f = (int64_t)1 << (cfg->num_decoder_levels - 1);
  const int64_t s[4] = {lat.shape[0], cfg->out_channels, lat.shape[2] * f,
                        lat.shape[3] * f};
  rc = vtl_tensor_alloc(cl, &img, 4, s);
  if (!rc) rc = vtl_taesd_decode(t, &lat, &img);
  if (rc) rc_case_error(c, rc, "%s", vtl_cl_errmsg(cl));
  else rc = rc_check_tensor(c, cl, "image", &img);
  vtl_tensor_release(cl, &lat);
  vtl_tensor_release(cl, &img);
  return rc;
}
