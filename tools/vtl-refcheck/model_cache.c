/* model_cache.c — the model a case names, loaded once and kept while the
 * following cases name the same one (see rc_model in refcheck.h).
 *
 * A case's "model" is {"format": "diffusers", "path", "variant"} or
 * {"format": "ldm_single_file", "path", "config_dir"}; its identity is
 * "format|path|variant|config_dir" with the paths resolved against the kit.
 * Every cache in use is freed at exit, before the shared runtime closes:
 * the first rc_model() call registers the atexit handler after
 * rc_runtime()'s, and atexit handlers run in reverse order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refcheck.h"
#include "vtl_error.h"

#define MAX_CACHES 16

static rc_model_cache *caches[MAX_CACHES]; /* borrowed: handlers' statics */
static int ncaches;

static void unload(rc_model_cache *m) {
  if (m->obj) m->unload(m->obj);
  m->obj = NULL;
  m->key[0] = '\0';
}

static void unload_all(void) {
  for (int i = 0; i < ncaches; i++) unload(caches[i]);
}

static const char *str_or(json_t *o, const char *key, const char *dflt) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : dflt;
}

int rc_model(rc_case *c, vtl_cl *cl, rc_model_cache *m, void **out) {
  json_t *model = json_object_get(c->json, "model");
  const char *format = str_or(model, "format", "diffusers");
  const char *rel = str_or(model, "path", NULL);
  const char *variant = str_or(model, "variant", NULL);
  const char *cdir_rel = str_or(model, "config_dir", NULL);
  if (!rel) return rc_case_error(c, VTL_EPARSE, "model.path missing");
  bool ldm = strcmp(format, "ldm_single_file") == 0;
  if (!ldm && strcmp(format, "diffusers") != 0)
    return rc_case_error(c, VTL_EUNSUPPORTED, "model.format \"%s\"", format);
  if (ldm && !cdir_rel)
    return rc_case_error(c, VTL_EPARSE, "ldm_single_file without config_dir");

  char path[4096], cdir[4096] = "", key[sizeof m->key];
  rc_path(c, rel, path, sizeof path);
  if (cdir_rel) rc_path(c, cdir_rel, cdir, sizeof cdir);
  int kn = snprintf(key, sizeof key, "%s|%s|%s|%s", format, path,
                    variant ? variant : "", ldm ? cdir : "");
  if (kn < 0 || (size_t)kn >= sizeof key)
    return rc_case_error(c, VTL_ETOOLONG, "model path too long");
  if (m->obj && strcmp(m->key, key) == 0) {
    *out = m->obj;
    return 0;
  }
  unload(m);
  if (!m->registered) {
    if (ncaches == MAX_CACHES)
      return rc_case_error(c, VTL_ELIMIT, "too many model caches");
    if (ncaches == 0) atexit(unload_all);
    caches[ncaches++] = m;
    m->registered = true;
  }
  char msg[512];
  vtl_model_open_opts o = {.variant = variant, .config_dir = ldm ? cdir : NULL};
  int rc;
  if (m->load_path) {
    rc = m->load_path(cl, path, &o, &m->obj, msg, sizeof msg);
  } else {
    vtl_model_files *files = NULL;
    rc = vtl_model_files_open(&files, path, &o, msg, sizeof msg);
    if (!rc) rc = m->load_files(cl, files, &m->obj, msg, sizeof msg);
    vtl_model_files_close(files);
  }
  if (rc) {
    m->obj = NULL;
    return rc_case_error(c, rc, "%s", msg);
  }
  snprintf(m->key, sizeof m->key, "%s", key);
  *out = m->obj;
  return 0;
}
