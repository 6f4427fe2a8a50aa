/* handlers.h — the case kinds vtl-refcheck runs: one line per kind.
 *
 * Adding a kind is one line X(kind, run_<kind>) in RC_HANDLER_MAP and one
 * file case_<kind>.c (picked up by the CMake glob) that defines
 *
 *   int run_<kind>(rc_case *c);      contract: refcheck.h
 *
 * The handlers are declared weak, so a kind may be listed before its file
 * is built: an unlinked handler is a null pointer and its cases FAIL with
 * "kind X: not implemented", exactly like a kind missing from the list. (A
 * misspelt function name therefore shows up as that failure, not as a link
 * error.)
 *
 * Also here: the runner's entry point (refcheck.c), called by main.c.
 */
#ifndef VTL_REFCHECK_HANDLERS_H
#define VTL_REFCHECK_HANDLERS_H

#include <stdbool.h>

#include "refcheck.h"

#define RC_HANDLER_MAP(X)                                                    \
  X(scheduler, run_scheduler)                 /* case_scheduler.c */         \
  X(img2img_timesteps, run_img2img_timesteps) /* case_scheduler.c */         \
  X(tokenize, run_tokenize)                   /* case_tokenize.c */         \
  X(text_encoder, run_text_encoder)           /* case_text_encoder.c */     \
  X(unet, run_unet)                           /* case_unet.c */             \
  X(vae_encode, run_vae_encode)               /* case_vae.c */              \
  X(vae_decode, run_vae_decode)               /* case_vae.c */              \
  X(taesd_encode, run_taesd_encode)           /* case_taesd.c */            \
  X(taesd_decode, run_taesd_decode)           /* case_taesd.c */            \
  X(txt2img, run_txt2img)                     /* case_pipeline.c */         \
  X(img2img, run_img2img)                     /* case_pipeline.c */

#define X(kind, fn) int fn(rc_case *c) __attribute__((weak));
RC_HANDLER_MAP(X)
#undef X

typedef struct {
  const char *kit;       /* kit directory (manifest.json inside) */
  const char *kinds;     /* comma-separated kinds to run; NULL = every kind */
  const char *case_name; /* run only the case of this name; NULL = all */
  bool verbose;          /* one line per compared output */
} rc_options;

/* Runs the kit's selected cases, printing "PASS name" / "FAIL name (...)"
 * per case and "N passed, N failed[, N not run]" at the end. Cases outside
 * --kinds / --case are "not run", never passed. Returns the exit status:
 * 0 when every selected case passed, 1 on any failure, on a manifest that
 * cannot be used, or when nothing was selected. */
int rc_run_kit(const rc_options *o);

#endif /* VTL_REFCHECK_HANDLERS_H */
