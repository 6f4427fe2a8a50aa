/* vtl-render — one Stable Diffusion image from the command line (a whole
 * film from a timeline file: --film, film_export.c).
 *
 *   vtl-render --model DIR|FILE --prompt TEXT [--negative TEXT]
 *              [--init IMG.png [--strength S]] [--steps N] [--guidance G]
 *              [--seed S] [--frame F] [--sampler ddim|euler|euler_a|
 *              dpmpp_2m|lcm] [--spacing leading|trailing|linspace]
 *              [--width W] [--height H] [--taesd DIR] [--variant V]
 *              [--config-dir DIR] [--device SPEC] --out FILE.png
 *
 * --model is a diffusers folder or a single-file (LDM) .safetensors, which
 * needs --config-dir (a diffusers folder describing its architecture and
 * holding its tokenizer). The training schedule comes from the model's
 * scheduler_config.json, read as the --sampler's class (engine/pipeline.h,
 * vtl_pipeline_scheduler_config). --taesd decodes with TAESD instead of
 * the VAE. --init makes it img2img (strength default 0.75; the size is the
 * init image's, and --width/--height, if given, must match).
 *
 * Noise is Philox keyed by (seed, frame): the same flags give the same
 * bytes on every device (up to float rounding of the device's kernels).
 *
 * Defaults: 20 steps, guidance 7.5, seed 0, frame 0, sampler euler_a,
 * the sampler's timestep spacing as the model configures it, size the
 * model's native one (UNet sample_size x latent factor: 512 for SD 1.5, 64
 * for the default pixel-space model; 512 when the config has none), or the
 * init image's. A pixel-space model (no VAE) renders the same way; --taesd
 * is refused for it.
 *
 * Exit status: 0 success; 2 bad flags or files (usage, unreadable model,
 * init image or output path), with one message on stderr; 1 a render that
 * failed (device errors). A progress line per step goes to stderr. The
 * PNG is written to a temporary file and renamed into place, so a failed
 * render leaves no partial output.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "pipeline.h"
#include "png_io.h"
#include "runtime.h"
#include "scheduler.h"
#include "vtl_error.h"


static void usage(FILE *f) {
  fputs("usage: vtl-render --model DIR|FILE --prompt TEXT [--negative TEXT]\n"
        "         [--init IMG.png [--strength S]] [--steps N] [--guidance G]\n"
        "         [--seed S] [--frame F] [--sampler ddim|euler|euler_a|dpmpp_2m|lcm]\n"
        "         [--spacing leading|trailing|linspace] [--width W] [--height H]\n"
        "         [--taesd DIR] [--variant V] [--config-dir DIR] [--device SPEC]\n"
        "         --out FILE.png\n",
        f);
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--film")) return film_main(argc, argv);
  const char *model = NULL, *prompt = NULL, *negative = NULL, *init = NULL,
             *sampler = "euler_a", *spacing_s = NULL, *taesd = NULL,
             *variant = NULL, *config_dir = NULL, *device = NULL, *out = NULL;
  long long steps = 20, width = 0, height = 0, frame = 0;
  unsigned long long seed = 0;
  double guidance = 7.5, strength = -1;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (strncmp(a, "--", 2) != 0) {
      usage(stderr);
      return die_usage("unexpected argument \"%s\"", a);
    }
    if (i + 1 >= argc) {
      usage(stderr);
      return die_usage("%s needs a value", a);
    }
    const char *v = argv[++i];
    if (!strcmp(a, "--model")) model = v;
    else if (!strcmp(a, "--prompt")) prompt = v;
    else if (!strcmp(a, "--negative")) negative = v;
    else if (!strcmp(a, "--init")) init = v;
    else if (!strcmp(a, "--sampler")) sampler = v;
    else if (!strcmp(a, "--spacing")) spacing_s = v;
    else if (!strcmp(a, "--taesd")) taesd = v;
    else if (!strcmp(a, "--variant")) variant = v;
    else if (!strcmp(a, "--config-dir")) config_dir = v;
    else if (!strcmp(a, "--device")) device = v;
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--steps")) {
      if (parse_long(v, 1, 1000, &steps))
        return die_usage("--steps \"%s\": not an integer in 1..1000", v);
    } else if (!strcmp(a, "--width")) {
      if (parse_long(v, 8, 16384, &width))
        return die_usage("--width \"%s\": not an integer in 8..16384", v);
    } else if (!strcmp(a, "--height")) {
      if (parse_long(v, 8, 16384, &height))
        return die_usage("--height \"%s\": not an integer in 8..16384", v);
    } else if (!strcmp(a, "--frame")) {
      if (parse_long(v, 0, 0xffffffffLL, &frame))
        return die_usage("--frame \"%s\": not an integer in 0..4294967295", v);
    } else if (!strcmp(a, "--seed")) {
      if (parse_u64(v, &seed))
        return die_usage("--seed \"%s\": not an unsigned 64-bit integer", v);
    } else if (!strcmp(a, "--guidance")) {
      if (parse_double(v, 0, 100, &guidance))
        return die_usage("--guidance \"%s\": not a number in 0..100", v);
    } else if (!strcmp(a, "--strength")) {
      if (parse_double(v, 0, 1, &strength))
        return die_usage("--strength \"%s\": not a number in 0..1", v);
    } else {
      usage(stderr);
      return die_usage("unknown option %s", a);
    }
  }
  if (!model) return die_usage("--model is required");
  if (!prompt) return die_usage("--prompt is required");
  if (!out) return die_usage("--out is required");
  if (strength >= 0 && !init) return die_usage("--strength needs --init");
  if (!vtl_sampler_class_name(sampler))
    return die_usage("--sampler \"%s\": one of ddim, euler, euler_a, dpmpp_2m, lcm",
                     sampler);
  int spacing = -1;
  if (spacing_s) {
    if (!strcmp(spacing_s, "leading")) spacing = VTL_SCHED_SPACING_LEADING;
    else if (!strcmp(spacing_s, "trailing")) spacing = VTL_SCHED_SPACING_TRAILING;
    else if (!strcmp(spacing_s, "linspace")) spacing = VTL_SCHED_SPACING_LINSPACE;
    else
      return die_usage("--spacing \"%s\": one of leading, trailing, linspace",
                       spacing_s);
  }
  if (access(model, R_OK) != 0)
    return die_usage("--model %s: %s", model, strerror(errno));
  size_t ml = strlen(model);
  if (ml > 12 && !strcmp(model + ml - 12, ".safetensors") && !config_dir)
    return die_usage("--model %s is a single file: give --config-dir", model);

  float *init_img = NULL;
  int iw = 0, ih = 0, rc;
  if (init) {
    char pmsg[1024];
    if (vtl_png_read(init, &init_img, &iw, &ih, pmsg, sizeof pmsg))
      return die_usage("--init %s", pmsg);
    if ((width && width != iw) || (height && height != ih)) {
      free(init_img);
      return die_usage("--init %s is %dx%d; --width/--height %lldx%lld differ "
                       "(no resizing)", init, iw, ih, width ? width : iw,
                       height ? height : ih);
    }
    width = iw;
    height = ih;
    if (strength < 0) strength = 0.75;
  }

  /* the output must be writable before minutes of rendering */
  {
    char probe[4096];
    snprintf(probe, sizeof probe, "%s.tmp%ld", out, (long)getpid());
    FILE *f = fopen(probe, "wb");
    if (!f) {
      free(init_img);
      return die_usage("--out %s: %s", out, strerror(errno));
    }
    fclose(f);
    unlink(probe);
  }

  char msg[1024];
  vtl_cl_options co;
  vtl_cl_options_init(&co);
  co.device = device;
  vtl_cl *cl = NULL;
  if ((rc = vtl_cl_init(&cl, &co, msg, sizeof msg))) {
    free(init_img);
    fprintf(stderr, "vtl-render: OpenCL: %s\n", msg);
    return 1;
  }
  double t0 = now_s();
  size_t dev0 = vtl_cl_bytes_in_use(cl); /* weights: what the load takes */
  vtl_pipeline *p = NULL;
  vtl_pipeline_opts po = {.variant = variant, .config_dir = config_dir,
                          .taesd_path = taesd};
  int status = 0;
  vtl_scheduler_config sc;
  memset(&sc, 0, sizeof sc);
  bool sc_open = false;
  vtl_gen_result res = {0};
  if ((rc = vtl_pipeline_load(cl, model, &po, &p, msg, sizeof msg))) {
    fprintf(stderr, "vtl-render: loading %s: %s\n", model, msg);
    status = rc == VTL_ENOMEM || rc == VTL_EIO ? 1 : EXIT_USAGE; /* device */
    goto done;
  }
  double t_load = now_s() - t0;
  double weights_mib = (vtl_cl_bytes_in_use(cl) - dev0) / (1024.0 * 1024.0);
  if ((rc = vtl_pipeline_scheduler_config(p, sampler, spacing, &sc, msg, sizeof msg))) {
    status = die_usage("--sampler %s: %s", sampler, msg);
    goto done;
  }
  sc_open = true;
  int f = vtl_pipeline_latent_factor(p), side = vtl_pipeline_native_size(p);
  if (!width) width = side ? side : 512;
  if (!height) height = side ? side : 512;
  if (width % f || height % f) {
    status = die_usage("size %lldx%lld: width and height must be multiples of %d",
                       width, height, f);
    goto done;
  }
  vtl_noise_philox_state ns = {.seed = seed, .frame = (uint32_t)frame};
  progress_state ps = {.start = now_s(), .tty = isatty(2)};
  vtl_gen_params g = {.prompt = prompt,
                      .negative_prompt = negative,
                      .guidance_scale = guidance,
                      .steps = (int)steps,
                      .strength = strength,
                      .scheduler = &sc,
                      .width = (int)width,
                      .height = (int)height,
                      .use_taesd = taesd != NULL,
                      .noise = vtl_noise_philox(&ns),
                      .progress = progress,
                      .progress_user = &ps};
  rc = init ? vtl_pipeline_img2img(p, &g, init_img, &res, msg, sizeof msg)
            : vtl_pipeline_txt2img(p, &g, &res, msg, sizeof msg);
  if (rc) {
    /* parameters the engine refuses are the user's; the rest is ours */
    fprintf(stderr, "vtl-render: %s\n", msg);
    status = rc == VTL_EINVAL || rc == VTL_ERANGE ? EXIT_USAGE : 1;
    goto done;
  }
  double t_render = now_s() - ps.start;
  if (vtl_png_write(out, res.image, (int)width, (int)height, msg, sizeof msg)) {
    status = die_usage("--out %s", msg);
    goto done;
  }
  fprintf(stderr, "vtl-render: %s: %lldx%lld, %d steps (%s), seed %llu: load %.2f s, "
          "render %.2f s on %s, weights %.1f MiB (%s), peak device memory "
          "%.1f MiB\n", out, width, height, res.steps_run, sc.class_name, seed,
          t_load, t_render, vtl_cl_device_name(cl), weights_mib,
          vtl_cl_weights_name(cl), vtl_cl_bytes_peak(cl) / (1024.0 * 1024.0));
done:
  vtl_gen_result_free(&res);
  if (sc_open) vtl_scheduler_config_free(&sc);
  vtl_pipeline_free(p);
  vtl_cl_close(cl);
  free(init_img);
  return status;
}
