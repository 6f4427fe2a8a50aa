/* fuzz_envelope.c — libFuzzer target: one client message as vtl-server sees
 * it, without sockets. The input is the bytes of one websocket message:
 *
 *   bytes ─unpack─▶ Envelope ─(OpBatch)─▶ vtl_wire_ops_from_pb ─▶
 *   vtl_doc_validate ─▶ vtl_doc_apply on a document (room.c's path)
 *
 * and aborts when one of these breaks:
 *
 *   1. protobuf-c: whatever unpacks packs again (no crash, no leak;
 *      ASan/UBSan watch the rest), and when that unpacks it is the same
 *      kind of message;
 *   2. an OpBatch the server would take (1..256 ops) converts or fails with
 *      a VTL_E* code; vtl_doc_validate returns what vtl_doc_apply then
 *      returns, and a rejected batch leaves the document's JSON export
 *      byte-for-byte unchanged;
 *   3. an applied batch: the Ops the server broadcasts (the received ops,
 *      re-packed in an Ops Envelope) unpack, convert and apply on a replica
 *      of the starting document to the same export as the server's head
 *      (what every client does); the inverse restores the export from
 *      before; a Snapshot of the head (doc -> Document -> bytes -> doc)
 *      exports the same bytes;
 *   4. a Snapshot from the client side (a Document the server never takes
 *      from a client, but clients do from the server): vtl_wire_doc_from_pb
 *      either refuses it or gives a document whose Snapshot round trip
 *      exports the same bytes.
 *
 * The starting document (base_doc) holds one entity of each kind with small
 * ids (2..9), so that fuzzed ops reach existing entities and cascades.
 * Seeds: tests/fuzz/corpus/envelope/ (packed Envelopes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtl_import.h"
#include "vtl_timeline.h"
#include "wire.h"

#define MAX_OPS 256 /* VTL_MAX_OPS_PER_BATCH of server.h */

static void die(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_envelope: %s%s%s\n", what, detail ? ": " : "",
          detail ? detail : "");
  abort();
}

static char *export_doc(vtl_doc *d) {
  char *s = NULL;
  if (vtl_json_export(d, &s)) die("export failed", NULL);
  return s;
}

static vtl_doc *base_doc(void) {
  static vtl_doc *base;
  if (base) return base;
  vtl_op o[8];
  memset(o, 0, sizeof o);
  int rc = vtl_doc_new(&base);
  rc |= vtl_op_create(&o[0], VTL_ENT_TRACK, 2);
  rc |= vtl_op_add_str(&o[0], "name", "strength");
  rc |= vtl_op_create(&o[1], VTL_ENT_TRACK, 3);
  rc |= vtl_op_add_int(&o[1], "target", VTL_TARGET_PROMPT);
  rc |= vtl_op_create(&o[2], VTL_ENT_KEYFRAME, 4);
  rc |= vtl_op_add_int(&o[2], "track", 2);
  rc |= vtl_op_add_real(&o[2], "value", 0.5);
  rc |= vtl_op_create(&o[3], VTL_ENT_PROMPT_CLIP, 5);
  rc |= vtl_op_add_int(&o[3], "track", 3);
  rc |= vtl_op_add_int(&o[3], "end", 24);
  rc |= vtl_op_add_str(&o[3], "text", "a lighthouse");
  rc |= vtl_op_create(&o[4], VTL_ENT_ASSET, 6);
  rc |= vtl_op_add_str(&o[4], "mime", "image/png");
  rc |= vtl_op_create(&o[5], VTL_ENT_SHOT, 7);
  rc |= vtl_op_add_int(&o[5], "source", VTL_SOURCE_IMAGE);
  rc |= vtl_op_add_int(&o[5], "asset", 6);
  rc |= vtl_op_create(&o[6], VTL_ENT_MARKER, 8);
  rc |= vtl_op_add_int(&o[6], "frame", 12);
  rc |= vtl_op_create(&o[7], VTL_ENT_KEYFRAME, 9);
  rc |= vtl_op_add_int(&o[7], "track", 2);
  rc |= vtl_op_add_int(&o[7], "frame", 30);
  vtl_error err = {0};
  if (rc || vtl_doc_apply(base, o, 8, NULL, NULL, &err))
    die("cannot build the starting document", err.message);
  for (int i = 0; i < 8; i++) vtl_op_free(&o[i]);
  return base;
}

/* Snapshot round trip: doc -> Document -> bytes -> Document -> doc. The
 * export of the result must equal `want`. */
static void snapshot_round_trip(vtl_doc *doc, const char *want) {
  Vtl__V1__Document *d;
  if (vtl_wire_doc_to_pb(doc, &d)) die("doc_to_pb failed", NULL);
  size_t n = vtl__v1__document__get_packed_size(d);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) die("out of memory", NULL);
  vtl__v1__document__pack(d, buf);
  vtl_wire_doc_free_pb(d);
  Vtl__V1__Document *back = vtl__v1__document__unpack(NULL, n, buf);
  free(buf);
  if (!back) die("a packed Document does not unpack", NULL);
  vtl_doc *again = NULL;
  vtl_error err = {0};
  if (vtl_wire_doc_from_pb(back, &again, &err))
    die("a Snapshot of a valid document is refused", err.message);
  vtl__v1__document__free_unpacked(back, NULL);
  char *got = export_doc(again);
  if (strcmp(got, want) != 0) die("Snapshot round trip changed the document", NULL);
  free(got);
  vtl_doc_free(again);
}

/* The broadcast of an applied batch, applied by a client on its replica. */
static void replica_apply(Vtl__V1__Op **ops, size_t nops, const char *want) {
  Vtl__V1__Ops o = VTL__V1__OPS__INIT;
  o.seq = 1;
  o.session_id = 1;
  o.batch_id = 1;
  o.n_ops = nops;
  o.ops = ops;
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_OPS;
  env.ops = &o;
  size_t n = vtl__v1__envelope__get_packed_size(&env);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) die("out of memory", NULL);
  vtl__v1__envelope__pack(&env, buf);
  Vtl__V1__Envelope *in = vtl__v1__envelope__unpack(NULL, n, buf);
  free(buf);
  if (!in || in->msg_case != VTL__V1__ENVELOPE__MSG_OPS)
    die("the broadcast Ops does not unpack", NULL);
  vtl_op *cops = NULL;
  size_t nc = 0;
  vtl_error err = {0};
  vtl_doc *replica = NULL;
  if (vtl_doc_clone(base_doc(), &replica)) die("clone failed", NULL);
  if (vtl_wire_ops_from_pb(in->ops->ops, in->ops->n_ops, &cops, &nc, &err) ||
      vtl_doc_apply(replica, cops, nc, NULL, NULL, &err))
    die("a replica cannot apply the broadcast of an applied batch", err.message);
  char *got = export_doc(replica);
  if (strcmp(got, want) != 0) die("a replica diverged from the server", NULL);
  free(got);
  vtl_ops_free(cops, nc);
  vtl_doc_free(replica);
  vtl__v1__envelope__free_unpacked(in, NULL);
}

static void op_batch(const Vtl__V1__OpBatch *b) {
  if (b->n_ops == 0 || b->n_ops > MAX_OPS) return; /* refused before (sync.c) */
  vtl_op *ops = NULL;
  size_t n = 0;
  vtl_error err = {0};
  int rc = vtl_wire_ops_from_pb(b->ops, b->n_ops, &ops, &n, &err);
  if (rc) {
    if (rc >= 0 || ops) die("ops_from_pb: a failure without a VTL_E code", NULL);
    return;
  }
  if (n != b->n_ops) die("ops_from_pb: op count changed", NULL);
  vtl_doc *doc = NULL;
  if (vtl_doc_clone(base_doc(), &doc)) die("clone failed", NULL);
  char *before = export_doc(doc);
  vtl_error verr = {0};
  int vrc = vtl_doc_validate(doc, ops, n, &verr);
  vtl_op *inv = NULL;
  size_t ninv = 0;
  rc = vtl_doc_apply(doc, ops, n, &inv, &ninv, &err);
  if (rc != vrc) die("validate and apply disagree", err.message);
  char *after = export_doc(doc);
  if (rc) {
    if (strcmp(before, after) != 0) die("a rejected batch changed the document", err.message);
    if (err.code != rc) die("err.code differs from the return value", NULL);
  } else {
    replica_apply(b->ops, b->n_ops, after);
    snapshot_round_trip(doc, after);
    vtl_error ierr = {0};
    if (vtl_doc_apply(doc, inv, ninv, NULL, NULL, &ierr))
      die("the inverse of an applied batch does not apply", ierr.message);
    char *undone = export_doc(doc);
    if (strcmp(undone, before) != 0) die("the inverse did not restore the document", NULL);
    free(undone);
  }
  vtl_ops_free(inv, ninv);
  free(before);
  free(after);
  vtl_ops_free(ops, n);
  vtl_doc_free(doc);
}

static void snapshot(const Vtl__V1__Snapshot *s) {
  if (!s->document) return;
  vtl_doc *doc = NULL;
  vtl_error err = {0};
  if (vtl_wire_doc_from_pb(s->document, &doc, &err)) {
    if (doc) die("doc_from_pb: a failure that returned a document", NULL);
    return;
  }
  char *want = export_doc(doc);
  snapshot_round_trip(doc, want);
  free(want);
  vtl_doc_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  base_doc();
  Vtl__V1__Envelope *env = vtl__v1__envelope__unpack(NULL, size, data);
  if (!env) return 0; /* MALFORMED: an offence, nothing else happens */
  size_t n = vtl__v1__envelope__get_packed_size(env);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) die("out of memory", NULL);
  vtl__v1__envelope__pack(env, buf);
  Vtl__V1__Envelope *again = vtl__v1__envelope__unpack(NULL, n, buf);
  free(buf);
  /* protobuf-c 1.4 takes a field number 0 (tag bytes 80 00) as an unknown
   * field and then cannot read its own packing of it: a re-packed message
   * need not unpack; when it does, it is the same kind */
  if (again && again->msg_case != env->msg_case)
    die("re-packing changed the message kind", NULL);
  if (again) vtl__v1__envelope__free_unpacked(again, NULL);

  switch (env->msg_case) {
  case VTL__V1__ENVELOPE__MSG_OP_BATCH:
    op_batch(env->op_batch);
    break;
  case VTL__V1__ENVELOPE__MSG_SNAPSHOT:
    snapshot(env->snapshot);
    break;
  case VTL__V1__ENVELOPE__MSG_HELLO: { /* sync.c's string checks */
    const Vtl__V1__Hello *h = env->hello;
    if (h->room) (void)vtl_wire_utf8_valid(h->room);
    if (h->token) (void)vtl_wire_utf8_valid(h->token);
    if (h->display_name) (void)vtl_wire_utf8_valid(h->display_name);
    for (size_t i = 0; i < h->n_capabilities; i++)
      (void)vtl_wire_utf8_valid(h->capabilities[i]);
    break;
  }
  default:
    break;
  }
  vtl__v1__envelope__free_unpacked(env, NULL);
  return 0;
}
