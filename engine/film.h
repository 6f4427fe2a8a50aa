/* film.h — frames of a film: frame f of a timeline document rendered with
 * a loaded model, as the render service and the film export make them.
 *
 *   a shot's first frame (vtl_params.first_frame; a film without shots
 *   starts one at frame 0), by the shot's source:
 *     noise  txt2img with the frame's prompts, steps, guidance, seed
 *     black  img2img from a black frame, fully denoised
 *     image  img2img from the asset's picture at the shot's strength
 *     (vtl_params.source_strength)
 *   every later frame, from the previous frame's image:
 *     x = warp(prev) by the frame's camera move (camera.h; the timeline's
 *         anim mode picks 2D or 3D)
 *     x = (x + 1) * contrast - 1                  (Deforum: pixels * contrast)
 *     off the cadence ((f - shot start) % cadence != 0): x is the frame
 *     x = x + noise * N(0, 1)       Philox (seed, f, VTL_FILM_NOISE_KIND)
 *     img2img from x at the frame's strength
 *   A strength that leaves no denoising step keeps x as the frame.
 *
 * Prompts: the frame's blend (vtl_params.prompts, weights summing to 1);
 * a frame no prompt clip covers renders unconditioned (""). Everything is
 * a function of (document, frame, previous image, model, device): the
 * same timeline gives the same film.
 *
 * Each frame comes with its record (JSON, the "how it was made" of an
 * exported film): frame, seconds, shot, kind ("txt2img", "img2img",
 * "cadence", "kept"), source, prompts with weights, seed, steps, sampler,
 * spacing, guidance, strength, camera, noise, contrast, steps_run,
 * dep_hash (hex), expression errors, render_ms.
 */
#ifndef VTL_FILM_H
#define VTL_FILM_H

#include <jansson.h>
#include <stdint.h>

#include "pipeline.h"
#include "vtl_timeline.h"

#define VTL_FILM_NOISE_KIND 16 /* Philox purpose kind of the added noise */

typedef struct vtl_film vtl_film;

typedef struct {
  /* A shot's first frame from an image asset: fills *rgb (malloc'd
   * [3, h, w] in [-1, 1], the film's size) or returns a VTL_E* code with
   * msg set. NULL: image sources are refused (VTL_EUNSUPPORTED). */
  int (*load_image)(void *user, const vtl_asset *asset, int w, int h,
                    float **rgb, char *msg, size_t msglen);
  void *user;
  bool use_taesd;
  /* Called after each denoising step (pipeline.h); non-zero cancels. */
  int (*progress)(void *user, int done, int total, float timestep);
  void *progress_user;
} vtl_film_opts;

/* A renderer over a loaded pipeline (borrowed: free the film first). */
int vtl_film_new(vtl_pipeline *p, const vtl_film_opts *opts, vtl_film **out);
void vtl_film_free(vtl_film *film); /* NULL is a no-op */

/* Renders `frame` of doc into out ([3, H, W] in [-1, 1], H and W the
 * timeline's). doc is only read (vtl_params_at, before any denoising step):
 * the caller may evaluate it too, from the progress callback included, but
 * must not apply ops to it until the call returns. prev is the previous frame's image; it is read only when
 * the frame is not its shot's first (then NULL is VTL_EINVAL). *record
 * (may be NULL) gets the frame's record, a new reference. Returns 0 or
 * the pipeline's / loader's code with msg set: VTL_EINVAL for a size the
 * model cannot take, VTL_EUNSUPPORTED for an image source without a
 * loader, the progress callback's code when cancelled. */
int vtl_film_frame(vtl_film *film, vtl_doc *doc, int64_t frame,
                   const float *prev, float *out, json_t **record, char *msg,
                   size_t msglen);

#endif /* VTL_FILM_H */
