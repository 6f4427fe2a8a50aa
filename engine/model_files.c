/* model_files.c — configs into structs, weight files into sources.
 *
 * Object layout (one vtl_model_files per opened model; all owned by it):
 *
 *   vtl_model_files
 *     files[]      stfile: a mapped vtl_st_file + used[count] flags. A
 *                  diffusers component has its own file (or its shards);
 *                  the three components of a single-file checkpoint share
 *                  one.
 *     w[3]         vtl_weights of the UNet, VAE, text encoder: pointers to
 *                  their files (borrowed), the shard index, and for LDM
 *                  sources the layout + config the renames need.
 *     configs      vtl_unet_config, vtl_vae_config | vtl_taesd_config,
 *                  vtl_clip_config; scheduler JSON; tokenizer folder.
 *
 * Looking a weight up (resolve):
 *
 *   diffusers   name --(shard index)--> file --(vtl_st_find)--> tensor
 *               (VAE: the legacy attention name when the new one is absent)
 *   LDM         name --(vtl__ldm_rename, config)--> key + reshape / slice
 *               --(vtl_st_find)--> tensor
 *
 * Config readers: each key the class takes is read with a type check and
 * the value checked against what the engine implements; the refusals say
 * why. The keys lists are diffusers v0.27.2's __init__ signatures.
 */
#include "model_files.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ldm_names.h"
#include "pyjson.h"
#include "strmap.h"
#include "vtl_error.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
  vtl_st_file *st; /* owned */
  uint8_t *used;   /* [vtl_st_count(st)] malloc'd: 1 once read */
} stfile;

struct vtl_weights {
  vtl_component comp;
  bool present;
  bool ldm;               /* single-file source: names are renamed */
  stfile **files;         /* [nfiles] malloc'd array of borrowed pointers */
  int nfiles;             /* 1, or the shards */
  vtl_strmap *shards;     /* sharded: name -> index in files; owned; or NULL */
  vtl__ldm_layout layout; /* LDM */
  const void *config;     /* LDM: the model's config struct of comp */
  char *label;            /* malloc'd */
};

struct vtl_model_files {
  char *path;                       /* malloc'd, as given */
  stfile **files;                   /* [nfiles] malloc'd, each owned */
  int nfiles;
  vtl_weights w[VTL_COMP__NWEIGHTS];
  bool has_unet, has_vae, vae_tiny, has_clip;
  bool pixel;                       /* pixel-space pipeline: no vae */
  int coord_channels;               /* pixel space: 0, or 2 (x, y) */
  vtl_unet_config unet;
  vtl_vae_config vae;
  vtl_taesd_config taesd;
  vtl_clip_config clip;
  char *tokenizer_dir;              /* malloc'd or NULL */
  json_t *scheduler;                /* owned reference or NULL */
  const char *variant;              /* borrowed from opts during open only */
  bool variant_used;                /* some component had the variant file */
};

/* ---- messages and small helpers ------------------------------------------ */

static int fail(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t msglen, int code, const char *fmt, ...) {
  if (msg && msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return code;
}

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s/%s", a, b);
  return s;
}

static int is_file(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int file_in(const char *dir, const char *name) {
  char *p = join(dir, name);
  int r = p && is_file(p);
  free(p);
  return r;
}

static const char *shape_str(const int64_t *shape, int ndim, char *buf,
                             size_t len) {
  size_t k = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < ndim && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? ", " : "",
                          (long long)shape[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
  return buf;
}

/* ---- config readers ------------------------------------------------------ */

typedef struct {
  json_t *j;         /* the config object (borrowed) */
  const char *where; /* its name in messages */
  char *msg;
  size_t msglen;
} cfg;

static int cfail(cfg *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cfail(cfg *c, int code, const char *fmt, ...) {
  if (c->msg && c->msglen) {
    int k = snprintf(c->msg, c->msglen, "%s: ", c->where);
    if (k >= 0 && (size_t)k < c->msglen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(c->msg + k, c->msglen - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return code;
}

/* A JSON value in compact text for messages (truncated). */
static const char *brief(json_t *v, char *buf, size_t len) {
  char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  snprintf(buf, len, "%s", s ? s : "(missing)");
  if (s && strlen(s) >= len && len > 4) memcpy(buf + len - 4, "...", 4);
  free(s);
  return buf;
}

static int is_null(json_t *v) { return !v || json_is_null(v); }

/* An int; missing or null gives def when null_ok (else missing gives def
 * and null is refused). */
static int get_int(cfg *c, const char *key, int def, int min, int *out,
                   bool null_ok) {
  json_t *v = json_object_get(c->j, key);
  if (!v || (null_ok && json_is_null(v))) {
    *out = def;
    return 0;
  }
  if (!json_is_integer(v))
    return cfail(c, VTL_ETYPE, "'%s' must be an integer", key);
  json_int_t x = json_integer_value(v);
  if (x < min || x > 1 << 24)
    return cfail(c, VTL_EINVAL, "'%s' is %lld, must be in [%d, %d]", key,
                 (long long)x, min, 1 << 24);
  *out = (int)x;
  return 0;
}

static int get_num(cfg *c, const char *key, double def, double *out) {
  json_t *v = json_object_get(c->j, key);
  if (!v) {
    *out = def;
    return 0;
  }
  if (!json_is_number(v))
    return cfail(c, VTL_ETYPE, "'%s' must be a number", key);
  *out = json_number_value(v);
  return 0;
}

static int get_bool(cfg *c, const char *key, bool def, bool *out) {
  json_t *v = json_object_get(c->j, key);
  if (!v) {
    *out = def;
    return 0;
  }
  if (!json_is_boolean(v))
    return cfail(c, VTL_ETYPE, "'%s' must be true or false", key);
  *out = json_is_true(v);
  return 0;
}

static int get_str(cfg *c, const char *key, const char *def,
                   const char **out) {
  json_t *v = json_object_get(c->j, key);
  if (!v) {
    *out = def;
    return 0;
  }
  if (!json_is_string(v))
    return cfail(c, VTL_ETYPE, "'%s' must be a string", key);
  *out = json_string_value(v);
  return 0;
}

/* The key must be absent or null: the engine has nothing it could drive. */
static int need_null(cfg *c, const char *key, const char *why) {
  json_t *v = json_object_get(c->j, key);
  char b[96];
  if (!is_null(v))
    return cfail(c, VTL_EUNSUPPORTED, "'%s' is %s: %s", key,
                 brief(v, b, sizeof b), why);
  return 0;
}

static int need_false(cfg *c, const char *key, const char *why) {
  json_t *v = json_object_get(c->j, key);
  char b[96];
  if (v && !json_is_false(v))
    return cfail(c, VTL_EUNSUPPORTED, "'%s' is %s: %s", key,
                 brief(v, b, sizeof b), why);
  return 0;
}

static int need_str(cfg *c, const char *key, const char *want,
                    const char *why) {
  json_t *v = json_object_get(c->j, key);
  char b[96];
  if (v && !(json_is_string(v) && strcmp(json_string_value(v), want) == 0))
    return cfail(c, VTL_EUNSUPPORTED, "'%s' is %s, only \"%s\" is supported: "
                 "%s", key, brief(v, b, sizeof b), want, why);
  return 0;
}

static int need_num(cfg *c, const char *key, double want, const char *why) {
  json_t *v = json_object_get(c->j, key);
  char b[96];
  if (v && !(json_is_number(v) && json_number_value(v) == want))
    return cfail(c, VTL_EUNSUPPORTED, "'%s' is %s, only %g is supported: %s",
                 key, brief(v, b, sizeof b), want, why);
  return 0;
}

/* An int for every one of n blocks, or a list of n ints (each >= min). */
static int get_int_list(cfg *c, const char *key, int n, int def, int min,
                        int *out) {
  json_t *v = json_object_get(c->j, key);
  if (!v) {
    for (int i = 0; i < n; i++) out[i] = def;
    return 0;
  }
  if (json_is_integer(v)) {
    int x;
    int rc = get_int(c, key, def, min, &x, false);
    for (int i = 0; i < n; i++) out[i] = x;
    return rc;
  }
  if (!json_is_array(v))
    return cfail(c, VTL_ETYPE, "'%s' must be an integer or a list", key);
  if ((int)json_array_size(v) != n)
    return cfail(c, VTL_EINVAL, "'%s' has %zu entries, one per block (%d) "
                 "needed", key, json_array_size(v), n);
  for (int i = 0; i < n; i++) {
    json_t *e = json_array_get(v, (size_t)i);
    if (json_is_array(e))
      return cfail(c, VTL_EUNSUPPORTED, "'%s'[%d] is a list: per-layer "
                   "values (asymmetric UNets) are not supported", key, i);
    if (!json_is_integer(e) || json_integer_value(e) < min ||
        json_integer_value(e) > 1 << 24)
      return cfail(c, VTL_EINVAL, "'%s'[%d] must be an integer >= %d", key, i,
                   min);
    out[i] = (int)json_integer_value(e);
  }
  return 0;
}

/* A list of 1..VTL_MAX_LEVELS ints >= min; *n gets the length. */
static int get_levels(cfg *c, const char *key, const int *def, int ndef,
                      int min, int *out, int *n) {
  json_t *v = json_object_get(c->j, key);
  if (!v) {
    for (int i = 0; i < ndef; i++) out[i] = def[i];
    *n = ndef;
    return 0;
  }
  if (!json_is_array(v))
    return cfail(c, VTL_ETYPE, "'%s' must be a list of integers", key);
  size_t len = json_array_size(v);
  if (len < 1 || len > VTL_MAX_LEVELS)
    return cfail(c, VTL_EUNSUPPORTED, "'%s' has %zu entries; 1 to %d are "
                 "supported", key, len, VTL_MAX_LEVELS);
  for (size_t i = 0; i < len; i++) {
    json_t *e = json_array_get(v, i);
    if (!json_is_integer(e) || json_integer_value(e) < min ||
        json_integer_value(e) > 1 << 24)
      return cfail(c, VTL_EINVAL, "'%s'[%zu] must be an integer >= %d", key,
                   i, min);
    out[i] = (int)json_integer_value(e);
  }
  *n = (int)len;
  return 0;
}

/* A list of strings, each one of allowed[] (index into kind[]); the
 * others are refused with why. */
static int get_types(cfg *c, const char *key, const char *const *allowed,
                     int nallowed, int *kind, int *n, const char *why) {
  json_t *v = json_object_get(c->j, key);
  if (!v) { /* the class default: *n blocks of allowed[0] */
    for (int i = 0; i < *n; i++) kind[i] = 0;
    return 0;
  }
  if (!json_is_array(v))
    return cfail(c, VTL_ETYPE, "'%s' must be a list of strings", key);
  size_t len = json_array_size(v);
  if (len < 1 || len > VTL_MAX_LEVELS)
    return cfail(c, VTL_EUNSUPPORTED, "'%s' has %zu entries; 1 to %d are "
                 "supported", key, len, VTL_MAX_LEVELS);
  for (size_t i = 0; i < len; i++) {
    json_t *e = json_array_get(v, i);
    if (!json_is_string(e))
      return cfail(c, VTL_ETYPE, "'%s'[%zu] must be a string", key, i);
    int k = -1;
    for (int a = 0; a < nallowed; a++)
      if (strcmp(json_string_value(e), allowed[a]) == 0) k = a;
    if (k < 0)
      return cfail(c, VTL_EUNSUPPORTED, "'%s'[%zu] is \"%.60s\": %s", key, i,
                   json_string_value(e), why);
    kind[i] = k;
  }
  *n = (int)len;
  return 0;
}

static int get_act(cfg *c, const char *key, const char *def, bool clip,
                   vtl_act *out) {
  const char *s = def;
  int rc = get_str(c, key, def, &s);
  if (rc) return rc;
  if (strcmp(s, "silu") == 0 || strcmp(s, "swish") == 0) *out = VTL_ACT_SILU;
  else if (strcmp(s, "gelu") == 0) *out = VTL_ACT_GELU;
  else if (strcmp(s, "quick_gelu") == 0 && clip) *out = VTL_ACT_QUICK_GELU;
  else if (strcmp(s, "relu") == 0 && !clip) *out = VTL_ACT_RELU;
  else
    return cfail(c, VTL_EUNSUPPORTED, "'%s' is \"%.40s\": the engine has %s",
                 key, s, clip ? "quick_gelu and gelu" : "silu, gelu and relu");
  return 0;
}

/* Every key must be known (or start with '_'). */
static int only_known(cfg *c, const char *const *known, size_t n,
                      const char *cls) {
  const char *k;
  json_t *v;
  json_object_foreach(c->j, k, v) {
    if (k[0] == '_') continue;
    size_t i = 0;
    while (i < n && strcmp(known[i], k) != 0) i++;
    if (i == n) {
      char b[96];
      return cfail(c, VTL_EUNSUPPORTED, "unknown key '%s' (%s) for %s: the "
                   "engine does not know what it changes", k,
                   brief(v, b, sizeof b), cls);
    }
  }
  return 0;
}

static int need_class(cfg *c, const char *want) {
  json_t *v = json_object_get(c->j, "_class_name");
  char b[96];
  if (v && !(json_is_string(v) && strcmp(json_string_value(v), want) == 0))
    return cfail(c, VTL_EUNSUPPORTED, "class %s is not supported here: "
                 "expected %s", brief(v, b, sizeof b), want);
  return 0;
}

#define TRY(x)                                                               \
  do {                                                                       \
    int rc_ = (x);                                                           \
    if (rc_) return rc_;                                                     \
  } while (0)

/* GroupNorm(groups, channels) exists only when groups divides channels. */
static int groups_divide(cfg *c, int groups, int ch, const char *what) {
  if (ch % groups != 0)
    return cfail(c, VTL_EINVAL, "norm_num_groups %d does not divide the %d "
                 "channels of %s", groups, ch, what);
  return 0;
}

int vtl_prediction_from_name(const char *s, vtl_prediction *out) {
  if (strcmp(s, "epsilon") == 0) *out = VTL_PRED_EPSILON;
  else if (strcmp(s, "v_prediction") == 0) *out = VTL_PRED_V;
  else if (strcmp(s, "sample") == 0) *out = VTL_PRED_SAMPLE;
  else return VTL_EUNSUPPORTED;
  return 0;
}

/* class_embed_type: null, or "projection" (a TimestepEmbedding of
 * projection_class_embeddings_input_dim-wide class labels added to the time
 * embedding); the other types are refused. */
static int get_class_embed(cfg *c, vtl_unet_config *o) {
  json_t *v = json_object_get(c->j, "class_embed_type");
  if (is_null(v))
    return need_null(c, "projection_class_embeddings_input_dim",
                     "it is only read with class_embed_type \"projection\"");
  if (!(json_is_string(v) && strcmp(json_string_value(v), "projection") == 0))
    return need_null(c, "class_embed_type", "class-conditioned UNets (class "
                     "embeddings) are only supported as \"projection\"");
  if (is_null(json_object_get(c->j, "projection_class_embeddings_input_dim")))
    return cfail(c, VTL_EINVAL, "class_embed_type \"projection\" needs "
                 "'projection_class_embeddings_input_dim'");
  return get_int(c, "projection_class_embeddings_input_dim", 0, 1,
                 &o->class_proj_dim, false);
}

/* resnet_time_scale_shift: "default" (absent) or "scale_shift"; diffusers'
 * "ada_group" and "spatial" belong to other models and are refused. */
static int get_time_scale_shift(cfg *c, vtl_unet_config *o) {
  json_t *v = json_object_get(c->j, "resnet_time_scale_shift");
  if (is_null(v)) return 0;
  const char *s = json_is_string(v) ? json_string_value(v) : "";
  o->time_scale_shift = strcmp(s, "scale_shift") == 0;
  if (o->time_scale_shift || strcmp(s, "default") == 0) return 0;
  return cfail(c, VTL_EUNSUPPORTED, "resnet_time_scale_shift must be \"default\" or "
               "\"scale_shift\"");
}

static const char *const unet_keys[] = {
  "sample_size", "in_channels", "out_channels", "center_input_sample",
  "flip_sin_to_cos", "freq_shift", "down_block_types", "mid_block_type",
  "up_block_types", "only_cross_attention", "block_out_channels",
  "layers_per_block", "downsample_padding", "mid_block_scale_factor",
  "dropout", "act_fn", "norm_num_groups", "norm_eps", "cross_attention_dim",
  "transformer_layers_per_block", "reverse_transformer_layers_per_block",
  "encoder_hid_dim", "encoder_hid_dim_type", "attention_head_dim",
  "num_attention_heads", "dual_cross_attention", "use_linear_projection",
  "class_embed_type", "addition_embed_type", "addition_time_embed_dim",
  "num_class_embeds", "upcast_attention", "resnet_time_scale_shift",
  "resnet_skip_time_act", "resnet_out_scale_factor", "time_embedding_type",
  "time_embedding_dim", "time_embedding_act_fn", "timestep_post_act",
  "time_cond_proj_dim", "conv_in_kernel", "conv_out_kernel",
  "projection_class_embeddings_input_dim", "attention_type",
  "class_embeddings_concat", "mid_block_only_cross_attention",
  "cross_attention_norm", "addition_embed_type_num_heads",
};

int vtl_unet_config_from_json(json_t *j, const char *where,
                              vtl_unet_config *o, char *msg, size_t msglen) {
  cfg C = {j, where ? where : "unet config", msg, msglen}, *c = &C;
  memset(o, 0, sizeof *o);
  if (!json_is_object(j)) return cfail(c, VTL_ETYPE, "not a JSON object");
  TRY(need_class(c, "UNet2DConditionModel"));
  TRY(only_known(c, unet_keys, COUNT(unet_keys), "UNet2DConditionModel"));

  /* What the engine has no code for: refused, each with its reason. */
  TRY(get_class_embed(c, o));
  TRY(need_null(c, "num_class_embeds", "class-conditioned UNets (class "
                "embeddings) are not supported"));
  TRY(need_false(c, "class_embeddings_concat",
                 "concatenated class embeddings are not supported"));
  TRY(need_null(c, "addition_embed_type", "added conditioning (SDXL "
                "text_time, image embeddings) is not supported"));
  TRY(need_null(c, "addition_time_embed_dim", "added time conditioning "
                "(SDXL) is not supported"));
  TRY(need_null(c, "encoder_hid_dim", "an encoder_hid_proj is not "
                "supported"));
  TRY(need_null(c, "encoder_hid_dim_type", "an encoder_hid_proj is not "
                "supported"));
  TRY(need_null(c, "num_attention_heads", "diffusers 0.27 refuses it too "
                "(the head count is attention_head_dim)"));
  TRY(need_null(c, "reverse_transformer_layers_per_block",
                "asymmetric UNets are not supported"));
  TRY(need_null(c, "time_embedding_act_fn", "an activation after the time "
                "embedding is not supported"));
  TRY(need_null(c, "timestep_post_act", "a post-activation in the time "
                "embedding is not supported"));
  TRY(need_null(c, "cross_attention_norm", "normalised cross-attention "
                "context is not supported"));
  TRY(need_false(c, "dual_cross_attention", "dual cross-attention is not "
                 "supported"));
  TRY(need_false(c, "center_input_sample", "input centring is not "
                 "supported"));
  TRY(need_false(c, "resnet_skip_time_act", "only the default resnet time "
                 "path is supported"));
  TRY(get_time_scale_shift(c, o));
  TRY(need_num(c, "resnet_out_scale_factor", 1.0, "resnets are not "
               "rescaled"));
  TRY(need_str(c, "time_embedding_type", "positional", "Fourier time "
               "embeddings are not supported"));
  TRY(need_str(c, "attention_type", "default", "gated (GLIGEN) attention is "
               "not supported"));
  TRY(need_str(c, "mid_block_type", "UNetMidBlock2DCrossAttn", "the mid "
               "block must be UNetMidBlock2DCrossAttn"));
  json_t *v = json_object_get(j, "mid_block_only_cross_attention");
  if (!is_null(v) && !json_is_false(v))
    return cfail(c, VTL_EUNSUPPORTED, "'mid_block_only_cross_attention' is "
                 "true: attention without self-attention is not supported");
  v = json_object_get(j, "only_cross_attention");
  if (v) {
    bool any = json_is_true(v);
    if (json_is_array(v)) {
      size_t i;
      json_t *e;
      json_array_foreach(v, i, e) any |= !json_is_false(e);
    } else if (!json_is_boolean(v)) {
      return cfail(c, VTL_ETYPE, "'only_cross_attention' must be a boolean "
                   "or a list");
    }
    if (any)
      return cfail(c, VTL_EUNSUPPORTED, "'only_cross_attention' is set: "
                   "attention without self-attention is not supported");
  }
  v = json_object_get(j, "cross_attention_dim");
  if (json_is_array(v))
    return cfail(c, VTL_EUNSUPPORTED, "'cross_attention_dim' is a list: "
                 "per-block context widths are not supported");

  /* Blocks. */
  static const char *const down_types[] = {"DownBlock2D",
                                           "CrossAttnDownBlock2D"};
  static const char *const up_types[] = {"UpBlock2D", "CrossAttnUpBlock2D"};
  static const int sd_channels[] = {320, 640, 1280, 1280};
  int kinds[VTL_MAX_LEVELS], nd = 4, nu = 4, nb;
  TRY(get_levels(c, "block_out_channels", sd_channels, 4, 1,
                 o->block_out_channels, &nb));
  if (!json_object_get(j, "down_block_types"))
    return cfail(c, VTL_EINVAL, "'down_block_types' is missing");
  if (!json_object_get(j, "up_block_types"))
    return cfail(c, VTL_EINVAL, "'up_block_types' is missing");
  TRY(get_types(c, "down_block_types", down_types, 2, kinds, &nd,
                "the engine has CrossAttnDownBlock2D and DownBlock2D"));
  for (int i = 0; i < nd; i++) o->down_attn[i] = kinds[i] == 1;
  TRY(get_types(c, "up_block_types", up_types, 2, kinds, &nu,
                "the engine has CrossAttnUpBlock2D and UpBlock2D"));
  for (int i = 0; i < nu; i++) o->up_attn[i] = kinds[i] == 1;
  if (nd != nu || nd != nb)
    return cfail(c, VTL_EINVAL, "%d down_block_types, %d up_block_types and "
                 "%d block_out_channels: they must be as many", nd, nu, nb);
  const int N = o->num_blocks = nb;

  TRY(get_int_list(c, "layers_per_block", N, 2, 1, o->layers_per_block));
  TRY(get_int_list(c, "attention_head_dim", N, 8, 1, o->num_heads));
  TRY(get_int_list(c, "transformer_layers_per_block", N, 1, 1,
                   o->transformer_layers));
  TRY(get_int(c, "cross_attention_dim", 1280, 1, &o->cross_attention_dim,
              false));
  TRY(get_bool(c, "use_linear_projection", false,
               &o->use_linear_projection));
  TRY(get_bool(c, "upcast_attention", false, &o->upcast_attention));
  o->only_cross_attention = false;
  TRY(get_int(c, "in_channels", 4, 1, &o->in_channels, false));
  TRY(get_int(c, "out_channels", 4, 1, &o->out_channels, false));
  v = json_object_get(j, "sample_size");
  if (json_is_array(v))
    return cfail(c, VTL_EUNSUPPORTED, "'sample_size' is a list: only square "
                 "sample sizes are supported");
  TRY(get_int(c, "sample_size", 0, 1, &o->sample_size, true));
  v = json_object_get(j, "norm_num_groups");
  if (v && json_is_null(v))
    return cfail(c, VTL_EUNSUPPORTED, "'norm_num_groups' is null: UNets "
                 "without GroupNorm are not supported");
  TRY(get_int(c, "norm_num_groups", 32, 1, &o->norm_num_groups, false));
  double d;
  TRY(get_num(c, "norm_eps", 1e-5, &d));
  if (!(d > 0 && d < 1))
    return cfail(c, VTL_EINVAL, "'norm_eps' is %g, must be in (0, 1)", d);
  o->norm_eps = (float)d;
  TRY(get_bool(c, "flip_sin_to_cos", true, &o->flip_sin_to_cos));
  TRY(get_num(c, "freq_shift", 0, &d));
  o->freq_shift = (float)d;
  TRY(get_act(c, "act_fn", "silu", false, &o->act_fn));
  TRY(get_int(c, "time_embedding_dim", 4 * o->block_out_channels[0], 1,
              &o->time_embed_dim, true));
  TRY(get_int(c, "time_cond_proj_dim", 0, 1, &o->time_cond_proj_dim, true));
  TRY(get_int(c, "conv_in_kernel", 3, 1, &o->conv_in_kernel, false));
  TRY(get_int(c, "conv_out_kernel", 3, 1, &o->conv_out_kernel, false));
  if (o->conv_in_kernel % 2 == 0 || o->conv_out_kernel % 2 == 0)
    return cfail(c, VTL_EUNSUPPORTED, "conv_in_kernel %d / conv_out_kernel "
                 "%d: only odd kernels keep the size", o->conv_in_kernel,
                 o->conv_out_kernel);
  TRY(get_int(c, "downsample_padding", 1, 0, &o->downsample_padding, false));
  TRY(get_num(c, "mid_block_scale_factor", 1.0, &d));
  o->mid_block_scale_factor = (float)d;
  TRY(get_num(c, "dropout", 0.0, &d)); /* inference: no effect */
  int ignored;
  TRY(get_int(c, "addition_embed_type_num_heads", 64, 1, &ignored, false));
  o->prediction_type = VTL_PRED_EPSILON;

  /* Shapes the modules would refuse to build (torch checks at __init__). */
  const int G = o->norm_num_groups;
  char what[96];
  for (int i = 0; i < N; i++) {
    int in = i ? o->block_out_channels[i - 1] : o->block_out_channels[0];
    int ch = o->block_out_channels[i];
    snprintf(what, sizeof what, "down block %d", i);
    TRY(groups_divide(c, G, in, what));
    TRY(groups_divide(c, G, ch, what));
    if (o->down_attn[i] && ch % o->num_heads[i] != 0)
      return cfail(c, VTL_EINVAL, "down block %d: %d channels do not split "
                   "into %d heads (attention_head_dim is the head count)", i,
                   ch, o->num_heads[i]);
  }
  int top = o->block_out_channels[N - 1];
  if (top % o->num_heads[N - 1] != 0)
    return cfail(c, VTL_EINVAL, "mid block: %d channels do not split into "
                 "%d heads", top, o->num_heads[N - 1]);
  int prev = top;
  for (int i = 0; i < N; i++) {
    int ch = vtl_unet_up_channels(o, i);
    int in = o->block_out_channels[N - 1 - (i + 1 < N ? i + 1 : N - 1)];
    int n = vtl_unet_up_layers(o, i);
    snprintf(what, sizeof what, "up block %d", i);
    for (int r = 0; r < n; r++) {
      int skip = r == n - 1 ? in : ch;
      TRY(groups_divide(c, G, (r == 0 ? prev : ch) + skip, what));
    }
    TRY(groups_divide(c, G, ch, what));
    if (o->up_attn[i] && ch % vtl_unet_up_heads(o, i) != 0)
      return cfail(c, VTL_EINVAL, "up block %d: %d channels do not split "
                   "into %d heads", i, ch, vtl_unet_up_heads(o, i));
    prev = ch;
  }
  return 0;
}

static const char *const vae_keys[] = {
  "in_channels", "out_channels", "down_block_types", "up_block_types",
  "block_out_channels", "layers_per_block", "act_fn", "latent_channels",
  "norm_num_groups", "sample_size", "scaling_factor", "shift_factor",
  "latents_mean", "latents_std", "force_upcast", "use_quant_conv",
  "use_post_quant_conv", "mid_block_add_attention",
};

int vtl_vae_config_from_json(json_t *j, const char *where, vtl_vae_config *o,
                             char *msg, size_t msglen) {
  cfg C = {j, where ? where : "vae config", msg, msglen}, *c = &C;
  memset(o, 0, sizeof *o);
  if (!json_is_object(j)) return cfail(c, VTL_ETYPE, "not a JSON object");
  TRY(need_class(c, "AutoencoderKL"));
  TRY(only_known(c, vae_keys, COUNT(vae_keys), "AutoencoderKL"));
  TRY(need_null(c, "shift_factor", "shifted latents (SD3, Flux) are not "
                "supported"));
  TRY(need_null(c, "latents_mean", "per-channel latent statistics are not "
                "supported"));
  TRY(need_null(c, "latents_std", "per-channel latent statistics are not "
                "supported"));
  json_t *v = json_object_get(j, "use_quant_conv");
  if (v && !json_is_true(v))
    return cfail(c, VTL_EUNSUPPORTED, "'use_quant_conv' is not true: a VAE "
                 "without quant_conv is not supported");
  v = json_object_get(j, "use_post_quant_conv");
  if (v && !json_is_true(v))
    return cfail(c, VTL_EUNSUPPORTED, "'use_post_quant_conv' is not true: a "
                 "VAE without post_quant_conv is not supported");

  static const char *const down_types[] = {"DownEncoderBlock2D"};
  static const char *const up_types[] = {"UpDecoderBlock2D"};
  static const int one[] = {64};
  int kinds[VTL_MAX_LEVELS], nd = 1, nu = 1, nb;
  TRY(get_levels(c, "block_out_channels", one, 1, 1, o->block_out_channels,
                 &nb));
  TRY(get_types(c, "down_block_types", down_types, 1, kinds, &nd,
                "the engine has DownEncoderBlock2D"));
  TRY(get_types(c, "up_block_types", up_types, 1, kinds, &nu,
                "the engine has UpDecoderBlock2D"));
  if (nd != nb || nu != nb)
    return cfail(c, VTL_EINVAL, "%d down_block_types, %d up_block_types and "
                 "%d block_out_channels: they must be as many", nd, nu, nb);
  o->num_blocks = nb;
  TRY(get_int(c, "in_channels", 3, 1, &o->in_channels, false));
  TRY(get_int(c, "out_channels", 3, 1, &o->out_channels, false));
  TRY(get_int(c, "latent_channels", 4, 1, &o->latent_channels, false));
  TRY(get_int(c, "layers_per_block", 1, 1, &o->layers_per_block, false));
  TRY(get_int(c, "norm_num_groups", 32, 1, &o->norm_num_groups, false));
  TRY(get_act(c, "act_fn", "silu", false, &o->act_fn));
  v = json_object_get(j, "sample_size");
  if (json_is_array(v))
    return cfail(c, VTL_EUNSUPPORTED, "'sample_size' is a list: only square "
                 "sample sizes are supported");
  TRY(get_int(c, "sample_size", 0, 1, &o->sample_size, true));
  double d;
  TRY(get_num(c, "scaling_factor", 0.18215, &d));
  if (!(d > 0))
    return cfail(c, VTL_EINVAL, "'scaling_factor' is %g, must be > 0", d);
  o->scaling_factor = (float)d;
  TRY(get_bool(c, "force_upcast", true, &o->force_upcast));
  TRY(get_bool(c, "mid_block_add_attention", true, &o->mid_block_attention));
  o->norm_eps = 1e-6f;
  for (int i = 0; i < nb; i++) {
    char what[64];
    snprintf(what, sizeof what, "block %d", i);
    TRY(groups_divide(c, o->norm_num_groups, o->block_out_channels[i], what));
  }
  return 0;
}

int vtl_clip_config_from_json(json_t *j, const char *where,
                              vtl_clip_config *o, char *msg, size_t msglen) {
  cfg C = {j, where ? where : "text encoder config", msg, msglen}, *c = &C;
  memset(o, 0, sizeof *o);
  if (!json_is_object(j)) return cfail(c, VTL_ETYPE, "not a JSON object");
  json_t *v = json_object_get(j, "architectures");
  if (v && !json_is_null(v)) {
    if (!json_is_array(v) || json_array_size(v) != 1 ||
        !json_is_string(json_array_get(v, 0)))
      return cfail(c, VTL_EUNSUPPORTED, "'architectures' must name one "
                   "class");
    const char *a = json_string_value(json_array_get(v, 0));
    if (strcmp(a, "CLIPTextModelWithProjection") == 0)
      o->with_projection = true;
    else if (strcmp(a, "CLIPTextModel") != 0)
      return cfail(c, VTL_EUNSUPPORTED, "architecture \"%.60s\" is not "
                   "supported: the engine runs CLIPTextModel", a);
  }
  TRY(need_str(c, "model_type", "clip_text_model", "the text encoder must be "
               "a CLIP text model"));
  TRY(get_int(c, "vocab_size", 49408, 1, &o->vocab_size, false));
  TRY(get_int(c, "hidden_size", 512, 1, &o->hidden_size, false));
  TRY(get_int(c, "intermediate_size", 2048, 1, &o->intermediate_size,
              false));
  TRY(get_int(c, "projection_dim", 512, 1, &o->projection_dim, false));
  TRY(get_int(c, "num_hidden_layers", 12, 1, &o->num_hidden_layers, false));
  TRY(get_int(c, "num_attention_heads", 8, 1, &o->num_attention_heads,
              false));
  TRY(get_int(c, "max_position_embeddings", 77, 1,
              &o->max_position_embeddings, false));
  TRY(get_act(c, "hidden_act", "quick_gelu", true, &o->hidden_act));
  double d;
  TRY(get_num(c, "layer_norm_eps", 1e-5, &d));
  if (!(d > 0 && d < 1))
    return cfail(c, VTL_EINVAL, "'layer_norm_eps' is %g, must be in (0, 1)",
                 d);
  o->layer_norm_eps = (float)d;
  TRY(get_int(c, "bos_token_id", 49406, 0, &o->bos_token_id, false));
  TRY(get_int(c, "eos_token_id", 49407, 0, &o->eos_token_id, false));
  TRY(get_int(c, "pad_token_id", 1, 0, &o->pad_token_id, false));
  if (o->hidden_size % o->num_attention_heads != 0)
    return cfail(c, VTL_EINVAL, "hidden_size %d does not split into %d "
                 "heads", o->hidden_size, o->num_attention_heads);
  return 0;
}

static const char *const taesd_keys[] = {
  "in_channels", "out_channels", "encoder_block_out_channels",
  "decoder_block_out_channels", "act_fn", "latent_channels",
  "upsampling_scaling_factor", "num_encoder_blocks", "num_decoder_blocks",
  "latent_magnitude", "latent_shift", "force_upcast", "scaling_factor",
  "block_out_channels", /* register_to_config copies the decoder's here */
  "shift_factor", "latents_mean", "latents_std",
};

int vtl_taesd_config_from_json(json_t *j, const char *where,
                               vtl_taesd_config *o, char *msg,
                               size_t msglen) {
  cfg C = {j, where ? where : "taesd config", msg, msglen}, *c = &C;
  memset(o, 0, sizeof *o);
  if (!json_is_object(j)) return cfail(c, VTL_ETYPE, "not a JSON object");
  TRY(need_class(c, "AutoencoderTiny"));
  TRY(only_known(c, taesd_keys, COUNT(taesd_keys), "AutoencoderTiny"));
  TRY(need_null(c, "shift_factor", "shifted latents are not supported"));
  TRY(need_null(c, "latents_mean", "latent statistics are not supported"));
  TRY(need_null(c, "latents_std", "latent statistics are not supported"));
  static const int ch[] = {64, 64, 64, 64};
  static const int enc[] = {1, 3, 3, 3}, dec[] = {3, 3, 3, 1};
  int n1, n2;
  TRY(get_levels(c, "encoder_block_out_channels", ch, 4, 1,
                 o->encoder_block_out_channels, &o->num_encoder_levels));
  TRY(get_levels(c, "num_encoder_blocks", enc, 4, 0, o->num_encoder_blocks,
                 &n1));
  TRY(get_levels(c, "decoder_block_out_channels", ch, 4, 1,
                 o->decoder_block_out_channels, &o->num_decoder_levels));
  TRY(get_levels(c, "num_decoder_blocks", dec, 4, 0, o->num_decoder_blocks,
                 &n2));
  if (n1 != o->num_encoder_levels || n2 != o->num_decoder_levels)
    return cfail(c, VTL_EINVAL, "num_encoder_blocks / num_decoder_blocks "
                 "must have one entry per block_out_channels entry");
  TRY(get_int(c, "in_channels", 3, 1, &o->in_channels, false));
  TRY(get_int(c, "out_channels", 3, 1, &o->out_channels, false));
  TRY(get_int(c, "latent_channels", 4, 1, &o->latent_channels, false));
  TRY(get_int(c, "upsampling_scaling_factor", 2, 1,
              &o->upsampling_scaling_factor, false));
  TRY(get_act(c, "act_fn", "relu", false, &o->act_fn));
  double d;
  TRY(get_num(c, "latent_magnitude", 3, &d));
  o->latent_magnitude = (float)d;
  TRY(get_num(c, "latent_shift", 0.5, &d));
  o->latent_shift = (float)d;
  TRY(get_num(c, "scaling_factor", 1.0, &d));
  o->scaling_factor = (float)d;
  TRY(get_bool(c, "force_upcast", false, &o->force_upcast));
  if (!(o->latent_magnitude > 0))
    return cfail(c, VTL_EINVAL, "'latent_magnitude' must be > 0");
  return 0;
}

/* ---- weights sources ----------------------------------------------------- */

/* What resolve finds for a name. */
typedef struct {
  stfile *sf;
  const vtl_st_tensor *t;
  size_t first;                  /* element offset in t (OpenCLIP slices) */
  vtl_weight_info info;
} resolved;

/* Applies an LDM shape fix to info (stored shape already in it). */
static int apply_fix(const vtl_weights *w, const vtl__ldm_ref *ref,
                     resolved *r, const char *name, char *msg,
                     size_t msglen) {
  vtl_weight_info *in = &r->info;
  if (ref->want_ndim == 2 && in->ndim == 4 && in->shape[2] == 1 &&
      in->shape[3] == 1) {
    in->ndim = 2;
    in->shape[2] = in->shape[3] = 0;
  } else if (ref->want_ndim == 4 && in->ndim == 2) {
    in->ndim = 4;
    in->shape[2] = in->shape[3] = 1;
  }
  if (ref->parts > 1) {
    if (in->ndim < 1 || in->shape[0] % ref->parts != 0)
      return fail(msg, msglen, VTL_EPARSE, "%s: tensor '%s' (for '%s') does "
                  "not split into %d along its first dimension",
                  vtl_st_path(r->sf->st), r->t->name, name, ref->parts);
    in->shape[0] /= ref->parts;
    in->numel /= (size_t)ref->parts;
    r->first = in->numel * (size_t)ref->part;
  }
  (void)w;
  return 0;
}

static void info_from(resolved *r) {
  const vtl_st_tensor *t = r->t;
  r->info.ndim = t->ndim;
  memcpy(r->info.shape, t->shape, sizeof r->info.shape);
  r->info.numel = t->numel;
  r->info.dtype = t->dtype;
  r->info.file = vtl_st_path(r->sf->st);
  r->info.key = t->name;
  r->first = 0;
}

static const char *comp_name(vtl_component c) {
  return c == VTL_COMP_UNET ? "unet" : c == VTL_COMP_VAE ? "vae"
                                                         : "text_encoder";
}

static int resolve(const vtl_weights *w, const char *name, resolved *r,
                   char *msg, size_t msglen) {
  memset(r, 0, sizeof *r);
  if (!w || !w->present)
    return fail(msg, msglen, VTL_ENOENT, "no weights source for '%s'", name);
  if (w->ldm) {
    vtl__ldm_ref ref;
    int rc = vtl__ldm_rename(w->comp, w->config, &w->layout, name, &ref);
    if (rc)
      return fail(msg, msglen, VTL_ENOENT, "%s: the %s architecture of the "
                  "config has no weight '%s' (no original name for it)",
                  w->label, comp_name(w->comp), name);
    r->sf = w->files[0];
    r->t = vtl_st_find(r->sf->st, ref.key);
    if (!r->t)
      return fail(msg, msglen, VTL_ENOENT, "%s: no tensor '%s' (the %s's "
                  "'%s'): the checkpoint does not match the config",
                  vtl_st_path(r->sf->st), ref.key, comp_name(w->comp), name);
    info_from(r);
    return apply_fix(w, &ref, r, name, msg, msglen);
  }
  int64_t fi = 0;
  char legacy[256];
  if (w->shards && !vtl_strmap_get(w->shards, name, strlen(name), &fi)) {
    if (w->comp == VTL_COMP_VAE &&
        vtl__diffusers_legacy_name(name, legacy, sizeof legacy) == 0 &&
        vtl_strmap_get(w->shards, legacy, strlen(legacy), &fi))
      name = legacy; /* found under its old name; fall through */
    else
      return fail(msg, msglen, VTL_ENOENT, "%s: no tensor '%s' in the "
                  "index's weight_map", w->label, name);
  }
  r->sf = w->files[fi];
  r->t = vtl_st_find(r->sf->st, name);
  if (!r->t && w->comp == VTL_COMP_VAE) {
    if (vtl__diffusers_legacy_name(name, legacy, sizeof legacy) == 0)
      r->t = vtl_st_find(r->sf->st, legacy);
  }
  if (!r->t)
    return fail(msg, msglen, VTL_ENOENT, "%s: no tensor '%s'",
                vtl_st_path(r->sf->st), name);
  info_from(r);
  return 0;
}

int vtl_weights_info(vtl_weights *w, const char *name, vtl_weight_info *out,
                     char *msg, size_t msglen) {
  resolved r;
  int rc = resolve(w, name, &r, msg, msglen);
  if (rc) return rc;
  *out = r.info;
  return 0;
}

int vtl_weights_has(vtl_weights *w, const char *name) {
  resolved r;
  return resolve(w, name, &r, NULL, 0) == 0;
}

static int read_resolved(resolved *r, const char *name, float *dst,
                         size_t count, char *msg, size_t msglen) {
  if (count != r->info.numel) {
    char b[160];
    return fail(msg, msglen, VTL_ERANGE, "%s: '%s' has %zu elements (shape "
                "%s), %zu asked for", r->info.file, name, r->info.numel,
                shape_str(r->info.shape, r->info.ndim, b, sizeof b), count);
  }
  int rc = vtl_st_read_f32(r->sf->st, r->t, r->first, count, dst, msg,
                           msglen);
  if (rc) return rc;
  r->sf->used[vtl_st_index(r->sf->st, r->t)] = 1;
  return 0;
}

int vtl_weights_get(vtl_weights *w, const char *name, float *dst,
                    size_t count, char *msg, size_t msglen) {
  resolved r;
  int rc = resolve(w, name, &r, msg, msglen);
  return rc ? rc : read_resolved(&r, name, dst, count, msg, msglen);
}

int vtl_weights_get_shaped(vtl_weights *w, const char *name, int ndim,
                           const int64_t *shape, float *dst, char *msg,
                           size_t msglen) {
  resolved r;
  int rc = resolve(w, name, &r, msg, msglen);
  if (rc) return rc;
  bool same = ndim == r.info.ndim;
  for (int i = 0; same && i < ndim; i++) same = shape[i] == r.info.shape[i];
  if (!same) {
    char a[160], b[160];
    return fail(msg, msglen, VTL_ERANGE, "%s: '%s'%s%s has shape %s, the "
                "config implies %s", r.info.file, name,
                w->ldm ? " stored as " : "", w->ldm ? r.info.key : "",
                shape_str(r.info.shape, r.info.ndim, a, sizeof a),
                shape_str(shape, ndim, b, sizeof b));
  }
  return read_resolved(&r, name, dst, r.info.numel, msg, msglen);
}

/* Is stored key k one of w's? (A single file holds three components, each
 * under its prefix; a standalone VAE file's prefix is "".) */
static int belongs(const vtl_weights *w, const char *k) {
  return !w->ldm ||
         strncmp(k, w->layout.prefix, strlen(w->layout.prefix)) == 0;
}

/* ... and one a model must read (not a known leftover buffer)? */
static int must_read(const vtl_weights *w, const char *k) {
  if (!belongs(w, k)) return 0;
  return w->ldm ? !vtl__ldm_ignored(w->comp, w->config, &w->layout, k)
                : !vtl__diffusers_ignored(w->comp, k);
}

int vtl_weights_check_unused(const vtl_weights *w, char *msg,
                             size_t msglen) {
  if (!w || !w->present) return 0;
  size_t unused = 0;
  const char *first = NULL;
  for (int f = 0; f < w->nfiles; f++) {
    stfile *sf = w->files[f];
    for (size_t i = 0; i < vtl_st_count(sf->st); i++) {
      const char *k = vtl_st_at(sf->st, i)->name;
      if (sf->used[i] || !must_read(w, k)) continue;
      if (!unused++) first = k;
    }
  }
  if (unused)
    return fail(msg, msglen, VTL_EUNSUPPORTED, "%s: %zu tensor%s the model "
                "did not read, e.g. '%s': the checkpoint holds more than the "
                "config describes", w->label, unused, unused == 1 ? "" : "s",
                first);
  return 0;
}

void vtl_weights_drop_pages(vtl_weights *w) {
  for (int f = 0; w && w->present && f < w->nfiles; f++)
    vtl_st_drop_pages(w->files[f]->st);
}

size_t vtl_weights_count(const vtl_weights *w) {
  size_t n = 0;
  for (int f = 0; w && w->present && f < w->nfiles; f++)
    for (size_t i = 0; i < vtl_st_count(w->files[f]->st); i++)
      n += belongs(w, vtl_st_at(w->files[f]->st, i)->name);
  return n;
}

const char *vtl_weights_key(const vtl_weights *w, size_t idx) {
  for (int f = 0; w && w->present && f < w->nfiles; f++)
    for (size_t i = 0; i < vtl_st_count(w->files[f]->st); i++) {
      const char *k = vtl_st_at(w->files[f]->st, i)->name;
      if (!belongs(w, k)) continue;
      if (idx-- == 0) return k;
    }
  return NULL;
}

const char *vtl_weights_label(const vtl_weights *w) {
  return w && w->label ? w->label : "(none)";
}

int vtl_weights_is_ldm(const vtl_weights *w) { return w && w->ldm; }

/* ---- opening ------------------------------------------------------------- */

/* Maps path as one more file of m; *out is borrowed from m. */
static int add_file(vtl_model_files *m, const char *path, stfile **out,
                    char *msg, size_t msglen) {
  stfile **a = realloc(m->files, (size_t)(m->nfiles + 1) * sizeof *a);
  if (!a) return fail(msg, msglen, VTL_ENOMEM, "%s: out of memory", path);
  m->files = a;
  stfile *sf = calloc(1, sizeof *sf);
  if (!sf) return fail(msg, msglen, VTL_ENOMEM, "%s: out of memory", path);
  int rc = vtl_st_open(&sf->st, path, msg, msglen);
  if (rc) {
    free(sf);
    return rc;
  }
  sf->used = calloc(vtl_st_count(sf->st) + 1, 1);
  if (!sf->used) {
    vtl_st_close(sf->st);
    free(sf);
    return fail(msg, msglen, VTL_ENOMEM, "%s: out of memory", path);
  }
  m->files[m->nfiles++] = sf;
  *out = sf;
  return 0;
}

static int weights_add(vtl_weights *w, stfile *sf, char *msg, size_t msglen) {
  stfile **a = realloc(w->files, (size_t)(w->nfiles + 1) * sizeof *a);
  if (!a) return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  w->files = a;
  w->files[w->nfiles++] = sf;
  return 0;
}

/* A sharded component: index.json's weight_map -> files of dir. */
static int open_shards(vtl_model_files *m, vtl_weights *w, const char *dir,
                       const char *index, char *msg, size_t msglen) {
  char *ip = join(dir, index);
  if (!ip) return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  json_t *root;
  int rc = vtl_json_load_python(ip, &root, msg, msglen);
  if (rc) {
    free(ip);
    return rc;
  }
  json_t *map = json_object_get(root, "weight_map");
  vtl_strmap *files = vtl_strmap_create(8); /* file name -> index in w */
  w->shards = vtl_strmap_create(json_is_object(map) ? json_object_size(map)
                                                    : 1);
  if (!files || !w->shards) {
    rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
    goto out;
  }
  if (!json_is_object(map)) {
    rc = fail(msg, msglen, VTL_EPARSE, "%s: no \"weight_map\" object", ip);
    goto out;
  }
  const char *name;
  json_t *v;
  json_object_foreach(map, name, v) {
    const char *fn = json_string_value(v);
    if (!fn || !*fn || strchr(fn, '/') || fn[0] == '.') {
      rc = fail(msg, msglen, VTL_EPARSE, "%s: weight_map entry of '%s' is "
                "not a file name in the folder", ip, name);
      goto out;
    }
    int64_t fi;
    if (!vtl_strmap_get(files, fn, strlen(fn), &fi)) {
      char *fp = join(dir, fn);
      stfile *sf;
      rc = fp ? add_file(m, fp, &sf, msg, msglen)
              : fail(msg, msglen, VTL_ENOMEM, "out of memory");
      free(fp);
      if (rc || (rc = weights_add(w, sf, msg, msglen))) goto out;
      fi = w->nfiles - 1;
      if (vtl_strmap_put(files, fn, strlen(fn), fi, NULL)) {
        rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
        goto out;
      }
    }
    if (vtl_strmap_put(w->shards, name, strlen(name), fi, NULL)) {
      rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
      goto out;
    }
  }
  if (w->nfiles == 0)
    rc = fail(msg, msglen, VTL_EPARSE, "%s: empty weight_map", ip);
out:
  vtl_strmap_release(files);
  json_decref(root);
  if (!rc) {
    w->label = ip;
    return 0;
  }
  free(ip);
  return rc;
}

/* Finds and opens the weights of the component in dir (see the header:
 * variant first, then plain; single file, then shards). */
static int open_weights(vtl_model_files *m, vtl_weights *w, const char *dir,
                        char *msg, size_t msglen) {
  static const char *const bases[] = {"diffusion_pytorch_model", "model"};
  const char *var = m->variant;
  char name[256];
  for (int pass = var ? 0 : 1; pass < 2; pass++) {
    for (size_t b = 0; b < COUNT(bases); b++) {
      /* pass 0: the variant; pass 1: plain */
      if (pass == 0)
        snprintf(name, sizeof name, "%s.%s.safetensors", bases[b], var);
      else
        snprintf(name, sizeof name, "%s.safetensors", bases[b]);
      if (file_in(dir, name)) {
        char *p = join(dir, name);
        stfile *sf;
        int rc = p ? add_file(m, p, &sf, msg, msglen)
                   : fail(msg, msglen, VTL_ENOMEM, "out of memory");
        if (!rc) rc = weights_add(w, sf, msg, msglen);
        if (rc) {
          free(p);
          return rc;
        }
        w->label = p;
        m->variant_used |= pass == 0;
        return 0;
      }
      if (pass == 0)
        snprintf(name, sizeof name, "%s.safetensors.index.%s.json", bases[b],
                 var);
      else
        snprintf(name, sizeof name, "%s.safetensors.index.json", bases[b]);
      if (file_in(dir, name)) {
        m->variant_used |= pass == 0;
        return open_shards(m, w, dir, name, msg, msglen);
      }
    }
  }
  static const char *const pickles[] = {"diffusion_pytorch_model.bin",
                                        "pytorch_model.bin", "model.bin"};
  for (size_t i = 0; i < COUNT(pickles); i++)
    if (file_in(dir, pickles[i]))
      return fail(msg, msglen, VTL_EUNSUPPORTED, "%s: only .safetensors "
                  "weights are read, found %s (a pickle; convert it)", dir,
                  pickles[i]);
  char v[80] = "";
  if (var) snprintf(v, sizeof v, "[.%s]", var);
  return fail(msg, msglen, VTL_ENOENT, "%s: no weights (looked for "
              "diffusion_pytorch_model%s.safetensors, model%s.safetensors "
              "and their .index.json)", dir, v, v);
}

static int load_json(const char *dir, const char *name, json_t **out,
                     char *msg, size_t msglen) {
  char *p = join(dir, name);
  if (!p) return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  int rc;
  if (!is_file(p))
    rc = fail(msg, msglen, VTL_ENOENT, "%s: missing", p);
  else
    rc = vtl_json_load_python(p, out, msg, msglen);
  free(p);
  return rc;
}

typedef enum { SLOT_UNET, SLOT_VAE, SLOT_TEXT, SLOT_TOKENIZER, SLOT_SCHED }
    slot;

/* Loads one component from dir: config into m, weights when `weights`. */
static int load_component(vtl_model_files *m, slot s, const char *dir,
                          bool weights, char *msg, size_t msglen) {
  json_t *j = NULL;
  int rc = 0;
  char *where = NULL;
  if (!is_dir(dir))
    return fail(msg, msglen, VTL_ENOENT, "%s: component folder missing", dir);
  if (s == SLOT_TOKENIZER) {
    m->tokenizer_dir = strdup(dir);
    return m->tokenizer_dir ? 0 : fail(msg, msglen, VTL_ENOMEM, "no memory");
  }
  if (s == SLOT_SCHED) {
    if ((rc = load_json(dir, "scheduler_config.json", &m->scheduler, msg,
                        msglen)))
      return rc;
    json_t *pt = json_object_get(m->scheduler, "prediction_type");
    if (pt && !json_is_string(pt))
      return fail(msg, msglen, VTL_ETYPE, "%s/scheduler_config.json: "
                  "'prediction_type' must be a string", dir);
    if (pt && vtl_prediction_from_name(json_string_value(pt),
                                       &m->unet.prediction_type))
      return fail(msg, msglen, VTL_EUNSUPPORTED, "%s/scheduler_config.json: "
                  "prediction_type \"%.40s\" is not supported (epsilon, "
                  "v_prediction, sample)", dir, json_string_value(pt));
    return 0;
  }
  if ((rc = load_json(dir, "config.json", &j, msg, msglen))) return rc;
  where = join(dir, "config.json");
  if (!where) {
    json_decref(j);
    return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  }
  vtl_component comp = VTL_COMP_UNET;
  vtl_prediction keep = m->unet.prediction_type;
  switch (s) {
  case SLOT_UNET:
    rc = vtl_unet_config_from_json(j, where, &m->unet, msg, msglen);
    m->unet.prediction_type = keep; /* set by the scheduler slot */
    m->has_unet = !rc;
    comp = VTL_COMP_UNET;
    break;
  case SLOT_VAE: {
    json_t *cls = json_object_get(j, "_class_name");
    if (cls && json_is_string(cls) &&
        strcmp(json_string_value(cls), "AutoencoderTiny") == 0) {
      rc = vtl_taesd_config_from_json(j, where, &m->taesd, msg, msglen);
      m->vae_tiny = true;
    } else {
      rc = vtl_vae_config_from_json(j, where, &m->vae, msg, msglen);
    }
    m->has_vae = !rc;
    comp = VTL_COMP_VAE;
    break;
  }
  default:
    rc = vtl_clip_config_from_json(j, where, &m->clip, msg, msglen);
    m->has_clip = !rc;
    comp = VTL_COMP_TEXT_ENCODER;
    break;
  }
  free(where);
  json_decref(j);
  if (rc || !weights) return rc;
  vtl_weights *w = &m->w[comp];
  w->comp = comp;
  rc = open_weights(m, w, dir, msg, msglen);
  w->present = !rc;
  return rc;
}

static const struct {
  const char *name;
  slot s;
  const char *const classes[3]; /* accepted classes (model_index.json) */
} slots[] = {
  {"unet", SLOT_UNET, {"UNet2DConditionModel"}},
  {"vae", SLOT_VAE, {"AutoencoderKL", "AutoencoderTiny"}},
  {"text_encoder", SLOT_TEXT, {"CLIPTextModel", "CLIPTextModelWithProjection"}},
  {"tokenizer", SLOT_TOKENIZER, {"CLIPTokenizer", "CLIPTokenizerFast"}},
  {"scheduler", SLOT_SCHED, {NULL}}, /* any class: we read its config */
};

/* Components of a pipeline folder (model_index.json), or of a config dir
 * without one (whichever sub-folders exist). */
static int load_pipeline(vtl_model_files *m, const char *dir, bool weights,
                         char *msg, size_t msglen) {
  json_t *idx = NULL;
  int rc = 0;
  char *where = join(dir, "model_index.json");
  if (!where) return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  if (is_file(where)) {
    if ((rc = vtl_json_load_python(where, &idx, msg, msglen))) goto out;
    if (!json_is_object(idx)) {
      rc = fail(msg, msglen, VTL_EPARSE, "%s: not a JSON object", where);
      goto out;
    }
    json_t *cls = json_object_get(idx, "_class_name");
    const char *cn = json_is_string(cls) ? json_string_value(cls) : "";
    if (strncmp(cn, "StableDiffusionXL", 17) == 0 ||
        strncmp(cn, "StableDiffusion3", 16) == 0) {
      rc = fail(msg, msglen, VTL_EUNSUPPORTED, "%s: %s is not supported (the "
                "engine runs SD 1.x / 2.x pipelines)", where, cn);
      goto out;
    }
    static const char *const foreign[] = {"text_encoder_2", "tokenizer_2",
                                          "transformer", "prior"};
    for (size_t i = 0; i < COUNT(foreign); i++) {
      json_t *v = json_object_get(idx, foreign[i]);
      if (json_is_array(v) && !json_is_null(json_array_get(v, 0))) {
        rc = fail(msg, msglen, VTL_EUNSUPPORTED, "%s: component '%s' is not "
                  "supported (SDXL / DiT pipelines)", where, foreign[i]);
        goto out;
      }
    }
  }
  /* Every listed class is checked before anything is loaded. */
  bool present[COUNT(slots)];
  for (size_t i = 0; i < COUNT(slots); i++) {
    if (!idx) continue;
    json_t *v = json_object_get(idx, slots[i].name);
    json_t *c1 = json_array_get(v, 1);
    present[i] = json_is_array(v) && json_is_string(c1);
    if (!present[i] || !slots[i].classes[0]) continue;
    const char *cn = json_string_value(c1);
    bool ok = false;
    for (int k = 0; k < 3 && slots[i].classes[k]; k++)
      ok |= strcmp(cn, slots[i].classes[k]) == 0;
    if (!ok) {
      rc = fail(msg, msglen, VTL_EUNSUPPORTED, "%s: %s is %s, which the "
                "engine does not run", where, slots[i].name, cn);
      goto out;
    }
  }
  for (size_t i = 0; i < COUNT(slots); i++) {
    char *sub = join(dir, slots[i].name);
    if (!sub) {
      rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
      goto out;
    }
    if (!idx) present[i] = is_dir(sub);
    if (present[i])
      rc = load_component(m, slots[i].s, sub, weights, msg, msglen);
    else if (slots[i].s == SLOT_VAE && idx)
      m->pixel = !is_dir(sub);
    free(sub);
    if (rc) goto out;
  }
  json_t *cc = idx ? json_object_get(idx, "coord_channels") : NULL;
  if (cc && (!json_is_integer(cc) ||
             (json_integer_value(cc) != 0 && json_integer_value(cc) != 2))) {
    rc = fail(msg, msglen, VTL_EINVAL, "%s: 'coord_channels' must be 0 or 2 "
              "(x and y appended to the unet's input)", where);
    goto out;
  }
  m->coord_channels = cc ? (int)json_integer_value(cc) : 0;
  if (m->coord_channels && !m->pixel) {
    rc = fail(msg, msglen, VTL_EINVAL, "%s: 'coord_channels' is for "
              "pixel-space models (no vae)", where);
    goto out;
  }
  if (m->pixel && m->has_unet &&
      (m->unet.in_channels != 3 + m->coord_channels || m->unet.out_channels != 3))
    rc = fail(msg, msglen, VTL_EINVAL, "%s: a pixel-space model (no vae) "
              "needs a unet with in_channels = 3 (RGB) + coord_channels (%d) "
              "and out_channels = 3, not %d -> %d", where, m->coord_channels,
              m->unet.in_channels, m->unet.out_channels);
out:
  json_decref(idx);
  free(where);
  return rc;
}

/* A folder with only config.json: one component, by its class. */
static int load_single(vtl_model_files *m, const char *dir, char *msg,
                       size_t msglen) {
  json_t *j;
  int rc = load_json(dir, "config.json", &j, msg, msglen);
  if (rc) return rc;
  const char *cls = NULL;
  json_t *v = json_object_get(j, "_class_name");
  if (json_is_string(v)) cls = json_string_value(v);
  v = json_object_get(j, "architectures");
  if (!cls && json_is_array(v) && json_is_string(json_array_get(v, 0)))
    cls = json_string_value(json_array_get(v, 0));
  slot s = SLOT_UNET;
  bool found = false;
  for (size_t i = 0; cls && i < 3; i++)
    for (int k = 0; k < 3 && slots[i].classes[k]; k++)
      if (strcmp(cls, slots[i].classes[k]) == 0) {
        s = slots[i].s;
        found = true;
      }
  if (!found)
    rc = fail(msg, msglen, VTL_EUNSUPPORTED, "%s/config.json: class %s is "
              "not one the engine runs (UNet2DConditionModel, AutoencoderKL, "
              "AutoencoderTiny, CLIPTextModel)", dir, cls ? cls : "(none)");
  json_decref(j);
  return rc ? rc : load_component(m, s, dir, true, msg, msglen);
}

/* A single-file checkpoint with its config dir. */
static int load_ldm(vtl_model_files *m, const char *path,
                    const char *config_dir, char *msg, size_t msglen) {
  stfile *sf;
  int rc;
  if ((rc = load_pipeline(m, config_dir, false, msg, msglen))) return rc;
  if (m->has_vae && m->vae_tiny)
    return fail(msg, msglen, VTL_EUNSUPPORTED, "%s: the config dir's vae is "
                "an AutoencoderTiny; single-file checkpoints hold an "
                "AutoencoderKL", config_dir);
  if ((rc = add_file(m, path, &sf, msg, msglen))) return rc;
  bool has[VTL_COMP__NWEIGHTS] = {m->has_unet, m->has_vae, m->has_clip};
  const void *conf[VTL_COMP__NWEIGHTS] = {&m->unet, &m->vae, &m->clip};
  for (int c = 0; c < VTL_COMP__NWEIGHTS; c++) {
    if (!has[c]) continue;
    vtl_weights *w = &m->w[c];
    w->comp = (vtl_component)c;
    w->ldm = true;
    w->config = conf[c];
    if ((rc = vtl__ldm_detect(sf->st, w->comp, &w->layout, msg, msglen))) {
      size_t k = msg ? strlen(msg) : 0;
      if (msg && k + 1 < msglen && vtl__uses_diffusers_names(sf->st))
        snprintf(msg + k, msglen - k, "; it holds diffusers names: open the "
                 "model folder instead");
      return rc;
    }
    if ((rc = weights_add(w, sf, msg, msglen))) return rc;
    size_t n = strlen(path) + strlen(w->layout.prefix) + 32;
    if (!(w->label = malloc(n)))
      return fail(msg, msglen, VTL_ENOMEM, "out of memory");
    snprintf(w->label, n, "%s [%s: %s*]", path, comp_name(w->comp),
             w->layout.prefix);
    w->present = true;
  }
  if (!m->has_unet && !m->has_vae && !m->has_clip)
    return fail(msg, msglen, VTL_ENOENT, "%s: no unet/, vae/ or "
                "text_encoder/ config in it", config_dir);
  return 0;
}

int vtl_model_files_open(vtl_model_files **out, const char *path,
                         const vtl_model_open_opts *opts, char *msg,
                         size_t msglen) {
  *out = NULL;
  struct stat sb;
  if (stat(path, &sb) != 0)
    return fail(msg, msglen, errno == ENOENT ? VTL_ENOENT : VTL_EIO,
                "%s: %s", path, strerror(errno));
  vtl_model_files *m = calloc(1, sizeof *m);
  if (!m || !(m->path = strdup(path))) {
    free(m);
    return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  }
  m->variant = opts && opts->variant && *opts->variant ? opts->variant : NULL;
  m->unet.prediction_type = VTL_PRED_EPSILON;
  int rc;
  if (S_ISREG(sb.st_mode)) {
    if (!opts || !opts->config_dir)
      rc = fail(msg, msglen, VTL_EINVAL, "%s: a single-file checkpoint needs "
                "a config dir (a diffusers folder describing its "
                "architecture)", path);
    else if (m->variant)
      rc = fail(msg, msglen, VTL_EINVAL, "%s: a variant (\"%s\") selects "
                "files of a diffusers folder, not of a single file", path,
                m->variant);
    else
      rc = load_ldm(m, path, opts->config_dir, msg, msglen);
  } else if (file_in(path, "model_index.json")) {
    rc = load_pipeline(m, path, true, msg, msglen);
  } else if (file_in(path, "config.json")) {
    rc = load_single(m, path, msg, msglen);
  } else {
    rc = fail(msg, msglen, VTL_ENOENT, "%s: neither model_index.json nor "
              "config.json: not a diffusers model folder", path);
  }
  if (!rc && m->variant && !m->variant_used)
    rc = fail(msg, msglen, VTL_ENOENT, "%s: no component has weights of "
              "variant \"%s\"", path, m->variant);
  m->variant = NULL; /* borrowed from opts only during open */
  if (rc) {
    vtl_model_files_close(m);
    return rc;
  }
  *out = m;
  return 0;
}

void vtl_model_files_close(vtl_model_files *m) {
  if (!m) return;
  for (int c = 0; c < VTL_COMP__NWEIGHTS; c++) {
    free(m->w[c].files);
    vtl_strmap_release(m->w[c].shards);
    free(m->w[c].label);
  }
  for (int i = 0; i < m->nfiles; i++) {
    vtl_st_close(m->files[i]->st);
    free(m->files[i]->used);
    free(m->files[i]);
  }
  free(m->files);
  free(m->tokenizer_dir);
  json_decref(m->scheduler);
  free(m->path);
  free(m);
}

vtl_weights *vtl_model_files_weights(vtl_model_files *m, vtl_component c) {
  if ((unsigned)c >= VTL_COMP__NWEIGHTS || !m->w[c].present) return NULL;
  return &m->w[c];
}

const vtl_unet_config *vtl_model_files_unet_config(const vtl_model_files *m) {
  return m->has_unet ? &m->unet : NULL;
}

const vtl_vae_config *vtl_model_files_vae_config(const vtl_model_files *m) {
  return m->has_vae && !m->vae_tiny ? &m->vae : NULL;
}

const vtl_taesd_config *vtl_model_files_taesd_config(
    const vtl_model_files *m) {
  return m->has_vae && m->vae_tiny ? &m->taesd : NULL;
}

const vtl_clip_config *vtl_model_files_clip_config(const vtl_model_files *m) {
  return m->has_clip ? &m->clip : NULL;
}

bool vtl_model_files_is_pixel_space(const vtl_model_files *m) {
  return m->pixel && m->has_unet;
}

int vtl_model_files_coord_channels(const vtl_model_files *m) {
  return m->coord_channels;
}

const char *vtl_model_files_tokenizer_dir(const vtl_model_files *m) {
  return m->tokenizer_dir;
}

json_t *vtl_model_files_scheduler_json(const vtl_model_files *m) {
  return m->scheduler;
}
