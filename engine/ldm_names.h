/* ldm_names.h — internal: every rename between diffusers weight names and
 * the keys of original (LDM / CompVis) single-file checkpoints, and of old
 * diffusers names. The tables and the rules live in ldm_names.c and
 * nowhere else (STYLE.md 13); model_files.c is the only caller.
 */
#ifndef VTL_LDM_NAMES_H
#define VTL_LDM_NAMES_H

#include <stddef.h>

#include "model_files.h"
#include "safetensors.h"

typedef enum {
  VTL__TEXT_HF,       /* <prefix>text_model.*: transformers' CLIPTextModel
                         (SD 1.x: cond_stage_model.transformer.) */
  VTL__TEXT_HF_BARE,  /* <prefix>embeddings.*, encoder.*, final_layer_norm.*:
                         the same without "text_model." (old transformers) */
  VTL__TEXT_OPENCLIP  /* cond_stage_model.model.*: OpenCLIP (SD 2.x), q/k/v
                         stacked in attn.in_proj_weight / in_proj_bias */
} vtl__text_layout;

/* Where one component lives in a single-file checkpoint. */
typedef struct {
  const char *prefix;        /* static string: key prefix, e.g.
                                "model.diffusion_model." (may be "") */
  vtl__text_layout text;     /* text encoder only */
} vtl__ldm_layout;

/* What one diffusers weight is in the checkpoint. */
typedef struct {
  char key[256];             /* the original key, prefix included */
  int want_ndim;             /* 0: the stored shape; 2: [a,b,1,1] (a 1x1
                                conv) reads as [a,b] (linear); 4: [a,b]
                                reads as [a,b,1,1] */
  int parts, part;           /* parts > 1: the weight is rows
                                [part*R/parts, (part+1)*R/parts) of the
                                stored tensor's dim 0 (OpenCLIP q/k/v) */
} vtl__ldm_ref;

/* Finds the layout of component c in f (probing a key every layout has).
 * Returns 0, or VTL_ENOENT with msg naming the keys looked for. */
int vtl__ldm_detect(const vtl_st_file *f, vtl_component c,
                    vtl__ldm_layout *out, char *msg, size_t msglen);

/* diffusers name -> original key, for component c whose architecture is
 * config (a vtl_unet_config, vtl_vae_config or vtl_clip_config). Returns 0,
 * VTL_ENOENT (the architecture has no such weight) or VTL_ETOOLONG. */
int vtl__ldm_rename(vtl_component c, const void *config,
                    const vtl__ldm_layout *l, const char *name,
                    vtl__ldm_ref *out);

/* 1 when key (a stored key under the component's prefix) holds nothing a
 * diffusers model has, so no model reads it: position_ids buffers,
 * OpenCLIP's text_projection / logit_scale and the layers past the config's
 * num_hidden_layers (SD 2.x configs use 23 of 24). */
int vtl__ldm_ignored(vtl_component c, const void *config,
                     const vtl__ldm_layout *l, const char *key);

/* 1 when f holds diffusers / transformers names (a component's weights
 * file, not a single-file checkpoint). */
int vtl__uses_diffusers_names(const vtl_st_file *f);

/* 1 when a stored key of a diffusers / transformers file is such a buffer. */
int vtl__diffusers_ignored(vtl_component c, const char *key);

/* The name older diffusers files use for name (the VAE attention's
 * query / key / value / proj_attn for to_q / to_k / to_v / to_out.0).
 * Returns 0 with out set, VTL_ENOENT when there is none, VTL_ETOOLONG. */
int vtl__diffusers_legacy_name(const char *name, char *out, size_t len);

#endif /* VTL_LDM_NAMES_H */
