/* test_pipeline_pixel.c — engine/pipeline.c on a pixel-space model (no
 * VAE; a UNet with class_embed_type "projection" fed the pooled text),
 * written by `vtl-make-random-model --arch pixel` into a scratch folder:
 *
 *   pixel_txt2img   latent factor 1 and the native size; image and
 *                   "latents" [1, 3, H, W] of the asked size, in [-1, 1]
 *                   after the clamp; same seed, same bytes; CFG with a
 *                   negative prompt and a long weighted prompt run
 *   pixel_img2img   strength near 0 gives back (almost) the init image,
 *                   a high strength does not
 *   pixel_blend     a one-term prompt blend renders exactly as the prompt;
 *                   a two-term blend differs from each term alone
 *   pixel_errors    use_taesd refused; a pixel model whose UNet inputs are
 *                   not RGB + its coord channels (in_channels 4; coord
 *                   channels 0 for a 5-input UNet; coord_channels 3), and
 *                   one whose class embedding
 *                   does not take the text encoder's width are refused at
 *                   load with a message naming the key
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "pipeline.h"
#include "task.h"
#include "vtl_error.h"

#define MAKE VTL_BINARY_DIR "/tools/make-random-model/vtl-make-random-model"

static vtl_cl *shared_rt;
static vtl_pipeline *shared_p;
static char scratch[64];

static void close_all(void) {
  vtl_pipeline_free(shared_p);
  vtl_cl_close(shared_rt);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
  if (scratch[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", scratch);
}

/* Writes the random pixel model into <scratch>/<name>, optionally with one
 * integer key of its unet config changed; returns its path. */
static const char *make_model(const char *name, const char *key, int val) {
  static char dir[128];
  char cmd[512];
  snprintf(dir, sizeof dir, "%s/%s", scratch, name);
  snprintf(cmd, sizeof cmd, "'%s' --arch pixel --seed 5 --out '%s'", MAKE, dir);
  if (system(cmd) != 0) {
    fprintf(stderr, "%s failed\n", cmd);
    abort();
  }
  if (key) {
    char path[256];
    snprintf(path, sizeof path, "%s/unet/config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    if (!j) abort();
    json_object_set_new(j, key, json_integer(val));
    if (json_dump_file(j, path, JSON_INDENT(1))) abort();
    json_decref(j);
  }
  return dir;
}

/* Sets model_index.json's "coord_channels" of the model at dir. */
static const char *set_index(const char *dir, int coord_channels) {
  char path[256];
  snprintf(path, sizeof path, "%s/model_index.json", dir);
  json_t *j = json_load_file(path, 0, NULL);
  if (!j) abort();
  json_object_set_new(j, "coord_channels", json_integer(coord_channels));
  if (json_dump_file(j, path, JSON_INDENT(1))) abort();
  json_decref(j);
  return dir;
}

static vtl_pipeline *pipe_(void) {
  if (!shared_p) {
    vtl_cl_options o;
    vtl_cl_options_init(&o);
    o.cache_dir = VTL_BINARY_DIR "/kernel-cache";
    o.profile = 0;
    char msg[512], dir[128];
    snprintf(scratch, sizeof scratch, "/tmp/vtl-pixel-XXXXXX");
    if (!mkdtemp(scratch)) abort();
    /* written before the device is opened (no fork of a process that
     * holds an OpenCL context on the way to the renders) */
    snprintf(dir, sizeof dir, "%s", make_model("m", NULL, 0));
    if (vtl_cl_init(&shared_rt, &o, msg, sizeof msg) != 0) {
      fprintf(stderr, "no OpenCL device: %s\n", msg);
      abort();
    }
    atexit(close_all);
    if (vtl_pipeline_load(shared_rt, dir, NULL, &shared_p, msg, sizeof msg) != 0) {
      fprintf(stderr, "load: %s\n", msg);
      abort();
    }
  }
  return shared_p;
}

typedef struct {
  vtl_scheduler_config sc;
  vtl_noise_philox_state ns;
  vtl_gen_params g;
} setup;

static int setup_init(setup *s, uint64_t seed) {
  char msg[256];
  memset(s, 0, sizeof *s);
  int rc = vtl_pipeline_scheduler_config(pipe_(), "ddim", -1, &s->sc, msg, sizeof msg);
  if (rc) {
    fprintf(stderr, "%s\n", msg);
    return rc;
  }
  s->ns.seed = seed;
  s->g = (vtl_gen_params){.prompt = "a red cat",
                          .negative_prompt = "blurry",
                          .guidance_scale = 3,
                          .steps = 3,
                          .scheduler = &s->sc,
                          .width = 20,
                          .height = 12,
                          .noise = vtl_noise_philox(&s->ns)};
  return 0;
}

static int txt2img(setup *s, vtl_gen_result *r) {
  char msg[256];
  int rc = vtl_pipeline_txt2img(pipe_(), &s->g, r, msg, sizeof msg);
  if (rc) fprintf(stderr, "txt2img: %s\n", msg);
  return rc;
}

#define NPX (3 * 12 * 20)

TEST_IMPL(pixel_txt2img) {
  ASSERT_EQ(vtl_pipeline_latent_factor(pipe_()), 1);
  ASSERT_EQ(vtl_pipeline_native_size(pipe_()), 32);
  setup s;
  ASSERT_OK(setup_init(&s, 4));
  vtl_gen_result a, b, c;
  ASSERT_OK(txt2img(&s, &a));
  ASSERT_OK(txt2img(&s, &b));
  const int64_t want[4] = {1, 3, 12, 20};
  ASSERT_OK(memcmp(a.image_shape, want, sizeof want));
  ASSERT_OK(memcmp(a.latents_shape, want, sizeof want));
  ASSERT_OK(memcmp(a.image, b.image, NPX * sizeof(float)));
  for (int k = 0; k < NPX; k++) {
    float v = a.latents[k] < -1 ? -1 : a.latents[k] > 1 ? 1 : a.latents[k];
    ASSERT(fabsf(a.image[k] - v) < 1e-6f); /* the clamped final sample */
  }
  s.g.negative_prompt = "a blue dog"; /* the uncond half sees it */
  ASSERT_OK(txt2img(&s, &c));
  ASSERT(memcmp(a.image, c.image, NPX * sizeof(float)) != 0);
  vtl_gen_result_free(&c);
  s.g.prompt = "(a red:1.4) cat, a cat on a mat by a hat in a flat, a cat on a "
               "mat by a hat in a flat, a cat on a mat by a hat in a flat, a "
               "cat on a mat by a hat in a flat, a cat on a mat by a hat";
  ASSERT_OK(txt2img(&s, &c)); /* two windows: the first one's pooled */
  vtl_gen_result_free(&a);
  vtl_gen_result_free(&b);
  vtl_gen_result_free(&c);
  vtl_scheduler_config_free(&s.sc);
  return 0;
}

/* Mean |a - b| over the image. */
static double mean_diff(const float *a, const float *b) {
  double d = 0;
  for (int k = 0; k < NPX; k++) d += fabs(a[k] - b[k]);
  return d / NPX;
}

TEST_IMPL(pixel_img2img) {
  setup s;
  ASSERT_OK(setup_init(&s, 9));
  float init[NPX];
  for (int k = 0; k < NPX; k++) init[k] = (float)sin(0.1 * k) * 0.8f;
  char msg[256];
  vtl_gen_result lo, hi, again;
  s.g.steps = 100; /* strength 0.02: the last 2 steps, t 19 and 9 */
  s.g.strength = 0.02;
  ASSERT_OK(vtl_pipeline_img2img(pipe_(), &s.g, init, &lo, msg, sizeof msg));
  ASSERT_EQ(lo.steps_run, 2);
  ASSERT_OK(vtl_pipeline_img2img(pipe_(), &s.g, init, &again, msg, sizeof msg));
  ASSERT_OK(memcmp(lo.image, again.image, NPX * sizeof(float)));
  s.g.steps = 4;
  s.g.strength = 0.9;
  ASSERT_OK(vtl_pipeline_img2img(pipe_(), &s.g, init, &hi, msg, sizeof msg));
  double dlo = mean_diff(lo.image, init), dhi = mean_diff(hi.image, init);
  if (!(dlo < 0.05 && dhi > 4 * dlo))
    TEST_FAIL_("mean |image - init|: %.4f at strength 0.02, %.4f at 0.9", dlo, dhi);
  vtl_gen_result_free(&lo);
  vtl_gen_result_free(&hi);
  vtl_gen_result_free(&again);
  vtl_scheduler_config_free(&s.sc);
  return 0;
}

TEST_IMPL(pixel_blend) {
  setup s;
  ASSERT_OK(setup_init(&s, 6));
  vtl_gen_result one, solo, mix, other;
  ASSERT_OK(txt2img(&s, &one)); /* prompt "a red cat", negative "blurry" */
  vtl_prompt_blend b[2] = {{"a red cat", "blurry", 2.5}, {"a blue dog", NULL, 1.0}};
  s.g.prompt = NULL;
  s.g.blend = b;
  s.g.nblend = 1;
  ASSERT_OK(txt2img(&s, &solo)); /* one term of any weight: the same render */
  ASSERT_OK(memcmp(one.image, solo.image, NPX * sizeof(float)));
  s.g.nblend = 2;
  ASSERT_OK(txt2img(&s, &mix));
  s.g.blend = b + 1;
  s.g.nblend = 1;
  ASSERT_OK(txt2img(&s, &other));
  ASSERT(mean_diff(mix.image, one.image) > 1e-4);
  ASSERT(mean_diff(mix.image, other.image) > 1e-4);
  vtl_gen_result_free(&one);
  vtl_gen_result_free(&solo);
  vtl_gen_result_free(&mix);
  vtl_gen_result_free(&other);
  vtl_scheduler_config_free(&s.sc);
  return 0;
}

static int load_refused(const char *dir, const char *needle) {
  char msg[512] = "";
  vtl_pipeline *p = (vtl_pipeline *)1;
  int rc = vtl_pipeline_load(shared_rt, dir, NULL, &p, msg, sizeof msg);
  ASSERT_EQ(rc, VTL_EINVAL);
  ASSERT(p == NULL);
  if (!strstr(msg, needle)) TEST_FAIL_("message \"%s\" lacks \"%s\"", msg, needle);
  return 0;
}

TEST_IMPL(pixel_errors) {
  setup s;
  ASSERT_OK(setup_init(&s, 1));
  char msg[256];
  vtl_gen_result r;
  s.g.use_taesd = true;
  ASSERT_EQ(vtl_pipeline_txt2img(pipe_(), &s.g, &r, msg, sizeof msg), VTL_EINVAL);
  ASSERT(strstr(msg, "pixel-space"));
  vtl_scheduler_config_free(&s.sc);
  int rc = load_refused(make_model("in4", "in_channels", 4), "in_channels");
  if (!rc)
    rc = load_refused(make_model("p16", "projection_class_embeddings_input_dim", 16),
                      "projection_class_embeddings_input_dim");
  if (!rc) rc = load_refused(set_index(make_model("cc3", NULL, 0), 3), "coord_channels");
  /* without its coord channels the UNet's 5 inputs do not add up */
  if (!rc) rc = load_refused(set_index(make_model("cc0", NULL, 0), 0), "in_channels");
  return rc;
}

TEST_LIST(TEST_ENTRY(pixel_txt2img) TEST_ENTRY(pixel_img2img) TEST_ENTRY(pixel_blend)
              TEST_ENTRY(pixel_errors))
