/* model_files.h — opening a Stable Diffusion model from disk: its configs
 * parsed into structs, its weights read by diffusers name.
 *
 * Two layouts are opened (the reference kit's README, "Layout" / "Models"):
 *
 *   diffusers folder                        single-file original (LDM)
 *   model_index.json                        model.safetensors   + config dir
 *   unet/config.json                        model.diffusion_model.*  (UNet)
 *       diffusion_pytorch_model[.V].safetensors  first_stage_model.* (VAE)
 *   vae/config.json  + weights              cond_stage_model.transformer.*
 *   text_encoder/config.json                  (CLIP; or cond_stage_model.
 *       model[.V].safetensors                  model.* OpenCLIP, SD 2.x)
 *   tokenizer/vocab.json merges.txt ...     the config dir is a diffusers
 *   scheduler/scheduler_config.json         folder (weights not needed) that
 *                                           describes the architecture
 *
 * A folder holding only a config.json (e.g. a TAESD AutoencoderTiny, or a
 * lone unet/) opens as that one component. Sharded weights
 * (<weights>.safetensors.index[.V].json) are followed; .bin pickles are
 * refused. A variant V ("fp16", "bf16") selects <weights>.V.safetensors in
 * every component that has one; components without it load their plain
 * weights (as diffusers' pipelines do), and a variant no component has is
 * an error. vtl_weights_label() says which file a component reads.
 *
 * Weights are always asked for by their diffusers name (the checkpoint key
 * of the diffusers / transformers module, STYLE.md 13): model code is
 * written once, against diffusers' names. For a single-file checkpoint each
 * name goes through the rename table of ldm_names.c, computed from the
 * architecture config (block counts, layers per block, which blocks have
 * attention), and shapes are reported as diffusers has them (the VAE's
 * mid-block q/k/v/proj_out 1x1 convs [C,C,1,1] read as linear [C,C]).
 *
 *   vtl_model_files *m;  char msg[512];
 *   vtl_model_open_opts o = {.variant = "fp16"};
 *   if (vtl_model_files_open(&m, "models/tiny-sd", &o, msg, sizeof msg))
 *     die(msg);
 *   const vtl_unet_config *uc = vtl_model_files_unet_config(m);
 *   vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_UNET);
 *   rc = vtl_weights_get_shaped(w, "conv_in.weight", 4,
 *          VTL_DIMS(uc->block_out_channels[0], uc->in_channels, 3, 3),
 *          dst, msg, sizeof msg);
 *   ... every weight ...
 *   rc = vtl_weights_check_unused(w, msg, sizeof msg); // all were read?
 *   vtl_model_files_close(m);
 *
 * Unknown architectures are refused at open with a message that says why
 * (a UNet class other than UNet2DConditionModel, class or addition
 * embeddings, a cross_attention_dim list, SDXL's second text encoder ...):
 * each *_config_from_json lists what it accepts.
 *
 * Thread safety: open and close are single-threaded; the configs are
 * read-only afterwards. vtl_weights_get* record which tensors were read
 * (for vtl_weights_check_unused), so loading runs on one thread.
 */
#ifndef VTL_MODEL_FILES_H
#define VTL_MODEL_FILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "act.h"
#include "safetensors.h"
#include "scheduler.h" /* vtl_prediction */

#define VTL_MAX_LEVELS 8 /* down/up blocks of a UNet or VAE, TAESD stages */

/* A shape literal for vtl_weights_get_shaped. */
#define VTL_DIMS(...) ((const int64_t[]){__VA_ARGS__})


/* ---- configs ------------------------------------------------------------- */

/* UNet2DConditionModel (diffusers unet/config.json). Per-block lists are
 * indexed by DOWN block i = 0 .. num_blocks-1 (as the config writes them);
 * up block i uses entry num_blocks-1-i (diffusers reverses them), the mid
 * block the last entry. The helpers below do the indexing. */
typedef struct {
  int in_channels;           /* latent channels in (4) */
  int out_channels;          /* latent channels out (4) */
  int sample_size;           /* latent side trained at (64 for SD 1.5); 0: null */
  int num_blocks;            /* N = len(block_out_channels) = down = up blocks */
  int block_out_channels[VTL_MAX_LEVELS]; /* channels of down block i */
  int layers_per_block[VTL_MAX_LEVELS];   /* resnets of down block i (int or
                                             list in the config) */
  bool down_attn[VTL_MAX_LEVELS]; /* down block i is CrossAttnDownBlock2D
                                     (else DownBlock2D) */
  bool up_attn[VTL_MAX_LEVELS];   /* up block i is CrossAttnUpBlock2D (else
                                     UpBlock2D); up block 0 is the deepest */
  int num_heads[VTL_MAX_LEVELS];  /* heads of down block i: the config's
                                     attention_head_dim (a head COUNT in SD
                                     configs); head size = channels / heads */
  int transformer_layers[VTL_MAX_LEVELS]; /* BasicTransformerBlocks per
                                             attention of down block i */
  int cross_attention_dim;   /* width of encoder_hidden_states (text hidden) */
  bool use_linear_projection;/* proj_in/proj_out are Linear [C,C] (else 1x1
                                Conv2d [C,C,1,1]) */
  bool upcast_attention;     /* no effect in float32 */
  bool only_cross_attention; /* always false (true is refused) */
  int norm_num_groups;       /* GroupNorm groups everywhere */
  float norm_eps;            /* GroupNorm eps of resnets and conv_norm_out */
  bool flip_sin_to_cos;      /* time_proj: cos first */
  float freq_shift;          /* time_proj downscale_freq_shift */
  vtl_act act_fn;            /* resnets, time embedding, conv_out (silu) */
  int time_embed_dim;        /* time_embedding_dim or 4 * block_out_channels[0] */
  int time_cond_proj_dim;    /* LCM-distilled UNets: guidance embedding
                                width (time_embedding.cond_proj); 0: none */
  bool time_scale_shift;     /* resnet_time_scale_shift "scale_shift": the
                                time embedding gives each resnet a scale and
                                a shift of its normalised features
                                (time_emb_proj [2 Co, Tt]) instead of a bias
                                added before the norm */
  int class_proj_dim;        /* class_embed_type "projection": width P of
                                the class labels [B, P]
                                (projection_class_embeddings_input_dim);
                                0: no class embedding */
  int conv_in_kernel;        /* odd; padding (k-1)/2 */
  int conv_out_kernel;       /* odd; padding (k-1)/2 */
  int downsample_padding;    /* padding of the stride-2 downsampler conv (1) */
  float mid_block_scale_factor; /* output scale of the mid block resnets (1) */
  vtl_prediction prediction_type; /* scheduler config's prediction_type;
                                     epsilon when the model has none */
} vtl_unet_config;

static inline int vtl_unet_up_layers(const vtl_unet_config *c, int i) {
  return c->layers_per_block[c->num_blocks - 1 - i] + 1;
}
static inline int vtl_unet_up_channels(const vtl_unet_config *c, int i) {
  return c->block_out_channels[c->num_blocks - 1 - i];
}
static inline int vtl_unet_up_heads(const vtl_unet_config *c, int i) {
  return c->num_heads[c->num_blocks - 1 - i];
}
static inline int vtl_unet_up_transformer_layers(const vtl_unet_config *c,
                                                 int i) {
  return c->transformer_layers[c->num_blocks - 1 - i];
}
static inline int vtl_unet_mid_heads(const vtl_unet_config *c) {
  return c->num_heads[c->num_blocks - 1];
}
static inline int vtl_unet_mid_transformer_layers(const vtl_unet_config *c) {
  return c->transformer_layers[c->num_blocks - 1];
}

/* AutoencoderKL (vae/config.json). Encoder down block i has
 * layers_per_block resnets, decoder up block i layers_per_block + 1; up
 * block 0 is the deepest (block_out_channels reversed). */
typedef struct {
  int in_channels;           /* image channels (3) */
  int out_channels;          /* image channels (3) */
  int latent_channels;       /* 4 */
  int num_blocks;            /* N = len(block_out_channels) */
  int block_out_channels[VTL_MAX_LEVELS];
  int layers_per_block;
  int norm_num_groups;
  float norm_eps;            /* 1e-6: fixed in diffusers, not in the config */
  vtl_act act_fn;            /* silu */
  int sample_size;           /* image side trained at; 0: null */
  float scaling_factor;      /* latents = mean * scaling_factor */
  bool force_upcast;         /* informational (we compute in float32) */
  bool mid_block_attention;  /* mid_block_add_attention (true) */
} vtl_vae_config;

/* CLIPTextModel (text_encoder/config.json, transformers). */
typedef struct {
  int vocab_size;
  int hidden_size;           /* H */
  int intermediate_size;     /* MLP width */
  int num_hidden_layers;
  int num_attention_heads;   /* head size = H / heads */
  int max_position_embeddings; /* 77 */
  vtl_act hidden_act;        /* QUICK_GELU (SD 1.x) or GELU (SD 2.x) */
  float layer_norm_eps;
  int bos_token_id, eos_token_id, pad_token_id;
  int projection_dim;        /* only CLIPTextModelWithProjection uses it */
  bool with_projection;      /* architectures: CLIPTextModelWithProjection */
} vtl_clip_config;

/* AutoencoderTiny (TAESD). Encoder stage i: a conv (stride 2 but for stage
 * 0, which maps in_channels) then num_encoder_blocks[i] blocks, then a conv
 * to latent_channels; decoder mirrors it with upsampling. */
typedef struct {
  int in_channels, out_channels, latent_channels;
  int num_encoder_levels;
  int encoder_block_out_channels[VTL_MAX_LEVELS];
  int num_encoder_blocks[VTL_MAX_LEVELS];
  int num_decoder_levels;
  int decoder_block_out_channels[VTL_MAX_LEVELS];
  int num_decoder_blocks[VTL_MAX_LEVELS];
  int upsampling_scaling_factor; /* 2 */
  vtl_act act_fn;            /* relu */
  float latent_magnitude;    /* 3: decoder starts with tanh(x/m)*m */
  float latent_shift;        /* 0.5 */
  float scaling_factor;      /* 1.0 */
  bool force_upcast;
} vtl_taesd_config;

/* Each parses a config object (config.json as diffusers / transformers
 * write it; `where` names it in messages). Returns 0, or VTL_EUNSUPPORTED
 * (a class, key or value the engine does not implement: the message says
 * which and why), VTL_ETYPE (a key of the wrong JSON type), VTL_EINVAL
 * (inconsistent: list lengths, channels not divisible by groups or heads).
 * UNet and VAE configs refuse keys they do not know (except "_..." ones);
 * the CLIP config ignores them (transformers writes many generic keys).
 * prediction_type is not in the UNet config: it is set to epsilon here and
 * by vtl_model_files_open from the scheduler config. */
int vtl_unet_config_from_json(json_t *j, const char *where,
                              vtl_unet_config *out, char *msg, size_t msglen);
int vtl_vae_config_from_json(json_t *j, const char *where,
                             vtl_vae_config *out, char *msg, size_t msglen);
int vtl_clip_config_from_json(json_t *j, const char *where,
                              vtl_clip_config *out, char *msg, size_t msglen);
int vtl_taesd_config_from_json(json_t *j, const char *where,
                               vtl_taesd_config *out, char *msg,
                               size_t msglen);
/* "epsilon" | "v_prediction" | "sample" -> *out; VTL_EUNSUPPORTED else. */
int vtl_prediction_from_name(const char *s, vtl_prediction *out);

/* ---- weights sources ----------------------------------------------------- */

typedef enum {
  VTL_COMP_UNET,
  VTL_COMP_VAE,          /* AutoencoderKL or AutoencoderTiny */
  VTL_COMP_TEXT_ENCODER,
  VTL_COMP__NWEIGHTS     /* components with weights */
} vtl_component;

/* One component's tensors, by diffusers name. Owned by its
 * vtl_model_files; valid until it is closed. */
typedef struct vtl_weights vtl_weights;

typedef struct {
  int ndim;                       /* as diffusers has it */
  int64_t shape[VTL_ST_MAX_DIMS]; /* outermost first */
  size_t numel;
  vtl_st_dtype dtype;             /* as stored (F32, F16, BF16 are read) */
  const char *file;               /* path of the file that holds it */
  const char *key;                /* its key there (LDM: the original name) */
} vtl_weight_info;

/* Shape and source of a weight. VTL_ENOENT (no such weight: the message
 * names the file, and for LDM sources the original key tried). */
int vtl_weights_info(vtl_weights *w, const char *name, vtl_weight_info *out,
                     char *msg, size_t msglen);
/* 1 when the weight exists, 0 when not (e.g. optional conv_shortcut). */
int vtl_weights_has(vtl_weights *w, const char *name);
/* Reads the weight as float32 into dst[count]; count must be its element
 * count (VTL_ERANGE otherwise). VTL_ENOENT, VTL_EUNSUPPORTED (a dtype not
 * read). Marks it used. */
int vtl_weights_get(vtl_weights *w, const char *name, float *dst,
                    size_t count, char *msg, size_t msglen);
/* The same, checking that its shape is shape[ndim] (what the config
 * implies): VTL_ERANGE with both shapes in the message otherwise. */
int vtl_weights_get_shaped(vtl_weights *w, const char *name, int ndim,
                           const int64_t *shape, float *dst, char *msg,
                           size_t msglen);
/* After loading: 0 when every stored tensor of the component was read
 * (known leftovers such as position_ids excepted), else VTL_EUNSUPPORTED
 * naming how many and the first: the checkpoint holds weights this
 * architecture does not use, so the config does not describe it. */
int vtl_weights_check_unused(const vtl_weights *w, char *msg, size_t msglen);
/* Gives the resident pages of the component's files back (vtl_st_drop_pages)
 * once its weights are uploaded; reading again still works (the pages
 * fault back in). Lowers the loaders' peak RSS. */
void vtl_weights_drop_pages(vtl_weights *w);
/* Stored tensors of the component, and the key of the i-th (diffusers
 * sources: the diffusers names; LDM sources: the original keys). */
size_t vtl_weights_count(const vtl_weights *w);
const char *vtl_weights_key(const vtl_weights *w, size_t i);
/* "…/unet/diffusion_pytorch_model.fp16.safetensors", or for a single file
 * "…/model.safetensors [unet: model.diffusion_model.*]". */
const char *vtl_weights_label(const vtl_weights *w);
/* 1 for a single-file (renamed) source. */
int vtl_weights_is_ldm(const vtl_weights *w);

/* ---- a model ------------------------------------------------------------- */

typedef struct vtl_model_files vtl_model_files;

typedef struct {
  const char *variant;    /* NULL, or "fp16", "bf16", ...: weights file
                             <weights>.<variant>.safetensors */
  const char *config_dir; /* single-file checkpoints: the diffusers folder
                             whose configs describe the architecture;
                             required for them, ignored for folders */
} vtl_model_open_opts;

/* Opens path: a diffusers pipeline folder (model_index.json), a component
 * folder (config.json), or a .safetensors single-file checkpoint (with
 * opts->config_dir). Parses every present component's config and opens
 * (maps, validates) its weights. opts may be NULL. Returns 0 with *out, or
 * VTL_ENOENT (missing file or component), VTL_EUNSUPPORTED (architecture
 * or file type not supported), VTL_EPARSE / VTL_ETYPE / VTL_EINVAL (damaged
 * file or config), VTL_EIO, VTL_ENOMEM; msg says which file and why. */
int vtl_model_files_open(vtl_model_files **out, const char *path,
                         const vtl_model_open_opts *opts, char *msg,
                         size_t msglen);
void vtl_model_files_close(vtl_model_files *m); /* NULL is a no-op */

/* NULL when the model has no such component. */
vtl_weights *vtl_model_files_weights(vtl_model_files *m, vtl_component c);
const vtl_unet_config *vtl_model_files_unet_config(const vtl_model_files *m);
/* Exactly one of these two is non-NULL when the model has a VAE. */
const vtl_vae_config *vtl_model_files_vae_config(const vtl_model_files *m);
const vtl_taesd_config *vtl_model_files_taesd_config(const vtl_model_files *m);
const vtl_clip_config *vtl_model_files_clip_config(const vtl_model_files *m);
/* true for a pixel-space pipeline: model_index.json lists no vae (absent
 * or [null, null]) and there is no vae/ folder; its UNet then denoises
 * 3-channel images directly (out_channels 3, in_channels 3 plus the coord
 * channels below, checked at open). */
bool vtl_model_files_is_pixel_space(const vtl_model_files *m);
/* A pixel-space model's model_index.json "coord_channels": 0 (absent), or 2:
 * the pipeline appends two channels to the UNet's input, x and y of each
 * pixel's centre mapped to [-1, 1] ((j + 0.5) / W * 2 - 1, then the same for
 * rows), so the UNet takes 3 + 2 channels (checked at open). The project's
 * own default model uses them (tools/train-tiny). */
int vtl_model_files_coord_channels(const vtl_model_files *m);
/* The tokenizer folder (for vtl_tokenizer_load), or NULL. */
const char *vtl_model_files_tokenizer_dir(const vtl_model_files *m);
/* scheduler/scheduler_config.json as loaded (borrowed), or NULL. Its
 * "_class_name" may be a class we do not run (PNDMScheduler): callers take
 * the training schedule from it and pick their own sampler. */
json_t *vtl_model_files_scheduler_json(const vtl_model_files *m);

#endif /* VTL_MODEL_FILES_H */
