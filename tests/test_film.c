/* test_film.c — engine/film.c: frames of a film from a timeline, with the
 * project's default model (models/tiny, 64x64, pixel space).
 *
 *   film_chain      frame 0 txt2img from noise; frame 1 img2img from the
 *                   warped frame 0 (its record says so); the same inputs
 *                   give the same bytes; a different previous image gives
 *                   a different frame; a later frame without its previous
 *                   image is refused
 *   film_cadence    with cadence 3, frame 1 is exactly the camera warp of
 *                   frame 0 (no diffusion), frame 3 is diffused
 *   film_kept       strength 0 leaves no denoising step: the frame is the
 *                   warped previous one (kind "kept")
 *   film_sources    a shot from black is img2img from black, fully
 *                   denoised; a shot from an image asset asks the loader for it and
 *                   renders from it; without a loader it is refused naming
 *                   the asset
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "camera.h"
#include "film.h"
#include "task.h"
#include "vtl_error.h"
#include "vtl_import.h"

#define SIDE 64
#define N (3 * SIDE * SIDE)

static vtl_cl *rt;
static vtl_pipeline *pipe_p;

static void close_all(void) {
  vtl_pipeline_free(pipe_p);
  vtl_cl_close(rt);
}

static vtl_pipeline *pipe_(void) {
  if (!pipe_p) {
    vtl_cl_options o;
    vtl_cl_options_init(&o);
    o.cache_dir = VTL_BINARY_DIR "/kernel-cache";
    char msg[512];
    if (vtl_cl_init(&rt, &o, msg, sizeof msg) ||
        vtl_pipeline_load(rt, VTL_SOURCE_DIR "/models/tiny", NULL, &pipe_p, msg, sizeof msg)) {
      fprintf(stderr, "%s\n", msg);
      abort();
    }
    atexit(close_all);
  }
  return pipe_p;
}

/* A 2D film of 8 frames: one prompt, a zoom, the given strength, cadence
 * and shots (a JSON array). */
static vtl_doc *film_doc(double strength, int cadence, const char *shots, const char *assets) {
  char json[2048];
  snprintf(json, sizeof json,
           "{\"format\": \"vtl-timeline\", \"version\": 1,"
           " \"timeline\": {\"fps\": 12, \"width\": 64, \"height\": 64, \"length\": 8,"
           "  \"model\": \"models/tiny\", \"sampler\": \"ddim\", \"spacing\": \"trailing\","
           "  \"steps\": 4, \"guidance\": 1, \"strength\": %g, \"seed\": 7, \"anim_mode\": \"2d\"},"
           " \"tracks\": [{\"id\": 1, \"name\": \"p\", \"target\": \"prompt\"},"
           "  {\"id\": 2, \"name\": \"z\", \"target\": \"zoom\"},"
           "  {\"id\": 3, \"name\": \"c\", \"target\": \"cadence\"}],"
           " \"keyframes\": [{\"id\": 10, \"track\": 2, \"frame\": 0, \"value\": 1.05},"
           "  {\"id\": 11, \"track\": 3, \"frame\": 0, \"value\": %d}],"
           " \"prompt_clips\": [{\"id\": 20, \"track\": 1, \"start\": 0, \"end\": 8,"
           "  \"text\": \"a blue circle in the centre in the sky\"}],"
           " \"shots\": %s, \"assets\": %s}",
           strength, cadence, shots, assets);
  vtl_doc *doc = NULL;
  vtl_error err = {0};
  if (vtl_json_import(json, strlen(json), &doc, &err)) {
    fprintf(stderr, "film_doc: %s\n", err.message);
    abort();
  }
  return doc;
}

static int frame(vtl_film *film, vtl_doc *doc, int64_t f, const float *prev, float *out,
                 json_t **rec) {
  char msg[512];
  int rc = vtl_film_frame(film, doc, f, prev, out, rec, msg, sizeof msg);
  if (rc) fprintf(stderr, "frame %lld: %s\n", (long long)f, msg);
  return rc;
}

static const char *kind(json_t *rec) { return json_string_value(json_object_get(rec, "kind")); }

static float *img(void) { return calloc(N, sizeof(float)); }

TEST_IMPL(film_chain) {
  vtl_doc *doc = film_doc(0.5, 1, "[]", "[]");
  vtl_film *film;
  ASSERT_OK(vtl_film_new(pipe_(), NULL, &film));
  float *f0 = img(), *f1 = img(), *again = img(), *other = img();
  json_t *r0, *r1;
  ASSERT_OK(frame(film, doc, 0, NULL, f0, &r0));
  ASSERT(!strcmp(kind(r0), "txt2img"));
  ASSERT_OK(frame(film, doc, 1, f0, f1, &r1));
  ASSERT(!strcmp(kind(r1), "img2img"));
  ASSERT_EQ(json_integer_value(json_object_get(r1, "steps_run")), 2); /* 4 steps at 0.5 */
  ASSERT_NEAR(json_real_value(json_object_get(json_object_get(r1, "camera"), "zoom")), 1.05, 1e-12);
  ASSERT_OK(frame(film, doc, 1, f0, again, NULL));
  ASSERT(!memcmp(f1, again, N * sizeof *f1));
  ASSERT(memcmp(f0, f1, N * sizeof *f0)); /* it moved and was denoised */
  for (int i = 0; i < N; i++) other[i] = -f0[i];
  ASSERT_OK(frame(film, doc, 1, other, again, NULL));
  ASSERT(memcmp(f1, again, N * sizeof *f1));
  char msg[256];
  ASSERT_EQ(vtl_film_frame(film, doc, 2, NULL, again, NULL, msg, sizeof msg), VTL_EINVAL);
  ASSERT(strstr(msg, "frame 2 continues its shot from frame 1"));
  json_decref(r0);
  json_decref(r1);
  free(f0), free(f1), free(again), free(other);
  vtl_film_free(film);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(film_cadence) {
  vtl_doc *doc = film_doc(0.5, 3, "[]", "[]");
  vtl_film *film;
  ASSERT_OK(vtl_film_new(pipe_(), NULL, &film));
  float *f[4], *warped = img();
  for (int i = 0; i < 4; i++) f[i] = img();
  json_t *rec[4];
  for (int i = 0; i < 4; i++) ASSERT_OK(frame(film, doc, i, i ? f[i - 1] : NULL, f[i], &rec[i]));
  ASSERT(!strcmp(kind(rec[1]), "cadence"));
  ASSERT(!strcmp(kind(rec[2]), "cadence"));
  ASSERT(!strcmp(kind(rec[3]), "img2img"));
  vtl_camera_move m = {.zoom = 1.05};
  vtl_camera_warp(&m, f[0], warped, SIDE, SIDE);
  for (int i = 0; i < N; i++) ASSERT_NEAR(f[1][i], warped[i], 1e-6);
  for (int i = 0; i < 4; i++) free(f[i]), json_decref(rec[i]);
  free(warped);
  vtl_film_free(film);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(film_kept) {
  vtl_doc *doc = film_doc(0, 1, "[]", "[]");
  vtl_film *film;
  ASSERT_OK(vtl_film_new(pipe_(), NULL, &film));
  float *f0 = img(), *f1 = img(), *warped = img();
  json_t *rec;
  ASSERT_OK(frame(film, doc, 0, NULL, f0, NULL));
  ASSERT_OK(frame(film, doc, 1, f0, f1, &rec));
  ASSERT(!strcmp(kind(rec), "kept"));
  ASSERT_EQ(json_integer_value(json_object_get(rec, "steps_run")), 0);
  vtl_camera_move m = {.zoom = 1.05};
  vtl_camera_warp(&m, f0, warped, SIDE, SIDE);
  /* the warped frame plus the film's default added noise (0.02) */
  double err = 0;
  for (int i = 0; i < N; i++) err = fmax(err, fabs(f1[i] - fminf(fmaxf(warped[i], -1), 1)));
  ASSERT(err > 0 && err < 0.2);
  json_decref(rec);
  free(f0), free(f1), free(warped);
  vtl_film_free(film);
  vtl_doc_free(doc);
  return 0;
}

static int asked;
static int load_grey(void *user, const vtl_asset *a, int w, int h, float **rgb, char *msg,
                     size_t msglen) {
  (void)user, (void)msg, (void)msglen;
  asked++;
  if (strcmp(a->name, "grey.png") || w != SIDE || h != SIDE) return VTL_EINVAL;
  *rgb = malloc(N * sizeof **rgb);
  for (int i = 0; i < N; i++) (*rgb)[i] = 0.1f;
  return 0;
}

TEST_IMPL(film_sources) {
  float *a = img(), *b = img();
  json_t *rec;
  vtl_film *film;
  /* black: img2img from a black frame, fully denoised (a shot's strength
   * is for image sources only) */
  vtl_doc *doc = film_doc(0.5, 1, "[{\"id\": 5, \"start\": 0, \"source\": \"black\", \"strength\": 0.2}]", "[]");
  ASSERT_OK(vtl_film_new(pipe_(), NULL, &film));
  ASSERT_OK(frame(film, doc, 0, NULL, a, &rec));
  ASSERT(!strcmp(kind(rec), "img2img"));
  ASSERT(!strcmp(json_string_value(json_object_get(rec, "source")), "black"));
  ASSERT_NEAR(json_real_value(json_object_get(rec, "strength")), 1, 0);
  ASSERT_EQ(json_integer_value(json_object_get(rec, "steps_run")), 4);
  json_decref(rec);
  vtl_doc_free(doc);
  vtl_film_free(film);

  const char *shots = "[{\"id\": 5, \"start\": 0, \"source\": \"image\", \"asset\": 9, \"strength\": 0.5}]";
  const char *assets = "[{\"id\": 9, \"name\": \"grey.png\", \"kind\": \"image\", \"mime\": \"image/png\","
                       " \"sha256\": \"00\", \"size\": 10}]";
  doc = film_doc(0.5, 1, shots, assets);
  char msg[256];
  ASSERT_OK(vtl_film_new(pipe_(), NULL, &film));
  ASSERT_EQ(vtl_film_frame(film, doc, 0, NULL, a, NULL, msg, sizeof msg), VTL_EUNSUPPORTED);
  ASSERT(strstr(msg, "\"grey.png\""));
  vtl_film_free(film);
  vtl_film_opts o = {.load_image = load_grey};
  ASSERT_OK(vtl_film_new(pipe_(), &o, &film));
  ASSERT_OK(frame(film, doc, 0, NULL, a, &rec));
  ASSERT_EQ(asked, 1);
  ASSERT(!strcmp(kind(rec), "img2img"));
  ASSERT(!strcmp(json_string_value(json_object_get(rec, "source")), "image"));
  /* from grey, half denoised: closer to grey than a render from noise */
  vtl_film *plain;
  vtl_doc *noise = film_doc(0.5, 1, "[]", "[]");
  ASSERT_OK(vtl_film_new(pipe_(), NULL, &plain));
  ASSERT_OK(frame(plain, noise, 0, NULL, b, NULL));
  double da = 0, db = 0;
  for (int i = 0; i < N; i++) da += fabs(a[i] - 0.1), db += fabs(b[i] - 0.1);
  ASSERT(da < db);
  json_decref(rec);
  vtl_film_free(plain);
  vtl_film_free(film);
  vtl_doc_free(noise);
  vtl_doc_free(doc);
  free(a), free(b);
  return 0;
}

TEST_LIST(TEST_ENTRY(film_chain) TEST_ENTRY(film_cadence) TEST_ENTRY(film_kept)
          TEST_ENTRY(film_sources))
