/* wire.h — conversion between the protobuf messages of proto/vtl.proto and
 * the document model of timeline/ (vtl_op, vtl_doc).
 *
 * The mapping is generic: an entity field's C `tag` (vtl_field_by_tag) is
 * its proto field number, and the proto side is read and written through
 * protobuf-c's descriptors, so a field added to both tables needs no code
 * here. Used by vtl-server and by the protocol test client; it depends on
 * timeline/ and proto/ only (never on server state), so that clients may
 * link it too.
 *
 * Ownership: functions that build protobuf messages (vtl_wire_op_to_pb,
 * vtl_wire_doc_to_pb) allocate the message tree with malloc and may BORROW
 * strings from their input (the vtl_op or the document): free the tree with
 * the matching *_free before the input changes, never with
 * protobuf_c_message_free_unpacked.
 */
#ifndef VTL_WIRE_H
#define VTL_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "vtl.pb-c.h"
#include "vtl_timeline.h"

/* Wire Error.Code of a C error code (VTL_E*), or CODE_UNSPECIFIED. */
Vtl__V1__Error__Code vtl_wire_code(int err);

/* Strict UTF-8 check of a NUL-terminated string (RFC 3629). */
bool vtl_wire_utf8_valid(const char *s);

/* Converts npb wire ops into *out (malloc'd array of *n ops; free with
 * vtl_ops_free). Returns 0, or a VTL_E* code with `err` naming the op:
 *   1. an Op with no member set, or a SetField without a field: INVAL;
 *   2. an entity kind out of range: RANGE;
 *   3. a field number the entity does not have: INVAL;
 *   4. a Value with no kind set: TYPE.
 * Everything else (ranges, references, UTF-8, ids) is the model's to judge
 * in vtl_doc_apply. On error nothing is allocated. */
int vtl_wire_ops_from_pb(Vtl__V1__Op *const *pb, size_t npb, vtl_op **out,
                         size_t *n, vtl_error *err);

/* Builds a malloc'd Op tree for `op` (strings borrowed from op). Returns
 * NULL on NOMEM. Free with vtl_wire_op_free_pb. */
Vtl__V1__Op *vtl_wire_op_to_pb(const vtl_op *op);
void vtl_wire_op_free_pb(Vtl__V1__Op *pb);

/* Builds a Document holding every entity of `doc` (strings borrowed from
 * the document; valid until its next apply). Returns 0 or VTL_ENOMEM.
 * Free with vtl_wire_doc_free_pb. */
int vtl_wire_doc_to_pb(vtl_doc *doc, Vtl__V1__Document **out);
void vtl_wire_doc_free_pb(Vtl__V1__Document *d);

/* Builds a new document from a Document message. Returns 0, or the model's
 * error (the message names the entity) when it is not a valid document. */
int vtl_wire_doc_from_pb(const Vtl__V1__Document *d, vtl_doc **out,
                         vtl_error *err);

#endif /* VTL_WIRE_H */
