/* json.c — the whole document as JSON (format: docs/timeline-format.md).
 *
 *   { "format": "vtl-timeline", "version": 1,
 *     "timeline": { <Timeline fields> },
 *     "tracks": [ {"id": 2, <Track fields>}, ... ],
 *     "keyframes": [...], "prompt_clips": [...], "shots": [...],
 *     "markers": [...], "assets": [...] }
 *
 * Field names, types and ranges are the field tables of fields.c; enums are
 * their names ("ease_in_out"), references are ids. Missing fields take their
 * defaults; unknown keys are errors (a typo must not be silently dropped).
 * Import builds one op batch and applies it to a fresh document, so it
 * either succeeds whole or fails with the JSON path of the first problem.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "vtl_import.h"

#define FORMAT_NAME "vtl-timeline"
#define FORMAT_VERSION 1

#define fail vtl__errorf

/* ---- export ----------------------------------------------------------------- */

static json_t *field_to_json(const void *ent, const vtl_field_desc *f) {
  vtl_value v;
  vtl__field_read(ent, f, &v);
  switch (f->type) {
  case VTL_FT_STR: return json_string(v.u.s);
  case VTL_FT_REAL: return json_real(v.u.r);
  case VTL_FT_BOOL: return json_boolean(v.u.b);
  case VTL_FT_ENUM: return json_string(f->enums[v.u.i]);
  default: return json_integer(v.u.i);
  }
}

static json_t *entity_to_json(vtl_entity_kind kind, const void *ent,
                              bool with_id) {
  const vtl_entity_desc *d = &vtl_entities[kind];
  json_t *o = json_object();
  if (!o) return NULL;
  if (with_id &&
      json_object_set_new(o, "id", json_integer((json_int_t) * (vtl_id *)ent)))
    goto nomem;
  for (int i = 0; i < d->nfields; i++)
    if (json_object_set_new(o, d->fields[i].name, field_to_json(ent, &d->fields[i])))
      goto nomem;
  return o;
nomem:
  json_decref(o);
  return NULL;
}

int vtl_json_export(vtl_doc *doc, char **out) {
  json_t *root = json_object();
  if (!root) return VTL_ENOMEM;
  int rc = VTL_ENOMEM;
  if (json_object_set_new(root, "format", json_string(FORMAT_NAME)) ||
      json_object_set_new(root, "version", json_integer(FORMAT_VERSION)) ||
      json_object_set_new(root, "timeline",
                          entity_to_json(VTL_ENT_TIMELINE, vtl_doc_timeline(doc),
                                         false)))
    goto done;
  for (int k = VTL_ENT_TIMELINE + 1; k < VTL_ENT__COUNT; k++) {
    json_t *arr = json_array();
    if (!arr || json_object_set_new(root, vtl_entities[k].plural, arr)) goto done;
    size_t n;
    const void *const *items = vtl_doc_list(doc, k, &n);
    for (size_t i = 0; i < n; i++)
      if (json_array_append_new(arr, entity_to_json(k, items[i], true)))
        goto done;
  }
  *out = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER |
                              JSON_REAL_PRECISION(17) | JSON_ENSURE_ASCII);
  rc = *out ? 0 : VTL_ENOMEM;
done:
  json_decref(root);
  return rc;
}

/* ---- import ------------------------------------------------------------------ */

/* json -> value of field f; errors name `path`. */
static int json_to_value(const json_t *j, const vtl_field_desc *f,
                         const char *path, vtl_value *v, vtl_error *err) {
  switch (f->type) {
  case VTL_FT_STR:
    if (!json_is_string(j))
      return fail(err, VTL_ETYPE, "%s: expected a string", path);
    if (json_string_length(j) != strlen(json_string_value(j)))
      return fail(err, VTL_EINVAL, "%s: contains a NUL character", path);
    v->type = VTL_FT_STR;
    if (!(v->u.s = strdup(json_string_value(j))))
      return fail(err, VTL_ENOMEM, "out of memory");
    return 0;
  case VTL_FT_BOOL:
    if (!json_is_boolean(j))
      return fail(err, VTL_ETYPE, "%s: expected true or false", path);
    *v = (vtl_value){VTL_FT_BOOL, {.b = json_is_true(j)}};
    return 0;
  case VTL_FT_ENUM: {
    int e = json_is_string(j) ? vtl_enum_lookup(f->enums, json_string_value(j))
                              : -1;
    if (e < 0) {
      char names[256] = "";
      for (int i = 0; f->enums[i]; i++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", i ? ", " : "",
                 f->enums[i]);
      }
      if (!json_is_string(j))
        return fail(err, VTL_ERANGE, "%s: expected one of %s", path, names);
      /* name the bad value (at most 40 bytes, cut at a character) */
      char bad[41];
      size_t n = strlen(json_string_value(j));
      if (n > 40) {
        n = 40;
        while (n > 0 && ((unsigned char)json_string_value(j)[n] & 0xc0) == 0x80)
          n--;
      }
      memcpy(bad, json_string_value(j), n);
      bad[n] = '\0';
      return fail(err, VTL_ERANGE, "%s: unknown value \"%s\" (%s)", path, bad,
                  names);
    }
    *v = (vtl_value){VTL_FT_INT, {.i = e}};
    return 0;
  }
  case VTL_FT_REAL:
    if (!json_is_number(j))
      return fail(err, VTL_ETYPE, "%s: expected a number", path);
    *v = (vtl_value){VTL_FT_REAL, {.r = json_number_value(j)}};
    return 0;
  case VTL_FT_INT:
  case VTL_FT_REF:
    if (!json_is_integer(j))
      return fail(err, VTL_ETYPE, "%s: expected an integer", path);
    *v = (vtl_value){VTL_FT_INT, {.i = json_integer_value(j)}};
    return 0;
  }
  return fail(err, VTL_EINVAL, "%s: bad field", path);
}

typedef struct {
  vtl_op *ops;
  char (*paths)[64]; /* JSON path of each op, for apply's errors */
  size_t n, cap;
} batch;

static vtl_op *batch_push(batch *b, const char *path) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 64;
    vtl_op *ops = realloc(b->ops, cap * sizeof *ops);
    if (!ops) return NULL;
    b->ops = ops;
    char(*paths)[64] = realloc(b->paths, cap * sizeof *paths);
    if (!paths) return NULL;
    b->paths = paths;
    b->cap = cap;
  }
  snprintf(b->paths[b->n], sizeof b->paths[0], "%s", path);
  b->ops[b->n] = (vtl_op){0};
  return &b->ops[b->n++];
}

/* One entity object -> a CREATE op (or SETs for the timeline). */
static int entity_from_json(batch *b, vtl_entity_kind kind, json_t *o,
                            const char *path, vtl_error *err) {
  const vtl_entity_desc *d = &vtl_entities[kind];
  char fpath[128];
  if (!json_is_object(o))
    return fail(err, VTL_ETYPE, "%s: expected an object", path);
  vtl_op *create = NULL;
  if (kind != VTL_ENT_TIMELINE) {
    json_t *id = json_object_get(o, "id");
    if (!json_is_integer(id) || json_integer_value(id) <= 0)
      return fail(err, VTL_EINVAL, "%s.id: expected a positive integer", path);
    if (!(create = batch_push(b, path))) return fail(err, VTL_ENOMEM, "no memory");
    vtl_op_create(create, kind, (vtl_id)json_integer_value(id));
    if (!(create->fields = calloc(d->nfields, sizeof *create->fields)))
      return fail(err, VTL_ENOMEM, "out of memory");
  }
  const char *key;
  json_t *val;
  json_object_foreach(o, key, val) {
    snprintf(fpath, sizeof fpath, "%s.%s", path, key);
    if (create && strcmp(key, "id") == 0) continue;
    int f = vtl_field_lookup(kind, key);
    if (f < 0)
      return fail(err, VTL_EINVAL, "%s: unknown field of %s", fpath, d->name);
    vtl_value v;
    int rc = json_to_value(val, &d->fields[f], fpath, &v, err);
    if (rc) return rc;
    if (create) {
      create->fields[create->nfields++] = (vtl_field_value){f, v};
    } else {
      vtl_op *set = batch_push(b, fpath);
      if (!set) {
        vtl_value_free(&v);
        return fail(err, VTL_ENOMEM, "out of memory");
      }
      *set = (vtl_op){.type = VTL_OP_SET, .kind = kind, .id = VTL_TIMELINE_ID};
      if (!(set->fields = malloc(sizeof *set->fields))) {
        vtl_value_free(&v);
        return fail(err, VTL_ENOMEM, "out of memory");
      }
      set->fields[0] = (vtl_field_value){f, v};
      set->nfields = 1;
    }
  }
  return 0;
}

static int import_root(json_t *root, batch *b, vtl_error *err) {
  if (!json_is_object(root))
    return fail(err, VTL_EPARSE, "top level: expected an object");
  json_t *fmt = json_object_get(root, "format");
  if (!json_is_string(fmt) || strcmp(json_string_value(fmt), FORMAT_NAME))
    return fail(err, VTL_EPARSE, "format: expected \"%s\"", FORMAT_NAME);
  json_t *ver = json_object_get(root, "version");
  if (!json_is_integer(ver) || json_integer_value(ver) != FORMAT_VERSION)
    return fail(err, VTL_EUNSUPPORTED, "version: only %d is known",
                FORMAT_VERSION);
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (!strcmp(key, "format") || !strcmp(key, "version") ||
        !strcmp(key, "timeline"))
      continue;
    int k = 1;
    while (k < VTL_ENT__COUNT && strcmp(vtl_entities[k].plural, key)) k++;
    if (k == VTL_ENT__COUNT)
      return fail(err, VTL_EINVAL, "%s: unknown key", key);
    if (!json_is_array(val))
      return fail(err, VTL_ETYPE, "%s: expected an array", key);
    if (json_array_size(val) > vtl_entities[k].max_count)
      return fail(err, VTL_ELIMIT, "%s: more than %zu", key,
                  vtl_entities[k].max_count);
  }
  json_t *tl = json_object_get(root, "timeline");
  if (tl) {
    int rc = entity_from_json(b, VTL_ENT_TIMELINE, tl, "timeline", err);
    if (rc) return rc;
  }
  /* creation order: what is referenced first */
  static const vtl_entity_kind order[] = {VTL_ENT_ASSET, VTL_ENT_TRACK,
                                          VTL_ENT_KEYFRAME, VTL_ENT_PROMPT_CLIP,
                                          VTL_ENT_SHOT, VTL_ENT_MARKER};
  for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
    json_t *arr = json_object_get(root, vtl_entities[order[k]].plural);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
      char path[64];
      snprintf(path, sizeof path, "%s[%zu]", vtl_entities[order[k]].plural, i);
      int rc = entity_from_json(b, order[k], o, path, err);
      if (rc) return rc;
    }
  }
  return 0;
}

int vtl_json_import(const char *text, size_t len, vtl_doc **out,
                    vtl_error *err) {
  json_error_t jerr;
  if (err) *err = (vtl_error){.op_index = -1};
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return fail(err, VTL_EPARSE, "line %d, column %d: %s", jerr.line,
                jerr.column, jerr.text);
  batch b = {0};
  vtl_doc *doc = NULL;
  int rc = import_root(root, &b, err);
  if (!rc) rc = vtl_doc_new(&doc);
  if (!rc) {
    vtl_error aerr;
    rc = vtl_doc_apply(doc, b.ops, b.n, NULL, NULL, &aerr);
    if (rc) {
      const char *path = aerr.op_index >= 0 ? b.paths[aerr.op_index] : "";
      size_t pl = strlen(path);
      /* a Timeline set's path ("timeline.fps") already opens the message */
      if (pl && strncmp(aerr.message, path, pl) == 0 && aerr.message[pl] == ':')
        fail(err, rc, "%s", aerr.message);
      else
        fail(err, rc, "%s: %s", path, aerr.message);
    }
  }
  json_decref(root);
  vtl_ops_free(b.ops, b.n);
  free(b.paths);
  if (rc) {
    vtl_doc_free(doc);
    return rc;
  }
  *out = doc;
  return 0;
}
