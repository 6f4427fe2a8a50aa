/* test_clip.c — the CLIP text encoder (engine/clip.h) on configs other than
 * the kit's (the kit's own cases run in vtl-refcheck, kind text_encoder):
 *
 *   random_gelu          a random CLIPTextModel written to a scratch folder
 *                        (gelu, eps 1e-6, 2 layers, T < max positions,
 *                        eos_token_id 2 so pooling takes argmax(ids)) against
 *                        a plain double-precision forward pass written here
 *   random_quick_gelu    the same with quick_gelu, eos_token_id != 2 (first
 *                        eos wins), one layer (penultimate = embeddings)
 *   encode_errors        T > max positions, ids outside the vocabulary,
 *                        wrong output shapes: VTL_EINVAL, nothing leaked
 *   load_errors          a missing weight (VTL_ENOENT), an extra one
 *                        (VTL_EUNSUPPORTED), a wrong shape (VTL_ERANGE)
 *   pool_index           the eos rule of clip.h
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clip.h"
#include "model_files.h"
#include "ops.h"
#include "engine_test.h"
#include "task.h"
#include "vtl_error.h"

/* ---- a scratch model ----------------------------------------------------- */

static char scratch[256];

static const char *scratch_dir(void) {
  snprintf(scratch, sizeof scratch, "/tmp/vtl_test_clip_%ld", (long)getpid());
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

/* A float32 safetensors writer (as in test_model_files.c). */
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
    if (!w->data) abort();
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

/* The model of a test: config and host weights (the reference reads them). */
typedef struct {
  int V, E, F, L, H, P, eos;
  int gelu;
  double eps;
  float *tok, *pos, *fin_w, *fin_b; /* [V,E] [P,E] [E] [E] */
  struct {
    float *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
  } l[4];
} model;

static float *rnd(size_t n, float base, float scale) {
  float *v = malloc(n * sizeof *v);
  if (!v) abort();
  for (size_t i = 0; i < n; i++) v[i] = base + scale * frand();
  return v;
}

static void model_init(model *m) {
  size_t E = m->E, F = m->F;
  m->tok = rnd((size_t)m->V * E, 0, 1);
  m->pos = rnd((size_t)m->P * E, 0, 0.5f);
  m->fin_w = rnd(E, 1, 0.2f);
  m->fin_b = rnd(E, 0, 0.2f);
  for (int i = 0; i < m->L; i++) {
    float s = 1.0f / sqrtf((float)E);
    m->l[i].ln1_w = rnd(E, 1, 0.2f);
    m->l[i].ln1_b = rnd(E, 0, 0.2f);
    m->l[i].q_w = rnd(E * E, 0, 2 * s);
    m->l[i].q_b = rnd(E, 0, 0.1f);
    m->l[i].k_w = rnd(E * E, 0, 2 * s);
    m->l[i].k_b = rnd(E, 0, 0.1f);
    m->l[i].v_w = rnd(E * E, 0, s);
    m->l[i].v_b = rnd(E, 0, 0.1f);
    m->l[i].o_w = rnd(E * E, 0, s);
    m->l[i].o_b = rnd(E, 0, 0.1f);
    m->l[i].ln2_w = rnd(E, 1, 0.2f);
    m->l[i].ln2_b = rnd(E, 0, 0.2f);
    m->l[i].fc1_w = rnd(F * E, 0, 2 * s);
    m->l[i].fc1_b = rnd(F, 0, 0.1f);
    m->l[i].fc2_w = rnd(E * F, 0, 1.0f / sqrtf((float)F));
    m->l[i].fc2_b = rnd(E, 0, 0.1f);
  }
}

static void model_free(model *m) {
  free(m->tok);
  free(m->pos);
  free(m->fin_w);
  free(m->fin_b);
  for (int i = 0; i < m->L; i++) {
    float **p = &m->l[i].ln1_w;
    for (int k = 0; k < 16; k++) free(p[k]);
  }
}

/* Writes <scratch>/te/{config.json, model.safetensors}; skip (a key not
 * written), extra (a key added), bad_shape (fc1 stored transposed). */
static const char *model_write(const model *m, const char *skip, int extra,
                               int bad_shape) {
  static char dir[300];
  snprintf(dir, sizeof dir, "%s/te", scratch);
  char cmd[1200], path[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  if (system(cmd) != 0) abort();
  json_t *c = json_pack(
      "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:f, s:i, s:i, s:i}",
      "architectures", "CLIPTextModel", "model_type", "clip_text_model",
      "vocab_size", m->V, "hidden_size", m->E, "intermediate_size", m->F,
      "num_hidden_layers", m->L, "num_attention_heads", m->H,
      "max_position_embeddings", m->P, "hidden_act",
      m->gelu ? "gelu" : "quick_gelu", "layer_norm_eps", m->eps,
      "bos_token_id", 0, "eos_token_id", m->eos, "pad_token_id", 1);
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (json_dump_file(c, path, JSON_INDENT(1))) abort();
  json_decref(c);

  st_writer w = {0};
  int64_t E = m->E, F = m->F;
#define ADD(name, nd, ...)                                                   \
  do {                                                                       \
    if (!skip || strcmp(skip, name) != 0)                                    \
      stw_add(&w, name, nd, VTL_DIMS(__VA_ARGS__), v);                       \
  } while (0)
  const float *v = m->tok;
  ADD("text_model.embeddings.token_embedding.weight", 2, m->V, E);
  v = m->pos;
  ADD("text_model.embeddings.position_embedding.weight", 2, m->P, E);
  v = m->fin_w;
  ADD("text_model.final_layer_norm.weight", 1, E);
  v = m->fin_b;
  ADD("text_model.final_layer_norm.bias", 1, E);
  static const char *const names[16] = {
      "layer_norm1.weight",      "layer_norm1.bias",
      "self_attn.q_proj.weight", "self_attn.q_proj.bias",
      "self_attn.k_proj.weight", "self_attn.k_proj.bias",
      "self_attn.v_proj.weight", "self_attn.v_proj.bias",
      "self_attn.out_proj.weight", "self_attn.out_proj.bias",
      "layer_norm2.weight",      "layer_norm2.bias",
      "mlp.fc1.weight",          "mlp.fc1.bias",
      "mlp.fc2.weight",          "mlp.fc2.bias"};
  for (int i = 0; i < m->L; i++) {
    float *const *p = &m->l[i].ln1_w;
    for (int k = 0; k < 16; k++) {
      char name[128];
      snprintf(name, sizeof name, "text_model.encoder.layers.%d.%s", i,
               names[k]);
      v = p[k];
      int mat = k == 2 || k == 4 || k == 6 || k == 8;
      if (mat) ADD(name, 2, E, E);
      else if (k == 12 && bad_shape) ADD(name, 2, E, F);
      else if (k == 12) ADD(name, 2, F, E);
      else if (k == 13) ADD(name, 1, F);
      else if (k == 14) ADD(name, 2, E, F);
      else ADD(name, 1, E);
    }
  }
  if (extra) {
    v = m->fin_b;
    ADD("text_model.extra.bias", 1, E);
  }
#undef ADD
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  stw_write(&w, path);
  return dir;
}

/* ---- the reference: plain double-precision forward pass ------------------ */

static void ref_ln(double *y, const double *x, const float *g, const float *b,
                   int R, int E, double eps) {
  for (int r = 0; r < R; r++) {
    const double *xr = x + (size_t)r * E;
    double mu = 0, var = 0;
    for (int e = 0; e < E; e++) mu += xr[e];
    mu /= E;
    for (int e = 0; e < E; e++) var += (xr[e] - mu) * (xr[e] - mu);
    var /= E;
    for (int e = 0; e < E; e++)
      y[(size_t)r * E + e] = (xr[e] - mu) / sqrt(var + eps) * g[e] + b[e];
  }
}

/* y [R, O] = x [R, I] w^T + b, then act (0 none, 1 gelu, 2 quick_gelu) */
static void ref_linear(double *y, const double *x, const float *w,
                       const float *b, int R, int I, int O, int act) {
  for (int r = 0; r < R; r++)
    for (int o = 0; o < O; o++) {
      double s = b[o];
      for (int i = 0; i < I; i++) s += x[(size_t)r * I + i] * w[(size_t)o * I + i];
      if (act == 1) s = 0.5 * s * (1 + erf(s / sqrt(2.0)));
      if (act == 2) s = s / (1 + exp(-1.702 * s));
      y[(size_t)r * O + o] = s;
    }
}

/* last, pen [B, T, E], pooled [B, E] */
static void ref_forward(const model *m, const int32_t *ids, int B, int T,
                        double *last, double *pen, double *pooled) {
  int E = m->E, F = m->F, H = m->H, D = E / H, R = B * T;
  double *x = calloc((size_t)R * E, sizeof *x), *h = calloc((size_t)R * E, 8),
         *q = calloc((size_t)R * E, 8), *k = calloc((size_t)R * E, 8),
         *v = calloc((size_t)R * E, 8), *a = calloc((size_t)R * E, 8),
         *y = calloc((size_t)R * E, 8), *mm = calloc((size_t)R * F, 8),
         *s = calloc((size_t)T, 8);
  if (!x || !h || !q || !k || !v || !a || !y || !mm || !s) abort();
  for (int r = 0; r < R; r++)
    for (int e = 0; e < E; e++)
      x[(size_t)r * E + e] = (double)m->tok[(size_t)ids[r] * E + e] +
                             m->pos[(size_t)(r % T) * E + e];
  for (int l = 0; l < m->L; l++) {
    if (l == m->L - 1) ref_ln(pen, x, m->fin_w, m->fin_b, R, E, m->eps);
    ref_ln(h, x, m->l[l].ln1_w, m->l[l].ln1_b, R, E, m->eps);
    ref_linear(q, h, m->l[l].q_w, m->l[l].q_b, R, E, E, 0);
    ref_linear(k, h, m->l[l].k_w, m->l[l].k_b, R, E, E, 0);
    ref_linear(v, h, m->l[l].v_w, m->l[l].v_b, R, E, E, 0);
    for (int b = 0; b < B; b++)
      for (int hh = 0; hh < H; hh++)
        for (int i = 0; i < T; i++) {
          double mx = -INFINITY, sum = 0;
          for (int j = 0; j <= i; j++) {
            double d = 0;
            for (int c = 0; c < D; c++)
              d += q[((size_t)b * T + i) * E + hh * D + c] *
                   k[((size_t)b * T + j) * E + hh * D + c];
            s[j] = d / sqrt((double)D);
            if (s[j] > mx) mx = s[j];
          }
          for (int j = 0; j <= i; j++) sum += s[j] = exp(s[j] - mx);
          for (int c = 0; c < D; c++) {
            double o = 0;
            for (int j = 0; j <= i; j++)
              o += s[j] / sum * v[((size_t)b * T + j) * E + hh * D + c];
            a[((size_t)b * T + i) * E + hh * D + c] = o;
          }
        }
    ref_linear(y, a, m->l[l].o_w, m->l[l].o_b, R, E, E, 0);
    for (size_t i = 0; i < (size_t)R * E; i++) x[i] += y[i];
    ref_ln(h, x, m->l[l].ln2_w, m->l[l].ln2_b, R, E, m->eps);
    ref_linear(mm, h, m->l[l].fc1_w, m->l[l].fc1_b, R, E, F, m->gelu ? 1 : 2);
    ref_linear(y, mm, m->l[l].fc2_w, m->l[l].fc2_b, R, F, E, 0);
    for (size_t i = 0; i < (size_t)R * E; i++) x[i] += y[i];
  }
  ref_ln(last, x, m->fin_w, m->fin_b, R, E, m->eps);
  for (int b = 0; b < B; b++) {
    const int32_t *row = ids + (size_t)b * T;
    int p = 0;
    if (m->eos == 2) {
      for (int t = 1; t < T; t++)
        if (row[t] > row[p]) p = t;
    } else {
      for (int t = 0; t < T; t++)
        if (row[t] == m->eos) {
          p = t;
          break;
        }
    }
    memcpy(pooled + (size_t)b * E, last + ((size_t)b * T + p) * E,
           (size_t)E * sizeof *pooled);
  }
  free(x), free(h), free(q), free(k), free(v), free(a), free(y), free(mm),
      free(s);
}

static double max_err(const float *got, const double *want, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (!(d <= e)) e = d; /* NaN sticks */
  }
  return e;
}

/* Loads m from the scratch folder, encodes ids [B, T], compares. */
static int check_model(model *m, const int32_t *ids, int B, int T) {
  vtl_cl *cl = rt();
  scratch_dir();
  const char *dir = model_write(m, NULL, 0, 0);
  char msg[512];
  vtl_model_files *mf = NULL;
  if (vtl_model_files_open(&mf, dir, NULL, msg, sizeof msg))
    TEST_FAIL_("open: %s", msg);
  vtl_clip *clip = NULL;
  int rc = vtl_clip_load(cl, mf, &clip, msg, sizeof msg);
  vtl_model_files_close(mf);
  if (rc) TEST_FAIL_("load: %s", msg);
  ASSERT_EQ(vtl_clip_config_of(clip)->hidden_size, m->E);

  size_t n = (size_t)B * T * m->E;
  vtl_tensor last, pen, pool;
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &last, 3, VTL_SHAPE(B, T, m->E)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &pen, 3, VTL_SHAPE(B, T, m->E)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &pool, 2, VTL_SHAPE(B, m->E)));
  ASSERT_OP(cl, vtl_clip_encode(clip, ids, B, T, &last, &pen, &pool));
  float *got = malloc(n * sizeof *got);
  double *wl = malloc(n * 8), *wp = malloc(n * 8),
         *wo = malloc((size_t)B * m->E * 8);
  ref_forward(m, ids, B, T, wl, wp, wo);
  double tol = 1e-4;
  ASSERT_OP(cl, vtl_tensor_read(cl, &last, got));
  double e1 = max_err(got, wl, n);
  ASSERT_OP(cl, vtl_tensor_read(cl, &pen, got));
  double e2 = max_err(got, wp, n);
  ASSERT_OP(cl, vtl_tensor_read(cl, &pool, got));
  double e3 = max_err(got, wo, (size_t)B * m->E);

  /* pooled alone (no last asked for) gives the same */
  vtl_tensor pool2;
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &pool2, 2, VTL_SHAPE(B, m->E)));
  ASSERT_OP(cl, vtl_clip_encode(clip, ids, B, T, NULL, NULL, &pool2));
  ASSERT_OP(cl, vtl_tensor_read(cl, &pool2, got));
  double e4 = max_err(got, wo, (size_t)B * m->E);

  vtl_tensor_release(cl, &last);
  vtl_tensor_release(cl, &pen);
  vtl_tensor_release(cl, &pool);
  vtl_tensor_release(cl, &pool2);
  vtl_clip_free(clip);
  free(got), free(wl), free(wp), free(wo);
  scratch_remove();
  ASSERT_NEAR(e1, 0, tol);
  ASSERT_NEAR(e2, 0, tol);
  ASSERT_NEAR(e3, 0, tol);
  ASSERT_NEAR(e4, 0, tol);
  return 0;
}

TEST_IMPL(random_gelu) {
  model m = {.V = 50, .E = 24, .F = 40, .L = 2, .H = 3, .P = 16, .eos = 2,
             .gelu = 1, .eps = 1e-6};
  model_init(&m);
  /* eos 2: pooled at the first max id (49 at 3; 48 at 6 and 7 -> 6) */
  const int32_t ids[2 * 10] = {0, 5, 9, 49, 2, 1, 1, 1, 1, 1,
                               0, 7, 7, 3, 8, 30, 48, 48, 2, 2};
  int rc = check_model(&m, ids, 2, 10);
  model_free(&m);
  return rc;
}

TEST_IMPL(random_quick_gelu) {
  model m = {.V = 30, .E = 16, .F = 20, .L = 1, .H = 2, .P = 8, .eos = 29,
             .gelu = 0, .eps = 1e-5};
  model_init(&m);
  const int32_t ids[3 * 8] = {28, 4, 29, 29, 29, 29, 29, 29,
                              28, 29, 3, 29, 29, 29, 29, 29,
                              28, 1, 2, 3, 4, 5, 6, 7}; /* no eos: 0 */
  int rc = check_model(&m, ids, 3, 8);
  model_free(&m);
  return rc;
}

TEST_IMPL(encode_errors) {
  vtl_cl *cl = rt();
  model m = {.V = 20, .E = 8, .F = 12, .L = 2, .H = 2, .P = 6, .eos = 19,
             .gelu = 0, .eps = 1e-5};
  model_init(&m);
  scratch_dir();
  const char *dir = model_write(&m, NULL, 0, 0);
  char msg[512];
  vtl_model_files *mf = NULL;
  if (vtl_model_files_open(&mf, dir, NULL, msg, sizeof msg))
    TEST_FAIL_("open: %s", msg);
  vtl_clip *clip = NULL;
  int rc = vtl_clip_load(cl, mf, &clip, msg, sizeof msg);
  vtl_model_files_close(mf);
  model_free(&m);
  scratch_remove();
  if (rc) TEST_FAIL_("load: %s", msg);
  int32_t ids[7] = {1, 2, 3, 4, 5, 19, 19};
  vtl_tensor last, bad;
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &last, 3, VTL_SHAPE(1, 7, 8)));
  ASSERT_OP(cl, vtl_tensor_alloc(cl, &bad, 2, VTL_SHAPE(1, 7)));
  size_t before = vtl_cl_bytes_in_use(cl);
  ASSERT_EQ(vtl_clip_encode(clip, ids, 1, 7, &last, NULL, NULL), VTL_EINVAL);
  ASSERT(strstr(vtl_cl_errmsg(cl), "<= 6"));
  ASSERT_OP(cl, vtl_tensor_reshape(&last, 3, VTL_SHAPE(1, 1, 56)));
  ASSERT_EQ(vtl_clip_encode(clip, ids, 1, 6, &last, NULL, NULL), VTL_EINVAL);
  ids[2] = 20;
  vtl_tensor ok;
  ASSERT_OP(cl, vtl_tensor_view(&ok, &last, 0, 3, VTL_SHAPE(1, 6, 8)));
  ASSERT_EQ(vtl_clip_encode(clip, ids, 1, 6, &ok, NULL, NULL), VTL_EINVAL);
  ASSERT(strstr(vtl_cl_errmsg(cl), "vocabulary"));
  ids[2] = -1;
  ASSERT_EQ(vtl_clip_encode(clip, ids, 1, 6, &ok, NULL, NULL), VTL_EINVAL);
  ids[2] = 3;
  ASSERT_EQ(vtl_clip_encode(clip, ids, 1, 6, NULL, NULL, &bad), VTL_EINVAL);
  ASSERT_EQ(vtl_clip_encode(clip, ids, 0, 6, NULL, NULL, NULL), VTL_EINVAL);
  ASSERT_OP(cl, vtl_clip_encode(clip, ids, 1, 6, &ok, &ok, NULL));
  ASSERT_OP(cl, vtl_cl_finish(cl));
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  vtl_tensor_release(cl, &last);
  vtl_tensor_release(cl, &bad);
  vtl_clip_free(clip);
  return 0;
}

static int load_expect(const model *m, const char *skip, int extra,
                       int bad_shape, int want, const char *needle) {
  vtl_cl *cl = rt();
  const char *dir = model_write(m, skip, extra, bad_shape);
  char msg[512];
  vtl_model_files *mf = NULL;
  if (vtl_model_files_open(&mf, dir, NULL, msg, sizeof msg))
    TEST_FAIL_("open: %s", msg);
  size_t before = vtl_cl_bytes_in_use(cl);
  vtl_clip *clip = (vtl_clip *)1;
  int rc = vtl_clip_load(cl, mf, &clip, msg, sizeof msg);
  vtl_model_files_close(mf);
  ASSERT_EQ(rc, want);
  ASSERT(clip == NULL);
  if (!strstr(msg, needle)) TEST_FAIL_("message \"%s\" lacks \"%s\"", msg, needle);
  ASSERT_EQ(vtl_cl_bytes_in_use(cl), before);
  return 0;
}

TEST_IMPL(load_errors) {
  model m = {.V = 20, .E = 8, .F = 12, .L = 2, .H = 2, .P = 6, .eos = 19,
             .gelu = 0, .eps = 1e-5};
  model_init(&m);
  scratch_dir();
  int rc = load_expect(&m, "text_model.encoder.layers.1.mlp.fc2.bias", 0, 0,
                       VTL_ENOENT, "layers.1.mlp.fc2.bias");
  if (!rc) rc = load_expect(&m, NULL, 1, 0, VTL_EUNSUPPORTED, "extra");
  if (!rc) rc = load_expect(&m, NULL, 0, 1, VTL_ERANGE, "fc1.weight");
  model_free(&m);
  scratch_remove();
  return rc;
}

TEST_IMPL(pool_index) {
  vtl_clip_config c = {.eos_token_id = 9};
  const int32_t a[5] = {8, 3, 9, 9, 4}, b[5] = {8, 3, 4, 5, 6};
  ASSERT_EQ(vtl_clip_pool_index(&c, a, 5), 2);
  ASSERT_EQ(vtl_clip_pool_index(&c, b, 5), 0);
  c.eos_token_id = 2; /* legacy: first argmax */
  const int32_t d[5] = {1, 7, 2, 7, 2};
  ASSERT_EQ(vtl_clip_pool_index(&c, d, 5), 1);
  return 0;
}

TEST_LIST(TEST_ENTRY(random_gelu) TEST_ENTRY(random_quick_gelu)
              TEST_ENTRY(encode_errors) TEST_ENTRY(load_errors)
                  TEST_ENTRY(pool_index))
