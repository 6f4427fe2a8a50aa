/* cli.c — shared plumbing of vtl-timeline (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("vtl-timeline: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return CLI_EINPUT;
}

int cli_asprintf(char **out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !(*out = malloc((size_t)n + 1))) return CLI_ESYS;
  va_start(ap, fmt);
  vsnprintf(*out, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return 0;
}

/* ---- arguments ------------------------------------------------------------ */

/* Whole-string integer in [lo, hi]. */
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end == s || *end || x < lo || x > hi) return false;
  *v = x;
  return true;
}

static bool parse_real(const char *s, double lo, double hi, double *v) {
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  if (errno || end == s || *end || !(x >= lo && x <= hi)) return false;
  *v = x;
  return true;
}

static int parse_keys(const char *s, cli_args *a) {
  size_t n = 1;
  for (const char *p = s; *p; p++) n += *p == ',';
  if (!(a->keys = calloc(n, sizeof *a->keys))) return CLI_ESYS;
  char *copy = strdup(s), *save = NULL;
  if (!copy) return CLI_ESYS;
  for (char *tok = strtok_r(copy, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    int64_t v;
    if (!parse_int(tok, 1, (int64_t)VTL_ID_MAX, &v)) {
      free(copy);
      return cli_fail("--keys: \"%s\" is not an id", tok);
    }
    a->keys[a->nkeys++] = (vtl_id)v;
  }
  free(copy);
  return a->nkeys ? 0 : cli_fail("--keys: no ids");
}

int cli_parse_args(int argc, char **argv, cli_args *a) {
  *a = (cli_args){.frame_lo = -1, .frame_hi = -1, .intensity = 1};
  for (int i = 0; i < argc; i++) {
    const char *o = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int64_t x;
    if (o[0] != '-') {
      if (a->file) return cli_fail("unexpected argument \"%s\"", o);
      a->file = o;
      continue;
    }
    if (!strcmp(o, "--blend-prompts")) { a->blend_prompts = true; continue; }
    if (!strcmp(o, "--paragraphs")) { a->paragraphs = true; continue; }
    static const char *const with_value[] = {
      "-o", "--frame", "--frames", "--fps", "--shot", "--template", "--name",
      "--templates", "--intensity", "--keys", NULL};
    int known = 0;
    while (with_value[known] && strcmp(with_value[known], o)) known++;
    if (!with_value[known]) return cli_fail("unknown option %s", o);
    if (!v) return cli_fail("%s: needs a value", o);
    i++;
    if (!strcmp(o, "-o")) {
      a->out = v;
    } else if (!strcmp(o, "--frame")) {
      if (!parse_int(v, 0, VTL_MAX_FRAMES - 1, &x))
        return cli_fail("--frame: \"%s\" is not a frame number", v);
      a->frame_lo = a->frame_hi = x;
    } else if (!strcmp(o, "--frames")) {
      char lo[32], hi[32];
      const char *dash = strchr(v, '-');
      if (!dash || dash - v >= (long)sizeof lo || strlen(dash + 1) >= sizeof hi)
        return cli_fail("--frames: expected A-B, got \"%s\"", v);
      memcpy(lo, v, (size_t)(dash - v));
      lo[dash - v] = 0;
      strcpy(hi, dash + 1);
      if (!parse_int(lo, 0, VTL_MAX_FRAMES - 1, &a->frame_lo) ||
          !parse_int(hi, a->frame_lo, VTL_MAX_FRAMES - 1, &a->frame_hi))
        return cli_fail("--frames: expected A-B with 0 <= A <= B, got \"%s\"", v);
      a->frame_range = true;
    } else if (!strcmp(o, "--fps")) {
      if (!parse_real(v, 1, 240, &a->fps))
        return cli_fail("--fps: expected 1..240, got \"%s\"", v);
    } else if (!strcmp(o, "--shot")) {
      if (!parse_int(v, 1, (int64_t)VTL_ID_MAX, &x))
        return cli_fail("--shot: \"%s\" is not an id", v);
      a->shot = (vtl_id)x;
    } else if (!strcmp(o, "--template") || !strcmp(o, "--name")) {
      a->name = v;
    } else if (!strcmp(o, "--templates")) {
      a->templates = v;
    } else if (!strcmp(o, "--intensity")) {
      if (!parse_real(v, 0, 100, &a->intensity))
        return cli_fail("--intensity: expected 0..100, got \"%s\"", v);
    } else if (!strcmp(o, "--keys")) {
      int rc = parse_keys(v, a);
      if (rc) return rc;
    }
  }
  if (!a->file) return cli_fail("missing FILE");
  return 0;
}

void cli_args_free(cli_args *a) { free(a->keys); }

/* ---- files ------------------------------------------------------------------ */

int cli_read_file(const char *path, char **text, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return cli_fail("%s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(f);
      return CLI_ESYS;
    }
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    char *bigger = realloc(buf, cap *= 2);
    if (!bigger) free(buf);
    buf = bigger;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return cli_fail("%s: read error", path);
  }
  buf[n] = 0;
  *text = buf;
  *len = n;
  return 0;
}

int cli_read_template(const char *name, const char *dir, char **text,
                      size_t *len) {
  if (strchr(name, '/') || strstr(name, ".json"))
    return cli_read_file(name, text, len);
  char *path;
  if (cli_asprintf(&path, "%s/%s.json", dir, name)) return CLI_ESYS;
  if (access(path, R_OK)) {
    cli_fail("no template \"%s\" in %s", name, dir);
    free(path);
    return CLI_EINPUT;
  }
  int rc = cli_read_file(path, text, len);
  free(path);
  return rc;
}

void cli_print_warnings(const vtl_warnings *w, const char *what) {
  for (size_t i = 0; i < w->n; i++)
    fprintf(stderr, "vtl-timeline: %s: warning: %s\n", what, w->items[i]);
}

static int load_deforum_text(cli_args *a, const char *text, size_t len,
                             vtl_doc **doc) {
  vtl_deforum_options opt = {.blend_prompts = a->blend_prompts};
  vtl_warnings w = {0};
  vtl_error err;
  int rc = vtl_deforum_import(text, len, &opt, doc, &w, &err);
  cli_print_warnings(&w, a->file);
  vtl_warnings_free(&w);
  return rc ? cli_fail("%s: %s", a->file, err.message) : 0;
}

int cli_load_deforum(cli_args *a, vtl_doc **doc) {
  char *text;
  size_t len;
  int rc = cli_read_file(a->file, &text, &len);
  if (rc) return rc;
  rc = load_deforum_text(a, text, len, doc);
  free(text);
  return rc;
}

int cli_load_doc(cli_args *a, vtl_doc **doc) {
  char *text;
  size_t len;
  int rc = cli_read_file(a->file, &text, &len);
  if (rc) return rc;
  vtl_error err;
  /* a vtl timeline names its format; anything else is taken as Deforum */
  if (strstr(text, "\"vtl-timeline\"") || !strstr(text, "\"max_frames\"")) {
    rc = vtl_json_import(text, len, doc, &err);
    if (rc) rc = cli_fail("%s: %s", a->file, err.message);
  } else {
    rc = load_deforum_text(a, text, len, doc);
  }
  free(text);
  return rc;
}

vtl_id cli_next_free_id(vtl_doc *doc) {
  vtl_id next = VTL_TIMELINE_ID + 1;
  for (int k = 0; k < VTL_ENT__COUNT; k++) {
    size_t n;
    const void *const *items = vtl_doc_list(doc, k, &n);
    if (n && *(const vtl_id *)items[n - 1] >= next)
      next = *(const vtl_id *)items[n - 1] + 1;
  }
  return next;
}

/* ---- output ------------------------------------------------------------------ */

json_t *cli_params_json(const vtl_params *p) {
  json_t *o = json_object(), *prompts = json_array(), *errors = json_array();
  if (!o || !prompts || !errors) goto fail;
  json_object_set_new(o, "frame", json_integer(p->frame));
  json_object_set_new(o, "seconds", json_real(p->seconds));
  for (int i = 0; i < VTL_PARAM__COUNT; i++) {
    const vtl_param_desc *d = &vtl_param_table[i];
    json_t *v;
    if (i == VTL_PARAM_SAMPLER) v = json_string(vtl_sampler_names[(int)p->values[i]]);
    else if (i == VTL_PARAM_SPACING) v = json_string(vtl_spacing_names[(int)p->values[i]]);
    else if (d->kind == 'I') v = json_integer((json_int_t)p->values[i]);
    else v = json_real(p->values[i]);
    json_object_set_new(o, d->name, v);
  }
  json_object_set_new(o, "seed", json_integer(p->seed));
  json_object_set_new(o, "shot", json_integer((json_int_t)p->shot));
  json_object_set_new(o, "shot_start", json_integer(p->shot_start));
  json_object_set_new(o, "first_frame", json_boolean(p->first_frame));
  json_object_set_new(o, "source", json_string(vtl_source_names[p->source]));
  json_object_set_new(o, "source_asset", json_integer((json_int_t)p->source_asset));
  json_object_set_new(o, "source_strength", json_real(p->source_strength));
  for (int i = 0; i < p->nprompts; i++)
    json_array_append_new(prompts, json_pack("{s:s, s:s, s:f}", "text",
                                             p->prompts[i].text, "negative",
                                             p->prompts[i].negative, "weight",
                                             p->prompts[i].weight));
  json_object_set_new(o, "prompts", prompts);
  char hash[17];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)p->dep_hash);
  json_object_set_new(o, "dep_hash", json_string(hash));
  if (p->nerrors) json_array_append_new(errors, json_string(p->error));
  json_object_set_new(o, "errors", errors);
  return o;
fail:
  json_decref(o);
  json_decref(prompts);
  json_decref(errors);
  return NULL;
}

int cli_output(cli_args *a, char *text) {
  size_t len = strlen(text);
  if (!a->out) {
    int bad = fwrite(text, 1, len, stdout) != len || fflush(stdout);
    free(text);
    return bad ? CLI_ESYS : 0;
  }
  char *tmp;
  if (cli_asprintf(&tmp, "%s.tmp.%ld", a->out, (long)getpid())) {
    free(text);
    return CLI_ESYS;
  }
  FILE *f = fopen(tmp, "wb");
  int rc = 0;
  if (!f || fwrite(text, 1, len, f) != len || fclose(f)) {
    rc = cli_fail("%s: %s", a->out, strerror(errno));
    if (f) remove(tmp);
  } else if (rename(tmp, a->out)) {
    rc = cli_fail("%s: %s", a->out, strerror(errno));
    remove(tmp);
  }
  free(tmp);
  free(text);
  return rc;
}

int cli_output_line(cli_args *a, char *text) {
  char *line;
  int rc = cli_asprintf(&line, "%s\n", text);
  free(text);
  return rc ? rc : cli_output(a, line);
}

int cli_output_doc(cli_args *a, vtl_doc *doc) {
  char *out;
  int rc = vtl_json_export(doc, &out);
  vtl_doc_free(doc);
  return rc ? CLI_ESYS : cli_output_line(a, out);
}
