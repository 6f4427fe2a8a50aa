/* refcheck.h — running the cases of a reference kit (refkit format, see the
 * kit's README.md): the runner reads manifest.json, and every case kind has
 * a handler that runs the engine on the case's inputs and hands each output
 * to rc_check_*, which applies the kit's tolerance rule.
 *
 * A handler: int run_<kind>(rc_case *c). It returns 0 when it ran (pass or
 * fail is decided by the rc_check_* calls), or a VTL_E* code with
 * rc_case_error() set when it could not run the case (that is a failure).
 */
#ifndef VTL_REFCHECK_H
#define VTL_REFCHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "model_files.h"
#include "npy.h"
#include "runtime.h"
#include "tensor.h"

typedef struct {
  const char *kit;      /* kit directory */
  const char *name;     /* case name */
  json_t *json;         /* the case object (borrowed) */
  json_t *params;       /* its "params" (borrowed, may be NULL) */
  double max_abs, max_rel; /* tolerance; exact: both 0 and exact = true */
  bool exact;
  int failures;         /* outputs that failed so far */
  int checked;          /* outputs compared so far */
  char error[512];      /* why the case could not run */
} rc_case;

/* Loads input `name` (inputs.<name>, a file entry). */
int rc_input(rc_case *c, const char *name, vtl_npy *out);
/* Loads the i-th entry of the inputs.noise list, or the entry whose
 * `where` contains `where` and whose `step` equals step (first match).
 * Returns VTL_ENOENT when there is none. */
int rc_noise(rc_case *c, const char *where, int step, vtl_npy *out);
/* Resolves a path relative to the kit into buf. */
const char *rc_path(rc_case *c, const char *rel, char *buf, size_t len);

/* Compares the engine's output with outputs.<name> under the case's
 * tolerance (integer outputs exactly), prints one line per output. */
int rc_check_f32(rc_case *c, const char *name, const float *data, int ndim,
                 const int64_t *shape);
int rc_check_i64(rc_case *c, const char *name, const int64_t *data, int ndim,
                 const int64_t *shape);

/* The OpenCL runtime the engine's cases share: opened on first use with the
 * defaults (device and backend from $VTL_CL_DEVICE / $VTL_BACKEND, kernel
 * binaries cached in ~/.cache/vtl), closed at exit. A handler that caches
 * device tensors must register its own atexit cleanup after calling this,
 * so that it runs first. VTL_E* code and rc_case_error() set when there is
 * no device. */
int rc_runtime(rc_case *c, vtl_cl **out);

/* A handler's loaded model, kept across cases that name the same one
 * (model_cache.c). A handler has one static cache with either load_files
 * (given the opened model files) or load_path (given the resolved path and
 * options) and unload. */
typedef struct {
  int (*load_files)(vtl_cl *cl, vtl_model_files *files, void **obj,
                    char *msg, size_t msglen);
  int (*load_path)(vtl_cl *cl, const char *path,
                   const vtl_model_open_opts *opts, void **obj, char *msg,
                   size_t msglen);
  void (*unload)(void *obj);
  char key[8192];  /* "format|path|variant|config_dir" of obj */
  void *obj;       /* owned; NULL before the first case */
  bool registered; /* freed at exit */
} rc_model_cache;

/* The model case c names, loaded into (or found in) cache. Returns 0 with
 * *out borrowed from the cache, or an error with rc_case_error() set. */
int rc_model(rc_case *c, vtl_cl *cl, rc_model_cache *cache, void **out);

/* Input `name` as float32 [N, C, H, W] in a new device tensor t (release
 * it with vtl_tensor_release); a wrong dtype or shape is a case error. */
int rc_input_tensor4(rc_case *c, vtl_cl *cl, const char *name, int C,
                     vtl_tensor *t);
/* Reads t back and compares it with outputs.<name> (rc_check_f32). */
int rc_check_tensor(rc_case *c, vtl_cl *cl, const char *name,
                    const vtl_tensor *t);

int rc_case_error(rc_case *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* VTL_REFCHECK_H */
