/* pipeline.c — txt2img and img2img (pipeline.h). */
#include "pipeline.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clip.h"
#include "philox.h"
#include "taesd.h"
#include "tensor.h"
#include "text_cond.h"
#include "tokenizer.h"
#include "unet.h"
#include "vae.h"
#include "vtl_error.h"

struct vtl_pipeline {
  vtl_cl *cl;
  vtl_tokenizer *tok;
  vtl_clip *clip;
  vtl_unet *unet;
  vtl_vae *vae;       /* NULL for a pixel-space model */
  vtl_taesd *taesd;  /* or NULL */
  vtl_text_cond *text; /* prompts -> conditioning, with its cache */
  int coord_channels; /* pixel space: x, y appended to the UNet input */
  json_t *sched_json; /* owned reference, or NULL */
};

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

/* ---- noise --------------------------------------------------------------- */

static int philox_draw(void *user, vtl_noise_purpose purpose,
                       const char *where, int step, float *out, size_t n) {
  (void)where;
  const vtl_noise_philox_state *st = user;
  vtl_philox_fill_normal(st->seed, st->frame,
                         vtl_philox_purpose((unsigned)purpose, step), 0, out,
                         n);
  return 0;
}

vtl_noise_source vtl_noise_philox(vtl_noise_philox_state *st) {
  vtl_noise_source s = {philox_draw, st};
  return s;
}

/* ---- loading ------------------------------------------------------------- */

int vtl_pipeline_load(vtl_cl *cl, const char *path,
                      const vtl_pipeline_opts *opts, vtl_pipeline **out,
                      char *msg, size_t msglen) {
  *out = NULL;
  vtl_pipeline_opts none = {0};
  if (!opts) opts = &none;
  vtl_pipeline *p = calloc(1, sizeof *p);
  if (!p) return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  p->cl = cl;
  vtl_model_files *m = NULL;
  vtl_model_open_opts mo = {.variant = opts->variant,
                            .config_dir = opts->config_dir};
  int rc = vtl_model_files_open(&m, path, &mo, msg, msglen);
  if (rc) goto error;
  const char *tdir = vtl_model_files_tokenizer_dir(m);
  char tpath[4096];
  if (!tdir && opts->config_dir) { /* single file: in the config folder */
    snprintf(tpath, sizeof tpath, "%s/tokenizer", opts->config_dir);
    tdir = tpath;
  }
  if (!tdir) {
    rc = fail(msg, msglen, VTL_ENOENT, "%s: no tokenizer/ folder", path);
    goto error;
  }
  if ((rc = vtl_tokenizer_load(tdir, &p->tok, msg, msglen))) goto error;
  if ((rc = vtl_clip_load(cl, m, &p->clip, msg, msglen))) goto error;
  if ((rc = vtl_text_cond_new(cl, p->tok, p->clip, &p->text))) {
    rc = fail(msg, msglen, rc, "out of memory");
    goto error;
  }
  const vtl_unet_config *uc = vtl_model_files_unet_config(m);
  int E = vtl_clip_config_of(p->clip)->hidden_size;
  if (uc && uc->class_proj_dim > 0 && uc->class_proj_dim != E) {
    rc = fail(msg, msglen, VTL_EINVAL, "%s: the unet's class embedding takes "
              "%d-wide class labels (projection_class_embeddings_input_dim) "
              "but the text encoder's pooled output is %d wide", path,
              uc->class_proj_dim, E);
    goto error;
  }
  if ((rc = vtl_unet_load(cl, m, &p->unet, msg, msglen))) goto error;
  if (!vtl_model_files_is_pixel_space(m) &&
      (rc = vtl_vae_load(cl, m, &p->vae, msg, msglen)))
    goto error;
  p->coord_channels = vtl_model_files_coord_channels(m);
  json_t *sj = vtl_model_files_scheduler_json(m);
  if (sj) p->sched_json = json_deep_copy(sj);
  vtl_model_files_close(m);
  m = NULL;
  if (opts->taesd_path) {
    rc = vtl_model_files_open(&m, opts->taesd_path, NULL, msg, msglen);
    if (!rc) rc = vtl_taesd_load(cl, m, &p->taesd, msg, msglen);
    if (rc) goto error;
    vtl_model_files_close(m);
    m = NULL;
  }
  *out = p;
  return 0;
error:
  vtl_model_files_close(m);
  vtl_pipeline_free(p);
  return rc;
}

void vtl_pipeline_free(vtl_pipeline *p) {
  if (!p) return;
  vtl_taesd_free(p->taesd);
  vtl_vae_free(p->vae);
  vtl_unet_free(p->unet);
  vtl_text_cond_free(p->text);
  vtl_clip_free(p->clip);
  vtl_tokenizer_free(p->tok);
  json_decref(p->sched_json);
  free(p);
}

json_t *vtl_pipeline_scheduler_json(const vtl_pipeline *p) {
  return p->sched_json;
}

int vtl_pipeline_latent_factor(const vtl_pipeline *p) {
  return p->vae ? 1 << (vtl_vae_config_of(p->vae)->num_blocks - 1) : 1;
}

int vtl_pipeline_native_size(const vtl_pipeline *p) {
  return vtl_unet_config_of(p->unet)->sample_size *
         vtl_pipeline_latent_factor(p);
}

bool vtl_pipeline_has_taesd(const vtl_pipeline *p) { return p->taesd != NULL; }

static const struct {
  const char *sampler, *cls;
} samplers[] = {{"ddim", "DDIMScheduler"},
                {"euler", "EulerDiscreteScheduler"},
                {"euler_a", "EulerAncestralDiscreteScheduler"},
                {"dpmpp_2m", "DPMSolverMultistepScheduler"},
                {"lcm", "LCMScheduler"}};

const char *vtl_sampler_class_name(const char *sampler) {
  for (size_t i = 0; sampler && i < sizeof samplers / sizeof samplers[0]; i++)
    if (strcmp(samplers[i].sampler, sampler) == 0) return samplers[i].cls;
  return NULL;
}

int vtl_pipeline_scheduler_config(const vtl_pipeline *p, const char *sampler,
                                  int spacing, vtl_scheduler_config *out,
                                  char *msg, size_t msglen) {
  memset(out, 0, sizeof *out);
  const char *cls = vtl_sampler_class_name(sampler);
  if (!cls)
    return fail(msg, msglen, VTL_EINVAL,
                "unknown sampler \"%s\" (ddim, euler, euler_a, dpmpp_2m, lcm)",
                sampler ? sampler : "(null)");
  int rc;
  if (p && p->sched_json) {
    rc = vtl_scheduler_config_from_json(p->sched_json, cls, out, msg, msglen);
    if (rc) return rc;
  } else {
    vtl_sched_class c;
    if ((rc = vtl_scheduler_class_from_name(cls, &c)))
      return fail(msg, msglen, rc, "scheduler class %s", cls);
    vtl_scheduler_config_defaults(c, out);
    out->beta_schedule = VTL_BETAS_SCALED_LINEAR;
    out->beta_start = 0.00085;
    out->beta_end = 0.012;
    out->steps_offset = 1;
  }
  if (out->cls == VTL_SCHED_DPM) {
    out->algorithm = VTL_DPM_PLUSPLUS;
    out->solver_order = 2;
  }
  if (spacing >= 0) out->spacing = (vtl_sched_spacing)spacing;
  return 0;
}

void vtl_gen_result_free(vtl_gen_result *r) {
  if (!r) return;
  free(r->latents);
  free(r->image);
  memset(r, 0, sizeof *r);
}

/* ---- one render ---------------------------------------------------------- */

typedef struct {
  vtl_pipeline *p;
  const vtl_gen_params *g;
  char *msg;
  size_t msglen;
  int L, h, w;          /* latent channels and size */
  size_t n;             /* L * h * w */
  bool cfg;             /* classifier-free guidance: batch 2 */
  vtl_tensor ctx;       /* [B, 77 * windows, Dc] */
  vtl_tensor tcond;     /* [B, time_cond_proj_dim] or unset */
  vtl_tensor labels;    /* [B, E] pooled text: the class labels of a UNet
                           with a class embedding, or unset */
  vtl_tensor xin;       /* [B, L + coord channels, h, w] */
  vtl_tensor eout;      /* [B, L, h, w] */
  size_t nin;           /* (L + coord channels) * h * w */
  float *hx, *he;       /* host [B * nin], [B * n] */
  vtl_scheduler sched;
  bool sched_open;
} render;

static int cl_fail(render *r, int rc, const char *what) {
  return fail(r->msg, r->msglen, rc, "%s: %s", what, vtl_cl_errmsg(r->p->cl));
}

/* The cond (b = 1) or uncond (b = 0) side of the render's prompts as
 * blend terms: g->blend when given, else g->prompt / g->negative_prompt.
 * Returns the count (terms has room for max(1, nblend)). */
static int prompt_terms(const vtl_gen_params *g, int b, vtl_prompt_term *terms) {
  if (g->nblend <= 0) {
    const char *neg = g->negative_prompt ? g->negative_prompt : "";
    terms[0] = (vtl_prompt_term){b ? g->prompt : neg, 1.0};
    return 1;
  }
  for (int i = 0; i < g->nblend; i++)
    terms[i] = (vtl_prompt_term){b ? g->blend[i].prompt
                                   : g->blend[i].negative ? g->blend[i].negative : "",
                                 g->blend[i].weight};
  return g->nblend;
}

/* Encodes the prompt(s) into r->ctx [B, 77 * windows, C]: with CFG the
 * negative side first; every side and term padded to the most windows any
 * of them needs (text_cond.h). For a UNet with a class embedding, r->labels
 * [B, C] gets each side's pooled output. */
static int encode_text(render *r) {
  vtl_pipeline *p = r->p;
  const vtl_gen_params *g = r->g;
  const int B = r->cfg ? 2 : 1, T = VTL_TOKENIZER_CTX;
  const int C = vtl_clip_config_of(p->clip)->hidden_size;
  bool want_pooled = vtl_unet_config_of(p->unet)->class_proj_dim > 0;
  int nt = g->nblend > 0 ? g->nblend : 1, count = 1, rc = 0;
  vtl_prompt_term *terms = malloc((size_t)2 * nt * sizeof *terms);
  float *host = NULL, *pooled = NULL;
  if (!terms) return fail(r->msg, r->msglen, VTL_ENOMEM, "out of memory");
  for (int b = 2 - B; b < 2; b++) prompt_terms(g, b, terms + (size_t)b * nt);
  for (int i = (2 - B) * nt; i < 2 * nt && !rc; i++) {
    int c;
    rc = vtl_text_cond_windows(p->text, terms[i].text, g->plain_prompts, &c,
                               r->msg, r->msglen);
    if (!rc && c > count) count = c;
  }
  size_t per = (size_t)count * T * C;
  if (!rc) {
    host = malloc(B * per * sizeof *host);
    pooled = want_pooled ? malloc((size_t)B * C * sizeof *pooled) : NULL;
    if (!host || (want_pooled && !pooled))
      rc = fail(r->msg, r->msglen, VTL_ENOMEM, "out of memory");
  }
  for (int b = 2 - B; b < 2 && !rc; b++) {
    int row = b - (2 - B); /* uncond first */
    rc = vtl_text_cond_blend(p->text, terms + (size_t)b * nt, nt,
                             g->plain_prompts, count, host + row * per,
                             pooled ? pooled + (size_t)row * C : NULL, r->msg,
                             r->msglen);
  }
  if (!rc) {
    rc = vtl_tensor_alloc(p->cl, &r->ctx, 3, VTL_SHAPE(B, count * T, C));
    if (!rc) rc = vtl_tensor_write(p->cl, &r->ctx, host);
    if (!rc && pooled) rc = vtl_tensor_alloc(p->cl, &r->labels, 2, VTL_SHAPE(B, C));
    if (!rc && pooled) rc = vtl_tensor_write(p->cl, &r->labels, pooled);
    if (rc) rc = cl_fail(r, rc, "text encoder");
  }
  free(terms);
  free(host);
  free(pooled);
  return rc;
}

/* diffusers' get_guidance_scale_embedding(w = g - 1) for LCM UNets. */
static int guidance_embedding(render *r, int dim) {
  int B = r->cfg ? 2 : 1;
  float *e = calloc((size_t)B * dim, sizeof *e);
  if (!e) return fail(r->msg, r->msglen, VTL_ENOMEM, "out of memory");
  float w = (float)(r->g->guidance_scale - 1.0) * 1000.0f;
  int half = dim / 2;
  float lf = logf(10000.0f) / (float)(half - 1 > 0 ? half - 1 : 1);
  for (int k = 0; k < half; k++) {
    float a = w * expf((float)k * -lf);
    e[k] = sinf(a);
    e[half + k] = cosf(a);
  }
  for (int b = 1; b < B; b++) memcpy(e + (size_t)b * dim, e, dim * sizeof *e);
  int rc = vtl_tensor_alloc(r->p->cl, &r->tcond, 2, VTL_SHAPE(B, dim));
  if (!rc) rc = vtl_tensor_write(r->p->cl, &r->tcond, e);
  free(e);
  if (rc) return cl_fail(r, rc, "guidance embedding");
  return 0;
}

/* The coord channels of every batch row of r->hx (after its L sample
 * channels): x, then y, of each pixel's centre in [-1, 1]. */
static void fill_coords(render *r, int B) {
  if (!r->p->coord_channels) return;
  size_t hw = (size_t)r->h * r->w;
  for (int b = 0; b < B; b++) {
    float *cx = r->hx + b * r->nin + r->n, *cy = cx + hw;
    for (int i = 0; i < r->h; i++)
      for (int j = 0; j < r->w; j++) {
        cx[(size_t)i * r->w + j] = (j + 0.5f) / r->w * 2 - 1;
        cy[(size_t)i * r->w + j] = (i + 0.5f) / r->h * 2 - 1;
      }
  }
}

/* Checks params, sets sizes, opens the scheduler, encodes the text. */
static int render_begin(render *r, vtl_pipeline *p, const vtl_gen_params *g,
                        char *msg, size_t msglen) {
  memset(r, 0, sizeof *r);
  r->p = p;
  r->g = g;
  r->msg = msg;
  r->msglen = msglen;
  if (!g->prompt && g->nblend <= 0)
    return fail(msg, msglen, VTL_EINVAL, "no prompt");
  if (g->nblend > 0 && !g->blend)
    return fail(msg, msglen, VTL_EINVAL, "nblend without blend");
  if (!g->scheduler) return fail(msg, msglen, VTL_EINVAL, "no scheduler config");
  if (!g->noise.draw) return fail(msg, msglen, VTL_EINVAL, "no noise source");
  if (g->steps < 1 || g->steps > 10000)
    return fail(msg, msglen, VTL_EINVAL, "steps %d not in 1..10000", g->steps);
  if (!(g->guidance_scale >= 0 && g->guidance_scale < 1e4))
    return fail(msg, msglen, VTL_EINVAL, "guidance scale %g out of range",
                g->guidance_scale);
  if (g->use_taesd && !p->vae)
    return fail(msg, msglen, VTL_EINVAL, "use_taesd on a pixel-space model: "
                "it has no latents for TAESD to decode");
  if (g->use_taesd && !p->taesd)
    return fail(msg, msglen, VTL_EINVAL, "use_taesd without a TAESD loaded");
  int f = vtl_pipeline_latent_factor(p);
  if (g->width < f || g->height < f || g->width % f || g->height % f ||
      g->width > 16384 || g->height > 16384)
    return fail(msg, msglen, VTL_EINVAL,
                "size %dx%d: width and height must be positive multiples of "
                "%d (at most 16384)", g->width, g->height, f);
  const vtl_unet_config *uc = vtl_unet_config_of(p->unet);
  r->L = p->vae ? vtl_vae_config_of(p->vae)->latent_channels : 3;
  if (uc->in_channels != r->L + p->coord_channels || uc->out_channels != r->L)
    return fail(msg, msglen, VTL_EINVAL,
                "UNet channels %d -> %d do not match the %d %s (+ %d coord "
                "channels in)", uc->in_channels, uc->out_channels, r->L,
                p->vae ? "latent channels of the VAE" : "image channels",
                p->coord_channels);
  r->h = g->height / f;
  r->w = g->width / f;
  r->n = (size_t)r->L * r->h * r->w;
  r->nin = (size_t)(r->L + p->coord_channels) * r->h * r->w;
  r->cfg = g->guidance_scale > 1.0 && uc->time_cond_proj_dim == 0;
  int B = r->cfg ? 2 : 1;
  r->hx = malloc((size_t)B * r->nin * sizeof *r->hx);
  r->he = malloc((size_t)B * r->n * sizeof *r->he);
  if (!r->hx || !r->he) return fail(msg, msglen, VTL_ENOMEM, "out of memory");
  int rc = vtl_scheduler_init(&r->sched, g->scheduler, g->steps);
  r->sched_open = true;
  if (rc) return fail(msg, msglen, rc, "scheduler: %s", r->sched.error);
  fill_coords(r, B);
  rc = vtl_tensor_alloc(p->cl, &r->xin, 4,
                        VTL_SHAPE(B, r->L + p->coord_channels, r->h, r->w));
  if (!rc) rc = vtl_tensor_alloc(p->cl, &r->eout, 4, VTL_SHAPE(B, r->L, r->h, r->w));
  if (rc) return cl_fail(r, rc, "latents");
  if ((rc = encode_text(r))) return rc;
  if (uc->time_cond_proj_dim > 0 &&
      (rc = guidance_embedding(r, uc->time_cond_proj_dim)))
    return rc;
  return 0;
}

static void render_end(render *r) {
  vtl_cl *cl = r->p->cl;
  vtl_tensor_release(cl, &r->ctx);
  vtl_tensor_release(cl, &r->tcond);
  vtl_tensor_release(cl, &r->labels);
  vtl_tensor_release(cl, &r->xin);
  vtl_tensor_release(cl, &r->eout);
  free(r->hx);
  free(r->he);
  if (r->sched_open) vtl_scheduler_close(&r->sched);
}

/* The denoising loop from index `begin`: x [n] in place. */
static int denoise(render *r, float *x, int begin) {
  vtl_pipeline *p = r->p;
  const vtl_gen_params *g = r->g;
  vtl_scheduler *s = &r->sched;
  size_t n = r->n;
  int B = r->cfg ? 2 : 1, total = s->num_steps - begin, rc = 0;
  float gs = (float)g->guidance_scale;
  float *noise = malloc(n * sizeof *noise);
  if (!noise) return fail(r->msg, r->msglen, VTL_ENOMEM, "out of memory");
  char where[96];
  snprintf(where, sizeof where, "%s.step", s->config.class_name);
  vtl_unet_extra ex = {.timestep_cond = r->tcond.buf ? &r->tcond : NULL,
                       .class_labels = r->labels.buf ? &r->labels : NULL};
  for (int i = begin; i < s->num_steps; i++) {
    float t = s->timesteps[i];
    if ((rc = vtl_scheduler_scale_model_input(s, i, x, r->hx, n))) {
      rc = fail(r->msg, r->msglen, rc, "step %d: %s", i - begin, s->error);
      break;
    }
    if (B == 2) memcpy(r->hx + r->nin, r->hx, n * sizeof *r->hx);
    rc = vtl_tensor_write(p->cl, &r->xin, r->hx);
    if (!rc)
      rc = vtl_unet_forward(p->unet, &r->xin, &t, 1, &r->ctx, &ex, &r->eout);
    if (!rc) rc = vtl_tensor_read(p->cl, &r->eout, r->he);
    if (rc) {
      rc = cl_fail(r, rc, "unet");
      break;
    }
    if (B == 2) /* e_u + g * (e_c - e_u) */
      for (size_t k = 0; k < n; k++) {
        float u = r->he[k], d = r->he[n + k] - u;
        float gd = gs * d;
        r->he[k] = u + gd;
      }
    const float *nz = NULL;
    if (vtl_scheduler_step_needs_noise(s, i)) {
      rc = g->noise.draw(g->noise.user, VTL_NOISE_STEP, where, i - begin, noise, n);
      if (rc) {
        rc = fail(r->msg, r->msglen, rc, "noise for step %d: %s", i - begin,
                  vtl_strerror(rc));
        break;
      }
      nz = noise;
    }
    if ((rc = vtl_scheduler_step(s, i, r->he, x, nz, x, NULL, n))) {
      rc = fail(r->msg, r->msglen, rc, "step %d: %s", i - begin, s->error);
      break;
    }
    if (g->progress && (rc = g->progress(g->progress_user, i - begin + 1, total, t))) {
      rc = fail(r->msg, r->msglen, rc, "cancelled at step %d", i - begin + 1);
      break;
    }
  }
  free(noise);
  return rc;
}

/* image [1, 3, H, W] = decode(x [n] / scaling_factor) with the VAE or
 * TAESD. */
static int vae_decode(render *r, const float *x, float *image) {
  vtl_pipeline *p = r->p;
  vtl_cl *cl = p->cl;
  size_t n = r->n;
  const int64_t ls[4] = {1, r->L, r->h, r->w},
                is[4] = {1, 3, r->g->height, r->g->width};
  float *z = malloc(n * sizeof *z);
  if (!z) return fail(r->msg, r->msglen, VTL_ENOMEM, "out of memory");
  float sf = r->g->use_taesd ? vtl_taesd_config_of(p->taesd)->scaling_factor
                             : vtl_vae_config_of(p->vae)->scaling_factor;
  for (size_t k = 0; k < n; k++) z[k] = x[k] / sf;
  vtl_tensor zt = {0}, img = {0};
  int rc = vtl_tensor_alloc(cl, &zt, 4, ls);
  if (!rc) rc = vtl_tensor_write(cl, &zt, z);
  free(z);
  if (!rc) rc = vtl_tensor_alloc(cl, &img, 4, is);
  if (!rc)
    rc = r->g->use_taesd ? vtl_taesd_decode(p->taesd, &zt, &img)
                         : vtl_vae_decode(p->vae, &zt, &img);
  if (!rc) rc = vtl_tensor_read(cl, &img, image);
  if (rc) rc = cl_fail(r, rc, "decode");
  vtl_tensor_release(cl, &zt);
  vtl_tensor_release(cl, &img);
  return rc;
}

/* Fills res from the final sample x [n]: the latents, and the image
 * (decoded, or x itself in pixel space) clamped as the pipelines'
 * postprocess. */
static int decode(render *r, const float *x, vtl_gen_result *res) {
  size_t n = r->n;
  int H = r->g->height, W = r->g->width;
  size_t in = (size_t)3 * H * W;
  res->latents = malloc(n * sizeof *res->latents);
  res->image = malloc(in * sizeof *res->image);
  if (!res->latents || !res->image)
    return fail(r->msg, r->msglen, VTL_ENOMEM, "out of memory");
  memcpy(res->latents, x, n * sizeof *x);
  const int64_t ls[4] = {1, r->L, r->h, r->w}, is[4] = {1, 3, H, W};
  memcpy(res->latents_shape, ls, sizeof ls);
  memcpy(res->image_shape, is, sizeof is);
  if (!r->p->vae) {
    memcpy(res->image, x, in * sizeof *x); /* pixel space: n == in */
  } else {
    int rc = vae_decode(r, x, res->image);
    if (rc) return rc;
  }
  for (size_t k = 0; k < in; k++) {
    float v = res->image[k] / 2.0f + 0.5f;
    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; /* NaN stays NaN */
    res->image[k] = v * 2.0f - 1.0f;
  }
  return 0;
}

int vtl_pipeline_txt2img(vtl_pipeline *p, const vtl_gen_params *g,
                         vtl_gen_result *res, char *msg, size_t msglen) {
  memset(res, 0, sizeof *res);
  render r;
  float *x = NULL;
  int rc = render_begin(&r, p, g, msg, msglen);
  if (rc) goto done;
  x = malloc(r.n * sizeof *x);
  if (!x) {
    rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
    goto done;
  }
  rc = g->noise.draw(g->noise.user, VTL_NOISE_LATENTS,
                     "StableDiffusionPipeline.prepare_latents", -1, x, r.n);
  if (rc) {
    rc = fail(msg, msglen, rc, "noise for the latents: %s", vtl_strerror(rc));
    goto done;
  }
  float ins = r.sched.init_noise_sigma;
  for (size_t k = 0; k < r.n; k++) x[k] = x[k] * ins;
  if ((rc = denoise(&r, x, 0))) goto done;
  res->steps_run = r.sched.num_steps;
  rc = decode(&r, x, res);
done:
  if (rc) vtl_gen_result_free(res);
  free(x);
  render_end(&r);
  return rc;
}

/* z0 [n] of img2img: the VAE's sample of init_image times the scaling
 * factor, or in pixel space the image itself. */
static int init_latents(render *r, const float *init_image, float *z0) {
  vtl_pipeline *p = r->p;
  const vtl_gen_params *g = r->g;
  vtl_cl *cl = p->cl;
  size_t n = r->n;
  if (!p->vae) {
    memcpy(z0, init_image, n * sizeof *z0); /* n == 3 * H * W */
    return 0;
  }
  float *logvar = malloc(n * sizeof *logvar), *nz = malloc(n * sizeof *nz);
  vtl_tensor it = {0}, mt = {0}, lt = {0};
  int rc = 0;
  if (!logvar || !nz) {
    rc = fail(r->msg, r->msglen, VTL_ENOMEM, "out of memory");
    goto done;
  }
  const int64_t is[4] = {1, 3, g->height, g->width}, ls[4] = {1, r->L, r->h, r->w};
  rc = vtl_tensor_alloc(cl, &it, 4, is);
  if (!rc) rc = vtl_tensor_write(cl, &it, init_image);
  if (!rc) rc = vtl_tensor_alloc(cl, &mt, 4, ls);
  if (!rc) rc = vtl_tensor_alloc(cl, &lt, 4, ls);
  if (!rc) rc = vtl_vae_encode(p->vae, &it, &mt, &lt);
  if (!rc) rc = vtl_tensor_read(cl, &mt, z0);
  if (!rc) rc = vtl_tensor_read(cl, &lt, logvar);
  if (rc) {
    rc = cl_fail(r, rc, "vae encode");
    goto done;
  }
  rc = g->noise.draw(g->noise.user, VTL_NOISE_VAE_SAMPLE,
                     "DiagonalGaussianDistribution.sample", -1, nz, n);
  if (rc) {
    rc = fail(r->msg, r->msglen, rc, "noise for the VAE sample: %s",
              vtl_strerror(rc));
    goto done;
  }
  float sf = vtl_vae_config_of(p->vae)->scaling_factor;
  for (size_t k = 0; k < n; k++) {
    float sd = expf(0.5f * logvar[k]);
    float s = z0[k] + sd * nz[k];
    z0[k] = sf * s;
  }
done:
  vtl_tensor_release(cl, &it);
  vtl_tensor_release(cl, &mt);
  vtl_tensor_release(cl, &lt);
  free(logvar);
  free(nz);
  return rc;
}

int vtl_pipeline_img2img(vtl_pipeline *p, const vtl_gen_params *g,
                         const float *init_image, vtl_gen_result *res,
                         char *msg, size_t msglen) {
  memset(res, 0, sizeof *res);
  render r;
  float *x = NULL, *z0 = NULL, *nz = NULL;
  int rc = render_begin(&r, p, g, msg, msglen);
  if (rc) goto done;
  if (!init_image) {
    rc = fail(msg, msglen, VTL_EINVAL, "img2img without an init image");
    goto done;
  }
  int begin, count;
  if ((rc = vtl_scheduler_set_strength(&r.sched, g->strength, &begin, &count))) {
    rc = fail(msg, msglen, rc, "strength %g: %s", g->strength, r.sched.error);
    goto done;
  }
  x = malloc(r.n * sizeof *x);
  z0 = malloc(r.n * sizeof *z0);
  nz = malloc(r.n * sizeof *nz);
  if (!x || !z0 || !nz) {
    rc = fail(msg, msglen, VTL_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = init_latents(&r, init_image, z0))) goto done;
  rc = g->noise.draw(g->noise.user, VTL_NOISE_IMG2IMG,
                     "StableDiffusionImg2ImgPipeline.prepare_latents", -1, nz, r.n);
  if (rc) {
    rc = fail(msg, msglen, rc, "noise for img2img: %s", vtl_strerror(rc));
    goto done;
  }
  if ((rc = vtl_scheduler_add_noise(&r.sched, begin, z0, nz, x, r.n))) {
    rc = fail(msg, msglen, rc, "add_noise: %s", r.sched.error);
    goto done;
  }
  if ((rc = denoise(&r, x, begin))) goto done;
  res->steps_run = count;
  rc = decode(&r, x, res);
done:
  if (rc) vtl_gen_result_free(res);
  free(x);
  free(z0);
  free(nz);
  render_end(&r);
  return rc;
}
