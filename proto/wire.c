/* wire.c — proto <-> document model conversion (contract in wire.h).
 *
 * Entity messages are read and written through protobuf-c descriptors:
 *
 *   C field (vtl_field_desc)        proto field (ProtobufCFieldDescriptor)
 *   INT, ENUM  int64_t at offset    TYPE_INT64 int64_t / TYPE_ENUM int
 *   REF        vtl_id at offset     TYPE_UINT64 uint64_t
 *   REAL       double               TYPE_DOUBLE double
 *   BOOL       bool                 TYPE_BOOL protobuf_c_boolean
 *   STR        char * (owned)       TYPE_STRING char * (borrowed here)
 *
 * Field 1 of every entity message is `id` (not in the C tables).
 */
#include "wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ProtobufCMessageDescriptor *const entity_pb[VTL_ENT__COUNT] = {
  &vtl__v1__timeline__descriptor,    &vtl__v1__track__descriptor,
  &vtl__v1__keyframe__descriptor,    &vtl__v1__prompt_clip__descriptor,
  &vtl__v1__shot__descriptor,        &vtl__v1__marker__descriptor,
  &vtl__v1__asset__descriptor,
};

Vtl__V1__Error__Code vtl_wire_code(int err) {
  if (err > VTL__EFIRST && err < VTL__ELAST)
    return (Vtl__V1__Error__Code)(err - VTL__EFIRST);
  return VTL__V1__ERROR__CODE__CODE_UNSPECIFIED;
}

bool vtl_wire_utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p++, cp, min;
    int n;
    if (c < 0x80) continue;
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; min = 0x10000; }
    else return false;
    for (int i = 0; i < n; i++) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    p += n;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
  }
  return true;
}

static int errorf(vtl_error *err, int code, int op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int errorf(vtl_error *err, int code, int op, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    err->op_index = op;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* One wire Value -> vtl_value (string copied). 0, TYPE or NOMEM. */
static int value_from_pb(const Vtl__V1__Value *v, vtl_value *out) {
  memset(out, 0, sizeof *out);
  if (!v) return VTL_ETYPE;
  switch (v->kind_case) {
  case VTL__V1__VALUE__KIND_INT_VALUE:
    out->type = VTL_FT_INT; out->u.i = v->int_value; return 0;
  case VTL__V1__VALUE__KIND_REAL_VALUE:
    out->type = VTL_FT_REAL; out->u.r = v->real_value; return 0;
  case VTL__V1__VALUE__KIND_BOOL_VALUE:
    out->type = VTL_FT_BOOL; out->u.b = v->bool_value; return 0;
  case VTL__V1__VALUE__KIND_STRING_VALUE:
    out->type = VTL_FT_STR;
    out->u.s = strdup(v->string_value ? v->string_value : "");
    return out->u.s ? 0 : VTL_ENOMEM;
  default:
    return VTL_ETYPE;
  }
}

static int field_from_pb(vtl_entity_kind kind, const Vtl__V1__FieldValue *fv,
                         vtl_field_value *out, int opi, vtl_error *err) {
  if (!fv) return errorf(err, VTL_EINVAL, opi, "op %d: field missing", opi);
  int idx = vtl_field_by_tag(kind, (int)fv->field);
  if (idx < 0)
    return errorf(err, VTL_EINVAL, opi, "op %d: %s has no field number %u",
                  opi, vtl_entities[kind].name, fv->field);
  int rc = value_from_pb(fv->value, &out->value);
  if (rc == VTL_ETYPE)
    return errorf(err, rc, opi, "op %d: %s.%s: value has no kind", opi,
                  vtl_entities[kind].name, vtl_entities[kind].fields[idx].name);
  if (rc) return errorf(err, rc, opi, "op %d: out of memory", opi);
  out->field = idx;
  return 0;
}

static int op_from_pb(const Vtl__V1__Op *pb, vtl_op *op, int opi,
                      vtl_error *err) {
  memset(op, 0, sizeof *op);
  if (!pb) return errorf(err, VTL_EINVAL, opi, "op %d: empty op", opi);
  int kind;
  switch (pb->op_case) {
  case VTL__V1__OP__OP_CREATE:
    op->type = VTL_OP_CREATE; kind = pb->create->kind; op->id = pb->create->id;
    break;
  case VTL__V1__OP__OP_DELETE:
    op->type = VTL_OP_DELETE; kind = pb->delete_->kind;
    op->id = pb->delete_->id;
    break;
  case VTL__V1__OP__OP_SET:
    op->type = VTL_OP_SET; kind = pb->set->kind; op->id = pb->set->id;
    break;
  default:
    return errorf(err, VTL_EINVAL, opi, "op %d: no create, delete or set",
                  opi);
  }
  if (kind < 0 || kind >= VTL_ENT__COUNT)
    return errorf(err, VTL_ERANGE, opi, "op %d: unknown entity kind %d",
                  opi, kind);
  op->kind = (vtl_entity_kind)kind;

  size_t nf = 0;
  Vtl__V1__FieldValue *const *fvs = NULL;
  if (op->type == VTL_OP_CREATE) {
    nf = pb->create->n_fields;
    fvs = pb->create->fields;
  } else if (op->type == VTL_OP_SET) {
    if (!pb->set->field)
      return errorf(err, VTL_EINVAL, opi, "op %d: set without a field", opi);
    nf = 1;
    fvs = &pb->set->field;
  }
  if (nf == 0) return 0;
  op->fields = calloc(nf, sizeof *op->fields);
  if (!op->fields) return errorf(err, VTL_ENOMEM, opi, "op %d: out of memory", opi);
  for (size_t i = 0; i < nf; i++) {
    int rc = field_from_pb(op->kind, fvs[i], &op->fields[i], opi, err);
    if (rc) {
      vtl_op_free(op);
      return rc;
    }
    op->nfields = (int)i + 1;
  }
  return 0;
}

int vtl_wire_ops_from_pb(Vtl__V1__Op *const *pb, size_t npb, vtl_op **out,
                         size_t *n, vtl_error *err) {
  *out = NULL;
  *n = 0;
  if (npb == 0) return 0;
  vtl_op *ops = calloc(npb, sizeof *ops);
  if (!ops) return errorf(err, VTL_ENOMEM, -1, "out of memory");
  for (size_t i = 0; i < npb; i++) {
    int rc = op_from_pb(pb[i], &ops[i], (int)i, err);
    if (rc) {
      vtl_ops_free(ops, i);
      return rc;
    }
  }
  *out = ops;
  *n = npb;
  return 0;
}

/* ---- model -> proto ------------------------------------------------------ */

static Vtl__V1__Value *value_to_pb(const vtl_value *v) {
  Vtl__V1__Value *pv = malloc(sizeof *pv);
  if (!pv) return NULL;
  vtl__v1__value__init(pv);
  switch (v->type) {
  case VTL_FT_REAL:
    pv->kind_case = VTL__V1__VALUE__KIND_REAL_VALUE; pv->real_value = v->u.r;
    break;
  case VTL_FT_BOOL:
    pv->kind_case = VTL__V1__VALUE__KIND_BOOL_VALUE; pv->bool_value = v->u.b;
    break;
  case VTL_FT_STR:
    pv->kind_case = VTL__V1__VALUE__KIND_STRING_VALUE;
    pv->string_value = v->u.s ? v->u.s : "";
    break;
  default: /* INT, ENUM, REF */
    pv->kind_case = VTL__V1__VALUE__KIND_INT_VALUE; pv->int_value = v->u.i;
    break;
  }
  return pv;
}

static Vtl__V1__FieldValue *field_to_pb(vtl_entity_kind kind,
                                        const vtl_field_value *f) {
  Vtl__V1__FieldValue *fv = malloc(sizeof *fv);
  if (!fv) return NULL;
  vtl__v1__field_value__init(fv);
  fv->field = (uint32_t)vtl_entities[kind].fields[f->field].tag;
  fv->value = value_to_pb(&f->value);
  if (!fv->value) { free(fv); return NULL; }
  return fv;
}

static void field_free_pb(Vtl__V1__FieldValue *fv) {
  if (!fv) return;
  free(fv->value);
  free(fv);
}

void vtl_wire_op_free_pb(Vtl__V1__Op *pb) {
  if (!pb) return;
  switch (pb->op_case) {
  case VTL__V1__OP__OP_CREATE:
    if (pb->create) {
      for (size_t i = 0; i < pb->create->n_fields; i++)
        field_free_pb(pb->create->fields[i]);
      free(pb->create->fields);
      free(pb->create);
    }
    break;
  case VTL__V1__OP__OP_DELETE: free(pb->delete_); break;
  case VTL__V1__OP__OP_SET:
    if (pb->set) { field_free_pb(pb->set->field); free(pb->set); }
    break;
  default: break;
  }
  free(pb);
}

Vtl__V1__Op *vtl_wire_op_to_pb(const vtl_op *op) {
  Vtl__V1__Op *pb = malloc(sizeof *pb);
  if (!pb) return NULL;
  vtl__v1__op__init(pb);
  switch (op->type) {
  case VTL_OP_CREATE: {
    Vtl__V1__Create *c = malloc(sizeof *c);
    if (!c) goto nomem;
    vtl__v1__create__init(c);
    pb->op_case = VTL__V1__OP__OP_CREATE;
    pb->create = c;
    c->kind = (Vtl__V1__EntityKind)op->kind;
    c->id = op->id;
    if (op->nfields > 0) {
      c->fields = calloc((size_t)op->nfields, sizeof *c->fields);
      if (!c->fields) goto nomem;
      for (int i = 0; i < op->nfields; i++) {
        c->fields[i] = field_to_pb(op->kind, &op->fields[i]);
        if (!c->fields[i]) goto nomem;
        c->n_fields = (size_t)i + 1;
      }
    }
    break;
  }
  case VTL_OP_DELETE: {
    Vtl__V1__Delete *d = malloc(sizeof *d);
    if (!d) goto nomem;
    vtl__v1__delete__init(d);
    pb->op_case = VTL__V1__OP__OP_DELETE;
    pb->delete_ = d;
    d->kind = (Vtl__V1__EntityKind)op->kind;
    d->id = op->id;
    break;
  }
  case VTL_OP_SET: {
    Vtl__V1__SetField *s = malloc(sizeof *s);
    if (!s) goto nomem;
    vtl__v1__set_field__init(s);
    pb->op_case = VTL__V1__OP__OP_SET;
    pb->set = s;
    s->kind = (Vtl__V1__EntityKind)op->kind;
    s->id = op->id;
    if (op->nfields != 1) goto nomem; /* a SET has exactly one field */
    s->field = field_to_pb(op->kind, &op->fields[0]);
    if (!s->field) goto nomem;
    break;
  }
  }
  return pb;
nomem:
  vtl_wire_op_free_pb(pb);
  return NULL;
}

/* ---- documents ------------------------------------------------------------ */

/* Writes C field `f` of entity `ent` into the proto message `msg`. */
static void put_field(ProtobufCMessage *msg, const vtl_field_desc *f,
                      const void *ent) {
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(msg->descriptor,
                                              (unsigned)f->tag);
  if (!fd) return;
  const char *src = (const char *)ent + f->offset;
  char *dst = (char *)msg + fd->offset;
  int64_t i = 0;
  double r = 0;
  switch (f->type) {
  case VTL_FT_INT: case VTL_FT_ENUM: memcpy(&i, src, sizeof i); break;
  case VTL_FT_REF: { vtl_id id; memcpy(&id, src, sizeof id); i = (int64_t)id; break; }
  case VTL_FT_REAL: memcpy(&r, src, sizeof r); break;
  case VTL_FT_BOOL: { bool b; memcpy(&b, src, sizeof b); i = b; break; }
  case VTL_FT_STR: { char *s; memcpy(&s, src, sizeof s); memcpy(dst, &s, sizeof s); return; }
  }
  switch (fd->type) {
  case PROTOBUF_C_TYPE_INT64: memcpy(dst, &i, sizeof i); break;
  case PROTOBUF_C_TYPE_UINT64: { uint64_t u = (uint64_t)i; memcpy(dst, &u, sizeof u); break; }
  case PROTOBUF_C_TYPE_ENUM: { int e = (int)i; memcpy(dst, &e, sizeof e); break; }
  case PROTOBUF_C_TYPE_BOOL: { protobuf_c_boolean b = i != 0; memcpy(dst, &b, sizeof b); break; }
  case PROTOBUF_C_TYPE_DOUBLE: memcpy(dst, &r, sizeof r); break;
  default: break; /* tests/test_proto.c keeps the types in lockstep */
  }
}

/* Reads proto field of C field `f` from `msg` as a vtl_value (string copied). */
static int get_field(const ProtobufCMessage *msg, const vtl_field_desc *f,
                     vtl_value *out) {
  memset(out, 0, sizeof *out);
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(msg->descriptor,
                                              (unsigned)f->tag);
  if (!fd) return VTL_EINVAL;
  const char *src = (const char *)msg + fd->offset;
  switch (fd->type) {
  case PROTOBUF_C_TYPE_INT64: memcpy(&out->u.i, src, sizeof out->u.i); break;
  case PROTOBUF_C_TYPE_UINT64: { uint64_t u; memcpy(&u, src, sizeof u); out->u.i = (int64_t)u; break; }
  case PROTOBUF_C_TYPE_ENUM: { int e; memcpy(&e, src, sizeof e); out->u.i = e; break; }
  case PROTOBUF_C_TYPE_BOOL: { protobuf_c_boolean b; memcpy(&b, src, sizeof b); out->type = VTL_FT_BOOL; out->u.b = b != 0; return 0; }
  case PROTOBUF_C_TYPE_DOUBLE: memcpy(&out->u.r, src, sizeof out->u.r); out->type = VTL_FT_REAL; return 0;
  case PROTOBUF_C_TYPE_STRING: {
    const char *s;
    memcpy(&s, src, sizeof s);
    out->type = VTL_FT_STR;
    out->u.s = strdup(s ? s : "");
    return out->u.s ? 0 : VTL_ENOMEM;
  }
  default: return VTL_EINVAL;
  }
  out->type = VTL_FT_INT;
  return 0;
}

static ProtobufCMessage *entity_to_pb(vtl_entity_kind kind, const void *ent) {
  const ProtobufCMessageDescriptor *md = entity_pb[kind];
  ProtobufCMessage *m = malloc(md->sizeof_message);
  if (!m) return NULL;
  protobuf_c_message_init(md, m);
  vtl_id id;
  memcpy(&id, ent, sizeof id); /* every entity struct starts with its id */
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field(md, 1);
  memcpy((char *)m + fd->offset, &id, sizeof id);
  const vtl_entity_desc *e = &vtl_entities[kind];
  for (int i = 0; i < e->nfields; i++) put_field(m, &e->fields[i], ent);
  return m;
}

/* The repeated field of Document holding `kind` (field number = kind + 1
 * for every kind but the Timeline, in VTL_ENTITY_MAP order). */
static const ProtobufCFieldDescriptor *doc_field(vtl_entity_kind kind) {
  return protobuf_c_message_descriptor_get_field(&vtl__v1__document__descriptor,
                                                 (unsigned)kind + 1);
}

void vtl_wire_doc_free_pb(Vtl__V1__Document *d) {
  if (!d) return;
  free(d->timeline);
  for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++) {
    const ProtobufCFieldDescriptor *fd = doc_field((vtl_entity_kind)k);
    size_t n;
    void **items;
    memcpy(&n, (char *)d + fd->quantifier_offset, sizeof n);
    memcpy(&items, (char *)d + fd->offset, sizeof items);
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
  }
  free(d);
}

int vtl_wire_doc_to_pb(vtl_doc *doc, Vtl__V1__Document **out) {
  *out = NULL;
  Vtl__V1__Document *d = malloc(sizeof *d);
  if (!d) return VTL_ENOMEM;
  vtl__v1__document__init(d);
  d->timeline =
      (Vtl__V1__Timeline *)entity_to_pb(VTL_ENT_TIMELINE, vtl_doc_timeline(doc));
  if (!d->timeline) goto nomem;
  for (int k = VTL_ENT_TRACK; k < VTL_ENT__COUNT; k++) {
    size_t n = 0;
    const void *const *ents = vtl_doc_list(doc, (vtl_entity_kind)k, &n);
    const ProtobufCFieldDescriptor *fd = doc_field((vtl_entity_kind)k);
    if (n == 0) continue;
    if (!ents) goto nomem;
    void **items = calloc(n, sizeof *items);
    if (!items) goto nomem;
    memcpy((char *)d + fd->offset, &items, sizeof items);
    for (size_t i = 0; i < n; i++) {
      items[i] = entity_to_pb((vtl_entity_kind)k, ents[i]);
      if (!items[i]) goto nomem;
      memcpy((char *)d + fd->quantifier_offset, &(size_t){i + 1}, sizeof(size_t));
    }
  }
  *out = d;
  return 0;
nomem:
  vtl_wire_doc_free_pb(d);
  return VTL_ENOMEM;
}

/* One op recreating entity message `m` of `kind`: SETs for the Timeline
 * (pushed field by field), a CREATE with every field for the others. */
static int entity_ops(vtl_op_list *l, vtl_entity_kind kind,
                      const ProtobufCMessage *m) {
  const vtl_entity_desc *e = &vtl_entities[kind];
  vtl_id id;
  const ProtobufCFieldDescriptor *fid =
      protobuf_c_message_descriptor_get_field(m->descriptor, 1);
  memcpy(&id, (const char *)m + fid->offset, sizeof id);
  if (kind == VTL_ENT_TIMELINE) {
    for (int i = 0; i < e->nfields; i++) {
      vtl_op *op = vtl_op_list_push(l);
      if (!op) return VTL_ENOMEM;
      op->type = VTL_OP_SET;
      op->kind = kind;
      op->id = VTL_TIMELINE_ID;
      op->fields = calloc(1, sizeof *op->fields);
      if (!op->fields) return VTL_ENOMEM;
      op->nfields = 1;
      op->fields[0].field = i;
      int rc = get_field(m, &e->fields[i], &op->fields[0].value);
      if (rc) return rc;
    }
    return 0;
  }
  vtl_op *op = vtl_op_list_push(l);
  if (!op) return VTL_ENOMEM;
  op->type = VTL_OP_CREATE;
  op->kind = kind;
  op->id = id;
  op->fields = calloc((size_t)e->nfields, sizeof *op->fields);
  if (!op->fields) return VTL_ENOMEM;
  for (int i = 0; i < e->nfields; i++) {
    op->fields[i].field = i;
    int rc = get_field(m, &e->fields[i], &op->fields[i].value);
    op->nfields = i + 1;
    if (rc) return rc;
  }
  return 0;
}

int vtl_wire_doc_from_pb(const Vtl__V1__Document *d, vtl_doc **out,
                         vtl_error *err) {
  /* Dependency order: tracks and assets before what refers to them. */
  static const vtl_entity_kind order[] = {
    VTL_ENT_TRACK, VTL_ENT_ASSET, VTL_ENT_KEYFRAME, VTL_ENT_PROMPT_CLIP,
    VTL_ENT_SHOT, VTL_ENT_MARKER};
  vtl_op_list l = {0};
  vtl_doc *doc = NULL;
  int rc = 0;
  *out = NULL;
  if (d->timeline &&
      (rc = entity_ops(&l, VTL_ENT_TIMELINE, &d->timeline->base)))
    goto done;
  for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
    const ProtobufCFieldDescriptor *fd = doc_field(order[k]);
    size_t n;
    ProtobufCMessage **items;
    memcpy(&n, (const char *)d + fd->quantifier_offset, sizeof n);
    memcpy(&items, (const char *)d + fd->offset, sizeof items);
    for (size_t i = 0; i < n; i++)
      if ((rc = entity_ops(&l, order[k], items[i]))) goto done;
  }
  if ((rc = vtl_doc_new(&doc))) goto done;
  if ((rc = vtl_doc_apply(doc, l.ops, l.n, NULL, NULL, err))) goto done;
  *out = doc;
  doc = NULL;
done:
  if (rc && err && err->code != rc) {
    err->code = rc;
    err->op_index = -1;
    snprintf(err->message, sizeof err->message, "document: %s",
             vtl_strerror(rc));
  }
  vtl_doc_free(doc);
  vtl_ops_free(l.ops, l.n);
  return rc;
}
