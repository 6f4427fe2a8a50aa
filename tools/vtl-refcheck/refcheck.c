/* refcheck.c — the reference-kit runner: manifest, tolerance rule, helpers
 * for the case handlers (refcheck.h) and the dispatch table (handlers.h).
 *
 * The kit's format is its README.md; what this file relies on:
 *
 *   manifest.json  {"format": "sd-refkit", "format_version": 1,
 *                   "cases": [{"name", "kind", "model", "params",
 *                              "inputs": {name: FILE, "noise": [FILE+...]},
 *                              "outputs": {name: FILE},
 *                              "tolerance": {"max_abs", "max_rel"} | {"exact": true}}]}
 *   FILE           {"file": path relative to the kit, "shape": [...],
 *                   "dtype": "float32" | "int64"}; noise entries add
 *                   "where" (the drawing function) and "step" (-1 = before
 *                   the first step)
 *
 * Tolerance, per output:  err = max|a - e| (double), peak = max|e|,
 * pass iff err <= max_abs + max_rel * peak; int64 outputs and "exact"
 * cases must be identical; a shape or dtype mismatch fails. A case passes
 * when its handler ran, compared at least one output, every output it
 * compared passed, and every output the manifest lists was compared.
 *
 * The runner is single-threaded; the state of the case being run lives in
 * the file-static `run` below.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "refcheck.h"
#include "pyjson.h" /* the manifest holds -Infinity */
#include "vtl_error.h"

static struct {
  bool verbose;
  json_t *checked;  /* output name -> true for the current case (owned) */
  char fails[1024]; /* "out: err / bound, ..." for the FAIL line */
} run;

static const struct {
  const char *kind;
  int (*fn)(rc_case *c); /* NULL: listed but not linked (weak) */
} handlers[] = {
#define X(kind, fn) {#kind, fn},
    RC_HANDLER_MAP(X)
#undef X
};

/* ---- helpers for handlers (refcheck.h) ---------------------------------- */

int rc_case_error(rc_case *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->error, sizeof c->error, fmt, ap);
  va_end(ap);
  return code;
}

static vtl_cl *shared_cl; /* rc_runtime's, NULL before the first use */

static void close_runtime(void) {
  vtl_cl_close(shared_cl);
  shared_cl = NULL;
}

int rc_runtime(rc_case *c, vtl_cl **out) {
  if (!shared_cl) {
    char msg[512];
    int rc = vtl_cl_init(&shared_cl, NULL, msg, sizeof msg);
    if (rc) return rc_case_error(c, rc, "OpenCL: %s", msg);
    atexit(close_runtime);
  }
  *out = shared_cl;
  return 0;
}

const char *rc_path(rc_case *c, const char *rel, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", c->kit, rel);
  return buf;
}

/* Loads a FILE entry and checks it against the manifest's shape and dtype
 * (a kit whose files disagree with its manifest is damaged). */
static int load_entry(rc_case *c, const char *what, json_t *entry, vtl_npy *out) {
  char path[4096], msg[512];
  const char *file = json_string_value(json_object_get(entry, "file"));
  if (!file) return rc_case_error(c, VTL_EPARSE, "%s: entry without \"file\"", what);
  int rc = vtl_npy_load(rc_path(c, file, path, sizeof path), out, msg, sizeof msg);
  if (rc) return rc_case_error(c, rc, "%s", msg);
  json_t *shape = json_object_get(entry, "shape");
  const char *dtype = json_string_value(json_object_get(entry, "dtype"));
  bool ok = json_is_array(shape) && json_array_size(shape) == (size_t)out->ndim;
  for (int k = 0; ok && k < out->ndim; k++)
    ok = json_integer_value(json_array_get(shape, (size_t)k)) == out->shape[k];
  if (ok && dtype)
    ok = strcmp(dtype, out->dtype == VTL_NPY_F32 ? "float32" : "int64") == 0;
  if (!ok) {
    vtl_npy_free(out);
    return rc_case_error(c, VTL_EPARSE, "%s: %s does not match its manifest entry",
                         what, file);
  }
  return 0;
}

int rc_input(rc_case *c, const char *name, vtl_npy *out) {
  json_t *entry = json_object_get(json_object_get(c->json, "inputs"), name);
  if (!json_is_object(entry))
    return rc_case_error(c, VTL_ENOENT, "no input \"%s\"", name);
  return load_entry(c, name, entry, out);
}

/* where == NULL: the step-th entry of the list; else the first entry whose
 * "where" contains `where` and whose "step" equals step. */
int rc_noise(rc_case *c, const char *where, int step, vtl_npy *out) {
  json_t *list = json_object_get(json_object_get(c->json, "inputs"), "noise");
  if (!json_is_array(list))
    return rc_case_error(c, VTL_ENOENT, "inputs.noise is not a list");
  if (!where) {
    json_t *e = step >= 0 ? json_array_get(list, (size_t)step) : NULL;
    if (!e) return rc_case_error(c, VTL_ENOENT, "no noise entry %d", step);
    return load_entry(c, "noise", e, out);
  }
  size_t k;
  json_t *e;
  json_array_foreach(list, k, e) {
    const char *w = json_string_value(json_object_get(e, "where"));
    json_t *st = json_object_get(e, "step");
    if (w && strstr(w, where) && json_is_integer(st) && json_integer_value(st) == step)
      return load_entry(c, "noise", e, out);
  }
  return rc_case_error(c, VTL_ENOENT, "no noise drawn by %s at step %d", where, step);
}

static void add_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void add_fail(const char *fmt, ...) {
  size_t len = strlen(run.fails);
  if (len + 4 >= sizeof run.fails) return;
  if (len) {
    strcpy(run.fails + len, ", ");
    len += 2;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(run.fails + len, sizeof run.fails - len, fmt, ap);
  va_end(ap);
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
  size_t o = (size_t)snprintf(buf, len, "[");
  for (int k = 0; k < ndim && o < len; k++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", k ? "," : "", (long long)shape[k]);
  if (o < len) snprintf(buf + o, len - o, "]");
}

/* Everything rc_check_f32 and rc_check_i64 share: find and load the
 * expected tensor, check dtype and shape, then compare. */
static int check(rc_case *c, const char *name, const void *data, bool is_f32,
                 int ndim, const int64_t *shape) {
  json_t *entry = json_object_get(json_object_get(c->json, "outputs"), name);
  json_object_set_new(run.checked, name, json_true());
  c->checked++;
  if (!json_is_object(entry)) {
    c->failures++;
    add_fail("%s: not an output of this case", name);
    return VTL_ENOENT;
  }
  vtl_npy e;
  int rc = load_entry(c, name, entry, &e);
  if (rc) {
    c->failures++;
    add_fail("%s: %s", name, c->error);
    c->error[0] = '\0';
    return rc;
  }
  char a[128], b[128];
  bool same_shape = e.ndim == ndim;
  for (int k = 0; same_shape && k < ndim; k++) same_shape = e.shape[k] == shape[k];
  if ((e.dtype == VTL_NPY_F32) != is_f32) {
    c->failures++;
    add_fail("%s: dtype %s, expected %s", name, is_f32 ? "float32" : "int64",
             e.dtype == VTL_NPY_F32 ? "float32" : "int64");
    vtl_npy_free(&e);
    return 0;
  }
  if (!same_shape) {
    shape_str(a, sizeof a, ndim, shape);
    shape_str(b, sizeof b, e.ndim, e.shape);
    c->failures++;
    add_fail("%s: shape %s, expected %s", name, a, b);
    vtl_npy_free(&e);
    return 0;
  }
  double err = 0, peak = 0;
  for (size_t k = 0; k < e.count; k++) {
    double av, ev;
    if (is_f32) {
      av = ((const float *)data)[k];
      ev = ((const float *)e.data)[k];
    } else {
      int64_t ai = ((const int64_t *)data)[k], ei = ((const int64_t *)e.data)[k];
      av = (double)ai;
      ev = (double)ei;
      if (ai != ei && av == ev) av = ev + 1; /* beyond 2^53: still a mismatch */
    }
    double d = av == ev ? 0 : fabs(av - ev);
    if (isnan(av) != isnan(ev) || (isnan(d) && !(isnan(av) && isnan(ev))))
      d = INFINITY; /* a NaN only matches a NaN */
    else if (isnan(d))
      d = 0;
    if (d > err) err = d;
    if (!isnan(ev) && fabs(ev) > peak) peak = fabs(ev);
  }
  bool exact = c->exact || !is_f32;
  double bound = exact ? 0 : c->max_abs + c->max_rel * peak;
  bool pass = err <= bound;
  if (!pass) {
    c->failures++;
    add_fail("%s: %.3g / %.3g", name, err, bound);
  }
  if (run.verbose)
    printf("  %-4s %s.%s: err %.3g / bound %.3g (peak %.3g)\n", pass ? "ok" : "BAD",
           c->name, name, err, bound, peak);
  vtl_npy_free(&e);
  return 0;
}

int rc_check_f32(rc_case *c, const char *name, const float *data, int ndim,
                 const int64_t *shape) {
  return check(c, name, data, true, ndim, shape);
}

int rc_check_i64(rc_case *c, const char *name, const int64_t *data, int ndim,
                 const int64_t *shape) {
  return check(c, name, data, false, ndim, shape);
}

/* ---- the runner ----------------------------------------------------------- */

/* Whether kind is in the comma-separated list (NULL list: every kind). */
static bool kind_selected(const char *list, const char *kind) {
  if (!list) return true;
  size_t kl = strlen(kind);
  for (const char *p = list; *p;) {
    const char *end = strchr(p, ',');
    size_t l = end ? (size_t)(end - p) : strlen(p);
    if (l == kl && strncmp(p, kind, l) == 0) return true;
    if (!end) break;
    p = end + 1;
  }
  return false;
}

/* Fills c->max_abs / max_rel / exact from the case's "tolerance". */
static int parse_tolerance(rc_case *c) {
  json_t *t = json_object_get(c->json, "tolerance");
  if (!json_is_object(t)) return rc_case_error(c, VTL_EPARSE, "no tolerance");
  if (json_is_true(json_object_get(t, "exact"))) {
    c->exact = true;
    c->max_abs = c->max_rel = 0;
    return 0;
  }
  json_t *a = json_object_get(t, "max_abs"), *r = json_object_get(t, "max_rel");
  if (!json_is_number(a) || !json_is_number(r) || json_number_value(a) < 0 ||
      json_number_value(r) < 0)
    return rc_case_error(c, VTL_EPARSE, "tolerance needs max_abs and max_rel >= 0");
  c->max_abs = json_number_value(a);
  c->max_rel = json_number_value(r);
  return 0;
}

/* Runs one case; returns true when it passed. Prints its line. */
static bool run_case(const rc_options *o, json_t *cj, const char *name,
                     const char *kind) {
  rc_case c = {.kit = o->kit, .name = name, .json = cj,
               .params = json_object_get(cj, "params")};
  run.fails[0] = '\0';
  json_object_clear(run.checked);

  int (*fn)(rc_case *) = NULL; /* unlisted kind, or listed but not linked */
  for (size_t k = 0; k < sizeof handlers / sizeof *handlers; k++)
    if (strcmp(handlers[k].kind, kind) == 0) fn = handlers[k].fn;
  if (!fn) {
    printf("FAIL %s (kind %s: not implemented)\n", name, kind);
    return false;
  }
  if (parse_tolerance(&c) != 0) {
    printf("FAIL %s (%s)\n", name, c.error);
    return false;
  }
  int rc = fn(&c);
  if (rc) {
    printf("FAIL %s (%s: %s)\n", name, vtl_err_name(rc),
           c.error[0] ? c.error : vtl_strerror(rc));
    return false;
  }
  const char *out;
  json_t *v;
  json_object_foreach(json_object_get(cj, "outputs"), out, v) {
    if (!json_object_get(run.checked, out)) {
      c.failures++;
      add_fail("%s: not produced", out);
    }
  }
  if (c.checked == 0) {
    c.failures++;
    add_fail("no output compared");
  }
  if (c.failures) {
    printf("FAIL %s (%s)\n", name, run.fails);
    return false;
  }
  printf("PASS %s\n", name);
  return true;
}

int rc_run_kit(const rc_options *o) {
  char path[4096], msg[512];
  json_t *m = NULL;
  snprintf(path, sizeof path, "%s/manifest.json", o->kit);
  int rc = vtl_json_load_python(path, &m, msg, sizeof msg);
  if (rc) {
    fprintf(stderr, "vtl-refcheck: %s\n", msg);
    return 1;
  }
  const char *format = json_string_value(json_object_get(m, "format"));
  json_t *version = json_object_get(m, "format_version");
  json_t *cases = json_object_get(m, "cases");
  if (!format || strcmp(format, "sd-refkit") != 0 || !json_is_integer(version) ||
      json_integer_value(version) != 1 || !json_is_array(cases)) {
    fprintf(stderr, "vtl-refcheck: %s: not an sd-refkit manifest of format_version 1 "
                    "(format %s)\n", path, format ? format : "missing");
    json_decref(m);
    return 1;
  }

  run.verbose = o->verbose;
  run.checked = json_object();
  int passed = 0, failed = 0, not_run = 0;
  bool found = !o->case_name;
  size_t k;
  json_t *cj;
  json_array_foreach(cases, k, cj) {
    const char *name = json_string_value(json_object_get(cj, "name"));
    const char *kind = json_string_value(json_object_get(cj, "kind"));
    if (!name || !kind) {
      printf("FAIL case #%zu (no name or kind)\n", k);
      failed++;
      continue;
    }
    bool named = o->case_name && strcmp(o->case_name, name) == 0;
    found = found || named;
    if ((o->case_name && !named) || !kind_selected(o->kinds, kind)) {
      not_run++;
      continue;
    }
    if (run_case(o, cj, name, kind)) passed++;
    else failed++;
    fflush(stdout);
  }
  json_decref(run.checked);
  run.checked = NULL;
  json_decref(m);

  if (!found) {
    fprintf(stderr, "vtl-refcheck: no case named %s\n", o->case_name);
    return 1;
  }
  printf("%d passed, %d failed", passed, failed);
  if (not_run) printf(", %d not run (not selected)", not_run);
  printf("\n");
  if (passed + failed == 0) {
    fprintf(stderr, "vtl-refcheck: no case selected\n");
    return 1;
  }
  return failed ? 1 : 0;
}
