/* case_text_encoder.c — kind `text_encoder`: inputs.input_ids [B, T] int64
 * through the model's CLIP text encoder (engine/clip.h); compared outputs
 * last_hidden_state [B, T, E], penultimate_hidden_state_final_ln [B, T, E]
 * and pooled_output [B, E].
 *
 * model: {"format": "diffusers", "path", "variant"} or {"format":
 * "ldm_single_file", "path", "config_dir"}. The last loaded encoder is kept
 * for the next case while (format, path, variant, config_dir) stay the same
 * (the kit's cases share one model); another model replaces it. The cache
 * is freed at exit, before the shared runtime closes (rc_runtime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clip.h"
#include "model_files.h"
#include "refcheck.h"
#include "vtl_error.h"

static int load(vtl_cl *cl, vtl_model_files *files, void **obj, char *msg,
                size_t msglen) {
  vtl_clip *model = NULL;
  int rc = vtl_clip_load(cl, files, &model, msg, msglen);
  *obj = model;
  return rc;
}

static void unload(void *obj) { vtl_clip_free(obj); }

static rc_model_cache cache = {.load_files = load, .unload = unload};

static int case_clip(rc_case *c, vtl_cl *cl, vtl_clip **out) {
  void *obj = NULL;
  int rc = rc_model(c, cl, &cache, &obj);
  *out = obj;
  return rc;
}

int run_text_encoder(rc_case *c) {
  vtl_cl *cl = NULL;
  int rc = rc_runtime(c, &cl);
  if (rc) return rc;
  vtl_clip *clip = NULL;
  rc = case_clip(c, cl, &clip);
  if (rc) return rc;
  const vtl_clip_config *cfg = vtl_clip_config_of(clip);

  vtl_npy in = {0};
  rc = rc_input(c, "input_ids", &in);
  if (rc) return rc;
  if (in.dtype != VTL_NPY_I64 || in.ndim != 2 || in.shape[0] < 1 ||
      in.shape[1] < 1 || in.shape[1] > cfg->max_position_embeddings) {
    vtl_npy_free(&in);
    return rc_case_error(c, VTL_EINVAL,
                         "input_ids must be int64 [B, T<=%d]",
                         cfg->max_position_embeddings);
  }
  int B = (int)in.shape[0], T = (int)in.shape[1];
  int64_t E = cfg->hidden_size;
  int32_t *ids = malloc(in.count * sizeof *ids);
  float *host = malloc((size_t)B * T * E * sizeof *host);
  if (!ids || !host) {
    free(ids);
    free(host);
    vtl_npy_free(&in);
    return rc_case_error(c, VTL_ENOMEM, "out of memory");
  }
  const int64_t *src = in.data;
  for (size_t i = 0; i < in.count; i++)
    ids[i] = src[i] < INT32_MIN || src[i] > INT32_MAX ? -1 : (int32_t)src[i];
  vtl_npy_free(&in);

  const int64_t seq[3] = {B, T, E}, pooled[2] = {B, E};
  vtl_tensor last = {0}, pen = {0}, pool = {0};
  rc = vtl_tensor_alloc(cl, &last, 3, seq);
  if (!rc) rc = vtl_tensor_alloc(cl, &pen, 3, seq);
  if (!rc) rc = vtl_tensor_alloc(cl, &pool, 2, pooled);
  if (!rc) rc = vtl_clip_encode(clip, ids, B, T, &last, &pen, &pool);
  if (rc) {
    rc_case_error(c, rc, "%s", vtl_cl_errmsg(cl));
    goto done;
  }
  static const struct {
    const char *name;
    int which; /* 0 last, 1 penultimate, 2 pooled */
  } outs[] = {{"last_hidden_state", 0},
              {"penultimate_hidden_state_final_ln", 1},
              {"pooled_output", 2}};
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
    const vtl_tensor *t = outs[i].which == 0   ? &last
                          : outs[i].which == 1 ? &pen
                                               : &pool;
    rc = vtl_tensor_read(cl, t, host);
    if (rc) {
      rc_case_error(c, rc, "read %s: %s", outs[i].name, vtl_cl_errmsg(cl));
      goto done;
    }
    rc_check_f32(c, outs[i].name, host, t->ndim, t->shape);
  }
done:
  vtl_tensor_release(cl, &last);
  vtl_tensor_release(cl, &pen);
  vtl_tensor_release(cl, &pool);
  free(ids);
  free(host);
  return rc;
}
