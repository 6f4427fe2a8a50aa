/* test_pipeline.c — engine/pipeline.c beyond the reference kit's numbers
 * (those are vtl-refcheck's txt2img / img2img cases): parameter errors,
 * Philox determinism, cancelling through the progress callback, TAESD
 * decoding, scheduler configs from sampler names. Runs the kit's tiny-sd
 * (../shared/refkit) on the default OpenCL device. */
#include <stdbool.h>

#include "pipeline.h"
#include "task.h"
#include "vtl_error.h"

#define KIT VTL_SOURCE_DIR "/../shared/refkit"

static vtl_cl *shared_rt;
static vtl_pipeline *shared_p;

static void close_all(void) {
  vtl_pipeline_free(shared_p);
  vtl_cl_close(shared_rt);
}

static vtl_pipeline *pipe_(void) {
  if (!shared_p) {
    vtl_cl_options o;
    vtl_cl_options_init(&o);
    o.cache_dir = VTL_BINARY_DIR "/kernel-cache";
    o.profile = 0;
    char msg[512];
    if (vtl_cl_init(&shared_rt, &o, msg, sizeof msg) != 0) {
      fprintf(stderr, "no OpenCL device: %s\n", msg);
      abort();
    }
    atexit(close_all);
    vtl_pipeline_opts po = {.taesd_path = KIT "/models/taesd"};
    if (vtl_pipeline_load(shared_rt, KIT "/models/tiny-sd", &po, &shared_p, msg,
                          sizeof msg) != 0) {
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

static int setup_init(setup *s, const char *sampler, uint64_t seed) {
  char msg[256];
  memset(s, 0, sizeof *s);
  int rc = vtl_pipeline_scheduler_config(pipe_(), sampler, -1, &s->sc, msg, sizeof msg);
  if (rc) {
    fprintf(stderr, "%s\n", msg);
    return rc;
  }
  s->ns.seed = seed;
  s->g = (vtl_gen_params){.prompt = "a red cat",
                          .negative_prompt = "blurry",
                          .guidance_scale = 7.5,
                          .steps = 3,
                          .strength = 0.5,
                          .scheduler = &s->sc,
                          .width = 64,
                          .height = 64,
                          .noise = vtl_noise_philox(&s->ns)};
  return 0;
}

TEST_IMPL(pipeline_sampler_configs) {
  const char *names[] = {"ddim", "euler", "euler_a", "dpmpp_2m", "lcm"};
  const vtl_sched_class cls[] = {VTL_SCHED_DDIM, VTL_SCHED_EULER, VTL_SCHED_EULER_A,
                                 VTL_SCHED_DPM, VTL_SCHED_LCM};
  for (int i = 0; i < 5; i++) {
    vtl_scheduler_config c;
    char msg[256];
    ASSERT_OK(vtl_pipeline_scheduler_config(pipe_(), names[i], VTL_SCHED_SPACING_TRAILING,
                                            &c, msg, sizeof msg));
    ASSERT_EQ(c.cls, cls[i]);
    ASSERT_EQ(c.spacing, VTL_SCHED_SPACING_TRAILING);
    ASSERT_EQ(c.steps_offset, 1); /* from tiny-sd's scheduler_config.json */
    ASSERT_EQ(c.beta_schedule, VTL_BETAS_SCALED_LINEAR);
    if (c.cls == VTL_SCHED_DPM) ASSERT_EQ(c.solver_order, 2);
    vtl_scheduler_config_free(&c);
  }
  vtl_scheduler_config c;
  char msg[256];
  ASSERT_EQ(vtl_pipeline_scheduler_config(pipe_(), "plms", -1, &c, msg, sizeof msg),
            VTL_EINVAL);
  ASSERT_CONTAINS(msg, "plms");
  /* no model: SD's schedule with the class defaults */
  ASSERT_OK(vtl_pipeline_scheduler_config(NULL, "euler", -1, &c, msg, sizeof msg));
  ASSERT_EQ(c.steps_offset, 1);
  vtl_scheduler_config_free(&c);
  return 0;
}

TEST_IMPL(pipeline_param_errors) {
  setup s;
  ASSERT_OK(setup_init(&s, "euler_a", 1));
  vtl_gen_result r;
  char msg[256];
  vtl_gen_params g = s.g;
  g.width = 60;
  ASSERT_EQ(vtl_pipeline_txt2img(pipe_(), &g, &r, msg, sizeof msg), VTL_EINVAL);
  ASSERT_CONTAINS(msg, "multiples of 8");
  ASSERT(r.image == NULL && r.latents == NULL);
  g = s.g;
  g.steps = 0;
  ASSERT_EQ(vtl_pipeline_txt2img(pipe_(), &g, &r, msg, sizeof msg), VTL_EINVAL);
  g = s.g;
  g.prompt = NULL;
  ASSERT_EQ(vtl_pipeline_txt2img(pipe_(), &g, &r, msg, sizeof msg), VTL_EINVAL);
  g = s.g;
  g.noise.draw = NULL;
  ASSERT_EQ(vtl_pipeline_txt2img(pipe_(), &g, &r, msg, sizeof msg), VTL_EINVAL);
  /* img2img: int(3 * 0.2) = 0 steps left */
  float img[3 * 64 * 64] = {0};
  g = s.g;
  g.strength = 0.2;
  ASSERT_EQ(vtl_pipeline_img2img(pipe_(), &g, img, &r, msg, sizeof msg), VTL_ERANGE);
  g.strength = 0.5;
  ASSERT_EQ(vtl_pipeline_img2img(pipe_(), &g, NULL, &r, msg, sizeof msg), VTL_EINVAL);
  vtl_scheduler_config_free(&s.sc);
  /* a model that is not there */
  vtl_pipeline *p = NULL;
  ASSERT_EQ(vtl_pipeline_load(shared_rt, KIT "/models/nope", NULL, &p, msg, sizeof msg),
            VTL_ENOENT);
  ASSERT(p == NULL);
  return 0;
}

static int render(setup *s, vtl_gen_result *r) {
  char msg[256];
  int rc = vtl_pipeline_txt2img(pipe_(), &s->g, r, msg, sizeof msg);
  if (rc) fprintf(stderr, "txt2img: %s\n", msg);
  return rc;
}

TEST_IMPL(pipeline_philox_determinism) {
  setup s;
  ASSERT_OK(setup_init(&s, "euler_a", 7));
  vtl_gen_result a, b, c;
  ASSERT_OK(render(&s, &a));
  ASSERT_OK(render(&s, &b));
  ASSERT_EQ(a.latents_shape[1], 4);
  ASSERT_EQ(a.latents_shape[2], 8);
  ASSERT_EQ(a.image_shape[1], 3);
  ASSERT_EQ(a.image_shape[3], 64);
  ASSERT_EQ(a.steps_run, 3);
  ASSERT_OK(memcmp(a.latents, b.latents, 4 * 8 * 8 * sizeof(float)));
  ASSERT_OK(memcmp(a.image, b.image, 3 * 64 * 64 * sizeof(float)));
  for (int k = 0; k < 3 * 64 * 64; k++) ASSERT(a.image[k] >= -1 && a.image[k] <= 1);
  s.ns.frame = 1; /* another frame, other noise */
  ASSERT_OK(render(&s, &c));
  ASSERT(memcmp(a.latents, c.latents, 4 * 8 * 8 * sizeof(float)) != 0);
  vtl_gen_result_free(&c);
  s.ns.frame = 0;
  s.g.guidance_scale = 1.0; /* no CFG: other result, same shapes */
  ASSERT_OK(render(&s, &c));
  ASSERT(memcmp(a.latents, c.latents, 4 * 8 * 8 * sizeof(float)) != 0);
  vtl_gen_result_free(&c);
  s.g.guidance_scale = 7.5;
  s.g.use_taesd = true; /* same latents, another decoder */
  ASSERT_OK(render(&s, &c));
  ASSERT_OK(memcmp(a.latents, c.latents, 4 * 8 * 8 * sizeof(float)));
  ASSERT(memcmp(a.image, c.image, 3 * 64 * 64 * sizeof(float)) != 0);
  vtl_gen_result_free(&a);
  vtl_gen_result_free(&b);
  vtl_gen_result_free(&c);
  vtl_scheduler_config_free(&s.sc);
  return 0;
}

/* Weighted and long prompts (plain_prompts false): weight 1 changes nothing,
 * another weight changes the film, a prompt past 75 tokens is not cut. */
TEST_IMPL(pipeline_weighted_long_prompts) {
  setup s;
  ASSERT_OK(setup_init(&s, "ddim", 3));
  const size_t nl = 4 * 8 * 8 * sizeof(float);
  vtl_gen_result plain, one, heavy, shortp, longp;
  s.g.plain_prompts = true;
  ASSERT_OK(render(&s, &plain));
  s.g.plain_prompts = false;
  s.g.prompt = "a (red:1.0) cat";
  ASSERT_OK(render(&s, &one));
  ASSERT_OK(memcmp(plain.latents, one.latents, nl)); /* exactly the same */
  s.g.prompt = "a (red:1.6) cat";
  ASSERT_OK(render(&s, &heavy));
  ASSERT(memcmp(plain.latents, heavy.latents, nl) != 0);
  /* 80 words: the plain path keeps 75 tokens, the windowed one all */
  char text[1024] = "";
  for (int i = 0; i < 80; i++) strcat(text, i % 2 ? "cat " : "red ");
  strcat(text, "blue");
  s.g.prompt = text;
  s.g.plain_prompts = true;
  ASSERT_OK(render(&s, &shortp));
  s.g.plain_prompts = false;
  ASSERT_OK(render(&s, &longp));
  ASSERT(memcmp(shortp.latents, longp.latents, nl) != 0);
  vtl_gen_result_free(&plain);
  vtl_gen_result_free(&one);
  vtl_gen_result_free(&heavy);
  vtl_gen_result_free(&shortp);
  vtl_gen_result_free(&longp);
  vtl_scheduler_config_free(&s.sc);
  return 0;
}

typedef struct {
  int calls, last_done, total;
} prog;

static int cancel_at_2(void *user, int done, int total, float t) {
  prog *p = user;
  p->calls++;
  p->last_done = done;
  p->total = total;
  return done == 2 ? VTL_EPERM : 0;
}

TEST_IMPL(pipeline_progress_cancel) {
  setup s;
  ASSERT_OK(setup_init(&s, "ddim", 3));
  prog pr = {0};
  s.g.steps = 5;
  s.g.progress = cancel_at_2;
  s.g.progress_user = &pr;
  vtl_gen_result r;
  char msg[256];
  ASSERT_EQ(vtl_pipeline_txt2img(pipe_(), &s.g, &r, msg, sizeof msg), VTL_EPERM);
  ASSERT_CONTAINS(msg, "cancelled");
  ASSERT_EQ(pr.calls, 2);
  ASSERT_EQ(pr.total, 5);
  ASSERT(r.image == NULL);
  /* img2img counts only the steps it runs: int(5 * 0.6) = 3 */
  float img[3 * 64 * 64] = {0};
  s.g.progress = NULL;
  s.g.strength = 0.6;
  ASSERT_OK(vtl_pipeline_img2img(pipe_(), &s.g, img, &r, msg, sizeof msg));
  ASSERT_EQ(r.steps_run, 3);
  vtl_gen_result_free(&r);
  vtl_scheduler_config_free(&s.sc);
  return 0;
}

TEST_LIST(TEST_ENTRY(pipeline_sampler_configs) TEST_ENTRY(pipeline_param_errors)
              TEST_ENTRY(pipeline_philox_determinism)
              TEST_ENTRY(pipeline_weighted_long_prompts)
              TEST_ENTRY(pipeline_progress_cancel))
