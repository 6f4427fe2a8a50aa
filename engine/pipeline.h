/* pipeline.h — whole renders: diffusers' StableDiffusionPipeline (txt2img)
 * and StableDiffusionImg2ImgPipeline (img2img), on the engine's tokenizer,
 * CLIP, UNet, VAE (or TAESD) and schedulers; and the same two for
 * pixel-space models (no VAE: the UNet denoises the RGB image itself).
 *
 *   txt2img:
 *     cond = clip(tokenize(prompt)).last_hidden_state   (text_cond.h: the
 *       weighted mean for a prompt blend; encodings cached)
 *     g > 1 (and a UNet without time_cond_proj): CFG,
 *       ctx = cat([clip(tokenize(negative or "")), cond])   uncond first
 *     UNet with class_embed_type "projection": class labels
 *       labels = cat([pooled(negative), pooled(prompt)]) (or pooled(prompt))
 *       pooled: clip's output at the eos token of the prompt's FIRST
 *       77-token window, before (word:1.3) weighting (long and weighted
 *       prompts: what SDXL-style UIs do with their pooled embedding)
 *     sched.init(steps); x = latents * init_noise_sigma     latents: a draw
 *     for i: xin = scale_model_input(cat([x, x]) or x, t_i)
 *            e = unet(xin, t_i, ctx[, labels]); e = e_u + g * (e_c - e_u)
 *            x = sched.step(e, t_i, x)                      (may draw)
 *     image = clamp(decode(x / scaling_factor) / 2 + 0.5, 0, 1) * 2 - 1
 *     pixel space: image = clamp(x / 2 + 0.5, 0, 1) * 2 - 1
 *   img2img:
 *     mean, logvar = vae.encode(init_image)
 *     z0 = (mean + exp(0.5 logvar) * draw) * scaling_factor
 *     pixel space: z0 = init_image (no encode, no VAE_SAMPLE draw)
 *     begin = set_strength(steps, strength); x = add_noise(z0, draw, begin)
 *     the loop above from i = begin
 *
 * Pixel space (vtl_model_files_is_pixel_space): latent factor 1, 3 latent
 * channels, no scaling factor; the "latents" of a result are the final
 * sample, unclamped. With coord_channels (model_files.h) the UNet's input
 * is cat([x, x coordinate, y coordinate]) along the channels.
 *
 * (The reference kit's README, kinds txt2img / img2img, has the exact
 * pseudo-code.) LCM-distilled UNets (time_cond_proj_dim) get diffusers'
 * guidance embedding of g - 1 instead of CFG.
 *
 * Noise: the pipeline never draws by itself. Every Gaussian tensor comes
 * from a vtl_noise_source, asked by purpose and denoising step. The
 * reference kit supplies its stored tensors; renders use
 * vtl_noise_philox (philox.h), which is the same on every device.
 *
 * Host/device split: the latents live on the host (the schedulers are host
 * code, and latents are small); the models run on the vtl_cl device.
 *
 * A vtl_pipeline borrows its vtl_cl (free the pipeline first) and is used
 * from one thread at a time, like the runtime.
 */
#ifndef VTL_PIPELINE_H
#define VTL_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model_files.h"
#include "runtime.h"
#include "scheduler.h"

/* ---- noise --------------------------------------------------------------- */

typedef enum {
  VTL_NOISE_LATENTS = 0,  /* txt2img starting latents (step -1) */
  VTL_NOISE_VAE_SAMPLE,   /* DiagonalGaussianDistribution.sample (step -1) */
  VTL_NOISE_IMG2IMG,      /* StableDiffusionImg2ImgPipeline.prepare_latents
                             (step -1) */
  VTL_NOISE_STEP          /* <Scheduler>.step of step i (0-based within
                             the steps actually run) */
} vtl_noise_purpose;

/* Fills out[n] with standard normal values. `where` is diffusers' name of
 * the drawing function ("DiagonalGaussianDistribution.sample",
 * "StableDiffusionImg2ImgPipeline.prepare_latents",
 * "StableDiffusionPipeline.prepare_latents", "EulerAncestralDiscrete
 * Scheduler.step" ...), step as the reference kit counts it (-1: before the
 * first step). Returns 0, or a VTL_E* code that aborts the render. */
typedef struct {
  int (*draw)(void *user, vtl_noise_purpose purpose, const char *where,
              int step, float *out, size_t n);
  void *user;
} vtl_noise_source;

/* Philox noise keyed by (seed, frame): purpose word
 * vtl_philox_purpose(purpose, step), elements from index 0. */
typedef struct {
  uint64_t seed;
  uint32_t frame;
} vtl_noise_philox_state;
vtl_noise_source vtl_noise_philox(vtl_noise_philox_state *st);

/* ---- loading ------------------------------------------------------------- */

typedef struct vtl_pipeline vtl_pipeline;

typedef struct {
  const char *variant;    /* weights variant ("fp16"...), or NULL */
  const char *config_dir; /* single-file checkpoints: the config folder */
  const char *taesd_path; /* an AutoencoderTiny folder, loaded as the fast
                             decoder; NULL: none */
} vtl_pipeline_opts;

/* Opens the model at path (vtl_model_files_open) and loads its tokenizer,
 * text encoder, UNet and VAE (none in pixel space), plus TAESD when asked.
 * Returns 0 and *out, or the component's error code with msg naming the
 * file and reason; VTL_EINVAL when the UNet's class embedding does not take
 * the text encoder's hidden size. */
int vtl_pipeline_load(vtl_cl *cl, const char *path,
                      const vtl_pipeline_opts *opts, vtl_pipeline **out,
                      char *msg, size_t msglen);
void vtl_pipeline_free(vtl_pipeline *p); /* NULL is a no-op */

/* The model's scheduler/scheduler_config.json (borrowed), or NULL. */
json_t *vtl_pipeline_scheduler_json(const vtl_pipeline *p);
/* Image size / latent factor: 2^(VAE levels - 1) (8 for SD); 1 in pixel
 * space. */
int vtl_pipeline_latent_factor(const vtl_pipeline *p);
/* The image side the model was trained at: the UNet's sample_size times
 * the latent factor (512 for SD 1.5, 64 for the default pixel model); 0
 * when the UNet config has no sample_size. */
int vtl_pipeline_native_size(const vtl_pipeline *p);
bool vtl_pipeline_has_taesd(const vtl_pipeline *p);

/* A sampler name ("ddim", "euler", "euler_a", "dpmpp_2m", "lcm") to its
 * diffusers class name; NULL for an unknown name. */
const char *vtl_sampler_class_name(const char *sampler);

/* The scheduler config of a render: the model's scheduler_config.json (its
 * training schedule: betas, steps_offset, prediction_type ...) read as the
 * class of `sampler`; spacing >= 0 overrides timestep_spacing. dpmpp_2m is
 * DPM-Solver++ order 2 (algorithm dpmsolver++, solver_order 2). Without a
 * scheduler config in the model, the class's defaults with SD's schedule
 * (scaled_linear 0.00085 .. 0.012, steps_offset 1). Free with
 * vtl_scheduler_config_free. */
int vtl_pipeline_scheduler_config(const vtl_pipeline *p, const char *sampler,
                                  int spacing, vtl_scheduler_config *out,
                                  char *msg, size_t msglen);

/* ---- rendering ----------------------------------------------------------- */

/* One term of a prompt blend (a timeline frame's overlapping prompt
 * clips): its prompt and negative prompt (NULL: "") with a weight > 0. */
typedef struct {
  const char *prompt, *negative;
  double weight;
} vtl_prompt_blend;

typedef struct {
  const char *prompt;          /* required unless nblend > 0 */
  const char *negative_prompt; /* NULL: "" (used only with CFG) */
  /* nblend > 0: blend[0..nblend) instead of prompt / negative_prompt; the
   * conditioning is the weighted mean of the terms' encodings, each side
   * (text_cond.h), and so is the pooled output. */
  const vtl_prompt_blend *blend;
  int nblend;
  bool plain_prompts;          /* true: one 77-token window, no weighting
                                  syntax (diffusers' pipelines, the kit);
                                  false: (word:1.3) weights and prompts
                                  longer than 75 tokens in further windows
                                  whose encodings are concatenated, as
                                  AUTOMATIC1111 does (tokenizer.h) */
  double guidance_scale;       /* CFG when > 1 */
  int steps;                   /* num_inference_steps */
  double strength;             /* img2img only, in [0, 1] */
  const vtl_scheduler_config *scheduler; /* required */
  int width, height;           /* image size: multiples of the latent factor
                                  (img2img: must match the init image) */
  bool use_taesd;              /* decode with TAESD (needs one loaded;
                                  VTL_EINVAL in pixel space) */
  vtl_noise_source noise;      /* required */
  /* Called after every denoising step (done = 1 .. total), from the
   * rendering thread; a non-zero return cancels the render, and the
   * render returns that value. NULL: none. */
  int (*progress)(void *user, int done, int total, float timestep);
  void *progress_user;
} vtl_gen_params;

typedef struct {
  float *latents;             /* [1, L, h, w] final latents (scaled space) */
  int64_t latents_shape[4];
  float *image;               /* [1, 3, H, W] in [-1, 1] */
  int64_t image_shape[4];
  int steps_run;              /* denoising steps taken */
} vtl_gen_result;

void vtl_gen_result_free(vtl_gen_result *r);

/* txt2img. Returns 0 and fills *res (free with vtl_gen_result_free), or a
 * VTL_E* code with msg set: VTL_EINVAL (a parameter: size, steps, prompt),
 * a tokenizer, scheduler or OpenCL code, or the noise/progress callback's
 * code. */
int vtl_pipeline_txt2img(vtl_pipeline *p, const vtl_gen_params *g,
                         vtl_gen_result *res, char *msg, size_t msglen);

/* img2img from init_image [1, 3, height, width] in [-1, 1] (row-major
 * NCHW floats). VTL_ERANGE when strength leaves no step. */
int vtl_pipeline_img2img(vtl_pipeline *p, const vtl_gen_params *g,
                         const float *init_image, vtl_gen_result *res,
                         char *msg, size_t msglen);

#endif /* VTL_PIPELINE_H */
