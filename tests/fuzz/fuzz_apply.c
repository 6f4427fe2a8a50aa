/* fuzz_apply.c — libFuzzer target: op batches against the document model.
 *
 * The input is decoded into a sequence of op batches that are applied one
 * after another to a document. After every batch the target checks the
 * contract of vtl_doc_apply (vtl_timeline.h) and aborts when it is broken:
 *
 *   1. a rejected batch leaves vtl_json_export() byte-for-byte unchanged,
 *      returns a VTL_E* code equal to err.code with an op_index in range;
 *   2. vtl_doc_validate() returns what vtl_doc_apply() then returns, and
 *      changes nothing;
 *   3. a successful batch: a clone exports the same bytes; the inverse
 *      applied to the clone succeeds and restores the export from before
 *      the batch; the inverse's own inverse (redo) restores the export
 *      from after it; import(export) succeeds and exports the same bytes;
 *   4. vtl_params_at() at the first and last frame and one the input
 *      picks (and, clamped, at INT64_MIN / INT64_MAX) returns 0 with finite
 *      values inside each parameter's range (integers where integer),
 *      agreeing with vtl_param_at, prompt weights heaviest first summing
 *      to 1 and a 32-bit seed; and it is a pure function of the document:
 *      the undone clone (fresh expression cache) gives the same parameters
 *      and dependency hash as the document did before the batch, the
 *      redone clone the same as the document after it, and a rejected
 *      batch the same as before it.
 *
 * Input format (all reads past the end give 0, so every input is valid):
 *
 *   input := flags:u8 batch*            at most MAX_BATCHES batches
 *   flags    bit 0  start from the base document (BASE_JSON) instead of an
 *                   empty one; bit 1  run vtl_doc_validate before apply;
 *                   bit 2  ids from 1..WIDE_ID_SPACE (tables that grow, more
 *                   than 16 of a kind) instead of 1..ID_SPACE
 *   batch := hdr:u8 frame:u16 op{1 + hdr % MAX_OPS}
 *            frame: an extra frame at which parameters are checked
 *   op    := code:u8 id:u8 field{nfields}
 *            code bits 0-1  type: create, delete, set, (3) invalid type
 *                 bits 2-4  kind: 0..6 the entity kinds, 7 an invalid kind
 *                 bits 5-7  nfields: CREATE 0..7; SET 1, except 6 -> 0 and
 *                           7 -> 2 (both invalid)
 *            id   < 0xf0: 1 + id % the id space (small, so that ops
 *                 collide); 0xf0.. : special_ids[id - 0xf0]
 *   field := fsel:u8 value
 *            fsel < 0xf0: fsel % nfields(kind); else -1, nfields, 63, 64
 *   value := vsel:u8 payload
 *            vsel 0x00-0x9f  a value of the field's own type, mostly valid
 *                            (payload u16, strings from the dictionaries)
 *                 0xa0-0xaf  INT from an int8            (payload u8)
 *                 0xb0-0xb7  INT from 8 raw bytes        (payload u64)
 *                 0xb8-0xbf  INT special_ints[]          (payload u8)
 *                 0xc0-0xc7  REAL from 8 raw bytes (NaN, Inf, denormals)
 *                 0xc8-0xd7  REAL special_reals[]        (payload u8)
 *                 0xd8-0xdf  BOOL                        (payload u8)
 *                 0xe0-0xe7  STR of raw bytes: len:u8 (% 48) bytes (may be
 *                            invalid UTF-8, a NUL ends it early)
 *                 0xe8-0xef  STR from strings[] (limits, bad UTF-8)
 *                 0xf0-0xf7  STR from exprs[] (valid and hostile Lua)
 *                 0xf8-0xfb  the field's type tag with a mismatching value
 *                            (ENUM / REF tags as value types, NULL string)
 *                 0xfc-0xff  REAL-typed integer / INT-typed real
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtl_import.h"
#include "vtl_timeline.h"

#define MAX_BATCHES 24
#define MAX_OPS 8
#define ID_SPACE 12
#define WIDE_ID_SPACE 0xf0

/* ---- the input reader ------------------------------------------------------ */

typedef struct {
  const uint8_t *p; /* borrowed: the fuzzer's input */
  size_t n, pos;
  int id_space;     /* ID_SPACE or WIDE_ID_SPACE (flags bit 2) */
} reader;

static uint8_t rd_u8(reader *r) { return r->pos < r->n ? r->p[r->pos++] : 0; }
static uint16_t rd_u16(reader *r) {
  uint16_t lo = rd_u8(r);
  return (uint16_t)(lo | rd_u8(r) << 8);
}
static uint64_t rd_u64(reader *r) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)rd_u8(r) << (8 * i);
  return v;
}
static bool rd_done(const reader *r) { return r->pos >= r->n; }

/* ---- dictionaries ------------------------------------------------------------ */

static const vtl_id special_ids[16] = {
  0, 1, 2, 3, 1000, 65535, 65536, 4294967295ull, 4294967296ull,
  VTL_ID_MAX - 1, VTL_ID_MAX, VTL_ID_MAX + 1, UINT64_MAX, UINT64_MAX - 1,
  (vtl_id)INT64_MAX, (vtl_id)INT64_MIN};

static const int64_t special_ints[] = {
  0, 1, -1, 7, 8, 9, 511, 512, 8192, 8193, 999999, 1000000, 1000001,
  0xffffff, 0x1000000, 4294967295ll, 4294967296ll, 1099511627776ll,
  9007199254740991ll, 9007199254740992ll, INT64_MAX, INT64_MIN,
  INT64_MIN + 1, -1000000, -1000001};

static const double special_reals[] = {
  NAN, -NAN, INFINITY, -INFINITY, 0.0, -0.0, DBL_MIN, -DBL_MIN, 4.9e-324,
  DBL_MAX, -DBL_MAX, 1e9, 1e9 + 1, -1e9, -1e9 - 1, 0.5, 1.0, 240.0, 240.5,
  12.0, 0.999999999, 1e6, 1000001.0, 9e15, 9.1e15, 1e19, -1e19, 9.2233720368547758e18,
  0.1, -0.1, 50.0, 50.000001, 100.0, 1e-300, 3.0, 4294967295.0};

static const char *strings[] = {
  "", "a", "zoom", "a red fox in the snow, 35mm", "ugly, blurry",
  "caf\xc3\xa9 \xe2\x9c\xa8 \xf0\x9f\xa6\x8a",   /* valid multi-byte */
  "\xc3",                                         /* truncated sequence */
  "\xc0\xaf",                                     /* overlong '/' */
  "\xe0\x80\xaf",                                 /* overlong, 3 bytes */
  "\xed\xa0\x80",                                 /* UTF-16 surrogate */
  "\xf4\x90\x80\x80",                             /* above U+10FFFF */
  "\xf8\x88\x80\x80\x80",                         /* 5-byte form */
  "\x80", "\xff\xfe", "tab\there\nnewline\\ \"quote\"", "\x01\x1f\x7f",
  NULL, NULL, NULL, NULL}; /* the NULLs: long strings made at start-up */

static const char *const exprs[] = {
  "t", "s", "max_f", "fps", "1+0.002*sin(1.25*3.14*t/30)", "t/max_f",
  "where(t > 10, 1, 0)", "int(t / 3)", "math.floor(t / 2) % 3", "t // 2",
  "pi * 2", "huge", "-huge", "0/0", "1/0", "1e308 * 10", "nil", "'text'",
  "{}", "true", "false", "t and 1 or 0", "(function() while true do end end)()",
  "(function() local x = {} for i = 1, 1e7 do x[i] = i end return 1 end)()",
  "('x'):rep(1e9)", "os.exit(1)", "io.write('x')", "require('os')",
  "load('return 1')()", "error('boom')", "error()", "print(1)",
  "math.random()", "rawset(_ENV, 'x', 1)", "setmetatable({}, {})",
  "collectgarbage()", "string.rep('x', 10)", "_ENV", "_G", "x",
  "t ^ 1e10", "1 +", "", ")", "1) + (2", "1 -- comment", "--", "]]",
  "[[", "t + #'abc'", "math.huge - math.huge", "max(t, 1, 2, 3)",
  "fmod(t, 0)", "log(0)", "sqrt(-1)", "-0.0", "1e-320", "9007199254740993",
  "0x7fffffffffffffff + 1", "math.mininteger // -1", "math.maxinteger * 2",
  "t % 0", "1 // 0", "\"\\0\"", "...", "function() end", "..1",
  "(\"a\"):len()", "math.pi = 3", "where(0, 1, 2)", "int(0/0)",
  "int(1e300)", "abs(-t) + floor(s) + ceil(fps)"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char long_name[VTL_MAX_NAME + 2], long_text[VTL_MAX_TEXT + 2],
    long_expr[VTL_MAX_EXPR + 2], exact_name[VTL_MAX_NAME + 1];

static void init_strings(void) {
  static bool done;
  if (done) return;
  done = true;
  memset(long_name, 'n', sizeof long_name - 1);   /* VTL_MAX_NAME + 1 */
  memset(long_text, 't', sizeof long_text - 1);   /* VTL_MAX_TEXT + 1 */
  memset(exact_name, 'e', sizeof exact_name - 1); /* exactly the limit */
  /* "1+1+...+1": VTL_MAX_EXPR + 1 bytes, valid Lua one byte too long */
  for (size_t i = 0; i + 1 < sizeof long_expr; i++)
    long_expr[i] = i % 2 ? '+' : '1';
  long_expr[sizeof long_expr - 2] = '1';
  const char **tail = &strings[N(strings) - 4];
  tail[0] = long_name;
  tail[1] = long_text;
  tail[2] = long_expr;
  tail[3] = exact_name;
}

/* A small valid document, mostly in the ids of ID_SPACE: every kind, an expression,
 * an image shot, a muted track, two tracks driving zoom, a prompt track with
 * crossfading clips (two with the same prompt, merged), 20 markers. */
static const char BASE_JSON[] =
  "{\"format\":\"vtl-timeline\",\"version\":1,"
  "\"timeline\":{\"length\":240,\"fps\":24,\"seed\":42,\"seed_mode\":\"iter\"},"
  "\"assets\":[{\"id\":1,\"name\":\"start.png\",\"kind\":\"image\","
  "\"mime\":\"image/png\",\"size\":1234}],"
  "\"tracks\":[{\"id\":1,\"name\":\"zoom\",\"target\":\"zoom\"},"
  "{\"id\":2,\"name\":\"story\",\"target\":\"prompt\"},"
  "{\"id\":3,\"name\":\"denoise\",\"target\":\"strength\",\"mute\":true},"
  "{\"id\":4,\"name\":\"seed\",\"target\":\"seed\",\"order\":-1},"
  "{\"id\":5,\"name\":\"zoom alt\",\"target\":\"zoom\",\"order\":1}],"
  "\"keyframes\":[{\"id\":1,\"track\":1,\"frame\":0,\"value\":1.0},"
  "{\"id\":2,\"track\":1,\"frame\":60,\"value\":1.05,\"interp\":\"bezier\","
  "\"out_dt\":10,\"out_dv\":0.01},"
  "{\"id\":3,\"track\":1,\"frame\":120,\"value\":1.0,\"in_dt\":-5,"
  "\"expr\":\"1+0.002*sin(1.25*3.14*t/30)\"},"
  "{\"id\":4,\"track\":3,\"frame\":10,\"value\":0.6,\"interp\":\"hold\"},"
  "{\"id\":5,\"track\":4,\"frame\":0,\"value\":7,\"interp\":\"ease_in_out\"},"
  "{\"id\":6,\"track\":4,\"frame\":200,\"value\":70000},"
  "{\"id\":7,\"track\":5,\"frame\":30,\"value\":0.9}],"
  "\"prompt_clips\":[{\"id\":1,\"track\":2,\"start\":0,\"end\":130,"
  "\"text\":\"a fox\",\"fade_out\":20},"
  "{\"id\":2,\"track\":2,\"start\":110,\"end\":240,\"text\":\"a wolf\","
  "\"negative\":\"blurry\",\"weight\":2,\"fade_in\":20},"
  "{\"id\":3,\"track\":2,\"start\":100,\"end\":140,\"text\":\"a fox\"}],"
  "\"shots\":[{\"id\":1,\"start\":0},"
  "{\"id\":2,\"start\":100,\"source\":\"image\",\"asset\":1,\"seed\":7}],"
  "\"markers\":[{\"id\":1,\"frame\":50,\"label\":\"beat\"},"
  /* more than 16 of one kind: the id map has grown once */
  "{\"id\":2},{\"id\":3},{\"id\":4},{\"id\":5},{\"id\":6},{\"id\":7},"
  "{\"id\":8},{\"id\":9},{\"id\":10},{\"id\":11},{\"id\":12},{\"id\":13},"
  "{\"id\":14},{\"id\":15},{\"id\":16},{\"id\":17},{\"id\":18},{\"id\":19},"
  "{\"id\":20}]}";

/* ---- failing ----------------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz_apply: invariant broken: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

static char *export_doc(vtl_doc *doc, const char *what) {
  char *s = NULL;
  int rc = vtl_json_export(doc, &s);
  if (rc) die("%s: vtl_json_export: %s", what, vtl_err_name(rc));
  return s;
}

static void expect_same(const char *a, const char *b, const char *what) {
  if (strcmp(a, b) == 0) return;
  size_t i = 0;
  while (a[i] && a[i] == b[i]) i++;
  size_t from = i > 120 ? i - 120 : 0;
  die("%s: exports differ at byte %zu\n--- expected ...%.240s\n--- got "
      "...%.240s", what, i, a + from, b + from);
}

static void check_error(int rc, const vtl_error *err, size_t nops,
                        const char *what) {
  if (rc >= 0 || rc <= VTL__EFIRST || rc >= VTL__ELAST)
    die("%s: return %d is not a VTL_E* code", what, rc);
  if (err->code != rc)
    die("%s: err.code %d != return %d", what, err->code, rc);
  if (err->op_index < -1 || err->op_index >= (int)nops)
    die("%s: op_index %d outside -1..%zu", what, err->op_index, nops - 1);
  if (!memchr(err->message, 0, sizeof err->message) || !err->message[0])
    die("%s: empty or unterminated message", what);
}

/* ---- decoding ------------------------------------------------------------------------ */

static char *xstrdup(const char *s) {
  char *d = strdup(s);
  if (!d) abort();
  return d;
}

/* A value of f's own type, valid most of the time. */
static vtl_value typed_value(reader *r, vtl_entity_kind kind,
                             const vtl_field_desc *f) {
  uint16_t x = rd_u16(r);
  unsigned mode = x >> 14, small = x & 0xff, mid = x & 0x3fff;
  vtl_value v = {.type = VTL_FT_INT};
  switch (f->type) {
  case VTL_FT_INT: {
    double lo = f->min, hi = f->max, d;
    if (!strcmp(f->name, "width") || !strcmp(f->name, "height"))
      d = 8.0 * (1 + x % 128) + (mode == 3 ? 4 : 0);
    else if (mode == 0) d = lo + small;
    else if (mode == 1) d = hi - small;
    else if (mode == 2) d = floor(lo + (hi - lo) * (mid / 16383.0));
    else d = lo + mid;
    v.u.i = (int64_t)(d > hi + 1 ? hi + 1 : d);
    break;
  }
  case VTL_FT_REAL:
    v.type = VTL_FT_REAL;
    v.u.r = mode == 0   ? f->min
          : mode == 1   ? f->max
          : f->min + (f->max - f->min) * ((x & 0x7fff) / 32767.0);
    if (mode == 0 && (x & 1)) v.u.r = f->min + (x & 0xfe) / 64.0;
    break;
  case VTL_FT_BOOL:
    v.type = VTL_FT_BOOL;
    v.u.b = x & 1;
    break;
  case VTL_FT_ENUM: {
    int64_t n = 0;
    while (f->enums[n]) n++;
    v.u.i = (int64_t)(x % (n + (mode == 3)));  /* sometimes one past */
    break;
  }
  case VTL_FT_REF:
    v.u.i = (int64_t)(x % (unsigned)(r->id_space + 1)); /* 0 = none */
    break;
  case VTL_FT_STR:
    v.type = VTL_FT_STR;
    if (kind == VTL_ENT_KEYFRAME && !strcmp(f->name, "expr"))
      v.u.s = xstrdup(mode < 2 ? "" : exprs[x % N(exprs)]);
    else
      v.u.s = xstrdup(strings[x % 6]);
    break;
  }
  return v;
}

static vtl_value decode_value(reader *r, vtl_entity_kind kind,
                              const vtl_field_desc *f) {
  uint8_t sel = rd_u8(r);
  vtl_value v = {.type = VTL_FT_INT};
  if (sel < 0xa0) {
    if (f) return typed_value(r, kind, f);
    v.u.i = rd_u8(r);
  } else if (sel < 0xb0) {
    v.u.i = (int8_t)rd_u8(r);
  } else if (sel < 0xb8) {
    v.u.i = (int64_t)rd_u64(r);
  } else if (sel < 0xc0) {
    v.u.i = special_ints[rd_u8(r) % N(special_ints)];
  } else if (sel < 0xc8) {
    uint64_t bits = rd_u64(r);
    v.type = VTL_FT_REAL;
    memcpy(&v.u.r, &bits, sizeof v.u.r);
  } else if (sel < 0xd8) {
    v.type = VTL_FT_REAL;
    v.u.r = special_reals[rd_u8(r) % N(special_reals)];
  } else if (sel < 0xe0) {
    v.type = VTL_FT_BOOL;
    v.u.b = rd_u8(r) & 1;
  } else if (sel < 0xe8) {
    char buf[64];
    size_t len = rd_u8(r) % 48;
    for (size_t i = 0; i < len; i++) buf[i] = (char)rd_u8(r);
    buf[len] = 0;
    v.type = VTL_FT_STR;
    v.u.s = xstrdup(buf);
  } else if (sel < 0xf0) {
    v.type = VTL_FT_STR;
    v.u.s = xstrdup(strings[rd_u8(r) % N(strings)]);
  } else if (sel < 0xf8) {
    v.type = VTL_FT_STR;
    v.u.s = xstrdup(exprs[rd_u8(r) % N(exprs)]);
  } else if (sel < 0xfc) {
    /* value types that only field tables use, and a NULL string */
    static const vtl_field_type odd[] = {VTL_FT_ENUM, VTL_FT_REF, VTL_FT_STR,
                                         VTL_FT_INT};
    v.type = odd[sel - 0xf8];
    v.u.i = v.type == VTL_FT_STR ? 0 : 1 + rd_u8(r) % r->id_space;
    if (v.type == VTL_FT_STR) v.u.s = NULL;
  } else if (sel < 0xfe) {
    v.type = VTL_FT_REAL;
    v.u.r = (double)(int8_t)rd_u8(r) + (sel == 0xfd ? 0.5 : 0.0);
  } else {
    v.type = VTL_FT_INT;
    v.u.i = (int64_t)rd_u16(r) * (sel == 0xff ? 1 : -1);
  }
  return v;
}

static void decode_op(reader *r, vtl_op *op) {
  uint8_t code = rd_u8(r), idb = rd_u8(r);
  static const vtl_op_type types[4] = {VTL_OP_CREATE, VTL_OP_DELETE,
                                       VTL_OP_SET, (vtl_op_type)7};
  vtl_entity_kind kind = (code >> 2 & 7) < VTL_ENT__COUNT
                             ? (vtl_entity_kind)(code >> 2 & 7)
                             : (vtl_entity_kind)9;
  *op = (vtl_op){.type = types[code & 3], .kind = kind,
                 .id = idb < 0xf0 ? 1 + (vtl_id)(idb % r->id_space)
                                  : special_ids[idb - 0xf0]};
  int nf = code >> 5;
  if (op->type == VTL_OP_SET) nf = nf == 6 ? 0 : nf == 7 ? 2 : 1;
  if (op->type == VTL_OP_DELETE) nf = 0;
  if (!nf) return;
  op->fields = calloc((size_t)nf, sizeof *op->fields);
  if (!op->fields) abort();
  const vtl_entity_desc *d =
      (unsigned)kind < VTL_ENT__COUNT ? &vtl_entities[kind] : NULL;
  int kf = d ? d->nfields : 4;
  for (int i = 0; i < nf; i++) {
    uint8_t fs = rd_u8(r);
    static const int odd_fields[4] = {-1, 0 /* nfields */, 63, 64};
    int fi = fs < 0xf0 ? fs % kf : fs % 4 == 1 ? kf : odd_fields[fs % 4];
    const vtl_field_desc *f = d && fi >= 0 && fi < kf ? &d->fields[fi] : NULL;
    op->fields[i].field = fi;
    op->fields[i].value = decode_value(r, kind, f);
    op->nfields = i + 1;
  }
}

/* ---- evaluation checks ------------------------------------------------------------ */

/* Parameters at a few frames. The prompt texts of vtl_params are borrowed
 * until the next apply, so they are kept as a hash (prompt_hash) and the
 * pointers cleared. */
typedef struct {
  int64_t frames[3];
  vtl_params p[3];
  uint64_t prompt_hash[3]; /* FNV-1a of every (text, negative, weight) */
  int n;
} params_set;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

/* Checks vtl_params_at(frame); with `single`, also that vtl_param_at
 * agrees (which evaluates every expression again: kept to one frame a batch,
 * as a hostile expression costs its whole instruction budget each time). */
static void check_params(vtl_doc *doc, int64_t frame, vtl_params *p,
                         bool single) {
  int rc = vtl_params_at(doc, frame, p);
  if (rc) die("vtl_params_at(%lld): %s", (long long)frame, vtl_err_name(rc));
  int64_t len = vtl_doc_timeline(doc)->length;
  if (p->frame < 0 || p->frame >= len)
    die("params frame %lld outside 0..%lld", (long long)p->frame,
        (long long)len - 1);
  if (!isfinite(p->seconds)) die("seconds %g at %lld", p->seconds, (long long)frame);
  for (int i = 0; i < VTL_PARAM__COUNT; i++) {
    const vtl_param_desc *d = &vtl_param_table[i];
    double v = p->values[i];
    if (!isfinite(v) || v < d->min || v > d->max)
      die("%s = %g at frame %lld: outside %g..%g", d->name, v,
          (long long)p->frame, d->min, d->max);
    if (d->kind != 'R' && v != floor(v))
      die("%s = %.17g at frame %lld: not an integer", d->name, v,
          (long long)p->frame);
    double one = single ? vtl_param_at(doc, (vtl_target)i, frame) : v;
    if (one != v)
      die("vtl_param_at(%s, %lld) = %.17g but vtl_params_at gives %.17g",
          d->name, (long long)frame, one, v);
  }
  if (p->seed < 0 || p->seed > 4294967295ll)
    die("seed %lld at frame %lld", (long long)p->seed, (long long)p->frame);
  if (p->nprompts < 0 || p->nprompts > VTL_MAX_PROMPTS_AT)
    die("nprompts %d", p->nprompts);
  double sum = 0;
  for (int i = 0; i < p->nprompts; i++) {
    const vtl_prompt_weight *w = &p->prompts[i];
    if (!w->text || !w->negative) die("prompt %d: NULL text", i);
    if (!isfinite(w->weight) || w->weight < 0 || w->weight > 1)
      die("prompt %d: weight %g", i, w->weight);
    if (i && w->weight > p->prompts[i - 1].weight)
      die("prompts not heaviest first at frame %lld", (long long)p->frame);
    sum += w->weight;
  }
  if (p->nprompts && fabs(sum - 1) > 1e-9)
    die("prompt weights sum to %.17g at frame %lld", sum, (long long)p->frame);
  if (p->shot_start > p->frame || p->shot_start < 0)
    die("shot_start %lld after frame %lld", (long long)p->shot_start,
        (long long)p->frame);
  if (p->first_frame != (p->frame == p->shot_start)) die("first_frame wrong");
  if (p->source < 0 || p->source > VTL_SOURCE_IMAGE) die("source %lld",
                                                        (long long)p->source);
  if (!isfinite(p->source_strength) || p->source_strength < 0 ||
      p->source_strength > 1)
    die("source_strength %g", p->source_strength);
  if (p->nerrors < 0 || !memchr(p->error, 0, sizeof p->error))
    die("nerrors %d / unterminated error", p->nerrors);
}

/* Parameters at the first and last frame and at `extra`; with `more`, also
 * the single-parameter cross-check and frames far outside the film. */
static void params_gather(vtl_doc *doc, uint16_t extra, params_set *s,
                          bool more) {
  int64_t len = vtl_doc_timeline(doc)->length;
  int64_t frames[3] = {0, len - 1, extra};
  s->n = 3;
  if (more) {
    vtl_params p;
    check_params(doc, INT64_MIN, &p, false);
    if (p.frame != 0) die("frame INT64_MIN not clamped to 0");
    check_params(doc, INT64_MAX, &p, false);
    if (p.frame != len - 1) die("frame INT64_MAX not clamped to length - 1");
  }
  for (int i = 0; i < s->n; i++) {
    s->frames[i] = frames[i];
    check_params(doc, frames[i], &s->p[i], more && i == 2);
    uint64_t h = 0xcbf29ce484222325ull;
    for (int j = 0; j < s->p[i].nprompts; j++) {
      vtl_prompt_weight *w = &s->p[i].prompts[j];
      h = fnv(h, w->text, strlen(w->text) + 1);
      h = fnv(h, w->negative, strlen(w->negative) + 1);
      h = fnv(h, &w->weight, sizeof w->weight);
      w->text = w->negative = NULL;
    }
    s->prompt_hash[i] = h;
  }
}

/* The same document must give the same parameters, whatever its cache. */
static void params_same(const params_set *a, const params_set *b,
                        const char *what) {
  for (int i = 0; i < a->n; i++) {
    const vtl_params *x = &a->p[i], *y = &b->p[i];
    for (int k = 0; k < VTL_PARAM__COUNT; k++)
      if (x->values[k] != y->values[k])
        die("%s: %s at frame %lld: %.17g vs %.17g", what,
            vtl_param_table[k].name, (long long)x->frame, x->values[k],
            y->values[k]);
    if (x->frame != y->frame || x->seed != y->seed || x->shot != y->shot ||
        x->source != y->source || x->source_asset != y->source_asset ||
        x->nprompts != y->nprompts || x->nerrors != y->nerrors)
      die("%s: frame/seed/shot/prompts/errors differ at frame %lld (seed "
          "%lld vs %lld, nerrors %d vs %d: %s | %s)", what, (long long)x->frame,
          (long long)x->seed, (long long)y->seed, x->nerrors, y->nerrors,
          x->error, y->error);
    if (x->dep_hash != y->dep_hash)
      die("%s: dep_hash differs at frame %lld", what, (long long)x->frame);
    if (a->prompt_hash[i] != b->prompt_hash[i])
      die("%s: prompts differ at frame %lld", what, (long long)x->frame);
  }
}

/* With FUZZ_APPLY_TRACE set in the environment, every batch and its result
 * is printed: how to read a crash input (./fuzz_apply crash-...). */
static bool tracing;

static void trace_batch(const vtl_op *ops, size_t n, int rc,
                        const vtl_error *err) {
  static const char *const tn[] = {"create", "delete", "set"};
  fprintf(stderr, "batch of %zu:\n", n);
  for (size_t i = 0; i < n; i++) {
    const vtl_op *op = &ops[i];
    bool known = (unsigned)op->kind < VTL_ENT__COUNT;
    fprintf(stderr, "  %s %s %llu", (unsigned)op->type < 3 ? tn[op->type] : "?",
            known ? vtl_entities[op->kind].name : "?",
            (unsigned long long)op->id);
    for (int j = 0; j < op->nfields; j++) {
      const vtl_field_value *fv = &op->fields[j];
      const char *fname = known && fv->field >= 0 &&
                                  fv->field < vtl_entities[op->kind].nfields
                              ? vtl_entities[op->kind].fields[fv->field].name
                              : "?";
      switch (fv->value.type) {
      case VTL_FT_REAL: fprintf(stderr, " %s=%.17g", fname, fv->value.u.r); break;
      case VTL_FT_BOOL: fprintf(stderr, " %s=%d", fname, fv->value.u.b); break;
      case VTL_FT_STR:
        fprintf(stderr, " %s=\"%s\"", fname,
                fv->value.u.s ? fv->value.u.s : "(null)");
        break;
      default:
        fprintf(stderr, " %s=%lld (type %d)", fname, (long long)fv->value.u.i,
                fv->value.type);
      }
    }
    fputc('\n', stderr);
  }
  fprintf(stderr, "  -> %s%s%s\n", rc ? vtl_err_name(rc) : "ok",
          rc ? ": " : "", rc ? err->message : "");
}

/* ---- one batch ------------------------------------------------------------------------ */

static void run_batch(vtl_doc *doc, const vtl_op *ops, size_t n, bool validate,
                      uint16_t extra_frame) {
  char *before = export_doc(doc, "before");
  params_set pbefore;
  params_gather(doc, extra_frame, &pbefore, false);

  int vrc = 0;
  vtl_error err;
  if (validate) {
    vrc = vtl_doc_validate(doc, ops, n, &err);
    if (vrc) check_error(vrc, &err, n, "validate");
    char *s = export_doc(doc, "after validate");
    expect_same(before, s, "vtl_doc_validate changed the document");
    free(s);
  }

  vtl_op *inv = NULL;
  size_t ninv = 0;
  int rc = vtl_doc_apply(doc, ops, n, &inv, &ninv, &err);
  if (tracing) trace_batch(ops, n, rc, &err);
  if (validate && (rc != 0) != (vrc != 0))
    die("validate returned %s but apply %s (%s)", vtl_err_name(vrc),
        vtl_err_name(rc), rc ? err.message : "");
  char *after = export_doc(doc, "after apply");
  if (rc) {
    check_error(rc, &err, n, "apply");
    expect_same(before, after, "a rejected batch changed the document");
    params_set prejected;
    params_gather(doc, extra_frame, &prejected, false);
    params_same(&pbefore, &prejected, "params before vs after a rejected batch");
    free(before);
    free(after);
    return;
  }

  /* import(export) is the identity on every reachable document */
  vtl_doc *re = NULL;
  vtl_error ierr;
  int irc = vtl_json_import(after, strlen(after), &re, &ierr);
  if (irc) die("re-import of an applied document failed: %s", ierr.message);
  char *s = export_doc(re, "re-import");
  expect_same(after, s, "export -> import -> export");
  free(s);
  vtl_doc_free(re);

  /* the clone is the same document; the inverse undoes the batch on it */
  vtl_doc *clone = NULL;
  if (vtl_doc_clone(doc, &clone)) die("vtl_doc_clone failed");
  s = export_doc(clone, "clone");
  expect_same(after, s, "vtl_doc_clone");
  free(s);
  vtl_op *redo = NULL;
  size_t nredo = 0;
  rc = vtl_doc_apply(clone, inv, ninv, &redo, &nredo, &err);
  if (rc) die("the inverse batch failed: op %d: %s", err.op_index, err.message);
  s = export_doc(clone, "after undo");
  expect_same(before, s, "the inverse did not restore the document");
  free(s);
  params_set pundo;
  params_gather(clone, extra_frame, &pundo, false);
  params_same(&pbefore, &pundo, "params before the batch vs after its undo");
  rc = vtl_doc_apply(clone, redo, nredo, NULL, NULL, &err);
  if (rc) die("the redo batch failed: op %d: %s", err.op_index, err.message);
  s = export_doc(clone, "after redo");
  expect_same(after, s, "the inverse of the inverse did not redo the batch");
  free(s);

  params_set pafter, pclone;
  params_gather(doc, extra_frame, &pafter, true);
  params_gather(clone, extra_frame, &pclone, false);
  params_same(&pafter, &pclone, "params of the document vs its redone clone");

  vtl_doc_free(clone);
  vtl_ops_free(inv, ninv);
  vtl_ops_free(redo, nredo);
  free(before);
  free(after);
}

/* ---- entry point ------------------------------------------------------------------------ */

static vtl_doc *base_doc(void) {
  static vtl_doc *base;
  if (!base) {
    vtl_error err;
    if (vtl_json_import(BASE_JSON, sizeof BASE_JSON - 1, &base, &err))
      die("BASE_JSON does not import: %s", err.message);
  }
  return base;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_strings();
  tracing = getenv("FUZZ_APPLY_TRACE") != NULL;
  reader r = {data, size, 0, ID_SPACE};
  uint8_t flags = rd_u8(&r);
  if (flags & 4) r.id_space = WIDE_ID_SPACE;
  vtl_doc *doc = NULL;
  int rc = flags & 1 ? vtl_doc_clone(base_doc(), &doc) : vtl_doc_new(&doc);
  if (rc) die("cannot make the starting document: %s", vtl_err_name(rc));

  for (int b = 0; b < MAX_BATCHES && !rd_done(&r); b++) {
    uint8_t hdr = rd_u8(&r);
    uint16_t frame = rd_u16(&r);
    size_t n = 1 + hdr % MAX_OPS;
    vtl_op ops[MAX_OPS];
    for (size_t i = 0; i < n; i++) decode_op(&r, &ops[i]);
    run_batch(doc, ops, n, flags & 2, frame);
    for (size_t i = 0; i < n; i++) vtl_op_free(&ops[i]);
  }
  vtl_doc_free(doc);
  return 0;
}
