/* film_export.c — `vtl-render --film`: a whole film (or a range of its
 * frames) rendered from a timeline file, with the record of how each frame
 * was made.
 *
 *   vtl-render --film FILM.vtl.json --out-dir DIR [--model PATH]
 *              [--from F] [--to F] [--assets DIR] [--taesd DIR]
 *              [--device SPEC]
 *
 * Frames are rendered by engine/film.h exactly as the render service
 * renders them. A range that starts inside a shot renders that shot from
 * its first frame (each frame continues the previous one) but writes only
 * the frames asked for: DIR/frame-NNNNN.png (N the frame number), and
 * DIR/record.json = {film, source file, model, device, weights, width,
 * height, fps, from, to, frames: [each frame's record + its file]},
 * written last through a temporary file.
 *
 * --model defaults to the timeline's model field, a path as given (relative
 * to the working directory). Shots that start from an image asset read
 * DIR_ASSETS/<sha256>.png, else DIR_ASSETS/<asset name>, which must have
 * the film's size.
 *
 * Exit status: 0; 2 bad flags or files (the timeline, the model, the
 * output folder, an asset), one message on stderr; 1 a render that failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "film.h"
#include "png_io.h"
#include "runtime.h"
#include "vtl_error.h"
#include "vtl_import.h"

static void film_usage(FILE *f) {
  fputs("usage: vtl-render --film FILM.vtl.json --out-dir DIR [--model PATH]\n"
        "         [--from F] [--to F] [--assets DIR] [--taesd DIR] [--device SPEC]\n",
        f);
}

static int read_doc(const char *path, vtl_doc **doc) {
  FILE *f = fopen(path, "rb");
  if (!f) return die_usage("--film %s: %s", path, strerror(errno));
  char *text = NULL;
  size_t len = 0, cap = 0, got;
  do {
    if (len + 65536 > cap) {
      char *t = realloc(text, cap = len + 65536 + cap);
      if (!t) { free(text); fclose(f); return die_usage("--film %s: out of memory", path); }
      text = t;
    }
    got = fread(text + len, 1, cap - len, f);
    len += got;
  } while (got > 0);
  int bad = ferror(f);
  fclose(f);
  if (bad) { free(text); return die_usage("--film %s: read error", path); }
  vtl_error err = {0};
  int rc = vtl_json_import(text, len, doc, &err);
  free(text);
  if (rc) return die_usage("--film %s: %s", path, err.message);
  return 0;
}

/* film.h's image loader over --assets. */
static int load_asset(void *user, const vtl_asset *a, int w, int h, float **rgb,
                      char *msg, size_t msglen) {
  const char *dir = user;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.png", dir, a->sha256 ? a->sha256 : "");
  if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s/%s", dir, a->name);
  int iw, ih;
  int rc = vtl_png_read(path, rgb, &iw, &ih, msg, msglen);
  if (rc) return rc;
  if (iw != w || ih != h) {
    free(*rgb);
    *rgb = NULL;
    snprintf(msg, msglen, "asset \"%s\" (%s) is %dx%d; the film is %dx%d", a->name,
             path, iw, ih, w, h);
    return VTL_EINVAL;
  }
  return 0;
}

static int write_record(const char *dir, json_t *rec) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/record.json", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
  if (json_dump_file(rec, tmp, JSON_INDENT(1)) || rename(tmp, path)) {
    unlink(tmp);
    fprintf(stderr, "vtl-render: %s: %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}

typedef struct {
  const char *film, *out_dir, *model, *assets, *taesd, *device;
  long long from, to;
} film_flags;

static int parse_flags(int argc, char **argv, film_flags *fl) {
  *fl = (film_flags){.from = -1, .to = -1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      film_usage(stdout);
      exit(0);
    }
    if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
      film_usage(stderr);
      return die_usage(i + 1 >= argc ? "%s needs a value" : "unexpected argument \"%s\"", a);
    }
    const char *v = argv[++i];
    if (!strcmp(a, "--film")) fl->film = v;
    else if (!strcmp(a, "--out-dir")) fl->out_dir = v;
    else if (!strcmp(a, "--model")) fl->model = v;
    else if (!strcmp(a, "--assets")) fl->assets = v;
    else if (!strcmp(a, "--taesd")) fl->taesd = v;
    else if (!strcmp(a, "--device")) fl->device = v;
    else if (!strcmp(a, "--from") || !strcmp(a, "--to")) {
      long long *dst = a[2] == 'f' ? &fl->from : &fl->to;
      if (parse_long(v, 0, INT64_MAX, dst))
        return die_usage("%s \"%s\": not a frame number (an integer >= 0)", a, v);
    } else {
      film_usage(stderr);
      return die_usage("unknown option %s (with --film)", a);
    }
  }
  if (!fl->film) return die_usage("--film is required");
  if (!fl->out_dir) return die_usage("--out-dir is required");
  return 0;
}

/* Renders frames start..fl->to (writing from fl->from) into record's
 * "frames". Returns the exit status. */
static int render_range(vtl_film *film, vtl_doc *doc, const film_flags *fl,
                        int64_t start, json_t *frames) {
  const vtl_timeline *tl = vtl_doc_timeline(doc);
  size_t n = (size_t)3 * tl->width * tl->height;
  float *prev = malloc(n * sizeof *prev), *cur = malloc(n * sizeof *cur);
  int status = prev && cur ? 0 : 1;
  char msg[1024];
  for (int64_t f = start; !status && f <= fl->to; f++) {
    json_t *rec = NULL;
    int rc = vtl_film_frame(film, doc, f, f > start ? prev : NULL, cur, &rec, msg, sizeof msg);
    if (rc) {
      fprintf(stderr, "vtl-render: frame %" PRId64 ": %s\n", f, msg);
      status = rc == VTL_EINVAL || rc == VTL_EUNSUPPORTED || rc == VTL_EREF ? EXIT_USAGE : 1;
      break;
    }
    fprintf(stderr, "frame %" PRId64 "/%" PRId64 " %s, %" JSON_INTEGER_FORMAT " steps, %.0f ms%s\n",
            f, (int64_t)tl->length - 1, json_string_value(json_object_get(rec, "kind")),
            json_integer_value(json_object_get(rec, "steps_run")),
            json_real_value(json_object_get(rec, "render_ms")), f < fl->from ? " (leads in)" : "");
    if (f >= fl->from) {
      char name[32], path[4200];
      snprintf(name, sizeof name, "frame-%05" PRId64 ".png", f);
      snprintf(path, sizeof path, "%s/%s", fl->out_dir, name);
      if (vtl_png_write(path, cur, (int)tl->width, (int)tl->height, msg, sizeof msg)) {
        fprintf(stderr, "vtl-render: %s\n", msg);
        json_decref(rec);
        status = 1;
        break;
      }
      json_object_set_new(rec, "file", json_string(name));
      json_array_append(frames, rec);
    }
    json_decref(rec);
    float *t = prev;
    prev = cur;
    cur = t;
  }
  free(prev);
  free(cur);
  return status;
}

int film_main(int argc, char **argv) {
  film_flags fl;
  if (parse_flags(argc, argv, &fl)) return EXIT_USAGE;
  vtl_doc *doc = NULL;
  if (read_doc(fl.film, &doc)) return EXIT_USAGE;
  const vtl_timeline *tl = vtl_doc_timeline(doc);
  int64_t last = tl->length - 1;
  if (fl.from < 0) fl.from = 0;
  if (fl.to < 0) fl.to = last;
  const char *model = fl.model ? fl.model : tl->model;
  int status = 0;
  if (fl.from > fl.to || fl.to > last)
    status = die_usage("--from %lld --to %lld: the film's frames are 0..%" PRId64, fl.from,
                       fl.to, last);
  else if (!model || !*model)
    status = die_usage("%s names no model: give --model", fl.film);
  else if (access(model, R_OK) != 0)
    status = die_usage("model %s: %s", model, strerror(errno));
  else if (mkdir(fl.out_dir, 0777) != 0 && errno != EEXIST)
    status = die_usage("--out-dir %s: %s", fl.out_dir, strerror(errno));
  if (status) {
    vtl_doc_free(doc);
    return status;
  }

  char msg[1024];
  vtl_cl_options co;
  vtl_cl_options_init(&co);
  co.device = fl.device;
  vtl_cl *cl = NULL;
  vtl_pipeline *p = NULL;
  vtl_film *film = NULL;
  json_t *record = NULL;
  int rc = vtl_cl_init(&cl, &co, msg, sizeof msg);
  if (rc) {
    fprintf(stderr, "vtl-render: OpenCL: %s\n", msg);
    status = 1;
    goto done;
  }
  vtl_pipeline_opts po = {.taesd_path = fl.taesd};
  if ((rc = vtl_pipeline_load(cl, model, &po, &p, msg, sizeof msg))) {
    fprintf(stderr, "vtl-render: loading %s: %s\n", model, msg);
    status = rc == VTL_ENOMEM || rc == VTL_EIO ? 1 : EXIT_USAGE;
    goto done;
  }
  vtl_film_opts fo = {.load_image = fl.assets ? load_asset : NULL,
                      .user = (void *)fl.assets, .use_taesd = fl.taesd != NULL};
  if (vtl_film_new(p, &fo, &film)) {
    status = 1;
    goto done;
  }
  vtl_params P;
  vtl_params_at(doc, fl.from, &P);
  record = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:[]}", "film",
                     tl->name ? tl->name : "", "source", fl.film, "model", model, "device",
                     vtl_cl_device_name(cl), "weights", vtl_cl_weights_name(cl),
                     "width", (json_int_t)tl->width, "height", (json_int_t)tl->height, "fps", tl->fps,
                     "from", (json_int_t)fl.from, "to", (json_int_t)fl.to, "frames");
  double t0 = now_s();
  status = render_range(film, doc, &fl, P.first_frame ? fl.from : P.shot_start,
                        json_object_get(record, "frames"));
  if (!status) {
    status = write_record(fl.out_dir, record);
    fprintf(stderr, "vtl-render: %lld frames in %.1f s into %s\n", fl.to - fl.from + 1,
            now_s() - t0, fl.out_dir);
  }
done:
  json_decref(record);
  vtl_film_free(film);
  vtl_pipeline_free(p);
  vtl_cl_close(cl);
  vtl_doc_free(doc);
  return status;
}
