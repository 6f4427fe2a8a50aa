/* test_proto.c — the wire schema (proto/vtl.proto) against the C model.
 *
 * The C field tables of timeline/fields.c and the entity messages of
 * vtl.proto describe the same document. These tests walk the C tables and
 * the protobuf-c descriptors side by side, so that a field, a number, a type
 * or an enum value changed on one side only fails here:
 *
 *   entity_fields      every C field <-> its proto field: name, number, type
 *   enum_tables        every C name table <-> its proto enum, value by value
 *   document_fields    Document's repeated fields <-> vtl_entities[] plurals
 *   error_codes        Error.Code <-> the VTL_ERRNO_MAP order, then the
 *                      protocol-level codes
 *   op_batch_roundtrip an OpBatch of create / set / delete packs and unpacks
 *                      to equal values (zero values in a oneof survive)
 *   truncated_garbage  every truncation of a valid message, hand-made bad
 *                      input and random mutations unpack to NULL or to a
 *                      message that repacks, never a crash, never a leak
 */
#include <ctype.h>
#include <stdint.h>

#include "task.h"
#include "vtl.pb-c.h"
#include "vtl_timeline.h"

/* ---- helpers -------------------------------------------------------------- */

/* The entity message of each kind: vtl__v1__<low>__descriptor. */
static const ProtobufCMessageDescriptor *const entity_msg[VTL_ENT__COUNT] = {
#define X(up, low, name) [VTL_ENT_##up] = &vtl__v1__##low##__descriptor,
  VTL_ENTITY_MAP(X)
#undef X
};

/* "prompt_clip" -> "PromptClip" into out[n]. */
static void snake_to_camel(char *out, size_t n, const char *s) {
  size_t o = 0;
  int up = 1;
  for (; *s && o + 1 < n; s++) {
    if (*s == '_') { up = 1; continue; }
    out[o++] = up ? (char)toupper((unsigned char)*s) : *s;
    up = 0;
  }
  out[o] = '\0';
}

/* "SeedMode" -> "SEED_MODE_" into out[n]: the proto enum value prefix. */
static void camel_to_prefix(char *out, size_t n, const char *s) {
  size_t o = 0;
  for (size_t i = 0; s[i] && o + 3 < n; i++) {
    if (i > 0 && isupper((unsigned char)s[i])) out[o++] = '_';
    out[o++] = (char)toupper((unsigned char)s[i]);
  }
  out[o++] = '_';
  out[o] = '\0';
}

static int count_names(const char *const *names) {
  int n = 0;
  while (names[n]) n++;
  return n;
}

/* Checks that enum `ed` has exactly the values 0..n-1 of the NULL-ended
 * `names`, value i named prefix + NAMES[i] (compared lowercase after the
 * prefix). Returns 0 when they match, 1 (after printing why) when not. */
static int check_enum(const ProtobufCEnumDescriptor *ed, const char *prefix,
                      const char *const *names) {
  size_t plen = strlen(prefix);
  int n = count_names(names);
  ASSERT_NOT_NULL(ed);
  ASSERT_EQ(ed->n_values, n);
  for (int i = 0; i < n; i++) {
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(ed, i);
    ASSERT_NOT_NULL(v);
    ASSERT_EQ(v->value, i);
    ASSERT(strncmp(v->name, prefix, plen) == 0);
    char low[128];
    size_t k = 0;
    for (const char *c = v->name + plen; *c && k + 1 < sizeof low; c++)
      low[k++] = (char)tolower((unsigned char)*c);
    low[k] = '\0';
    ASSERT_STR_EQ(low, names[i]);
  }
  return 0;
}

/* Same, with the prefix derived from the enum's name (proto style:
 * SeedMode -> SEED_MODE_). */
static int check_enum_auto(const ProtobufCEnumDescriptor *ed,
                           const char *const *names) {
  char prefix[128];
  ASSERT_NOT_NULL(ed);
  camel_to_prefix(prefix, sizeof prefix, ed->short_name);
  return check_enum(ed, prefix, names);
}

/* ---- (a) entities and enums ----------------------------------------------- */

TEST_IMPL(entity_fields) {
  for (int k = 0; k < VTL_ENT__COUNT; k++) {
    const vtl_entity_desc *e = &vtl_entities[k];
    const ProtobufCMessageDescriptor *md = entity_msg[k];
    char camel[64];

    ASSERT_NOT_NULL(md);
    snake_to_camel(camel, sizeof camel, e->name);
    ASSERT_STR_EQ(md->short_name, camel);
    ASSERT_STR_EQ(md->package_name, "vtl.v1");

    /* Field 1 is id (uint64) in every entity message. */
    const ProtobufCFieldDescriptor *id =
        protobuf_c_message_descriptor_get_field(md, 1);
    ASSERT_NOT_NULL(id);
    ASSERT_STR_EQ(id->name, "id");
    ASSERT_EQ(id->type, PROTOBUF_C_TYPE_UINT64);
    ASSERT_EQ(id->label, PROTOBUF_C_LABEL_NONE);

    /* C -> proto: every C field has its name at its tag, with its type. */
    for (int i = 0; i < e->nfields; i++) {
      const vtl_field_desc *f = &e->fields[i];
      ASSERT_NE(f->tag, 1);
      const ProtobufCFieldDescriptor *fd =
          protobuf_c_message_descriptor_get_field_by_name(md, f->name);
      if (!fd)
        fprintf(stderr, "%s.%s: not in vtl.proto\n", md->short_name, f->name);
      ASSERT_NOT_NULL(fd);
      ASSERT_EQ(fd->id, f->tag);
      ASSERT(protobuf_c_message_descriptor_get_field(md, f->tag) == fd);
      ASSERT_EQ(fd->label, PROTOBUF_C_LABEL_NONE);
      ProtobufCType want = PROTOBUF_C_TYPE_INT64;
      switch (f->type) {
      case VTL_FT_INT: want = PROTOBUF_C_TYPE_INT64; break;
      case VTL_FT_REAL: want = PROTOBUF_C_TYPE_DOUBLE; break;
      case VTL_FT_BOOL: want = PROTOBUF_C_TYPE_BOOL; break;
      case VTL_FT_STR: want = PROTOBUF_C_TYPE_STRING; break;
      case VTL_FT_ENUM: want = PROTOBUF_C_TYPE_ENUM; break;
      case VTL_FT_REF: want = PROTOBUF_C_TYPE_UINT64; break;
      }
      if (fd->type != want)
        fprintf(stderr, "%s.%s: wrong proto type\n", md->short_name, f->name);
      ASSERT_EQ(fd->type, want);
      if (f->type == VTL_FT_ENUM) {
        ASSERT_NOT_NULL(f->enums);
        if (check_enum_auto(fd->descriptor, f->enums)) {
          fprintf(stderr, "%s.%s: enum differs from its C table\n",
                  md->short_name, f->name);
          return 1;
        }
      }
    }

    /* proto -> C: no proto field the C table lacks. */
    ASSERT_EQ(md->n_fields, (unsigned)e->nfields + 1);
    for (unsigned j = 0; j < md->n_fields; j++) {
      const ProtobufCFieldDescriptor *fd = &md->fields[j];
      if (fd->id == 1) continue;
      int i = vtl_field_lookup((vtl_entity_kind)k, fd->name);
      if (i < 0)
        fprintf(stderr, "%s.%s: not in fields.c\n", md->short_name, fd->name);
      ASSERT_GE(i, 0);
      ASSERT_EQ(e->fields[i].tag, fd->id);
    }
  }
  return 0;
}

TEST_IMPL(enum_tables) {
  static const struct {
    const ProtobufCEnumDescriptor *ed;
    const char *prefix;
    const char *const *names;
  } tables[] = {
    {&vtl__v1__sampler__descriptor, "SAMPLER_", vtl_sampler_names},
    {&vtl__v1__spacing__descriptor, "SPACING_", vtl_spacing_names},
    {&vtl__v1__seed_mode__descriptor, "SEED_MODE_", vtl_seed_mode_names},
    {&vtl__v1__anim_mode__descriptor, "ANIM_MODE_", vtl_anim_mode_names},
    {&vtl__v1__interp__descriptor, "INTERP_", vtl_interp_names},
    {&vtl__v1__source__descriptor, "SOURCE_", vtl_source_names},
    {&vtl__v1__asset_kind__descriptor, "ASSET_KIND_", vtl_asset_kind_names},
    {&vtl__v1__target__descriptor, "TARGET_", vtl_target_names},
  };
  for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
    if (check_enum(tables[t].ed, tables[t].prefix, tables[t].names)) {
      fprintf(stderr, "enum %s differs from its C table\n",
              tables[t].ed->short_name);
      return 1;
    }
  }

  /* Target: the parameters in VTL_PARAM_MAP order, then PROMPT. */
  ASSERT_EQ(vtl__v1__target__descriptor.n_values, VTL_TARGET__COUNT);
  ASSERT_EQ(VTL__V1__TARGET__TARGET_PROMPT, VTL_TARGET_PROMPT);
  ASSERT_EQ(VTL__V1__TARGET__TARGET_CADENCE, VTL_PARAM_CADENCE);
  for (int p = 0; p < VTL_PARAM__COUNT; p++)
    ASSERT_STR_EQ(vtl_target_names[p], vtl_param_table[p].name);

  /* EntityKind: vtl_entity_kind order, ENTITY_<NAME>. */
  const char *kinds[VTL_ENT__COUNT + 1];
  for (int k = 0; k < VTL_ENT__COUNT; k++) kinds[k] = vtl_entities[k].name;
  kinds[VTL_ENT__COUNT] = NULL;
  if (check_enum(&vtl__v1__entity_kind__descriptor, "ENTITY_", kinds))
    return 1;
  ASSERT_EQ(VTL__V1__ENTITY_KIND__ENTITY_PROMPT_CLIP, VTL_ENT_PROMPT_CLIP);

  /* The C enums agree with their name tables' lengths. */
  ASSERT_EQ(count_names(vtl_sampler_names), VTL_SAMPLER_LCM + 1);
  ASSERT_EQ(count_names(vtl_spacing_names), VTL_SPACING_LINSPACE + 1);
  ASSERT_EQ(count_names(vtl_seed_mode_names), VTL_SEED_SCHEDULE + 1);
  ASSERT_EQ(count_names(vtl_anim_mode_names), VTL_ANIM_3D + 1);
  ASSERT_EQ(count_names(vtl_interp_names), VTL_INTERP_EASE_IN_OUT + 1);
  ASSERT_EQ(count_names(vtl_source_names), VTL_SOURCE_IMAGE + 1);
  ASSERT_EQ(count_names(vtl_asset_kind_names), VTL_ASSET_SOUND + 1);
  return 0;
}

TEST_IMPL(document_fields) {
  const ProtobufCMessageDescriptor *md = &vtl__v1__document__descriptor;
  ASSERT_EQ(md->n_fields, VTL_ENT__COUNT);
  for (int k = 0; k < VTL_ENT__COUNT; k++) {
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(
            md, vtl_entities[k].plural);
    ASSERT_NOT_NULL(fd);
    ASSERT_EQ(fd->id, k + 1);
    ASSERT_EQ(fd->type, PROTOBUF_C_TYPE_MESSAGE);
    ASSERT(fd->descriptor == entity_msg[k]);
    ASSERT_EQ(fd->label, vtl_entities[k].max_count == 1
                             ? PROTOBUF_C_LABEL_NONE
                             : PROTOBUF_C_LABEL_REPEATED);
  }
  return 0;
}

/* ---- (b) error codes ------------------------------------------------------- */

TEST_IMPL(error_codes) {
  static const char *const protocol_codes[] = {
    "CODE_RATE_LIMITED", "CODE_TOO_LARGE", "CODE_MALFORMED",
    "CODE_AUTH_FAILED", "CODE_RESYNC_REQUIRED", "CODE_SERVER_SHUTDOWN",
    "CODE_ROOM_NOT_FOUND", NULL};
  const ProtobufCEnumDescriptor *ed = &vtl__v1__error__code__descriptor;
  int nc = VTL__ELAST - VTL__EFIRST - 1; /* codes in VTL_ERRNO_MAP */
  int np = count_names(protocol_codes);

  ASSERT_GT(nc, 0);
  ASSERT_EQ(ed->n_values, 1 + nc + np);
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(ed, 0);
  ASSERT_NOT_NULL(v);
  ASSERT_STR_EQ(v->name, "CODE_UNSPECIFIED");

  /* Wire code = C code - VTL__EFIRST; name CODE_<X> for VTL_E<X>. */
  for (int err = VTL__EFIRST + 1; err < VTL__ELAST; err++) {
    const char *cname = vtl_err_name(err); /* "EINVAL" */
    char want[64];
    ASSERT_EQ(cname[0], 'E');
    ASSERT(strcmp(cname, "EUNKNOWN") != 0);
    snprintf(want, sizeof want, "CODE_%s", cname + 1);
    v = protobuf_c_enum_descriptor_get_value(ed, err - VTL__EFIRST);
    ASSERT_NOT_NULL(v);
    ASSERT_STR_EQ(v->name, want);
  }
  ASSERT_EQ(VTL__V1__ERROR__CODE__CODE_INVAL, VTL_EINVAL - VTL__EFIRST);
  ASSERT_EQ(VTL__V1__ERROR__CODE__CODE_UNSUPPORTED,
            VTL_EUNSUPPORTED - VTL__EFIRST);

  /* Then the protocol-level codes, in order, right after the C table. */
  for (int i = 0; i < np; i++) {
    v = protobuf_c_enum_descriptor_get_value(ed, nc + 1 + i);
    ASSERT_NOT_NULL(v);
    ASSERT_STR_EQ(v->name, protocol_codes[i]);
  }
  return 0;
}

/* ---- (c) round trip ----------------------------------------------------------- */

static int tag_of(vtl_entity_kind kind, const char *name) {
  int i = vtl_field_lookup(kind, name);
  return i < 0 ? -1 : vtl_entities[kind].fields[i].tag;
}

#define BASE ((uint64_t)7 << 24) /* a session's id_base */

TEST_IMPL(op_batch_roundtrip) {
  /* op 0: create a keyframe with int (0 included), real, enum, ref, string */
  Vtl__V1__Value v_track = VTL__V1__VALUE__INIT, v_frame = VTL__V1__VALUE__INIT,
                 v_value = VTL__V1__VALUE__INIT, v_interp = VTL__V1__VALUE__INIT,
                 v_expr = VTL__V1__VALUE__INIT, v_mute = VTL__V1__VALUE__INIT;
  v_track.kind_case = VTL__V1__VALUE__KIND_INT_VALUE;
  v_track.int_value = (int64_t)(BASE | 1);
  v_frame.kind_case = VTL__V1__VALUE__KIND_INT_VALUE;
  v_frame.int_value = 0; /* a zero in a oneof must still travel */
  v_value.kind_case = VTL__V1__VALUE__KIND_REAL_VALUE;
  v_value.real_value = -0.125;
  v_interp.kind_case = VTL__V1__VALUE__KIND_INT_VALUE;
  v_interp.int_value = VTL_INTERP_BEZIER;
  v_expr.kind_case = VTL__V1__VALUE__KIND_STRING_VALUE;
  v_expr.string_value = "1 + 0.5 * math.sin(t / fps)";
  v_mute.kind_case = VTL__V1__VALUE__KIND_BOOL_VALUE;
  v_mute.bool_value = false; /* likewise */

  struct { const char *name; Vtl__V1__Value *v; } cf[] = {
    {"track", &v_track}, {"frame", &v_frame}, {"value", &v_value},
    {"interp", &v_interp}, {"expr", &v_expr}};
  enum { NCF = sizeof cf / sizeof cf[0] };
  Vtl__V1__FieldValue fv[NCF];
  Vtl__V1__FieldValue *fvp[NCF];
  for (int i = 0; i < NCF; i++) {
    vtl__v1__field_value__init(&fv[i]);
    ASSERT_GT(tag_of(VTL_ENT_KEYFRAME, cf[i].name), 1);
    fv[i].field = (uint32_t)tag_of(VTL_ENT_KEYFRAME, cf[i].name);
    fv[i].value = cf[i].v;
    fvp[i] = &fv[i];
  }
  Vtl__V1__Create create = VTL__V1__CREATE__INIT;
  create.kind = VTL__V1__ENTITY_KIND__ENTITY_KEYFRAME;
  create.id = VTL_ID_MAX; /* the largest id, exact in JavaScript */
  create.n_fields = NCF;
  create.fields = fvp;

  /* op 1: set Track.mute = false */
  Vtl__V1__FieldValue set_fv = VTL__V1__FIELD_VALUE__INIT;
  set_fv.field = (uint32_t)tag_of(VTL_ENT_TRACK, "mute");
  set_fv.value = &v_mute;
  Vtl__V1__SetField set = VTL__V1__SET_FIELD__INIT;
  set.kind = VTL__V1__ENTITY_KIND__ENTITY_TRACK;
  set.id = BASE | 1;
  set.field = &set_fv;

  /* op 2: delete a marker */
  Vtl__V1__Delete del = VTL__V1__DELETE__INIT;
  del.kind = VTL__V1__ENTITY_KIND__ENTITY_MARKER;
  del.id = BASE | 77;

  Vtl__V1__Op ops[3] = {VTL__V1__OP__INIT, VTL__V1__OP__INIT,
                        VTL__V1__OP__INIT};
  ops[0].op_case = VTL__V1__OP__OP_CREATE;
  ops[0].create = &create;
  ops[1].op_case = VTL__V1__OP__OP_SET;
  ops[1].set = &set;
  ops[2].op_case = VTL__V1__OP__OP_DELETE;
  ops[2].delete_ = &del;
  Vtl__V1__Op *opp[3] = {&ops[0], &ops[1], &ops[2]};

  Vtl__V1__OpBatch batch = VTL__V1__OP_BATCH__INIT;
  batch.batch_id = BASE | 2;
  batch.base_seq = 41;
  batch.n_ops = 3;
  batch.ops = opp;
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_OP_BATCH;
  env.op_batch = &batch;

  size_t size = vtl__v1__envelope__get_packed_size(&env);
  uint8_t *buf = malloc(size);
  ASSERT_NOT_NULL(buf);
  ASSERT_EQ(vtl__v1__envelope__pack(&env, buf), size);

  Vtl__V1__Envelope *out = vtl__v1__envelope__unpack(NULL, size, buf);
  ASSERT_NOT_NULL(out);
  ASSERT_EQ(out->msg_case, VTL__V1__ENVELOPE__MSG_OP_BATCH);
  Vtl__V1__OpBatch *b = out->op_batch;
  ASSERT_NOT_NULL(b);
  ASSERT_U64_EQ(b->batch_id, BASE | 2);
  ASSERT_U64_EQ(b->base_seq, 41);
  ASSERT_EQ(b->n_ops, 3);

  ASSERT_EQ(b->ops[0]->op_case, VTL__V1__OP__OP_CREATE);
  Vtl__V1__Create *c = b->ops[0]->create;
  ASSERT_EQ(c->kind, VTL__V1__ENTITY_KIND__ENTITY_KEYFRAME);
  ASSERT_U64_EQ(c->id, VTL_ID_MAX);
  ASSERT_EQ(c->n_fields, NCF);
  for (int i = 0; i < NCF; i++) {
    ASSERT_EQ(c->fields[i]->field, fv[i].field);
    const Vtl__V1__Value *got = c->fields[i]->value, *want = cf[i].v;
    ASSERT_NOT_NULL(got);
    ASSERT_EQ(got->kind_case, want->kind_case);
    switch (want->kind_case) {
    case VTL__V1__VALUE__KIND_INT_VALUE:
      ASSERT_EQ(got->int_value, want->int_value); break;
    case VTL__V1__VALUE__KIND_REAL_VALUE:
      ASSERT(got->real_value == want->real_value); break;
    case VTL__V1__VALUE__KIND_BOOL_VALUE:
      ASSERT_EQ(got->bool_value, want->bool_value); break;
    case VTL__V1__VALUE__KIND_STRING_VALUE:
      ASSERT_STR_EQ(got->string_value, want->string_value); break;
    default: ASSERT(0);
    }
  }

  ASSERT_EQ(b->ops[1]->op_case, VTL__V1__OP__OP_SET);
  Vtl__V1__SetField *s = b->ops[1]->set;
  ASSERT_EQ(s->kind, VTL__V1__ENTITY_KIND__ENTITY_TRACK);
  ASSERT_U64_EQ(s->id, BASE | 1);
  ASSERT_NOT_NULL(s->field);
  ASSERT_EQ(s->field->field, tag_of(VTL_ENT_TRACK, "mute"));
  ASSERT_NOT_NULL(s->field->value);
  ASSERT_EQ(s->field->value->kind_case, VTL__V1__VALUE__KIND_BOOL_VALUE);
  ASSERT_EQ(s->field->value->bool_value, 0);

  ASSERT_EQ(b->ops[2]->op_case, VTL__V1__OP__OP_DELETE);
  ASSERT_EQ(b->ops[2]->delete_->kind, VTL__V1__ENTITY_KIND__ENTITY_MARKER);
  ASSERT_U64_EQ(b->ops[2]->delete_->id, BASE | 77);

  /* Repacking what was read gives the same bytes. */
  ASSERT_EQ(vtl__v1__envelope__get_packed_size(out), size);
  uint8_t *again = malloc(size);
  ASSERT_NOT_NULL(again);
  ASSERT_EQ(vtl__v1__envelope__pack(out, again), size);
  ASSERT_OK(memcmp(buf, again, size));

  free(again);
  vtl__v1__envelope__free_unpacked(out, NULL);
  free(buf);
  return 0;
}

/* ---- (d) truncated and garbage input --------------------------------------- */

/* An allocator that counts live blocks, so failure paths are seen to free
 * everything they allocated. */
static long live_blocks;
static void *count_alloc(void *data, size_t size) {
  (void)data;
  void *p = malloc(size ? size : 1);
  if (p) live_blocks++;
  return p;
}
static void count_free(void *data, void *p) {
  (void)data;
  if (p) live_blocks--;
  free(p);
}
static ProtobufCAllocator counting = {count_alloc, count_free, NULL};

/* Unpacks buf[0..len): NULL, or a message that repacks to its packed size.
 * Either way nothing stays allocated. Returns 0, or 1 on a failed check;
 * *parsed tells which. */
static int unpack_check(const uint8_t *buf, size_t len, int *parsed) {
  Vtl__V1__Envelope *m = vtl__v1__envelope__unpack(&counting, len, buf);
  *parsed = m != NULL;
  if (m) {
    size_t n = vtl__v1__envelope__get_packed_size(m);
    uint8_t *re = malloc(n ? n : 1);
    ASSERT_NOT_NULL(re);
    ASSERT_EQ(vtl__v1__envelope__pack(m, re), n);
    free(re);
    vtl__v1__envelope__free_unpacked(m, &counting);
  }
  ASSERT_EQ(live_blocks, 0);
  return 0;
}

/* Packs a valid Envelope{OpBatch{set Marker.label}} into a malloc'd buffer. */
static uint8_t *valid_message(size_t *len) {
  Vtl__V1__Value v = VTL__V1__VALUE__INIT;
  v.kind_case = VTL__V1__VALUE__KIND_STRING_VALUE;
  v.string_value = "chorus";
  Vtl__V1__FieldValue fv = VTL__V1__FIELD_VALUE__INIT;
  fv.field = 3;
  fv.value = &v;
  Vtl__V1__SetField set = VTL__V1__SET_FIELD__INIT;
  set.kind = VTL__V1__ENTITY_KIND__ENTITY_MARKER;
  set.id = BASE | 9;
  set.field = &fv;
  Vtl__V1__Op op = VTL__V1__OP__INIT, *opp = &op;
  op.op_case = VTL__V1__OP__OP_SET;
  op.set = &set;
  Vtl__V1__OpBatch batch = VTL__V1__OP_BATCH__INIT;
  batch.batch_id = BASE | 10;
  batch.base_seq = 3;
  batch.n_ops = 1;
  batch.ops = &opp;
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_OP_BATCH;
  env.op_batch = &batch;
  *len = vtl__v1__envelope__get_packed_size(&env);
  uint8_t *buf = malloc(*len);
  if (buf) vtl__v1__envelope__pack(&env, buf);
  return buf;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* xorshift64: fixed seed, same run every time */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

TEST_IMPL(truncated_garbage) {
  size_t len;
  uint8_t *buf = valid_message(&len);
  int parsed;
  ASSERT_NOT_NULL(buf);
  ASSERT_GT(len, 8);
  ASSERT_OK(unpack_check(buf, len, &parsed));
  ASSERT(parsed);

  /* Every truncation. The Envelope is one length-delimited field, so every
   * proper prefix but the empty one is invalid; the empty prefix is a valid
   * empty Envelope with no msg (which the server answers with MALFORMED). */
  for (size_t n = 0; n < len; n++) {
    ASSERT_OK(unpack_check(buf, n, &parsed));
    if (parsed != (n == 0))
      fprintf(stderr, "truncation to %zu of %zu bytes\n", n, len);
    ASSERT_EQ(parsed, n == 0);
  }
  Vtl__V1__Envelope *empty = vtl__v1__envelope__unpack(NULL, 0, buf);
  ASSERT_NOT_NULL(empty);
  ASSERT_EQ(empty->msg_case, VTL__V1__ENVELOPE__MSG__NOT_SET);
  vtl__v1__envelope__free_unpacked(empty, NULL);

  /* Hand-made bad input: each must be refused. */
  static const struct { const char *why; uint8_t b[16]; size_t n; } bad[] = {
    {"field number 0", {0x02, 0x00}, 2},
    {"wire type 7", {0x0f, 0x00}, 2},
    {"wire type 6", {0x0e}, 1},
    {"length past the end", {0x22, 0x05, 0x08}, 3},
    {"length huge", {0x22, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
    {"varint of 11 bytes", {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x01}, 12},
    {"bad wire type inside op_batch", {0x22, 0x01, 0x0f}, 3},
    {"message field sent as varint", {0x20, 0x01}, 2},
    {"op inside op_batch cut short", {0x22, 0x03, 0x1a, 0x04, 0x12}, 5},
    {"unterminated varint", {0x08, 0x80}, 2},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ASSERT_OK(unpack_check(bad[i].b, bad[i].n, &parsed));
    if (parsed) fprintf(stderr, "accepted: %s\n", bad[i].why);
    ASSERT(!parsed);
  }

  /* Mutations of the valid message, then random bytes: whatever parses
   * must repack, nothing may crash or leak (run under the sanitizers). */
  uint8_t *m = malloc(len);
  ASSERT_NOT_NULL(m);
  static const uint8_t flips[] = {0x00, 0xff, 0x80, 0x7f, 0x01};
  int rejected = 0;
  for (size_t i = 0; i < len; i++) {
    for (size_t f = 0; f < sizeof flips; f++) {
      memcpy(m, buf, len);
      m[i] = flips[f];
      ASSERT_OK(unpack_check(m, len, &parsed));
      rejected += !parsed;
    }
  }
  ASSERT_GT(rejected, 0);
  uint8_t junk[96];
  for (int r = 0; r < 20000; r++) {
    size_t n = rng() % sizeof junk;
    for (size_t i = 0; i < n; i++) junk[i] = (uint8_t)rng();
    ASSERT_OK(unpack_check(junk, n, &parsed));
  }
  free(m);
  free(buf);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(entity_fields)
  TEST_ENTRY(enum_tables)
  TEST_ENTRY(document_fields)
  TEST_ENTRY(error_codes)
  TEST_ENTRY(op_batch_roundtrip)
  TEST_ENTRY(truncated_garbage)
)
