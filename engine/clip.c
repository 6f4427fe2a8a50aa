/* clip.c — the CLIP text encoder (contract and model: clip.h).
 *
 * Dimension letters: B batch, T tokens, E hidden size, F MLP width
 * (intermediate_size), V vocabulary, P max positions, L layers, H heads.
 *
 * Parameters (STYLE.md 12): every weight is a view into the model's arenas,
 * laid out in the order of params_list(); each field below names its
 * transformers checkpoint key (STYLE.md 13) and shape. vtl__params_load
 * (params.h) stages, stores (f32, or f16 for the linear weights) and
 * uploads them.
 *
 * The layer functions (STYLE.md 11) are compositions of ops.h ops, whose
 * plain-C references the op tests hold them to; the token lookup is a row
 * copy per token (clEnqueueCopyBuffer), the pooling one per sequence.
 */
#include "clip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "params.h"
#include "runtime_int.h"

/* text_model.encoder.layers.<l>.* */
typedef struct {
  vtl_tensor ln1_w, ln1_b; /* [E] layer_norm1.{weight,bias} */
  vtl_tensor q_w, q_b;     /* [E, E], [E] self_attn.q_proj */
  vtl_tensor k_w, k_b;     /* [E, E], [E] self_attn.k_proj */
  vtl_tensor v_w, v_b;     /* [E, E], [E] self_attn.v_proj */
  vtl_tensor o_w, o_b;     /* [E, E], [E] self_attn.out_proj */
  vtl_tensor ln2_w, ln2_b; /* [E] layer_norm2.{weight,bias} */
  vtl_tensor fc1_w, fc1_b; /* [F, E], [F] mlp.fc1 */
  vtl_tensor fc2_w, fc2_b; /* [E, F], [E] mlp.fc2 */
} clip_layer;

struct vtl_clip {
  vtl_cl *cl;                /* borrowed */
  vtl_clip_config cfg;
  vtl__arenas arenas;        /* own every weight below */
  vtl_tensor tok_emb;        /* [V, E] text_model.embeddings.token_embedding.weight */
  vtl_tensor pos_emb;        /* [P, E] text_model.embeddings.position_embedding.weight */
  vtl_tensor final_w, final_b; /* [E] text_model.final_layer_norm.{weight,bias} */
  clip_layer *layers;        /* [L] */
};

/* ---- parameters --------------------------------------------------------- */

/* Shapes by code: E [E], F [F], EE [E, E], FE [F, E], EF [E, F]. */
typedef enum { SH_E, SH_F, SH_EE, SH_FE, SH_EF, SH_VE, SH_PE } shape_code;

static const struct {
  const char *key; /* after text_model.encoder.layers.<l>. */
  size_t off;      /* of the field in clip_layer */
  shape_code sh;
} layer_params[] = {
    {"layer_norm1.weight", offsetof(clip_layer, ln1_w), SH_E},
    {"layer_norm1.bias", offsetof(clip_layer, ln1_b), SH_E},
    {"self_attn.q_proj.weight", offsetof(clip_layer, q_w), SH_EE},
    {"self_attn.q_proj.bias", offsetof(clip_layer, q_b), SH_E},
    {"self_attn.k_proj.weight", offsetof(clip_layer, k_w), SH_EE},
    {"self_attn.k_proj.bias", offsetof(clip_layer, k_b), SH_E},
    {"self_attn.v_proj.weight", offsetof(clip_layer, v_w), SH_EE},
    {"self_attn.v_proj.bias", offsetof(clip_layer, v_b), SH_E},
    {"self_attn.out_proj.weight", offsetof(clip_layer, o_w), SH_EE},
    {"self_attn.out_proj.bias", offsetof(clip_layer, o_b), SH_E},
    {"layer_norm2.weight", offsetof(clip_layer, ln2_w), SH_E},
    {"layer_norm2.bias", offsetof(clip_layer, ln2_b), SH_E},
    {"mlp.fc1.weight", offsetof(clip_layer, fc1_w), SH_FE},
    {"mlp.fc1.bias", offsetof(clip_layer, fc1_b), SH_F},
    {"mlp.fc2.weight", offsetof(clip_layer, fc2_w), SH_EF},
    {"mlp.fc2.bias", offsetof(clip_layer, fc2_b), SH_E},
};
#define N_LAYER_PARAMS (sizeof layer_params / sizeof layer_params[0])

static const struct {
  const char *key;
  size_t off; /* of the field in struct vtl_clip */
  shape_code sh;
} top_params[] = {
    {"text_model.embeddings.token_embedding.weight",
     offsetof(struct vtl_clip, tok_emb), SH_VE},
    {"text_model.embeddings.position_embedding.weight",
     offsetof(struct vtl_clip, pos_emb), SH_PE},
    {"text_model.final_layer_norm.weight", offsetof(struct vtl_clip, final_w),
     SH_E},
    {"text_model.final_layer_norm.bias", offsetof(struct vtl_clip, final_b),
     SH_E},
};
#define N_TOP_PARAMS (sizeof top_params / sizeof top_params[0])

static int shape_of(const vtl_clip_config *c, shape_code sh, int64_t *s) {
  int64_t E = c->hidden_size, F = c->intermediate_size;
  switch (sh) {
    case SH_E: s[0] = E; return 1;
    case SH_F: s[0] = F; return 1;
    case SH_EE: s[0] = E; s[1] = E; return 2;
    case SH_FE: s[0] = F; s[1] = E; return 2;
    case SH_EF: s[0] = E; s[1] = F; return 2;
    case SH_VE: s[0] = c->vocab_size; s[1] = E; return 2;
    case SH_PE: s[0] = c->max_position_embeddings; s[1] = E; return 2;
  }
  return 0;
}

/* Every parameter of clip (its config set) into ps: 4 + 16 L entries. The
 * embeddings are lookup tables (row copies, not GEMM operands): kept f32. */
static void params_list(vtl_clip *clip, vtl__params *ps) {
  int64_t sh[2];
  for (size_t t = 0; t < N_TOP_PARAMS; t++) {
    int nd = shape_of(&clip->cfg, top_params[t].sh, sh);
    vtl__param_add(ps, (vtl_tensor *)((char *)clip + top_params[t].off), nd,
                   sh, "%s", top_params[t].key);
    if (top_params[t].sh == SH_VE || top_params[t].sh == SH_PE)
      vtl__param_keep_f32(ps);
  }
  for (int l = 0; l < clip->cfg.num_hidden_layers; l++)
    for (size_t t = 0; t < N_LAYER_PARAMS; t++) {
      int nd = shape_of(&clip->cfg, layer_params[t].sh, sh);
      vtl__param_add(ps,
                     (vtl_tensor *)((char *)&clip->layers[l] +
                                    layer_params[t].off),
                     nd, sh, "text_model.encoder.layers.%d.%s", l,
                     layer_params[t].key);
    }
}

/* ---- load --------------------------------------------------------------- */

static int load_fail(vtl_clip *clip, int rc, char *msg, size_t msglen,
                     const char *fmt, const char *detail) {
  if (fmt) snprintf(msg, msglen, fmt, detail);
  vtl_clip_free(clip);
  return rc;
}

int vtl_clip_load(vtl_cl *cl, vtl_model_files *m, vtl_clip **out, char *msg,
                  size_t msglen) {
  *out = NULL;
  const vtl_clip_config *cfg = vtl_model_files_clip_config(m);
  vtl_weights *w = vtl_model_files_weights(m, VTL_COMP_TEXT_ENCODER);
  if (!cfg || !w) {
    snprintf(msg, msglen, "the model has no text encoder");
    return VTL_ENOENT;
  }
  if (cfg->with_projection) {
    snprintf(msg, msglen, "CLIPTextModelWithProjection is not supported");
    return VTL_EUNSUPPORTED;
  }
  if (cfg->num_hidden_layers < 1 || cfg->hidden_size < 1 ||
      cfg->intermediate_size < 1 || cfg->num_attention_heads < 1 ||
      cfg->hidden_size % cfg->num_attention_heads != 0 ||
      cfg->vocab_size < 1 || cfg->max_position_embeddings < 1) {
    snprintf(msg, msglen,
             "text encoder config: %d layers, hidden %d, %d heads, "
             "intermediate %d, vocab %d, %d positions",
             cfg->num_hidden_layers, cfg->hidden_size,
             cfg->num_attention_heads, cfg->intermediate_size,
             cfg->vocab_size, cfg->max_position_embeddings);
    return VTL_EINVAL;
  }
  vtl_clip *clip = calloc(1, sizeof *clip);
  if (!clip) return VTL_ENOMEM;
  clip->cl = cl;
  clip->cfg = *cfg;
  clip->layers = calloc((size_t)cfg->num_hidden_layers, sizeof *clip->layers);
  if (!clip->layers) return load_fail(clip, VTL_ENOMEM, msg, msglen, "%s", "out of memory");

  vtl__params ps = {0};
  params_list(clip, &ps);
  int rc = vtl__params_load(cl, w, &ps, &clip->arenas, "text_encoder", msg,
                            msglen);
  vtl__params_free(&ps);
  if (rc) return load_fail(clip, rc, msg, msglen, NULL, NULL);
  *out = clip;
  return 0;
}

void vtl_clip_free(vtl_clip *clip) {
  if (!clip) return;
  vtl__arenas_free(clip->cl, &clip->arenas);
  free(clip->layers);
  free(clip);
}

const vtl_clip_config *vtl_clip_config_of(const vtl_clip *clip) {
  return &clip->cfg;
}

/* ---- layers ------------------------------------------------------------- */

/* Scratch of one forward pass. */
typedef struct {
  vtl_tensor h;       /* [B, T, E] normalised input of a block */
  vtl_tensor q, k, v; /* [B, T, E] */
  vtl_tensor a;       /* [B, T, E] attention output (heads concatenated) */
  vtl_tensor y;       /* [B, T, E] a layer's state between its two blocks */
  vtl_tensor m;       /* [B, T, F] MLP hidden */
} clip_scratch;

/* Copies n floats src[so ..] -> dst[do_ ..] (offsets in elements from the
 * tensors' own offsets). */
static int copy_floats(vtl_cl *cl, const vtl_tensor *dst, size_t do_,
                       const vtl_tensor *src, size_t so, size_t n) {
  cl_int err = clEnqueueCopyBuffer(vtl__queue(cl), src->buf, dst->buf,
                                   (src->off + so) * sizeof(float),
                                   (dst->off + do_) * sizeof(float),
                                   n * sizeof(float), 0, NULL, NULL);
  return vtl__check(cl, err, "clEnqueueCopyBuffer");
}

/* x [B, T, E] = token_embedding[ids [B, T]] + position_embedding[0 .. T). */
static int clip_embeddings_forward(vtl_clip *clip, const vtl_tensor *x,
                                   const int32_t *ids, int B, int T) {
  vtl_cl *cl = clip->cl;
  size_t E = (size_t)clip->cfg.hidden_size;
  for (size_t i = 0; i < (size_t)B * T; i++) {
    VTL__REQUIRE(cl, ids[i] >= 0 && ids[i] < clip->cfg.vocab_size,
                 "clip: token id %d at [%zu, %zu] outside the vocabulary (%d)",
                 (int)ids[i], i / (size_t)T, i % (size_t)T,
                 clip->cfg.vocab_size);
    VTL__TRY(copy_floats(cl, x, i * E, &clip->tok_emb, (size_t)ids[i] * E, E));
  }
  vtl_tensor pos; /* [1, T, E]: the first T rows */
  VTL__TRY(vtl_tensor_view(&pos, &clip->pos_emb, 0, 3,
                           VTL_SHAPE(1, T, (int64_t)E)));
  return vtl_add(cl, x, x, &pos);
}

/* y [B, T, E] = x + out_proj(causal self-attention(layer_norm1(x))). */
static int clip_attention_forward(vtl_clip *clip, const vtl_tensor *y,
                                  const vtl_tensor *x, const clip_layer *w,
                                  clip_scratch *s) {
  vtl_cl *cl = clip->cl;
  VTL__TRY(vtl_layer_norm(cl, &s->h, x, &w->ln1_w, &w->ln1_b,
                          clip->cfg.layer_norm_eps));
  VTL__TRY(vtl_linear(cl, &s->q, &s->h, &w->q_w, &w->q_b, VTL_ACT_NONE));
  VTL__TRY(vtl_linear(cl, &s->k, &s->h, &w->k_w, &w->k_b, VTL_ACT_NONE));
  VTL__TRY(vtl_linear(cl, &s->v, &s->h, &w->v_w, &w->v_b, VTL_ACT_NONE));
  VTL__TRY(vtl_attention(cl, &s->a, &s->q, &s->k, &s->v,
                         clip->cfg.num_attention_heads, 1));
  return vtl_linear_res(cl, y, &s->a, &w->o_w, &w->o_b, x, VTL_ACT_NONE);
}

/* y [B, T, E] = x + fc2(act(fc1(layer_norm2(x)))); fc1 -> [B, T, F]. */
static int clip_mlp_forward(vtl_clip *clip, const vtl_tensor *y,
                            const vtl_tensor *x, const clip_layer *w,
                            clip_scratch *s) {
  vtl_cl *cl = clip->cl;
  VTL__TRY(vtl_layer_norm(cl, &s->h, x, &w->ln2_w, &w->ln2_b,
                          clip->cfg.layer_norm_eps));
  VTL__TRY(vtl_linear(cl, &s->m, &s->h, &w->fc1_w, &w->fc1_b,
                      clip->cfg.hidden_act));
  return vtl_linear_res(cl, y, &s->m, &w->fc2_w, &w->fc2_b, x, VTL_ACT_NONE);
}

/* One pre-LN encoder layer on x [B, T, E], through s->y and back: the
 * residual adds are the out_proj and fc2 epilogues. */
static int clip_layer_forward(vtl_clip *clip, const vtl_tensor *x,
                              const clip_layer *w, clip_scratch *s) {
  VTL__TRY(clip_attention_forward(clip, &s->y, x, w, s));
  return clip_mlp_forward(clip, x, &s->y, w, s);
}

/* ---- encode ------------------------------------------------------------- */

int vtl_clip_pool_index(const vtl_clip_config *cfg, const int32_t *ids,
                        int T) {
  int best = 0;
  if (cfg->eos_token_id == 2) { /* transformers' legacy rule: argmax(ids) */
    for (int t = 1; t < T; t++)
      if (ids[t] > ids[best]) best = t;
    return best;
  }
  for (int t = 0; t < T; t++)
    if (ids[t] == cfg->eos_token_id) return t;
  return 0; /* (ids == eos).argmax() of a row without eos */
}

static int shape_is(const vtl_tensor *t, int ndim, const int64_t *s) {
  if (t->ndim != ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] != s[i]) return 0;
  return 1;
}

static void release_all(vtl_cl *cl, vtl_tensor *t, int n) {
  for (int i = 0; i < n; i++) vtl_tensor_release(cl, &t[i]);
}

/* The tensors of one vtl_clip_encode: x, the scratch, and last when the
 * caller wants pooled but not last. */
enum { X, H, Q, K, V, A, Y, M, LAST, NT };

/* The forward pass over t[] (allocated); last [B, T, E] or NULL when no
 * output needs it. */
static int clip_forward(vtl_clip *clip, vtl_tensor *t, const int32_t *ids,
                        int B, int T, const vtl_tensor *last,
                        const vtl_tensor *out_penultimate_ln,
                        const vtl_tensor *out_pooled) {
  vtl_cl *cl = clip->cl;
  const vtl_clip_config *c = &clip->cfg;
  size_t E = (size_t)c->hidden_size;
  clip_scratch s = {.h = t[H], .q = t[Q], .k = t[K], .v = t[V],
                    .a = t[A], .y = t[Y], .m = t[M]};
  const vtl_tensor *x = &t[X];
  VTL__TRY(clip_embeddings_forward(clip, x, ids, B, T));
  for (int l = 0; l < c->num_hidden_layers; l++) {
    if (l == c->num_hidden_layers - 1 && out_penultimate_ln)
      VTL__TRY(vtl_layer_norm(cl, out_penultimate_ln, x, &clip->final_w,
                              &clip->final_b, c->layer_norm_eps));
    VTL__TRY(clip_layer_forward(clip, x, &clip->layers[l], &s));
  }
  if (last)
    VTL__TRY(vtl_layer_norm(cl, last, x, &clip->final_w, &clip->final_b,
                            c->layer_norm_eps));
  for (int b = 0; b < B && out_pooled; b++) {
    int p = vtl_clip_pool_index(c, ids + (size_t)b * T, T);
    VTL__TRY(copy_floats(cl, out_pooled, (size_t)b * E, last,
                         ((size_t)b * T + p) * E, E));
  }
  return 0;
}

int vtl_clip_encode(vtl_clip *clip, const int32_t *ids, int B, int T,
                    const vtl_tensor *out_last,
                    const vtl_tensor *out_penultimate_ln,
                    const vtl_tensor *out_pooled) {
  vtl_cl *cl = clip->cl;
  const vtl_clip_config *c = &clip->cfg;
  int64_t E = c->hidden_size, F = c->intermediate_size;
  VTL__REQUIRE(cl, B >= 1 && T >= 1 && T <= c->max_position_embeddings,
               "clip: ids [%d, %d]: need B >= 1 and 1 <= T <= %d", B, T,
               c->max_position_embeddings);
  const int64_t seq[3] = {B, T, E}, pooled[2] = {B, E};
  VTL__REQUIRE(cl, !out_last || shape_is(out_last, 3, seq),
               "clip: last_hidden_state must be [%d, %d, %lld]", B, T,
               (long long)E);
  VTL__REQUIRE(cl, !out_penultimate_ln || shape_is(out_penultimate_ln, 3, seq),
               "clip: penultimate output must be [%d, %d, %lld]", B, T,
               (long long)E);
  VTL__REQUIRE(cl, !out_pooled || shape_is(out_pooled, 2, pooled),
               "clip: pooled output must be [%d, %lld]", B, (long long)E);

  vtl_tensor t[NT];
  memset(t, 0, sizeof t);
  int rc = 0;
  for (int i = X; i <= Y && !rc; i++) rc = vtl_tensor_alloc(cl, &t[i], 3, seq);
  if (!rc) rc = vtl_tensor_alloc(cl, &t[M], 3, VTL_SHAPE(B, T, F));
  if (!rc && out_pooled && !out_last)
    rc = vtl_tensor_alloc(cl, &t[LAST], 3, seq);
  if (!rc)
    rc = clip_forward(clip, t, ids, B, T,
                      out_last ? out_last : out_pooled ? &t[LAST] : NULL,
                      out_penultimate_ln, out_pooled);
  /* The pool may hand these buffers out again at once: the queue is in
   * order, so whoever writes them next waits for the work queued here. */
  release_all(cl, t, NT);
  return rc;
}
