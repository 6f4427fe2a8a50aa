/* demo_timeline.c — `--demo-timeline FILE`: the film room "demo" starts
 * with (scripts/demo passes demo/demo.vtl.json).
 *
 * Two steps, so that a bad file stops the server before it listens:
 *
 *   1. vtl_demo_timeline_load (main.c, before serving) reads FILE and
 *      imports it with vtl_json_import, the parse and validation of
 *      `vtl-timeline validate`. Its entity ids must lie in 1 .. 2^24-1,
 *      the range of id base 0, which no session is ever given
 *      (docs/protocol.md "Ids"): no client can mint one of them.
 *   2. vtl_demo_timeline_import (demo.c, once room "demo" is loaded) turns
 *      the document into ONE batch (vtl_doc_to_ops: the Timeline's fields,
 *      then a create per entity in dependency order) and hands it to
 *      vtl_room_apply like a client's batch, from session 0 (the server)
 *      with batch id IMPORT_BATCH_ID: validated, seq 1, committed to SQLite
 *      in one transaction, then broadcast. A crash therefore leaves the
 *      room either imported or empty (and imported at the next start),
 *      never partial.
 *
 * Only an empty room is imported into: no op ever committed and nothing
 * but the default Timeline. A room with content (a director edited it in
 * an earlier run) is left alone, and the log says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "vtl_import.h"
#include "wire.h"

/* The import's batch id: in id base 0 like the file's ids, so no client's
 * batch (minted from its own base >= 1) is ever taken for a duplicate. */
#define IMPORT_BATCH_ID 1

/* Reads the whole file into *text (malloc'd). Returns 0, or -1 with
 * errno set. */
static int read_file(const char *path, char **text, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (n == cap) {
      char *p = realloc(buf, cap = cap ? cap * 2 : 65536);
      if (!p) { rc = -1; errno = ENOMEM; break; }
      buf = p;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) rc = -1; /* errno from the failed read (EISDIR ...) */
      break;
    }
  }
  fclose(f);
  if (rc) { free(buf); return -1; }
  *text = buf;
  *len = n;
  return 0;
}

int vtl_demo_timeline_load(const char *path, vtl_doc **out, char *msg,
                           size_t msglen) {
  char *text;
  size_t len;
  if (read_file(path, &text, &len)) {
    snprintf(msg, msglen, "--demo-timeline %s: cannot read it: %s", path,
             strerror(errno));
    return VTL_EIO;
  }
  vtl_doc *doc = NULL;
  vtl_error err = {0};
  int rc = vtl_json_import(text, len, &doc, &err);
  free(text);
  if (rc) {
    snprintf(msg, msglen, "--demo-timeline %s: not a valid vtl timeline: %s",
             path, err.message[0] ? err.message : vtl_strerror(rc));
    return rc;
  }
  for (int k = 0; k < VTL_ENT__COUNT; k++) {
    size_t n;
    const void *const *items = vtl_doc_list(doc, k, &n);
    vtl_id last = n ? *(const vtl_id *)items[n - 1] : 0; /* sorted by id */
    if (last >> VTL_ID_BASE_SHIFT) {
      snprintf(msg, msglen, "--demo-timeline %s: id %llu is too large (the "
               "server's ids are 1 .. %u)", path, (unsigned long long)last,
               (1u << VTL_ID_BASE_SHIFT) - 1);
      vtl_doc_free(doc);
      return VTL_ERANGE;
    }
  }
  *out = doc;
  return 0;
}

/* True when the room holds nothing: no op committed or in flight, and no
 * entity besides the Timeline (a snapshot can hold some at seq 0). */
static bool room_empty(vtl_room *r) {
  if (r->seq) return false;
  for (int k = 0; k < VTL_ENT__COUNT; k++)
    if (k != VTL_ENT_TIMELINE && vtl_doc_count(r->doc, k)) return false;
  return true;
}

/* Applies the document's ops as one batch of session 0 (the server). */
static int apply_as_batch(vtl_room *r, vtl_doc *film, vtl_error *err) {
  vtl_op *ops;
  size_t n;
  int rc = vtl_doc_to_ops(film, &ops, &n);
  if (rc) return rc;
  Vtl__V1__Op **pb = calloc(n ? n : 1, sizeof *pb);
  for (size_t i = 0; pb && !rc && i < n; i++)
    if (!(pb[i] = vtl_wire_op_to_pb(&ops[i]))) rc = VTL_ENOMEM;
  if (!pb) rc = VTL_ENOMEM;
  if (!rc) {
    Vtl__V1__OpBatch b = VTL__V1__OP_BATCH__INIT;
    b.batch_id = IMPORT_BATCH_ID;
    b.n_ops = n;
    b.ops = pb;
    rc = vtl_room_apply(r, NULL, &b, err);
  }
  for (size_t i = 0; pb && i < n; i++)
    if (pb[i]) vtl_wire_op_free_pb(pb[i]);
  free(pb);
  vtl_ops_free(ops, n);
  return rc;
}

int vtl_demo_timeline_import(vtl_room *r, vtl_doc *film) {
  if (!room_empty(r)) {
    vtl_log(VTL_LOG_INFO, "demo.timeline_kept",
            "room \"%s\" has content (seq %llu): --demo-timeline not imported",
            r->name, (unsigned long long)r->seq);
    return 0;
  }
  vtl_error err = {0};
  int rc = apply_as_batch(r, film, &err);
  if (rc) {
    vtl_log(VTL_LOG_ERROR, "demo.timeline_import",
            "room \"%s\": --demo-timeline does not apply: %s", r->name,
            err.message[0] ? err.message : vtl_strerror(rc));
    return rc;
  }
  vtl_log(VTL_LOG_INFO, "demo.timeline_imported",
          "room \"%s\": --demo-timeline imported as seq %llu (%zu tracks, "
          "%zu keyframes, %zu prompt clips, %zu shots)", r->name,
          (unsigned long long)r->seq, vtl_doc_count(film, VTL_ENT_TRACK),
          vtl_doc_count(film, VTL_ENT_KEYFRAME),
          vtl_doc_count(film, VTL_ENT_PROMPT_CLIP),
          vtl_doc_count(film, VTL_ENT_SHOT));
  return 0;
}
