/* render_model.c — which models a timeline may name, and the one loaded
 * model (contract in render.h). Render thread only.
 *
 * Timeline.model is set by clients, so it is a name under --model-root
 * and never a way to open arbitrary files: an absolute path or a ".."
 * component is refused before anything is opened. (Symbolic links inside
 * the model root are the operator's and are followed.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "render.h"

int render_model_check(const char *model, char *msg, size_t msglen) {
  if (model[0] == '/') {
    snprintf(msg, msglen, "model \"%s\" refused: an absolute path (models "
             "are named relative to the server's model root)", model);
    return VTL_EPERM;
  }
  for (const char *p = model; *p;) {
    size_t n = strcspn(p, "/");
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      snprintf(msg, msglen, "model \"%s\" refused: a \"..\" component "
               "(models stay inside the server's model root)", model);
      return VTL_EPERM;
    }
    p += n + (p[n] == '/');
  }
  return 0;
}

static void unload(render_model *m) {
  vtl_film_free(m->film);
  vtl_pipeline_free(m->pipe);
  free(m->path);
  m->film = NULL;
  m->pipe = NULL;
  m->path = NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int render_model_use(render_model *m, const char *model, vtl_film **film,
                     char *msg, size_t msglen) {
  int rc = render_model_check(model, msg, msglen);
  if (rc) return rc;
  if (m->film && !strcmp(m->path, model)) {
    *film = m->film;
    return 0;
  }
  char why[512];
  if (!m->cl) {
    vtl_cl_options o;
    vtl_cl_options_init(&o);
    if ((rc = vtl_cl_init(&m->cl, &o, why, sizeof why))) {
      snprintf(msg, msglen, "no OpenCL device: %s", why);
      return rc;
    }
  }
  unload(m); /* one model in memory at a time */
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", m->root, model);
  double t0 = now_s();
  rc = vtl_pipeline_load(m->cl, path, NULL, &m->pipe, why, sizeof why);
  if (!rc) rc = vtl_film_new(m->pipe, &m->opts, &m->film);
  if (!rc && !(m->path = strdup(model))) rc = VTL_ENOMEM;
  if (rc) {
    unload(m);
    snprintf(msg, msglen, "model \"%s\" does not load: %s", model,
             rc == VTL_ENOMEM ? "out of memory" : why);
    return rc;
  }
  vtl_log(VTL_LOG_INFO, "render.model", "loaded model \"%s\" (%s) in %.2f s on %s",
          model, path, now_s() - t0, vtl_cl_device_name(m->cl));
  *film = m->film;
  return 0;
}

void render_model_free(render_model *m) {
  unload(m);
  vtl_cl_close(m->cl);
  m->cl = NULL;
}
