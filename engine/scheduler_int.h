/* scheduler_int.h — what the scheduler_*.c files share (not installed; the
 * API is scheduler.h).
 *
 *   scheduler_config.c    config.json -> vtl_scheduler_config
 *   scheduler_schedule.c  init/close: betas, alphas_cumprod, timesteps,
 *                         sigmas (set_timesteps); img2img's begin index and
 *                         strength. Its header holds the precision notes.
 *   scheduler_step.c      step index, scale_model_input, step, add_noise
 *   torch_math.c          numpy / torch float maths (torch_math.h)
 *
 * All four are compiled with -ffp-contract=off (engine/CMakeLists.txt).
 */
#ifndef VTL_SCHEDULER_INT_H
#define VTL_SCHEDULER_INT_H

#include <stdbool.h>

#include "scheduler.h"

/* Formats the message into s->error and returns code (a VTL_E* value), so
 * that a failing call reads `return vtl__scheduler_fail(s, VTL_EINVAL, ...)`.
 * Defined in scheduler_schedule.c. */
int vtl__scheduler_fail(vtl_scheduler *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The classes with a sigma schedule (Euler, Euler ancestral, DPM-Solver);
 * DDIM and LCM read alphas_cumprod at the timestep instead. */
static inline bool vtl__scheduler_is_sigma_class(vtl_sched_class c) {
  return c == VTL_SCHED_EULER || c == VTL_SCHED_EULER_A || c == VTL_SCHED_DPM;
}

#endif /* VTL_SCHEDULER_INT_H */
