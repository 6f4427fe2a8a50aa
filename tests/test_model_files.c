/* test_model_files.c — model folders, single files and configs
 * (engine/model_files.h, engine/ldm_names.c).
 *
 *   kit_configs          the kit's configs parsed into the structs with the
 *                        kit's values (UNet, VAE, CLIP, scheduler, tokenizer)
 *   kit_taesd            the TAESD folder: config values, every weight read
 *   diffusers_all_read   every weight of every component read by name, then
 *                        check_unused passes; names enumerated
 *   ldm_equals_diffusers the single F16 file through the renames: every
 *                        diffusers name of UNet, VAE and text encoder is
 *                        reachable, shapes are diffusers' (VAE attention
 *                        [C,C]), values equal the fp16 UNet variant exactly
 *                        and the F32 weights within F16 rounding (exactly
 *                        their RNE rounding); no LDM key left unread
 *   variants             fp16 / bf16 pick their files, others fall back;
 *                        a variant no component has is an error
 *   get_errors           missing names, wrong counts and shapes, messages
 *   ldm_wrong_config     a config dir that does not match the checkpoint:
 *                        shape mismatch named, unused tensors reported
 *   unet_refusals        unsupported UNet configs, each with its reason
 *   other_refusals       VAE / CLIP / TAESD configs, pipelines (SDXL,
 *                        unknown classes), .bin weights, no config
 *   openclip_layout      an SD 2.x-style OpenCLIP text encoder (q/k/v in
 *                        in_proj_weight, one extra layer, text_projection)
 *                        written from the kit's weights reads back equal
 *   sharded_weights      a UNet split into two shards with an index.json
 *   legacy_vae_names     query/key/value/proj_attn read as to_q/...
 *
 * The kit is ../shared/refkit (tests run from the repo root), or the folder
 * named by VTL_REFKIT. Scratch folders go under /tmp and are removed.
 */
#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_files.h"
#include "safetensors.h"
#include "task.h"
#include "vtl_error.h"

/* ---- helpers ------------------------------------------------------------- */

static const char *kit_dir(void) {
  const char *env = getenv("VTL_REFKIT");
  return env && *env ? env : "../shared/refkit";
}

static const char *kit(const char *rel) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/models/%s", kit_dir(), rel);
  return buf[k];
}

static vtl_model_files *open_model(const char *path, const char *variant,
                                   const char *config_dir) {
  vtl_model_files *m = NULL;
  vtl_model_open_opts o = {.variant = variant, .config_dir = config_dir};
  char msg[512];
  if (vtl_model_files_open(&m, path, &o, msg, sizeof msg))
    fprintf(stderr, "open %s: %s\n", path, msg);
  return m;
}

static uint32_t bits_of(float x) {
  uint32_t b;
  memcpy(&b, &x, 4);
  return b;
}

/* Reference float32 -> binary16 round to nearest even (finite, in range). */
static uint16_t f32_to_f16_rne(float x) {
  uint32_t b = bits_of(x), sign = (b >> 16) & 0x8000u;
  float a = fabsf(x);
  if (a >= 65520.0f) return (uint16_t)(sign | 0x7c00u);
  if (a < 0x1p-14f) return (uint16_t)(sign | (uint32_t)rintf(a * 0x1p24f));
  uint32_t e = ((b >> 23) & 0xffu) - 127u + 15u, m = b & 0x7fffffu;
  uint32_t h = (e << 10) | (m >> 13), rest = m & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return (uint16_t)(sign | h);
}

static float round_f16(float x) { return vtl_f16_to_f32(f32_to_f16_rne(x)); }

static float round_bf16(float x) {
  uint32_t b = bits_of(x);
  return vtl_bf16_to_f32((uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16));
}

/* Reads weight name of w into a new buffer; *info filled. */
static float *get_all(vtl_weights *w, const char *name, vtl_weight_info *info) {
  char msg[512];
  if (vtl_weights_info(w, name, info, msg, sizeof msg)) {
    fprintf(stderr, "info: %s\n", msg);
    return NULL;
  }
  float *v = malloc((info->numel ? info->numel : 1) * sizeof *v);
  if (vtl_weights_get(w, name, v, info->numel, msg, sizeof msg)) {
    fprintf(stderr, "get: %s\n", msg);
    free(v);
    return NULL;
  }
  return v;
}

static json_t *load_config(const char *rel) {
  json_error_t e;
  json_t *j = json_load_file(kit(rel), 0, &e);
  if (!j) fprintf(stderr, "%s: %s\n", rel, e.text);
  return j;
}

static char scratch[256];

/* A fresh scratch folder /tmp/vtl_test_mf_<pid>. */
static const char *scratch_dir(void) {
  snprintf(scratch, sizeof scratch, "/tmp/vtl_test_mf_%ld", (long)getpid());
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", scratch, scratch);
  if (system(cmd) != 0) abort();
  return scratch;
}

static void scratch_remove(void) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
  if (system(cmd) != 0) abort();
}

static const char *in_scratch(const char *rel) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, rel);
  return buf[k];
}

static void mkdir_p(const char *rel) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", in_scratch(rel));
  if (system(cmd) != 0) abort();
}

static void copy_in(const char *from, const char *rel) {
  char cmd[2600];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, in_scratch(rel));
  if (system(cmd) != 0) abort();
}

static void write_text(const char *rel, const char *text) {
  FILE *fp = fopen(in_scratch(rel), "w");
  if (!fp) abort();
  fputs(text, fp);
  fclose(fp);
}

static void write_json(const char *rel, json_t *j) {
  if (json_dump_file(j, in_scratch(rel), JSON_INDENT(1))) abort();
}

/* A float32 safetensors writer: add tensors, then write. */
typedef struct {
  json_t *hdr;
  uint8_t *data;
  size_t n, cap;
} st_writer;

static void stw_add(st_writer *w, const char *name, int ndim,
                    const int64_t *shape, const float *v) {
  if (!w->hdr) w->hdr = json_object();
  size_t numel = 1;
  json_t *sh = json_array();
  for (int i = 0; i < ndim; i++) {
    numel *= (size_t)shape[i];
    json_array_append_new(sh, json_integer(shape[i]));
  }
  size_t bytes = numel * 4;
  if (w->n + bytes > w->cap) {
    w->cap = (w->n + bytes) * 2 + 64;
    w->data = realloc(w->data, w->cap);
  }
  memcpy(w->data + w->n, v, bytes);
  json_object_set_new(w->hdr, name,
                      json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape",
                                sh, "data_offsets", (json_int_t)w->n,
                                (json_int_t)(w->n + bytes)));
  w->n += bytes;
}

static void stw_write(st_writer *w, const char *path) {
  char *h = json_dumps(w->hdr, JSON_COMPACT);
  size_t hl = strlen(h), pad = (8 - hl % 8) % 8;
  uint64_t len = hl + pad;
  FILE *fp = fopen(path, "wb");
  if (!fp) abort();
  fwrite(&len, 8, 1, fp);
  fwrite(h, 1, hl, fp);
  for (size_t i = 0; i < pad; i++) fputc(' ', fp);
  fwrite(w->data, 1, w->n, fp);
  fclose(fp);
  free(h);
  json_decref(w->hdr);
  free(w->data);
  memset(w, 0, sizeof *w);
}

/* ---- kit ----------------------------------------------------------------- */

TEST_IMPL(kit_configs) {
  vtl_model_files *m = open_model(kit("tiny-sd"), NULL, NULL);
  ASSERT_NOT_NULL(m);
  const vtl_unet_config *u = vtl_model_files_unet_config(m);
  ASSERT_NOT_NULL(u);
  ASSERT_EQ(u->num_blocks, 2);
  ASSERT_EQ(u->block_out_channels[0], 32);
  ASSERT_EQ(u->block_out_channels[1], 64);
  ASSERT_EQ(u->layers_per_block[0], 2);
  ASSERT_EQ(u->layers_per_block[1], 2);
  ASSERT(u->down_attn[0] && !u->down_attn[1]);
  ASSERT(!u->up_attn[0] && u->up_attn[1]);
  ASSERT_EQ(u->num_heads[0], 4);
  ASSERT_EQ(u->num_heads[1], 4);
  ASSERT_EQ(vtl_unet_mid_heads(u), 4);
  ASSERT_EQ(u->transformer_layers[0], 1);
  ASSERT_EQ(vtl_unet_mid_transformer_layers(u), 1);
  ASSERT_EQ(vtl_unet_up_layers(u, 0), 3);
  ASSERT_EQ(vtl_unet_up_channels(u, 0), 64);
  ASSERT_EQ(vtl_unet_up_channels(u, 1), 32);
  ASSERT_EQ(u->cross_attention_dim, 32);
  ASSERT(!u->use_linear_projection);
  ASSERT(!u->upcast_attention);
  ASSERT_EQ(u->norm_num_groups, 16);
  ASSERT_NEAR(u->norm_eps, 1e-5, 1e-12);
  ASSERT(u->flip_sin_to_cos);
  ASSERT_NEAR(u->freq_shift, 0, 0);
  ASSERT_EQ(u->act_fn, VTL_ACT_SILU);
  ASSERT_EQ(u->time_embed_dim, 128);
  ASSERT_EQ(u->time_cond_proj_dim, 0);
  ASSERT_EQ(u->in_channels, 4);
  ASSERT_EQ(u->out_channels, 4);
  ASSERT_EQ(u->sample_size, 8);
  ASSERT_EQ(u->conv_in_kernel, 3);
  ASSERT_EQ(u->conv_out_kernel, 3);
  ASSERT_EQ(u->downsample_padding, 1);
  ASSERT_NEAR(u->mid_block_scale_factor, 1, 0);
  ASSERT_EQ(u->prediction_type, VTL_PRED_EPSILON);

  const vtl_vae_config *v = vtl_model_files_vae_config(m);
  ASSERT_NOT_NULL(v);
  ASSERT_NULL(vtl_model_files_taesd_config(m));
  ASSERT_EQ(v->num_blocks, 4);
  ASSERT_EQ(v->block_out_channels[0], 16);
  ASSERT_EQ(v->block_out_channels[3], 32);
  ASSERT_EQ(v->layers_per_block, 2);
  ASSERT_EQ(v->latent_channels, 4);
  ASSERT_EQ(v->in_channels, 3);
  ASSERT_EQ(v->out_channels, 3);
  ASSERT_EQ(v->norm_num_groups, 8);
  ASSERT_NEAR(v->norm_eps, 1e-6, 1e-12);
  ASSERT_NEAR(v->scaling_factor, 0.18215, 1e-7);
  ASSERT_EQ(v->sample_size, 64);
  ASSERT_EQ(v->act_fn, VTL_ACT_SILU);
  ASSERT(v->force_upcast);
  ASSERT(v->mid_block_attention);

  const vtl_clip_config *c = vtl_model_files_clip_config(m);
  ASSERT_NOT_NULL(c);
  ASSERT_EQ(c->hidden_size, 32);
  ASSERT_EQ(c->intermediate_size, 37);
  ASSERT_EQ(c->num_hidden_layers, 3);
  ASSERT_EQ(c->num_attention_heads, 4);
  ASSERT_EQ(c->max_position_embeddings, 77);
  ASSERT_EQ(c->vocab_size, 1068);
  ASSERT_EQ(c->hidden_act, VTL_ACT_QUICK_GELU);
  ASSERT_NEAR(c->layer_norm_eps, 1e-5, 1e-12);
  ASSERT_EQ(c->bos_token_id, 1066);
  ASSERT_EQ(c->eos_token_id, 1067);
  ASSERT_EQ(c->pad_token_id, 1067);
  ASSERT_EQ(c->projection_dim, 32);
  ASSERT(!c->with_projection);

  ASSERT_NOT_NULL(vtl_model_files_tokenizer_dir(m));
  ASSERT_CONTAINS(vtl_model_files_tokenizer_dir(m), "tiny-sd/tokenizer");
  json_t *s = vtl_model_files_scheduler_json(m);
  ASSERT_NOT_NULL(s);
  ASSERT_STR_EQ(json_string_value(json_object_get(s, "_class_name")),
                "DDIMScheduler");
  for (int k = 0; k < VTL_COMP__NWEIGHTS; k++) {
    vtl_weights *w = vtl_model_files_weights(m, (vtl_component)k);
    ASSERT_NOT_NULL(w);
    ASSERT(!vtl_weights_is_ldm(w));
  }
  ASSERT_CONTAINS(vtl_weights_label(vtl_model_files_weights(m, VTL_COMP_UNET)),
                  "unet/diffusion_pytorch_model.safetensors");
  vtl_model_files_close(m);

  /* the same configs through the single file + config dir */
  m = open_model(kit("tiny-sd-ldm.safetensors"), NULL, kit("tiny-sd"));
  ASSERT_NOT_NULL(m);
  ASSERT_EQ(vtl_model_files_unet_config(m)->block_out_channels[1], 64);
  ASSERT_EQ(vtl_model_files_clip_config(m)->eos_token_id, 1067);
  ASSERT_NOT_NULL(vtl_model_files_tokenizer_dir(m));
  vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_VAE);
  ASSERT(vtl_weights_is_ldm(w));
  ASSERT_CONTAINS(vtl_weights_label(w), "[vae: first_stage_model.*]");
  vtl_model_files_close(m);
  vtl_model_files_close(NULL);
  return 0;
}

TEST_IMPL(kit_taesd) {
  vtl_model_files *m = open_model(kit("taesd"), NULL, NULL);
  ASSERT_NOT_NULL(m);
  const vtl_taesd_config *t = vtl_model_files_taesd_config(m);
  ASSERT_NOT_NULL(t);
  ASSERT_NULL(vtl_model_files_vae_config(m));
  ASSERT_NULL(vtl_model_files_unet_config(m));
  ASSERT_NULL(vtl_model_files_weights(m, VTL_COMP_UNET));
  ASSERT_EQ(t->num_encoder_levels, 4);
  ASSERT_EQ(t->num_decoder_levels, 4);
  static const int enc[] = {1, 2, 2, 2}, dec[] = {2, 2, 2, 1};
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(t->num_encoder_blocks[i], enc[i]);
    ASSERT_EQ(t->num_decoder_blocks[i], dec[i]);
    ASSERT_EQ(t->encoder_block_out_channels[i], 16);
    ASSERT_EQ(t->decoder_block_out_channels[i], 16);
  }
  ASSERT_EQ(t->latent_channels, 4);
  ASSERT_EQ(t->in_channels, 3);
  ASSERT_EQ(t->out_channels, 3);
  ASSERT_EQ(t->upsampling_scaling_factor, 2);
  ASSERT_EQ(t->act_fn, VTL_ACT_RELU);
  ASSERT_NEAR(t->latent_magnitude, 3, 0);
  ASSERT_NEAR(t->latent_shift, 0.5, 0);
  ASSERT_NEAR(t->scaling_factor, 1, 0);
  vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_VAE);
  ASSERT_NOT_NULL(w);
  char msg[512];
  ASSERT_EQ(vtl_weights_check_unused(w, msg, sizeof msg), VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "98 tensors");
  ASSERT_EQ(vtl_weights_count(w), 98);
  for (size_t i = 0; i < vtl_weights_count(w); i++) {
    vtl_weight_info info;
    float *v = get_all(w, vtl_weights_key(w, i), &info);
    ASSERT_NOT_NULL(v);
    free(v);
  }
  ASSERT_OK(vtl_weights_check_unused(w, msg, sizeof msg));
  vtl_model_files_close(m);
  return 0;
}

TEST_IMPL(diffusers_all_read) {
  vtl_model_files *m = open_model(kit("tiny-sd"), NULL, NULL);
  ASSERT_NOT_NULL(m);
  static const size_t counts[] = {304, 244, 52};
  char msg[512];
  for (int k = 0; k < VTL_COMP__NWEIGHTS; k++) {
    vtl_weights *w = vtl_model_files_weights(m, (vtl_component)k);
    ASSERT_EQ(vtl_weights_count(w), counts[k]);
    ASSERT_NULL(vtl_weights_key(w, counts[k]));
    for (size_t i = 0; i < counts[k]; i++) {
      const char *name = vtl_weights_key(w, i);
      ASSERT(vtl_weights_has(w, name));
      vtl_weight_info info;
      float *v = get_all(w, name, &info);
      ASSERT_NOT_NULL(v);
      ASSERT_EQ(info.dtype, VTL_ST_F32);
      ASSERT_STR_EQ(info.key, name);
      free(v);
    }
    ASSERT_OK(vtl_weights_check_unused(w, msg, sizeof msg));
  }
  vtl_model_files_close(m);
  return 0;
}

/* Every name of the diffusers source `ref` read through the LDM source:
 * same shape, and value == round(ref) (round: exact F16 rounding of F32
 * weights, or identity when ref is itself the F16 variant). */
static int compare_ldm(vtl_weights *ref, vtl_weights *ldm, int exact) {
  size_t n = vtl_weights_count(ref), values = 0;
  ASSERT_GT(n, 10);
  for (size_t i = 0; i < n; i++) {
    const char *name = vtl_weights_key(ref, i);
    vtl_weight_info a, b;
    float *x = get_all(ref, name, &a), *y = get_all(ldm, name, &b);
    if (!x || !y) TEST_FAIL_("weight '%s' not readable", name);
    if (a.ndim != b.ndim)
      TEST_FAIL_("'%s' (LDM '%s'): ndim %d vs %d", name, b.key, a.ndim,
                 b.ndim);
    for (int d = 0; d < a.ndim; d++) ASSERT_EQ(a.shape[d], b.shape[d]);
    ASSERT_EQ(b.dtype, VTL_ST_F16);
    for (size_t e = 0; e < a.numel; e++) {
      float want = exact ? x[e] : round_f16(x[e]);
      if (bits_of(y[e]) != bits_of(want))
        TEST_FAIL_("'%s' (LDM '%s')[%zu]: %.9g, want %.9g", name, b.key, e,
                   (double)y[e], (double)want);
      /* and within F16's rounding bound of the F32 weight */
      ASSERT(fabs((double)y[e] - x[e]) <=
             fmax(fabs((double)x[e]) * 0x1p-11, 0x1p-25));
      values++;
    }
    free(x);
    free(y);
  }
  return 0;
}

TEST_IMPL(ldm_equals_diffusers) {
  vtl_model_files *d32 = open_model(kit("tiny-sd"), NULL, NULL);
  vtl_model_files *d16 = open_model(kit("tiny-sd"), "fp16", NULL);
  vtl_model_files *ldm =
      open_model(kit("tiny-sd-ldm.safetensors"), NULL, kit("tiny-sd"));
  ASSERT_NOT_NULL(d32);
  ASSERT_NOT_NULL(d16);
  ASSERT_NOT_NULL(ldm);
  char msg[512];
  vtl_weights *lu = vtl_model_files_weights(ldm, VTL_COMP_UNET);
  vtl_weights *lv = vtl_model_files_weights(ldm, VTL_COMP_VAE);
  vtl_weights *lt = vtl_model_files_weights(ldm, VTL_COMP_TEXT_ENCODER);
  /* nothing read yet: every LDM tensor is reported unused */
  ASSERT_EQ(vtl_weights_check_unused(lu, msg, sizeof msg), VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "304 tensors");
  ASSERT_EQ(vtl_weights_count(lu), 304);
  ASSERT_EQ(vtl_weights_count(lv), 244);
  ASSERT_EQ(vtl_weights_count(lt), 52);
  ASSERT_CONTAINS(vtl_weights_key(lu, 0), "model.diffusion_model.");

  /* UNet: exactly the fp16 variant; and F16-rounded F32 */
  vtl_weights *u16 = vtl_model_files_weights(d16, VTL_COMP_UNET);
  ASSERT_CONTAINS(vtl_weights_label(u16), "fp16.safetensors");
  if (compare_ldm(u16, lu, 1)) return 1;
  if (compare_ldm(vtl_model_files_weights(d32, VTL_COMP_UNET), lu, 0))
    return 1;
  if (compare_ldm(vtl_model_files_weights(d32, VTL_COMP_VAE), lv, 0))
    return 1;
  if (compare_ldm(vtl_model_files_weights(d32, VTL_COMP_TEXT_ENCODER), lt, 0))
    return 1;
  /* every LDM key was read through some diffusers name */
  ASSERT_OK(vtl_weights_check_unused(lu, msg, sizeof msg));
  ASSERT_OK(vtl_weights_check_unused(lv, msg, sizeof msg));
  ASSERT_OK(vtl_weights_check_unused(lt, msg, sizeof msg));

  /* the reshape and a few renames, spelled out */
  vtl_weight_info info;
  ASSERT_OK(vtl_weights_info(lv, "encoder.mid_block.attentions.0.to_q.weight",
                             &info, msg, sizeof msg));
  ASSERT_STR_EQ(info.key, "first_stage_model.encoder.mid.attn_1.q.weight");
  ASSERT_EQ(info.ndim, 2);
  ASSERT_EQ(info.shape[0], 32);
  ASSERT_EQ(info.shape[1], 32);
  static const char *const pairs[][2] = {
    {"up_blocks.0.upsamplers.0.conv.weight",
     "model.diffusion_model.output_blocks.2.1.conv.weight"},
    {"down_blocks.0.downsamplers.0.conv.bias",
     "model.diffusion_model.input_blocks.3.0.op.bias"},
    {"down_blocks.1.resnets.1.time_emb_proj.weight",
     "model.diffusion_model.input_blocks.5.0.emb_layers.1.weight"},
    {"up_blocks.1.attentions.2.proj_out.weight",
     "model.diffusion_model.output_blocks.5.1.proj_out.weight"},
    {"up_blocks.1.resnets.0.conv_shortcut.weight",
     "model.diffusion_model.output_blocks.3.0.skip_connection.weight"},
    {"mid_block.resnets.1.norm2.bias",
     "model.diffusion_model.middle_block.2.out_layers.0.bias"},
    {"conv_norm_out.weight", "model.diffusion_model.out.0.weight"},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    ASSERT_OK(vtl_weights_info(lu, pairs[i][0], &info, msg, sizeof msg));
    ASSERT_STR_EQ(info.key, pairs[i][1]);
  }
  ASSERT_OK(vtl_weights_info(lv, "decoder.up_blocks.0.upsamplers.0.conv.bias",
                             &info, msg, sizeof msg));
  ASSERT_STR_EQ(info.key, "first_stage_model.decoder.up.3.upsample.conv.bias");
  ASSERT_OK(vtl_weights_info(lv, "decoder.up_blocks.3.resnets.0.conv_shortcut."
                             "weight", &info, msg, sizeof msg));
  ASSERT_STR_EQ(info.key,
                "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight");
  /* names the architecture does not have */
  ASSERT(!vtl_weights_has(lu, "down_blocks.1.attentions.0.norm.weight"));
  ASSERT(!vtl_weights_has(lu, "down_blocks.1.downsamplers.0.conv.weight"));
  ASSERT(!vtl_weights_has(lu, "up_blocks.1.upsamplers.0.conv.weight"));
  ASSERT(!vtl_weights_has(lu, "down_blocks.0.resnets.2.conv1.weight"));
  ASSERT(!vtl_weights_has(lu, "down_blocks.00.resnets.0.conv1.weight"));
  ASSERT(!vtl_weights_has(lu, "mid_block.resnets.2.conv1.weight"));
  ASSERT(!vtl_weights_has(lv, "decoder.up_blocks.0.resnets.3.conv1.weight"));
  ASSERT(!vtl_weights_has(lt, "embeddings.token_embedding.weight"));
  ASSERT_EQ(vtl_weights_info(lu, "down_blocks.0.resnets.0.bogus.weight",
                             &info, msg, sizeof msg), VTL_ENOENT);
  ASSERT_CONTAINS(msg, "'down_blocks.0.resnets.0.bogus.weight'");
  vtl_model_files_close(d32);
  vtl_model_files_close(d16);
  vtl_model_files_close(ldm);
  return 0;
}

TEST_IMPL(variants) {
  vtl_model_files *m = open_model(kit("tiny-sd"), "bf16", NULL);
  ASSERT_NOT_NULL(m);
  vtl_weights *t = vtl_model_files_weights(m, VTL_COMP_TEXT_ENCODER);
  ASSERT_CONTAINS(vtl_weights_label(t), "text_encoder/model.bf16.safetensors");
  ASSERT_CONTAINS(vtl_weights_label(vtl_model_files_weights(m, VTL_COMP_UNET)),
                  "unet/diffusion_pytorch_model.safetensors");
  vtl_model_files *f = open_model(kit("tiny-sd"), NULL, NULL);
  vtl_weights *t32 = vtl_model_files_weights(f, VTL_COMP_TEXT_ENCODER);
  for (size_t i = 0; i < vtl_weights_count(t32); i++) {
    const char *name = vtl_weights_key(t32, i);
    vtl_weight_info a, b;
    float *x = get_all(t32, name, &a), *y = get_all(t, name, &b);
    ASSERT_NOT_NULL(x);
    ASSERT_NOT_NULL(y);
    ASSERT_EQ(b.dtype, VTL_ST_BF16);
    for (size_t e = 0; e < a.numel; e++) {
      ASSERT_EQ(bits_of(y[e]), bits_of(round_bf16(x[e])));
      ASSERT(fabs((double)y[e] - x[e]) <= fabs((double)x[e]) * 0x1p-8);
    }
    free(x);
    free(y);
  }
  vtl_model_files_close(f);
  vtl_model_files_close(m);

  vtl_model_files *bad = (vtl_model_files *)1;
  vtl_model_open_opts o = {.variant = "int8"};
  char msg[512];
  ASSERT_EQ(vtl_model_files_open(&bad, kit("tiny-sd"), &o, msg, sizeof msg),
            VTL_ENOENT);
  ASSERT_NULL(bad);
  ASSERT_CONTAINS(msg, "variant \"int8\"");
  o.variant = "fp16";
  o.config_dir = kit("tiny-sd");
  ASSERT_EQ(vtl_model_files_open(&bad, kit("tiny-sd-ldm.safetensors"), &o, msg,
                                 sizeof msg), VTL_EINVAL);
  ASSERT_CONTAINS(msg, "variant");
  return 0;
}

TEST_IMPL(get_errors) {
  vtl_model_files *m = open_model(kit("tiny-sd"), NULL, NULL);
  ASSERT_NOT_NULL(m);
  vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_UNET);
  char msg[512];
  float buf[32 * 4 * 9];
  ASSERT_EQ(vtl_weights_get(w, "conv_in.weihgt", buf, 1, msg, sizeof msg),
            VTL_ENOENT);
  ASSERT_CONTAINS(msg, "'conv_in.weihgt'");
  ASSERT_CONTAINS(msg, "unet/diffusion_pytorch_model.safetensors");
  ASSERT_EQ(vtl_weights_get(w, "conv_in.weight", buf, 10, msg, sizeof msg),
            VTL_ERANGE);
  ASSERT_CONTAINS(msg, "[32, 4, 3, 3]");
  ASSERT_EQ(vtl_weights_get_shaped(w, "conv_in.weight", 4,
                                   VTL_DIMS(32, 4, 1, 9), buf, msg,
                                   sizeof msg), VTL_ERANGE);
  ASSERT_CONTAINS(msg, "has shape [32, 4, 3, 3], the config implies "
                       "[32, 4, 1, 9]");
  ASSERT_EQ(vtl_weights_get_shaped(w, "conv_in.weight", 2, VTL_DIMS(32, 36),
                                   buf, msg, sizeof msg), VTL_ERANGE);
  ASSERT_OK(vtl_weights_get_shaped(w, "conv_in.weight", 4,
                                   VTL_DIMS(32, 4, 3, 3), buf, msg,
                                   sizeof msg));
  ASSERT_EQ(vtl_weights_check_unused(w, msg, sizeof msg), VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "303 tensors");
  ASSERT(!vtl_weights_has(NULL, "x"));
  ASSERT_STR_EQ(vtl_weights_label(NULL), "(none)");
  vtl_model_files_close(m);

  /* opening errors */
  vtl_model_files *bad;
  ASSERT_EQ(vtl_model_files_open(&bad, "/nonexistent/model", NULL, msg,
                                 sizeof msg), VTL_ENOENT);
  ASSERT_EQ(vtl_model_files_open(&bad, kit("tiny-sd-ldm.safetensors"), NULL,
                                 msg, sizeof msg), VTL_EINVAL);
  ASSERT_CONTAINS(msg, "config dir");
  ASSERT_EQ(vtl_model_files_open(&bad, kit("tiny-sd/tokenizer"), NULL, msg,
                                 sizeof msg), VTL_ENOENT);
  ASSERT_CONTAINS(msg, "not a diffusers model folder");
  /* a diffusers weights file is not a single-file checkpoint */
  vtl_model_open_opts o = {.config_dir = kit("tiny-sd")};
  ASSERT_EQ(vtl_model_files_open(&bad, kit("tiny-sd/unet/diffusion_pytorch_"
                                           "model.safetensors"), &o, msg,
                                 sizeof msg), VTL_ENOENT);
  ASSERT_CONTAINS(msg, "no UNet in this checkpoint");
  ASSERT_CONTAINS(msg, "'model.diffusion_model.input_blocks.0.0.weight'");
  ASSERT_CONTAINS(msg, "diffusers names: open the model folder");
  return 0;
}

/* Writes the kit's tiny-sd configs (no weights) into scratch/cfg, with the
 * UNet config replaced by unet (when not NULL). */
static void write_config_dir(json_t *unet) {
  mkdir_p("cfg/unet");
  mkdir_p("cfg/vae");
  mkdir_p("cfg/text_encoder");
  copy_in(kit("tiny-sd/model_index.json"), "cfg/model_index.json");
  mkdir_p("cfg/scheduler");
  mkdir_p("cfg/tokenizer");
  copy_in(kit("tiny-sd/scheduler/scheduler_config.json"),
          "cfg/scheduler/scheduler_config.json");
  copy_in(kit("tiny-sd/vae/config.json"), "cfg/vae/config.json");
  copy_in(kit("tiny-sd/text_encoder/config.json"),
          "cfg/text_encoder/config.json");
  if (unet)
    write_json("cfg/unet/config.json", unet);
  else
    copy_in(kit("tiny-sd/unet/config.json"), "cfg/unet/config.json");
}

TEST_IMPL(ldm_wrong_config) {
  scratch_dir();
  char msg[512];
  /* cross_attention_dim 64: attn2.to_k is [C, 32] in the file */
  json_t *u = load_config("tiny-sd/unet/config.json");
  json_object_set_new(u, "cross_attention_dim", json_integer(64));
  write_config_dir(u);
  json_decref(u);
  vtl_model_files *m =
      open_model(kit("tiny-sd-ldm.safetensors"), NULL, in_scratch("cfg"));
  ASSERT_NOT_NULL(m);
  const vtl_unet_config *uc = vtl_model_files_unet_config(m);
  vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_UNET);
  float buf[32 * 64];
  const char *k = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k."
                  "weight";
  ASSERT_EQ(vtl_weights_get_shaped(w, k, 2,
                                   VTL_DIMS(uc->block_out_channels[0],
                                            uc->cross_attention_dim),
                                   buf, msg, sizeof msg), VTL_ERANGE);
  ASSERT_CONTAINS(msg, "stored as model.diffusion_model.input_blocks.1.1."
                       "transformer_blocks.0.attn2.to_k.weight");
  ASSERT_CONTAINS(msg, "has shape [32, 32], the config implies [32, 64]");
  vtl_model_files_close(m);

  /* layers_per_block 1: the renames shift; what the smaller architecture
   * reads leaves tensors unread, and some names land on missing keys */
  u = load_config("tiny-sd/unet/config.json");
  json_object_set_new(u, "layers_per_block", json_integer(1));
  write_config_dir(u);
  json_decref(u);
  m = open_model(kit("tiny-sd-ldm.safetensors"), NULL, in_scratch("cfg"));
  ASSERT_NOT_NULL(m);
  w = vtl_model_files_weights(m, VTL_COMP_UNET);
  vtl_weight_info info;
  ASSERT_EQ(vtl_weights_info(w, "down_blocks.1.resnets.0.conv1.weight", &info,
                             msg, sizeof msg), VTL_ENOENT);
  ASSERT_CONTAINS(msg, "no tensor 'model.diffusion_model.input_blocks.3.0."
                       "in_layers.2.weight' (the unet's 'down_blocks.1.resnets"
                       ".0.conv1.weight')");
  ASSERT_EQ(vtl_weights_info(w, "down_blocks.0.downsamplers.0.conv.weight",
                             &info, msg, sizeof msg), VTL_ENOENT);
  ASSERT_CONTAINS(msg, "no tensor 'model.diffusion_model.input_blocks.2.0.op."
                       "weight'");
  ASSERT_CONTAINS(msg, "does not match the config");
  float *v = get_all(w, "conv_in.weight", &info);
  free(v);
  ASSERT_EQ(vtl_weights_check_unused(w, msg, sizeof msg), VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "303 tensors");
  vtl_model_files_close(m);
  scratch_remove();
  return 0;
}

/* ---- refusals ------------------------------------------------------------ */

/* The kit's UNet config with key set to the JSON text val (NULL: removed)
 * must be refused with code, the message containing needle. */
static int unet_refused(const char *key, const char *val, int code,
                        const char *needle) {
  json_t *j = load_config("tiny-sd/unet/config.json");
  ASSERT_NOT_NULL(j);
  if (val) {
    json_error_t e;
    json_t *v = json_loads(val, JSON_DECODE_ANY, &e);
    ASSERT_NOT_NULL(v);
    json_object_set_new(j, key, v);
  } else {
    json_object_del(j, key);
  }
  vtl_unet_config c;
  char msg[512] = "";
  int rc = vtl_unet_config_from_json(j, "unet/config.json", &c, msg,
                                     sizeof msg);
  json_decref(j);
  if (getenv("VTL_TEST_VERBOSE")) fprintf(stderr, "  %s\n", msg);
  if (rc != code || !strstr(msg, needle) ||
      strncmp(msg, "unet/config.json: ", 18) != 0)
    TEST_FAIL_("%s = %s: rc %s, msg \"%s\" (want %s, \"%s\")", key,
               val ? val : "(removed)", vtl_err_name(rc), msg,
               vtl_err_name(code), needle);
  return 0;
}

TEST_IMPL(unet_refusals) {
  /* the kit's config itself parses */
  json_t *j = load_config("tiny-sd/unet/config.json");
  vtl_unet_config c;
  char msg[512];
  ASSERT_OK(vtl_unet_config_from_json(j, "u", &c, msg, sizeof msg));
  json_decref(j);
  static const struct {
    const char *key, *val;
    int code;
    const char *needle;
  } cases[] = {
    {"_class_name", "\"UNet2DModel\"", VTL_EUNSUPPORTED, "UNet2DConditionModel"},
    {"cross_attention_dim", "[32, 32]", VTL_EUNSUPPORTED, "per-block context"},
    {"class_embed_type", "\"timestep\"", VTL_EUNSUPPORTED, "class embeddings"},
    {"num_class_embeds", "10", VTL_EUNSUPPORTED, "class-conditioned"},
    {"addition_embed_type", "\"text_time\"", VTL_EUNSUPPORTED, "SDXL"},
    {"addition_time_embed_dim", "256", VTL_EUNSUPPORTED, "SDXL"},
    {"encoder_hid_dim_type", "\"text_proj\"", VTL_EUNSUPPORTED,
     "encoder_hid_proj"},
    {"num_attention_heads", "8", VTL_EUNSUPPORTED, "head count"},
    {"down_block_types", "[\"SimpleCrossAttnDownBlock2D\", \"DownBlock2D\"]",
     VTL_EUNSUPPORTED, "'down_block_types'[0] is \"SimpleCrossAttnDownBlock2D\""},
    {"up_block_types", "[\"UpBlock2D\", \"AttnUpBlock2D\"]", VTL_EUNSUPPORTED,
     "AttnUpBlock2D"},
    {"up_block_types", "[\"UpBlock2D\"]", VTL_EINVAL, "as many"},
    {"mid_block_type", "\"UNetMidBlock2DSimpleCrossAttn\"", VTL_EUNSUPPORTED,
     "mid block"},
    {"mid_block_type", "null", VTL_EUNSUPPORTED, "mid block"},
    {"time_embedding_type", "\"fourier\"", VTL_EUNSUPPORTED, "Fourier"},
    {"resnet_time_scale_shift", "\"ada_group\"", VTL_EUNSUPPORTED,
     "\"default\" or \"scale_shift\""},
    {"only_cross_attention", "[false, true]", VTL_EUNSUPPORTED,
     "without self-attention"},
    {"dual_cross_attention", "true", VTL_EUNSUPPORTED, "dual"},
    {"attention_type", "\"gated\"", VTL_EUNSUPPORTED, "GLIGEN"},
    {"transformer_layers_per_block", "[[1, 2], [1]]", VTL_EUNSUPPORTED,
     "asymmetric"},
    {"reverse_transformer_layers_per_block", "[[1], [1]]", VTL_EUNSUPPORTED,
     "asymmetric"},
    {"a_new_key", "1", VTL_EUNSUPPORTED, "unknown key 'a_new_key'"},
    {"attention_head_dim", "5", VTL_EINVAL, "do not split into 5 heads"},
    {"attention_head_dim", "[4, 4, 4]", VTL_EINVAL, "one per block"},
    {"norm_num_groups", "7", VTL_EINVAL, "norm_num_groups 7"},
    {"norm_num_groups", "null", VTL_EUNSUPPORTED, "without GroupNorm"},
    {"layers_per_block", "\"2\"", VTL_ETYPE, "'layers_per_block'"},
    {"layers_per_block", "0", VTL_EINVAL, "'layers_per_block' is 0"},
    {"use_linear_projection", "1", VTL_ETYPE, "true or false"},
    {"act_fn", "\"mish\"", VTL_EUNSUPPORTED, "silu, gelu and relu"},
    {"conv_in_kernel", "4", VTL_EUNSUPPORTED, "odd"},
    {"center_input_sample", "true", VTL_EUNSUPPORTED, "centring"},
    {"block_out_channels", "[32, 64, 64]", VTL_EINVAL, "as many"},
    {"down_block_types", NULL, VTL_EINVAL, "missing"},
    {"sample_size", "[8, 16]", VTL_EUNSUPPORTED, "square"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (unet_refused(cases[i].key, cases[i].val, cases[i].code,
                     cases[i].needle))
      return 1;
  /* accepted variations: per-block heads, linear projections, lists */
  j = load_config("tiny-sd/unet/config.json");
  json_object_set_new(j, "attention_head_dim", json_pack("[i,i]", 2, 8));
  json_object_set_new(j, "use_linear_projection", json_true());
  json_object_set_new(j, "layers_per_block", json_pack("[i,i]", 1, 3));
  json_object_set_new(j, "transformer_layers_per_block",
                      json_pack("[i,i]", 2, 1));
  json_object_set_new(j, "time_cond_proj_dim", json_integer(256));
  json_object_set_new(j, "resnet_time_scale_shift", json_string("scale_shift"));
  json_object_set_new(j, "num_attention_heads", json_null());
  json_object_set_new(j, "upcast_attention", json_true());
  json_object_set_new(j, "freq_shift", json_integer(1));
  ASSERT_OK(vtl_unet_config_from_json(j, "u", &c, msg, sizeof msg));
  ASSERT_EQ(c.num_heads[0], 2);
  ASSERT_EQ(c.num_heads[1], 8);
  ASSERT_EQ(vtl_unet_up_heads(&c, 0), 8);
  ASSERT_EQ(vtl_unet_mid_heads(&c), 8);
  ASSERT_EQ(c.layers_per_block[0], 1);
  ASSERT_EQ(vtl_unet_up_layers(&c, 0), 4);
  ASSERT_EQ(vtl_unet_up_layers(&c, 1), 2);
  ASSERT_EQ(c.transformer_layers[0], 2);
  ASSERT_EQ(vtl_unet_up_transformer_layers(&c, 1), 2);
  ASSERT_EQ(c.time_cond_proj_dim, 256);
  ASSERT(c.time_scale_shift);
  ASSERT(c.use_linear_projection);
  ASSERT_NEAR(c.freq_shift, 1, 0);
  json_decref(j);
  return 0;
}

static int config_refused(const char *rel, const char *key, const char *val,
                          int code, const char *needle) {
  json_t *j = load_config(rel);
  ASSERT_NOT_NULL(j);
  json_error_t e;
  json_t *v = json_loads(val, JSON_DECODE_ANY, &e);
  ASSERT_NOT_NULL(v);
  json_object_set_new(j, key, v);
  char msg[512] = "";
  int rc;
  if (strstr(rel, "vae")) {
    vtl_vae_config c;
    rc = vtl_vae_config_from_json(j, rel, &c, msg, sizeof msg);
  } else if (strstr(rel, "text_encoder")) {
    vtl_clip_config c;
    rc = vtl_clip_config_from_json(j, rel, &c, msg, sizeof msg);
  } else {
    vtl_taesd_config c;
    rc = vtl_taesd_config_from_json(j, rel, &c, msg, sizeof msg);
  }
  json_decref(j);
  if (getenv("VTL_TEST_VERBOSE")) fprintf(stderr, "  %s\n", msg);
  if (rc != code || !strstr(msg, needle) || !strstr(msg, rel))
    TEST_FAIL_("%s: %s = %s: rc %s, msg \"%s\" (want %s, \"%s\")", rel, key,
               val, vtl_err_name(rc), msg, vtl_err_name(code), needle);
  return 0;
}

/* A pipeline folder in scratch whose model_index.json has key = val. */
static int pipeline_refused(const char *key, const char *val, int code,
                            const char *needle) {
  scratch_dir();
  write_config_dir(NULL);
  json_t *idx = load_config("tiny-sd/model_index.json");
  json_error_t e;
  json_object_set_new(idx, key, json_loads(val, JSON_DECODE_ANY, &e));
  write_json("cfg/model_index.json", idx);
  json_decref(idx);
  vtl_model_files *m = (vtl_model_files *)1;
  char msg[512] = "";
  int rc = vtl_model_files_open(&m, in_scratch("cfg"), NULL, msg, sizeof msg);
  scratch_remove();
  if (getenv("VTL_TEST_VERBOSE")) fprintf(stderr, "  %s\n", msg);
  if (rc != code || m != NULL || !strstr(msg, needle))
    TEST_FAIL_("model_index %s = %s: rc %s, msg \"%s\"", key, val,
               vtl_err_name(rc), msg);
  return 0;
}

TEST_IMPL(other_refusals) {
  const char *vae = "tiny-sd/vae/config.json";
  const char *te = "tiny-sd/text_encoder/config.json";
  const char *ta = "taesd/config.json";
  if (config_refused(vae, "_class_name", "\"AutoencoderKLTemporalDecoder\"",
                     VTL_EUNSUPPORTED, "AutoencoderKL") ||
      config_refused(vae, "latents_mean", "[0,0,0,0]", VTL_EUNSUPPORTED,
                     "latent statistics") ||
      config_refused(vae, "shift_factor", "0.1", VTL_EUNSUPPORTED, "shifted") ||
      config_refused(vae, "use_quant_conv", "false", VTL_EUNSUPPORTED,
                     "quant_conv") ||
      config_refused(vae, "down_block_types",
                     "[\"DownBlock2D\",\"DownEncoderBlock2D\","
                     "\"DownEncoderBlock2D\",\"DownEncoderBlock2D\"]",
                     VTL_EUNSUPPORTED, "DownEncoderBlock2D") ||
      config_refused(vae, "block_out_channels", "[16, 32]", VTL_EINVAL,
                     "as many") ||
      config_refused(vae, "norm_num_groups", "5", VTL_EINVAL, "divide") ||
      config_refused(vae, "mystery", "true", VTL_EUNSUPPORTED, "unknown key") ||
      config_refused(te, "hidden_act", "\"relu\"", VTL_EUNSUPPORTED,
                     "quick_gelu and gelu") ||
      config_refused(te, "architectures", "[\"CLIPVisionModel\"]",
                     VTL_EUNSUPPORTED, "CLIPVisionModel") ||
      config_refused(te, "model_type", "\"t5\"", VTL_EUNSUPPORTED, "CLIP") ||
      config_refused(te, "num_attention_heads", "5", VTL_EINVAL, "5 heads") ||
      config_refused(te, "hidden_size", "32.5", VTL_ETYPE, "hidden_size") ||
      config_refused(ta, "num_decoder_blocks", "[1, 1]", VTL_EINVAL,
                     "one entry") ||
      config_refused(ta, "act_fn", "\"quick_gelu\"", VTL_EUNSUPPORTED,
                     "act_fn") ||
      config_refused(ta, "encoder_block_out_channels", "[]", VTL_EUNSUPPORTED,
                     "1 to 8"))
    return 1;
  /* the CLIP reader ignores generic transformers keys, and reads gelu */
  json_t *j = load_config(te);
  json_object_set_new(j, "torch_dtype", json_string("float32"));
  json_object_set_new(j, "hidden_act", json_string("gelu"));
  json_object_set_new(j, "architectures",
                      json_pack("[s]", "CLIPTextModelWithProjection"));
  vtl_clip_config c;
  char msg[512];
  ASSERT_OK(vtl_clip_config_from_json(j, te, &c, msg, sizeof msg));
  ASSERT_EQ(c.hidden_act, VTL_ACT_GELU);
  ASSERT(c.with_projection);
  json_decref(j);

  if (pipeline_refused("_class_name", "\"StableDiffusionXLPipeline\"",
                       VTL_EUNSUPPORTED, "StableDiffusionXLPipeline") ||
      pipeline_refused("text_encoder_2",
                       "[\"transformers\", \"CLIPTextModelWithProjection\"]",
                       VTL_EUNSUPPORTED, "text_encoder_2") ||
      pipeline_refused("unet", "[\"diffusers\", \"UNet2DModel\"]",
                       VTL_EUNSUPPORTED, "UNet2DModel") ||
      pipeline_refused("vae", "[\"diffusers\", \"VQModel\"]",
                       VTL_EUNSUPPORTED, "VQModel"))
    return 1;

  /* a scheduler with v_prediction sets the UNet's prediction type; an
   * unknown one is refused */
  scratch_dir();
  write_config_dir(NULL);
  json_t *s = load_config("tiny-sd/scheduler/scheduler_config.json");
  json_object_set_new(s, "prediction_type", json_string("v_prediction"));
  write_json("cfg/scheduler/scheduler_config.json", s);
  vtl_model_open_opts o = {.config_dir = in_scratch("cfg")};
  vtl_model_files *m;
  ASSERT_OK(vtl_model_files_open(&m, kit("tiny-sd-ldm.safetensors"), &o, msg,
                                 sizeof msg));
  ASSERT_EQ(vtl_model_files_unet_config(m)->prediction_type, VTL_PRED_V);
  vtl_model_files_close(m);
  json_object_set_new(s, "prediction_type", json_string("flow"));
  write_json("cfg/scheduler/scheduler_config.json", s);
  json_decref(s);
  ASSERT_EQ(vtl_model_files_open(&m, kit("tiny-sd-ldm.safetensors"), &o, msg,
                                 sizeof msg), VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "prediction_type \"flow\"");

  /* a config dir whose vae is a TAESD cannot describe a single file */
  copy_in(kit("taesd/config.json"), "cfg/vae/config.json");
  copy_in(kit("tiny-sd/scheduler/scheduler_config.json"),
          "cfg/scheduler/scheduler_config.json");
  ASSERT_EQ(vtl_model_files_open(&m, kit("tiny-sd-ldm.safetensors"), &o, msg,
                                 sizeof msg), VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "AutoencoderTiny");

  /* pickled weights, no weights, no config */
  mkdir_p("pick");
  copy_in(kit("tiny-sd/unet/config.json"), "pick/config.json");
  write_text("pick/diffusion_pytorch_model.bin", "PK");
  ASSERT_EQ(vtl_model_files_open(&m, in_scratch("pick"), NULL, msg,
                                 sizeof msg), VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "pickle");
  unlink(in_scratch("pick/diffusion_pytorch_model.bin"));
  ASSERT_EQ(vtl_model_files_open(&m, in_scratch("pick"), NULL, msg,
                                 sizeof msg), VTL_ENOENT);
  ASSERT_CONTAINS(msg, "no weights");
  write_text("pick/config.json", "{\"_class_name\": \"ControlNetModel\"}");
  ASSERT_EQ(vtl_model_files_open(&m, in_scratch("pick"), NULL, msg,
                                 sizeof msg), VTL_EUNSUPPORTED);
  ASSERT_CONTAINS(msg, "ControlNetModel");
  write_text("pick/config.json", "{\"_class_name\": ");
  ASSERT_EQ(vtl_model_files_open(&m, in_scratch("pick"), NULL, msg,
                                 sizeof msg), VTL_EPARSE);
  /* a damaged weights file in a folder: the reader's message comes through */
  mkdir_p("dmg");
  copy_in(kit("tiny-sd/vae/config.json"), "dmg/config.json");
  write_text("dmg/diffusion_pytorch_model.safetensors", "garbage!garbage!");
  ASSERT_EQ(vtl_model_files_open(&m, in_scratch("dmg"), NULL, msg,
                                 sizeof msg), VTL_EPARSE);
  ASSERT_CONTAINS(msg, "dmg/diffusion_pytorch_model.safetensors: header");
  scratch_remove();
  return 0;
}

/* ---- other layouts, written here from the kit's weights ------------------ */

TEST_IMPL(openclip_layout) {
  vtl_model_files *d = open_model(kit("tiny-sd"), NULL, NULL);
  ASSERT_NOT_NULL(d);
  vtl_weights *t = vtl_model_files_weights(d, VTL_COMP_TEXT_ENCODER);
  const vtl_clip_config *c = vtl_model_files_clip_config(d);
  const int H = c->hidden_size, L = c->num_hidden_layers;
  st_writer sw = {0};
  vtl_weight_info info;
  char name[256], key[256];
  float *v;
  static const char *const top[][2] = {
    {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
    {"text_model.embeddings.position_embedding.weight",
     "positional_embedding"},
    {"text_model.final_layer_norm.weight", "ln_final.weight"},
    {"text_model.final_layer_norm.bias", "ln_final.bias"},
  };
  for (size_t i = 0; i < 4; i++) {
    ASSERT_NOT_NULL(v = get_all(t, top[i][0], &info));
    snprintf(key, sizeof key, "cond_stage_model.model.%s", top[i][1]);
    stw_add(&sw, key, info.ndim, info.shape, v);
    free(v);
  }
  static const char *const per_layer[][2] = {
    {"layer_norm1", "ln_1"}, {"layer_norm2", "ln_2"}, {"mlp.fc1", "mlp.c_fc"},
    {"mlp.fc2", "mlp.c_proj"}, {"self_attn.out_proj", "attn.out_proj"},
  };
  for (int l = 0; l <= L; l++) { /* one layer more than the config uses */
    int src = l < L ? l : L - 1;
    for (size_t i = 0; i < 5; i++)
      for (int b = 0; b < 2; b++) {
        const char *leaf = b ? "bias" : "weight";
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.%s.%s", src,
                 per_layer[i][0], leaf);
        ASSERT_NOT_NULL(v = get_all(t, name, &info));
        snprintf(key, sizeof key,
                 "cond_stage_model.model.transformer.resblocks.%d.%s.%s", l,
                 per_layer[i][1], leaf);
        stw_add(&sw, key, info.ndim, info.shape, v);
        free(v);
      }
    for (int b = 0; b < 2; b++) { /* q, k, v stacked */
      size_t per = b ? (size_t)H : (size_t)H * H;
      float *qkv = malloc(3 * per * sizeof *qkv);
      static const char *const p3[] = {"q_proj", "k_proj", "v_proj"};
      for (int q = 0; q < 3; q++) {
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.self_attn."
                 "%s.%s", src, p3[q], b ? "bias" : "weight");
        ASSERT_OK(vtl_weights_get(t, name, qkv + q * per, per, NULL, 0));
      }
      snprintf(key, sizeof key, "cond_stage_model.model.transformer."
               "resblocks.%d.attn.in_proj_%s", l, b ? "bias" : "weight");
      stw_add(&sw, key, b ? 1 : 2, b ? VTL_DIMS(3 * H) : VTL_DIMS(3 * H, H),
              qkv);
      free(qkv);
    }
  }
  float proj[32 * 32] = {0}, scale = 4.6f;
  stw_add(&sw, "cond_stage_model.model.text_projection", 2, VTL_DIMS(H, H),
          proj);
  stw_add(&sw, "cond_stage_model.model.logit_scale", 0, NULL, &scale);
  scratch_dir();
  mkdir_p("cfg/text_encoder");
  copy_in(kit("tiny-sd/text_encoder/config.json"),
          "cfg/text_encoder/config.json");
  stw_write(&sw, in_scratch("openclip.safetensors"));

  vtl_model_files *o = open_model(in_scratch("openclip.safetensors"), NULL,
                                  in_scratch("cfg"));
  ASSERT_NOT_NULL(o);
  ASSERT_NULL(vtl_model_files_weights(o, VTL_COMP_UNET));
  vtl_weights *ot = vtl_model_files_weights(o, VTL_COMP_TEXT_ENCODER);
  ASSERT_CONTAINS(vtl_weights_label(ot), "cond_stage_model.model.*");
  for (size_t i = 0; i < vtl_weights_count(t); i++) {
    const char *n = vtl_weights_key(t, i);
    vtl_weight_info a, b;
    float *x = get_all(t, n, &a), *y = get_all(ot, n, &b);
    if (!x || !y) TEST_FAIL_("'%s' unreadable", n);
    ASSERT_EQ(a.ndim, b.ndim);
    for (int dd = 0; dd < a.ndim; dd++) ASSERT_EQ(a.shape[dd], b.shape[dd]);
    for (size_t e = 0; e < a.numel; e++) ASSERT_EQ(bits_of(x[e]), bits_of(y[e]));
    free(x);
    free(y);
  }
  char msg[512];
  /* the extra layer, text_projection and logit_scale are not needed */
  ASSERT_OK(vtl_weights_check_unused(ot, msg, sizeof msg));
  ASSERT_OK(vtl_weights_info(ot, "text_model.encoder.layers.1.self_attn.k_proj."
                             "weight", &info, msg, sizeof msg));
  ASSERT_STR_EQ(info.key, "cond_stage_model.model.transformer.resblocks.1."
                          "attn.in_proj_weight");
  ASSERT_EQ(info.ndim, 2);
  ASSERT_EQ(info.shape[0], H);
  vtl_model_files_close(o);
  vtl_model_files_close(d);
  scratch_remove();
  return 0;
}

TEST_IMPL(sharded_weights) {
  vtl_model_files *d = open_model(kit("tiny-sd"), NULL, NULL);
  ASSERT_NOT_NULL(d);
  vtl_weights *u = vtl_model_files_weights(d, VTL_COMP_UNET);
  scratch_dir();
  mkdir_p("unet");
  copy_in(kit("tiny-sd/unet/config.json"), "unet/config.json");
  st_writer a = {0}, b = {0};
  json_t *map = json_object();
  for (size_t i = 0; i < vtl_weights_count(u); i++) {
    const char *n = vtl_weights_key(u, i);
    vtl_weight_info info;
    float *v = get_all(u, n, &info);
    ASSERT_NOT_NULL(v);
    bool first = strncmp(n, "down_blocks", 11) == 0;
    stw_add(first ? &a : &b, n, info.ndim, info.shape, v);
    json_object_set_new(map, n, json_string(first ? "part-1.safetensors"
                                                  : "part-2.safetensors"));
    free(v);
  }
  stw_write(&a, in_scratch("unet/part-1.safetensors"));
  stw_write(&b, in_scratch("unet/part-2.safetensors"));
  json_t *idx = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 1,
                          "weight_map", map);
  write_json("unet/diffusion_pytorch_model.safetensors.index.json", idx);
  json_decref(idx);

  vtl_model_files *s = open_model(in_scratch("unet"), NULL, NULL);
  ASSERT_NOT_NULL(s);
  vtl_weights *su = vtl_model_files_weights(s, VTL_COMP_UNET);
  ASSERT_CONTAINS(vtl_weights_label(su), "index.json");
  ASSERT_EQ(vtl_weights_count(su), vtl_weights_count(u));
  for (size_t i = 0; i < vtl_weights_count(u); i++) {
    const char *n = vtl_weights_key(u, i);
    vtl_weight_info ia, ib;
    float *x = get_all(u, n, &ia), *y = get_all(su, n, &ib);
    ASSERT_NOT_NULL(x);
    ASSERT_NOT_NULL(y);
    ASSERT_EQ(ia.numel, ib.numel);
    ASSERT(memcmp(x, y, ia.numel * 4) == 0);
    free(x);
    free(y);
  }
  char msg[512];
  ASSERT_OK(vtl_weights_check_unused(su, msg, sizeof msg));
  ASSERT_EQ(vtl_weights_get(su, "nope.weight", NULL, 0, msg, sizeof msg),
            VTL_ENOENT);
  ASSERT_CONTAINS(msg, "weight_map");
  vtl_model_files_close(s);
  /* an index naming a file outside the folder is refused */
  write_text("unet/diffusion_pytorch_model.safetensors.index.json",
             "{\"weight_map\": {\"conv_in.weight\": \"../x.safetensors\"}}");
  vtl_model_files *bad;
  ASSERT_EQ(vtl_model_files_open(&bad, in_scratch("unet"), NULL, msg,
                                 sizeof msg), VTL_EPARSE);
  ASSERT_CONTAINS(msg, "not a file name in the folder");
  vtl_model_files_close(d);
  scratch_remove();
  return 0;
}

TEST_IMPL(legacy_vae_names) {
  vtl_model_files *d = open_model(kit("tiny-sd"), NULL, NULL);
  ASSERT_NOT_NULL(d);
  vtl_weights *v = vtl_model_files_weights(d, VTL_COMP_VAE);
  scratch_dir();
  mkdir_p("vae");
  copy_in(kit("tiny-sd/vae/config.json"), "vae/config.json");
  st_writer w = {0};
  static const char *const news[] = {"to_q.", "to_k.", "to_v.", "to_out.0."};
  static const char *const olds[] = {"query.", "key.", "value.",
                                     "proj_attn."};
  for (size_t i = 0; i < vtl_weights_count(v); i++) {
    const char *n = vtl_weights_key(v, i);
    char old[256];
    snprintf(old, sizeof old, "%s", n);
    for (int k = 0; k < 4; k++) {
      const char *at = strstr(n, news[k]);
      if (at && strstr(n, "mid_block.attentions.0."))
        snprintf(old, sizeof old, "%.*s%s%s", (int)(at - n), n, olds[k],
                 at + strlen(news[k]));
    }
    vtl_weight_info info;
    float *x = get_all(v, n, &info);
    ASSERT_NOT_NULL(x);
    stw_add(&w, old, info.ndim, info.shape, x);
    free(x);
  }
  stw_write(&w, in_scratch("vae/diffusion_pytorch_model.safetensors"));
  vtl_model_files *m = open_model(in_scratch("vae"), NULL, NULL);
  ASSERT_NOT_NULL(m);
  vtl_weights *lv = vtl_model_files_weights(m, VTL_COMP_VAE);
  vtl_weight_info info;
  char msg[512];
  ASSERT_OK(vtl_weights_info(lv, "decoder.mid_block.attentions.0.to_out.0.bias",
                             &info, msg, sizeof msg));
  ASSERT_STR_EQ(info.key, "decoder.mid_block.attentions.0.proj_attn.bias");
  for (size_t i = 0; i < vtl_weights_count(v); i++) {
    float *x = get_all(lv, vtl_weights_key(v, i), &info);
    ASSERT_NOT_NULL(x);
    free(x);
  }
  ASSERT_OK(vtl_weights_check_unused(lv, msg, sizeof msg));
  vtl_model_files_close(m);
  vtl_model_files_close(d);
  scratch_remove();
  return 0;
}

TEST_LIST(TEST_ENTRY(kit_configs) TEST_ENTRY(kit_taesd)
              TEST_ENTRY(diffusers_all_read) TEST_ENTRY(ldm_equals_diffusers)
                  TEST_ENTRY(variants) TEST_ENTRY(get_errors)
                      TEST_ENTRY(ldm_wrong_config) TEST_ENTRY(unet_refusals)
                          TEST_ENTRY(other_refusals)
                              TEST_ENTRY(openclip_layout)
                                  TEST_ENTRY(sharded_weights)
                                      TEST_ENTRY(legacy_vae_names))
