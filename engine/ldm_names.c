/* ldm_names.c — the one table of diffusers <-> original (LDM) weight names.
 *
 * Single-file Stable Diffusion checkpoints keep the module names of the
 * original CompVis code; diffusers renamed and regrouped them. We learned
 * the correspondence from diffusers v0.27.2 (convert_from_ckpt.py, which
 * reads original -> diffusers, and scripts/convert_diffusers_to_original_
 * stable_diffusion.py, which writes diffusers -> original) and wrote it
 * here in the direction the engine needs: every weight is asked for by its
 * diffusers name, translated, then looked up. The script hard-codes SD
 * 1.x's four blocks; here the block indices come from the config, as
 * convert_from_ckpt derives them, so other depths and widths work.
 *
 * Component prefixes (vtl__ldm_detect):
 *
 *   UNet          model.diffusion_model.
 *   VAE           first_stage_model.       (or none: a standalone VAE file)
 *   text encoder  cond_stage_model.transformer.   CLIP, text_model.* as in
 *                                                 transformers (SD 1.x)
 *                 conditioner.embedders.0.transformer.  the same
 *                 cond_stage_model.model.         OpenCLIP (SD 2.x)
 *
 * UNet (N blocks; L_i = layers_per_block of down block i; up block i has
 * n_i = L_{N-1-i} + 1 resnets; A = the block has attention):
 *
 *   diffusers                              original
 *   time_embedding.linear_1 / linear_2     time_embed.0 / time_embed.2
 *   conv_in                                input_blocks.0.0
 *   down_blocks.i.resnets.j                input_blocks.(s_i + j).0    s_i = 1 + sum_{k<i} (L_k + 1)
 *   down_blocks.i.attentions.j             input_blocks.(s_i + j).1
 *   down_blocks.i.downsamplers.0.conv      input_blocks.(s_i + L_i).0.op      (i < N-1)
 *   mid_block.resnets.0 / attentions.0 / resnets.1
 *                                          middle_block.0 / .1 / .2
 *   up_blocks.i.resnets.j                  output_blocks.(u_i + j).0   u_i = sum_{k<i} n_k
 *   up_blocks.i.attentions.j               output_blocks.(u_i + j).1
 *   up_blocks.i.upsamplers.0.conv          output_blocks.(u_i + n_i - 1).(A ? 2 : 1).conv  (i < N-1)
 *   conv_norm_out / conv_out               out.0 / out.2
 *
 *   inside a resnet: norm1 = in_layers.0, conv1 = in_layers.2,
 *   time_emb_proj = emb_layers.1, norm2 = out_layers.0, conv2 =
 *   out_layers.3, conv_shortcut = skip_connection (the parameter-free
 *   in_layers.1 SiLU, emb_layers.0 SiLU, out_layers.1 SiLU and .2 dropout
 *   have no weights). Inside an attention (Transformer2DModel =
 *   SpatialTransformer) the names are the same on both sides; proj_in /
 *   proj_out are [C,C,1,1] convs or [C,C] linears as use_linear_projection
 *   says, and are reported in that shape whichever the file stores.
 *
 * VAE (N blocks, L = layers_per_block; the original numbers the decoder's
 * up blocks from the shallowest, diffusers from the deepest):
 *
 *   encoder.down_blocks.i.resnets.j        encoder.down.i.block.j
 *   encoder.down_blocks.i.downsamplers.0.conv  encoder.down.i.downsample.conv  (i < N-1)
 *   decoder.up_blocks.i.resnets.j          decoder.up.(N-1-i).block.j        (j <= L)
 *   decoder.up_blocks.i.upsamplers.0.conv  decoder.up.(N-1-i).upsample.conv  (i < N-1)
 *   X.mid_block.resnets.k                  X.mid.block_(k+1)
 *   X.mid_block.attentions.0.group_norm    X.mid.attn_1.norm
 *   X.mid_block.attentions.0.to_q/to_k/to_v/to_out.0
 *                                          X.mid.attn_1.q/k/v/proj_out
 *                                          ([C,C,1,1] 1x1 convs, read as [C,C])
 *   X.conv_norm_out                        X.norm_out
 *   conv_shortcut (in resnets)             nin_shortcut
 *   conv_in, conv_out, quant_conv, post_quant_conv: unchanged
 *
 * Text encoder: CLIP layouts add the prefix (HF_BARE also drops
 * "text_model."). OpenCLIP:
 *
 *   text_model.embeddings.token_embedding.weight     token_embedding.weight
 *   text_model.embeddings.position_embedding.weight  positional_embedding
 *   text_model.final_layer_norm                      ln_final
 *   text_model.encoder.layers.i.                     transformer.resblocks.i.
 *     layer_norm1 / layer_norm2                        ln_1 / ln_2
 *     mlp.fc1 / mlp.fc2                                mlp.c_fc / mlp.c_proj
 *     self_attn.out_proj                               attn.out_proj
 *     self_attn.q_proj/k_proj/v_proj.weight|bias       attn.in_proj_weight|bias,
 *                                                      rows [0,H) / [H,2H) / [2H,3H)
 *
 * Old diffusers folders (e.g. SD 1.x VAEs saved before diffusers 0.14)
 * name the VAE attention query / key / value / proj_attn instead of to_q /
 * to_k / to_v / to_out.0 (vtl__diffusers_legacy_name).
 */
#include "ldm_names.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vtl_error.h"

typedef struct {
  const char *diffusers; /* name prefix on the diffusers side */
  const char *ldm;       /* what it becomes */
  int want_ndim;         /* for a ".weight" leaf: vtl__ldm_ref.want_ndim */
} rename_rule;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the tables ---------------------------------------------------------- */

static const rename_rule unet_top[] = {
  {"time_embedding.linear_1.", "time_embed.0.", 0},
  {"time_embedding.linear_2.", "time_embed.2.", 0},
  {"conv_in.", "input_blocks.0.0.", 0},
  {"conv_norm_out.", "out.0.", 0},
  {"conv_out.", "out.2.", 0},
};

static const rename_rule unet_resnet[] = {
  {"norm1.", "in_layers.0.", 0},
  {"conv1.", "in_layers.2.", 0},
  {"time_emb_proj.", "emb_layers.1.", 0},
  {"norm2.", "out_layers.0.", 0},
  {"conv2.", "out_layers.3.", 0},
  {"conv_shortcut.", "skip_connection.", 0},
};

static const rename_rule vae_top[] = {
  {"encoder.conv_in.", "encoder.conv_in.", 0},
  {"encoder.conv_out.", "encoder.conv_out.", 0},
  {"encoder.conv_norm_out.", "encoder.norm_out.", 0},
  {"decoder.conv_in.", "decoder.conv_in.", 0},
  {"decoder.conv_out.", "decoder.conv_out.", 0},
  {"decoder.conv_norm_out.", "decoder.norm_out.", 0},
  {"quant_conv.", "quant_conv.", 0},
  {"post_quant_conv.", "post_quant_conv.", 0},
};

static const rename_rule vae_resnet[] = {
  {"norm1.", "norm1.", 0},
  {"conv1.", "conv1.", 0},
  {"norm2.", "norm2.", 0},
  {"conv2.", "conv2.", 0},
  {"conv_shortcut.", "nin_shortcut.", 0},
};

static const rename_rule vae_attn[] = {
  {"group_norm.", "norm.", 0},
  {"to_q.", "q.", 2},
  {"to_k.", "k.", 2},
  {"to_v.", "v.", 2},
  {"to_out.0.", "proj_out.", 2},
};

static const rename_rule openclip_top[] = {
  {"text_model.embeddings.token_embedding.", "token_embedding.", 0},
  {"text_model.embeddings.position_embedding.weight", "positional_embedding",
   0},
  {"text_model.final_layer_norm.", "ln_final.", 0},
};

static const rename_rule openclip_layer[] = {
  {"layer_norm1.", "ln_1.", 0},
  {"layer_norm2.", "ln_2.", 0},
  {"mlp.fc1.", "mlp.c_fc.", 0},
  {"mlp.fc2.", "mlp.c_proj.", 0},
  {"self_attn.out_proj.", "attn.out_proj.", 0},
};

static const struct {
  const char *diffusers, *ldm;
  int part; /* of 3 */
} openclip_qkv[] = {
  {"self_attn.q_proj.weight", "attn.in_proj_weight", 0},
  {"self_attn.k_proj.weight", "attn.in_proj_weight", 1},
  {"self_attn.v_proj.weight", "attn.in_proj_weight", 2},
  {"self_attn.q_proj.bias", "attn.in_proj_bias", 0},
  {"self_attn.k_proj.bias", "attn.in_proj_bias", 1},
  {"self_attn.v_proj.bias", "attn.in_proj_bias", 2},
};

/* diffusers (new) -> diffusers before the attention processor rewrite. */
static const rename_rule legacy_vae_attn[] = {
  {"to_q.", "query.", 0},
  {"to_k.", "key.", 0},
  {"to_v.", "value.", 0},
  {"to_out.0.", "proj_attn.", 0},
};

/* Probes: a key every checkpoint of that layout holds. */
static const struct {
  vtl_component comp;
  const char *prefix;
  vtl__text_layout text;
  const char *probe; /* after the prefix */
} layouts[] = {
  {VTL_COMP_UNET, "model.diffusion_model.", 0, "input_blocks.0.0.weight"},
  {VTL_COMP_VAE, "first_stage_model.", 0, "encoder.conv_in.weight"},
  {VTL_COMP_VAE, "", 0, "encoder.conv_in.weight"},
  {VTL_COMP_TEXT_ENCODER, "cond_stage_model.transformer.", VTL__TEXT_HF,
   "text_model.embeddings.token_embedding.weight"},
  {VTL_COMP_TEXT_ENCODER, "conditioner.embedders.0.transformer.",
   VTL__TEXT_HF, "text_model.embeddings.token_embedding.weight"},
  {VTL_COMP_TEXT_ENCODER, "cond_stage_model.transformer.", VTL__TEXT_HF_BARE,
   "embeddings.token_embedding.weight"},
  {VTL_COMP_TEXT_ENCODER, "cond_stage_model.model.", VTL__TEXT_OPENCLIP,
   "token_embedding.weight"},
};

/* ---- helpers ------------------------------------------------------------- */

/* Consumes lit at *p. */
static int eat(const char **p, const char *lit) {
  size_t n = strlen(lit);
  if (strncmp(*p, lit, n) != 0) return 0;
  *p += n;
  return 1;
}

/* Consumes "<decimal>." (no sign, no leading zeros) at *p. */
static int eat_idx(const char **p, int *out) {
  const char *s = *p;
  int v = 0, n = 0;
  while (s[n] >= '0' && s[n] <= '9') {
    if (n == 4) return 0;
    v = v * 10 + (s[n] - '0');
    n++;
  }
  if (n == 0 || s[n] != '.' || (n > 1 && s[0] == '0')) return 0;
  *p = s + n + 1;
  *out = v;
  return 1;
}

/* The rule whose diffusers prefix starts name (the rest in *rest). */
static const rename_rule *match(const rename_rule *t, size_t n,
                                const char *name, const char **rest) {
  for (size_t i = 0; i < n; i++) {
    size_t k = strlen(t[i].diffusers);
    if (strncmp(name, t[i].diffusers, k) == 0) {
      *rest = name + k;
      return &t[i];
    }
  }
  return NULL;
}

static int put(vtl__ldm_ref *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int put(vtl__ldm_ref *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(r->key, sizeof r->key, fmt, ap);
  va_end(ap);
  return k < 0 || (size_t)k >= sizeof r->key ? VTL_ETOOLONG : 0;
}

/* base + the rule of table that starts local; want_ndim for weights. */
static int put_rule(vtl__ldm_ref *r, const char *pre, const char *base,
                    const rename_rule *t, size_t n, const char *local) {
  const char *rest;
  const rename_rule *e = match(t, n, local, &rest);
  if (!e) return VTL_ENOENT;
  if (strcmp(rest, "weight") == 0) r->want_ndim = e->want_ndim;
  return put(r, "%s%s%s%s", pre, base, e->ldm, rest);
}

/* A UNet attention: names unchanged inside; shapes of the projections. */
static int put_unet_attn(vtl__ldm_ref *r, const vtl_unet_config *c,
                         const char *pre, const char *base,
                         const char *local) {
  if (strcmp(local, "proj_in.weight") == 0 ||
      strcmp(local, "proj_out.weight") == 0)
    r->want_ndim = c->use_linear_projection ? 2 : 4;
  else if (strstr(local, ".to_") && strlen(local) > 7 &&
           strcmp(local + strlen(local) - 7, ".weight") == 0)
    r->want_ndim = 2; /* attn1/attn2 to_q ... (convert_from_ckpt squeezes
                         them when a checkpoint stores 1x1 convs) */
  return put(r, "%s%s%s", pre, base, local);
}

/* ---- UNet ---------------------------------------------------------------- */

static int unet_rename(const vtl_unet_config *c, const char *pre,
                       const char *name, vtl__ldm_ref *r) {
  const char *p = name, *rest;
  const int N = c->num_blocks;
  char base[64];
  int i, j;
  const rename_rule *e = match(unet_top, COUNT(unet_top), name, &rest);
  if (e) return put(r, "%s%s%s", pre, e->ldm, rest);

  if (eat(&p, "down_blocks.")) {
    if (!eat_idx(&p, &i) || i >= N) return VTL_ENOENT;
    int s = 1, L = c->layers_per_block[i];
    for (int k = 0; k < i; k++) s += c->layers_per_block[k] + 1;
    if (eat(&p, "resnets.")) {
      if (!eat_idx(&p, &j) || j >= L) return VTL_ENOENT;
      snprintf(base, sizeof base, "input_blocks.%d.0.", s + j);
      return put_rule(r, pre, base, unet_resnet, COUNT(unet_resnet), p);
    }
    if (eat(&p, "attentions.")) {
      if (!c->down_attn[i] || !eat_idx(&p, &j) || j >= L) return VTL_ENOENT;
      snprintf(base, sizeof base, "input_blocks.%d.1.", s + j);
      return put_unet_attn(r, c, pre, base, p);
    }
    if (i < N - 1 && eat(&p, "downsamplers.0.conv."))
      return put(r, "%sinput_blocks.%d.0.op.%s", pre, s + L, p);
    return VTL_ENOENT;
  }

  if (eat(&p, "mid_block.")) {
    if (eat(&p, "resnets.")) {
      if (!eat_idx(&p, &j) || j >= 2) return VTL_ENOENT;
      snprintf(base, sizeof base, "middle_block.%d.", 2 * j);
      return put_rule(r, pre, base, unet_resnet, COUNT(unet_resnet), p);
    }
    if (eat(&p, "attentions.0."))
      return put_unet_attn(r, c, pre, "middle_block.1.", p);
    return VTL_ENOENT;
  }

  if (eat(&p, "up_blocks.")) {
    if (!eat_idx(&p, &i) || i >= N) return VTL_ENOENT;
    int u = 0, n = vtl_unet_up_layers(c, i);
    for (int k = 0; k < i; k++) u += vtl_unet_up_layers(c, k);
    if (eat(&p, "resnets.")) {
      if (!eat_idx(&p, &j) || j >= n) return VTL_ENOENT;
      snprintf(base, sizeof base, "output_blocks.%d.0.", u + j);
      return put_rule(r, pre, base, unet_resnet, COUNT(unet_resnet), p);
    }
    if (eat(&p, "attentions.")) {
      if (!c->up_attn[i] || !eat_idx(&p, &j) || j >= n) return VTL_ENOENT;
      snprintf(base, sizeof base, "output_blocks.%d.1.", u + j);
      return put_unet_attn(r, c, pre, base, p);
    }
    if (i < N - 1 && eat(&p, "upsamplers.0.conv."))
      return put(r, "%soutput_blocks.%d.%d.conv.%s", pre, u + n - 1,
                 c->up_attn[i] ? 2 : 1, p);
    return VTL_ENOENT;
  }
  return VTL_ENOENT;
}

/* ---- VAE ----------------------------------------------------------------- */

static int vae_mid(const vtl_vae_config *c, const char *pre, const char *side,
                   const char *p, vtl__ldm_ref *r) {
  char base[64];
  int k;
  if (eat(&p, "resnets.")) {
    if (!eat_idx(&p, &k) || k >= 2) return VTL_ENOENT;
    snprintf(base, sizeof base, "%s.mid.block_%d.", side, k + 1);
    return put_rule(r, pre, base, vae_resnet, COUNT(vae_resnet), p);
  }
  if (c->mid_block_attention && eat(&p, "attentions.0.")) {
    snprintf(base, sizeof base, "%s.mid.attn_1.", side);
    return put_rule(r, pre, base, vae_attn, COUNT(vae_attn), p);
  }
  return VTL_ENOENT;
}

static int vae_rename(const vtl_vae_config *c, const char *pre,
                      const char *name, vtl__ldm_ref *r) {
  const char *p = name, *rest;
  const int N = c->num_blocks, L = c->layers_per_block;
  char base[64];
  int i, j;
  const rename_rule *e = match(vae_top, COUNT(vae_top), name, &rest);
  if (e) return put(r, "%s%s%s", pre, e->ldm, rest);

  if (eat(&p, "encoder.down_blocks.")) {
    if (!eat_idx(&p, &i) || i >= N) return VTL_ENOENT;
    if (eat(&p, "resnets.")) {
      if (!eat_idx(&p, &j) || j >= L) return VTL_ENOENT;
      snprintf(base, sizeof base, "encoder.down.%d.block.%d.", i, j);
      return put_rule(r, pre, base, vae_resnet, COUNT(vae_resnet), p);
    }
    if (i < N - 1 && eat(&p, "downsamplers.0.conv."))
      return put(r, "%sencoder.down.%d.downsample.conv.%s", pre, i, p);
    return VTL_ENOENT;
  }
  if (eat(&p, "decoder.up_blocks.")) {
    if (!eat_idx(&p, &i) || i >= N) return VTL_ENOENT;
    int b = N - 1 - i;
    if (eat(&p, "resnets.")) {
      if (!eat_idx(&p, &j) || j > L) return VTL_ENOENT;
      snprintf(base, sizeof base, "decoder.up.%d.block.%d.", b, j);
      return put_rule(r, pre, base, vae_resnet, COUNT(vae_resnet), p);
    }
    if (i < N - 1 && eat(&p, "upsamplers.0.conv."))
      return put(r, "%sdecoder.up.%d.upsample.conv.%s", pre, b, p);
    return VTL_ENOENT;
  }
  if (eat(&p, "encoder.mid_block.")) return vae_mid(c, pre, "encoder", p, r);
  if (eat(&p, "decoder.mid_block.")) return vae_mid(c, pre, "decoder", p, r);
  return VTL_ENOENT;
}

/* ---- text encoder -------------------------------------------------------- */

static int text_rename(const vtl_clip_config *c, const vtl__ldm_layout *l,
                       const char *name, vtl__ldm_ref *r) {
  const char *p = name, *rest;
  const char *pre = l->prefix;
  (void)c;
  switch (l->text) {
  case VTL__TEXT_HF:
    if (strncmp(name, "text_model.", 11) != 0) return VTL_ENOENT;
    return put(r, "%s%s", pre, name);
  case VTL__TEXT_HF_BARE:
    if (!eat(&p, "text_model.")) return VTL_ENOENT;
    return put(r, "%s%s", pre, p);
  case VTL__TEXT_OPENCLIP: {
    const rename_rule *e = match(openclip_top, COUNT(openclip_top), name,
                                 &rest);
    if (e) return put(r, "%s%s%s", pre, e->ldm, rest);
    int i;
    if (!eat(&p, "text_model.encoder.layers.") || !eat_idx(&p, &i))
      return VTL_ENOENT;
    for (size_t k = 0; k < COUNT(openclip_qkv); k++)
      if (strcmp(p, openclip_qkv[k].diffusers) == 0) {
        r->parts = 3;
        r->part = openclip_qkv[k].part;
        return put(r, "%stransformer.resblocks.%d.%s", pre, i,
                   openclip_qkv[k].ldm);
      }
    char base[64];
    snprintf(base, sizeof base, "transformer.resblocks.%d.", i);
    return put_rule(r, pre, base, openclip_layer, COUNT(openclip_layer), p);
  }
  }
  return VTL_ENOENT;
}

/* ---- entry points -------------------------------------------------------- */

int vtl__ldm_detect(const vtl_st_file *f, vtl_component c,
                    vtl__ldm_layout *out, char *msg, size_t msglen) {
  char key[256];
  size_t k = 0;
  for (size_t i = 0; i < COUNT(layouts); i++) {
    if (layouts[i].comp != c) continue;
    snprintf(key, sizeof key, "%s%s", layouts[i].prefix, layouts[i].probe);
    if (vtl_st_find(f, key)) {
      out->prefix = layouts[i].prefix;
      out->text = layouts[i].text;
      return 0;
    }
  }
  if (msg && msglen) {
    k = (size_t)snprintf(msg, msglen, "%s: no %s in this checkpoint (none "
                         "of the keys", vtl_st_path(f),
                         c == VTL_COMP_UNET ? "UNet"
                         : c == VTL_COMP_VAE ? "VAE" : "text encoder");
    for (size_t i = 0; i < COUNT(layouts) && k < msglen; i++)
      if (layouts[i].comp == c)
        k += (size_t)snprintf(msg + k, msglen - k, " '%s%s'",
                              layouts[i].prefix, layouts[i].probe);
    if (k < msglen) snprintf(msg + k, msglen - k, ")");
  }
  return VTL_ENOENT;
}

int vtl__ldm_rename(vtl_component c, const void *config,
                    const vtl__ldm_layout *l, const char *name,
                    vtl__ldm_ref *out) {
  memset(out, 0, sizeof *out);
  switch (c) {
  case VTL_COMP_UNET: return unet_rename(config, l->prefix, name, out);
  case VTL_COMP_VAE: return vae_rename(config, l->prefix, name, out);
  case VTL_COMP_TEXT_ENCODER: return text_rename(config, l, name, out);
  default: return VTL_ENOENT;
  }
}

int vtl__ldm_ignored(vtl_component c, const void *config,
                     const vtl__ldm_layout *l, const char *key) {
  const char *p = key;
  if (c != VTL_COMP_TEXT_ENCODER || !eat(&p, l->prefix)) return 0;
  const vtl_clip_config *cc = config;
  int i;
  switch (l->text) {
  case VTL__TEXT_HF: return strcmp(p, "text_model.embeddings.position_ids") == 0;
  case VTL__TEXT_HF_BARE: return strcmp(p, "embeddings.position_ids") == 0;
  case VTL__TEXT_OPENCLIP:
    if (strcmp(p, "text_projection") == 0 || strcmp(p, "logit_scale") == 0)
      return 1;
    return eat(&p, "transformer.resblocks.") && eat_idx(&p, &i) &&
           i >= cc->num_hidden_layers;
  }
  return 0;
}

int vtl__uses_diffusers_names(const vtl_st_file *f) {
  static const char *const probes[] = {
    "conv_in.weight",                               /* UNet2DConditionModel */
    "encoder.down_blocks.0.resnets.0.conv1.weight", /* AutoencoderKL */
    "text_model.embeddings.token_embedding.weight", /* CLIPTextModel */
    "encoder.layers.0.weight",                      /* AutoencoderTiny */
  };
  for (size_t i = 0; i < COUNT(probes); i++)
    if (vtl_st_find(f, probes[i])) return 1;
  return 0;
}

int vtl__diffusers_ignored(vtl_component c, const char *key) {
  return c == VTL_COMP_TEXT_ENCODER &&
         strcmp(key, "text_model.embeddings.position_ids") == 0;
}

int vtl__diffusers_legacy_name(const char *name, char *out, size_t len) {
  static const char *const sides[] = {"encoder.mid_block.attentions.0.",
                                      "decoder.mid_block.attentions.0."};
  for (size_t s = 0; s < COUNT(sides); s++) {
    const char *p = name, *rest;
    if (!eat(&p, sides[s])) continue;
    const rename_rule *e =
        match(legacy_vae_attn, COUNT(legacy_vae_attn), p, &rest);
    if (!e) return VTL_ENOENT;
    int k = snprintf(out, len, "%s%s%s", sides[s], e->ldm, rest);
    return k < 0 || (size_t)k >= len ? VTL_ETOOLONG : 0;
  }
  return VTL_ENOENT;
}
