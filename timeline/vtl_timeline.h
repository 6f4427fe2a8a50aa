/* vtl_timeline.h — the virtual timeline document model (plain C, no I/O).
 *
 * A document is one Timeline plus sets of Tracks, Keyframes, PromptClips,
 * Shots, Markers and Assets, each keyed by a 64-bit id that the creating
 * client mints (ids are 1 .. 2^53-1 so that JavaScript holds them exactly).
 * Every entity is described by a static field table (vtl_field_desc): the
 * same table drives validation, apply, JSON import/export and the mapping to
 * the protobuf entities of proto/vtl.proto (field `tag` = proto field number).
 *
 * Edits are ops: create / delete / set-field. vtl_doc_apply() applies a batch
 * atomically: it either applies every op or, on the first invalid one, rolls
 * back and returns the error with a message, leaving the document unchanged.
 *
 * Evaluation: vtl_params_at(doc, frame) gives every render parameter at a
 * frame. It is a pure function of the document (the expression sandbox is a
 * cache). A document is not thread-safe: one thread at a time.
 */
#ifndef VTL_TIMELINE_H
#define VTL_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtl_error.h"

typedef uint64_t vtl_id;

#define VTL_ID_MAX ((vtl_id)9007199254740991ull) /* 2^53 - 1 */
#define VTL_TIMELINE_ID ((vtl_id)1)              /* the one Timeline entity */

/* Limits (also the protocol's: docs/protocol.md). */
#define VTL_MAX_FRAMES     1000000
#define VTL_MAX_NAME       256     /* bytes: names, labels, models */
#define VTL_MAX_TEXT       4096    /* bytes: prompt texts, notes */
#define VTL_MAX_EXPR       1024    /* bytes: keyframe expressions */
#define VTL_MAX_TRACKS     1024
#define VTL_MAX_KEYFRAMES  262144
#define VTL_MAX_CLIPS      16384
#define VTL_MAX_SHOTS      16384
#define VTL_MAX_MARKERS    16384
#define VTL_MAX_ASSETS     4096

/* ---- entity kinds ------------------------------------------------------ */

#define VTL_ENTITY_MAP(X)                                                    \
  X(TIMELINE,    timeline,    "timeline")                                    \
  X(TRACK,       track,       "track")                                       \
  X(KEYFRAME,    keyframe,    "keyframe")                                    \
  X(PROMPT_CLIP, prompt_clip, "prompt_clip")                                 \
  X(SHOT,        shot,        "shot")                                        \
  X(MARKER,      marker,      "marker")                                      \
  X(ASSET,       asset,       "asset")

typedef enum {
#define X(up, low, name) VTL_ENT_##up,
  VTL_ENTITY_MAP(X)
#undef X
  VTL_ENT__COUNT
} vtl_entity_kind;

/* ---- parameters a track can drive --------------------------------------
 * X(ENUM, "name", default, min, max, kind). kind: R real, I integer
 * (rounded down like Deforum's integer schedules), E enum index (hold only).
 * Defaults apply where no unmuted track drives the parameter; sampler,
 * spacing, steps, guidance, strength and seed fall back to the Timeline.
 */
#define VTL_PARAM_MAP(X)                                                     \
  X(STRENGTH,   "strength",   0.35,   0.0,    1.0,   R) /* denoise: 1 = all steps */ \
  X(GUIDANCE,   "guidance",   7.5,    0.0,    50.0,  R) /* classifier-free scale */ \
  X(STEPS,      "steps",      20,     1,      1000,  I) /* scheduler steps */ \
  X(SEED,       "seed",       0,      0,      4294967295.0, I) /* seed_mode schedule */ \
  X(SAMPLER,    "sampler",    0,      0,      4,     E) /* vtl_sampler */ \
  X(SPACING,    "spacing",    0,      0,      2,     E) /* vtl_spacing */ \
  X(ZOOM,       "zoom",       1.0,    0.01,   100.0, R) /* 2D scale per frame */ \
  X(ANGLE,      "angle",      0.0,    -3600,  3600,  R) /* 2D degrees per frame */ \
  X(TX,         "translation_x", 0.0, -1e4,   1e4,   R) /* pixels (2D) / units (3D) */ \
  X(TY,         "translation_y", 0.0, -1e4,   1e4,   R) \
  X(TZ,         "translation_z", 0.0, -1e4,   1e4,   R) \
  X(RX,         "rotation_3d_x", 0.0, -3600,  3600,  R) /* degrees per frame */ \
  X(RY,         "rotation_3d_y", 0.0, -3600,  3600,  R) \
  X(RZ,         "rotation_3d_z", 0.0, -3600,  3600,  R) \
  X(FOV,        "fov",        40.0,   1.0,    179.0, R) /* degrees */ \
  X(NEAR,       "near",       200.0,  0.001,  1e6,   R) /* depth units */ \
  X(FAR,        "far",        10000.0, 0.001, 1e7,   R) \
  X(NOISE,      "noise",      0.02,   0.0,    10.0,  R) /* added noise amount */ \
  X(CONTRAST,   "contrast",   1.0,    0.0,    10.0,  R) \
  X(CADENCE,    "cadence",    1,      1,      100,   I) /* diffuse every Nth frame */

typedef enum {
#define X(up, name, def, lo, hi, kind) VTL_PARAM_##up,
  VTL_PARAM_MAP(X)
#undef X
  VTL_PARAM__COUNT,
  VTL_TARGET_PROMPT = VTL_PARAM__COUNT, /* a track of prompt clips */
  VTL_TARGET__COUNT
} vtl_target;

typedef struct {
  const char *name;
  double def, min, max;
  char kind; /* 'R', 'I' or 'E' */
} vtl_param_desc;

extern const vtl_param_desc vtl_param_table[VTL_PARAM__COUNT];
extern const char *const vtl_target_names[VTL_TARGET__COUNT + 1]; /* NULL-ended */

/* ---- enums ---------------------------------------------------------------- */

typedef enum { VTL_SAMPLER_DDIM, VTL_SAMPLER_EULER, VTL_SAMPLER_EULER_A,
               VTL_SAMPLER_DPMPP_2M, VTL_SAMPLER_LCM } vtl_sampler;
typedef enum { VTL_SPACING_LEADING, VTL_SPACING_TRAILING,
               VTL_SPACING_LINSPACE } vtl_spacing;
typedef enum { VTL_SEED_FIXED, VTL_SEED_ITER, VTL_SEED_LADDER,
               VTL_SEED_ALTERNATE, VTL_SEED_RANDOM,
               VTL_SEED_SCHEDULE } vtl_seed_mode;
typedef enum { VTL_ANIM_2D, VTL_ANIM_3D } vtl_anim_mode;
typedef enum { VTL_INTERP_HOLD, VTL_INTERP_LINEAR, VTL_INTERP_BEZIER,
               VTL_INTERP_EASE_IN, VTL_INTERP_EASE_OUT,
               VTL_INTERP_EASE_IN_OUT } vtl_interp;
typedef enum { VTL_SOURCE_NOISE, VTL_SOURCE_BLACK, VTL_SOURCE_IMAGE } vtl_source;
typedef enum { VTL_ASSET_IMAGE, VTL_ASSET_MANUSCRIPT,
               VTL_ASSET_SOUND } vtl_asset_kind;

extern const char *const vtl_sampler_names[];   /* NULL-ended, enum order */
extern const char *const vtl_spacing_names[];
extern const char *const vtl_seed_mode_names[];
extern const char *const vtl_anim_mode_names[];
extern const char *const vtl_interp_names[];
extern const char *const vtl_source_names[];
extern const char *const vtl_asset_kind_names[];

/* Index of `name` in a NULL-ended name table, or -1. */
int vtl_enum_lookup(const char *const *names, const char *name);

/* ---- entities --------------------------------------------------------------
 * Every entity struct starts with its id. Strings are malloc'd, owned by the
 * document, never NULL once in a document (empty string instead).
 */
typedef struct {
  vtl_id id;            /* always VTL_TIMELINE_ID */
  char *name;           /* film title */
  double fps;           /* frames per second, 1..240 */
  int64_t width;        /* pixels, multiple of 8 */
  int64_t height;       /* pixels, multiple of 8 */
  int64_t length;       /* frames; max_f = length - 1 */
  char *model;          /* model name or path the film is made with */
  int64_t sampler;      /* vtl_sampler */
  int64_t spacing;      /* vtl_spacing */
  int64_t steps;        /* scheduler steps */
  double guidance;      /* classifier-free guidance scale */
  double strength;      /* denoise strength of frames after a shot's first */
  int64_t seed;         /* base seed, 0..2^32-1 */
  int64_t seed_mode;    /* vtl_seed_mode */
  int64_t seed_iter_n;  /* ITER: seed advances every N diffused frames */
  int64_t anim_mode;    /* vtl_anim_mode */
} vtl_timeline;

typedef struct {
  vtl_id id;
  char *name;
  int64_t target;       /* vtl_target; fixed at creation */
  int64_t order;        /* display order, lower first */
  bool mute;            /* muted tracks drive nothing */
  bool lock;            /* UI hint: locked tracks refuse edits in clients */
  int64_t color;        /* 0xRRGGBB */
} vtl_track;

typedef struct {
  vtl_id id;
  vtl_id track;         /* owning Track (not a prompt track); fixed */
  int64_t frame;        /* 0..VTL_MAX_FRAMES-1; keys sharing a frame are
                           ordered by id (no conflict between clients) */
  double value;         /* ignored when expr is set */
  int64_t interp;       /* vtl_interp: how to reach the next keyframe */
  double out_dt, out_dv;/* bezier handle leaving this key: frames, value */
  double in_dt, in_dv;  /* bezier handle arriving at this key (in_dt <= 0) */
  char *expr;           /* Lua expression of t, s, max_f, fps; "" = none */
} vtl_keyframe;

typedef struct {
  vtl_id id;
  vtl_id track;         /* owning prompt Track; fixed */
  int64_t start;        /* first frame */
  int64_t end;          /* one past the last frame, > start */
  char *text;           /* positive prompt */
  char *negative;       /* negative prompt */
  double weight;        /* blend weight, 0..100 */
  int64_t fade_in;      /* frames the weight ramps up from start */
  int64_t fade_out;     /* frames the weight ramps down to end */
} vtl_prompt_clip;

typedef struct {
  vtl_id id;
  char *name;
  int64_t start;        /* first frame of the shot; a cut */
  int64_t source;       /* vtl_source: what its first frame starts from */
  vtl_id asset;         /* image Asset when source is IMAGE, else 0 */
  int64_t seed;         /* -1: the timeline's seed, else this shot's */
  double strength;      /* denoise strength of the first frame (image source) */
} vtl_shot;

typedef struct {
  vtl_id id;
  int64_t frame;
  char *label;
  char *note;
} vtl_marker;

typedef struct {
  vtl_id id;
  char *name;
  int64_t kind;         /* vtl_asset_kind */
  char *mime;           /* e.g. image/png */
  char *sha256;         /* hex digest of the content (stored by the server) */
  int64_t size;         /* bytes */
} vtl_asset;

/* ---- field tables ---------------------------------------------------------- */

typedef enum { VTL_FT_INT, VTL_FT_REAL, VTL_FT_BOOL, VTL_FT_STR, VTL_FT_ENUM,
               VTL_FT_REF } vtl_field_type;

enum {
  VTL_FF_FIXED = 1,    /* set at creation only (ownership, track target) */
  VTL_FF_OPTIONAL = 2, /* REF: 0 allowed */
  VTL_FF_RENDER = 4,   /* influences rendered frames (dependency hash) */
};

typedef struct {
  const char *name;           /* JSON key and display name */
  int tag;                    /* proto field number in the entity message */
  vtl_field_type type;
  size_t offset;              /* into the entity struct */
  double min, max;            /* INT / REAL range; STR: max bytes in max */
  const char *const *enums;   /* ENUM: NULL-ended names */
  vtl_entity_kind ref;        /* REF: kind referenced */
  unsigned flags;             /* VTL_FF_* */
  double def;                 /* default for numbers; strings default "" */
} vtl_field_desc;

typedef struct {
  const char *name;           /* "track" */
  const char *plural;         /* "tracks": JSON array key */
  size_t size;                /* sizeof the entity struct */
  size_t max_count;
  const vtl_field_desc *fields;
  int nfields;
} vtl_entity_desc;

extern const vtl_entity_desc vtl_entities[VTL_ENT__COUNT];

/* Field index by name in kind's table, or -1. */
int vtl_field_lookup(vtl_entity_kind kind, const char *name);
/* Field index by proto field number (the wire form), or -1. */
int vtl_field_by_tag(vtl_entity_kind kind, int tag);

/* ---- values and ops ---------------------------------------------------------- */

typedef struct {
  vtl_field_type type; /* INT also carries ENUM and REF; STR owns s */
  union {
    int64_t i;
    double r;
    bool b;
    char *s;           /* malloc'd, owned by the value */
  } u;
} vtl_value;

typedef struct {
  int field;           /* index into the entity's field table */
  vtl_value value;
} vtl_field_value;

typedef enum { VTL_OP_CREATE, VTL_OP_DELETE, VTL_OP_SET } vtl_op_type;

typedef struct {
  vtl_op_type type;
  vtl_entity_kind kind;
  vtl_id id;
  vtl_field_value *fields; /* CREATE: initial values (others default);
                              SET: exactly one. malloc'd, owned by the op */
  int nfields;
} vtl_op;

void vtl_value_free(vtl_value *v);
int vtl_value_copy(vtl_value *dst, const vtl_value *src);
void vtl_op_free(vtl_op *op);             /* frees what the op owns */

/* A growable batch of ops (how importers and apply build theirs). */
typedef struct {
  vtl_op *ops; /* is malloc'd */
  size_t n, cap;
} vtl_op_list;

/* Appends a zeroed op and returns it, or NULL (list unchanged) on NOMEM. */
vtl_op *vtl_op_list_push(vtl_op_list *l);
void vtl_ops_free(vtl_op *ops, size_t n); /* frees each op and the array */

/* Convenience constructors (strings are copied). Return 0 or VTL_ENOMEM. */
int vtl_op_create(vtl_op *op, vtl_entity_kind kind, vtl_id id);
int vtl_op_delete(vtl_op *op, vtl_entity_kind kind, vtl_id id);
int vtl_op_set_int(vtl_op *op, vtl_entity_kind kind, vtl_id id,
                   const char *field, int64_t v);
int vtl_op_set_real(vtl_op *op, vtl_entity_kind kind, vtl_id id,
                    const char *field, double v);
int vtl_op_set_bool(vtl_op *op, vtl_entity_kind kind, vtl_id id,
                    const char *field, bool v);
int vtl_op_set_str(vtl_op *op, vtl_entity_kind kind, vtl_id id,
                   const char *field, const char *v);
/* Adds an initial value to a CREATE op (by field name; INVAL if unknown). */
int vtl_op_add_int(vtl_op *op, const char *field, int64_t v);
int vtl_op_add_real(vtl_op *op, const char *field, double v);
int vtl_op_add_bool(vtl_op *op, const char *field, bool v);
int vtl_op_add_str(vtl_op *op, const char *field, const char *v);

/* ---- the document -------------------------------------------------------------- */

typedef struct vtl_doc vtl_doc;

/* Error detail: code plus a message naming the op, entity and field. */
typedef struct {
  int code;            /* VTL_E* or 0 */
  int op_index;        /* which op of the batch, -1 if none */
  char message[256];
} vtl_error;

/* A new document holds a Timeline with default fields and nothing else. */
int vtl_doc_new(vtl_doc **out);
void vtl_doc_free(vtl_doc *doc);
/* Deep copy (the expression cache is not copied). */
int vtl_doc_clone(const vtl_doc *doc, vtl_doc **out);

/* Applies ops[0..n) atomically. On success returns 0 and, when `inverse` is
 * not NULL, stores a malloc'd batch that undoes it (*ninverse ops, to be
 * applied in order). On failure returns the error code, fills `err` (may be
 * NULL) and leaves the document exactly as it was.
 * Special cases: 1. deleting a Track deletes its keyframes and clips;
 * deleting an Asset clears shots' references to it (source becomes NOISE).
 * 2. The Timeline cannot be created or deleted, only set. */
int vtl_doc_apply(vtl_doc *doc, const vtl_op *ops, size_t n,
                  vtl_op **inverse, size_t *ninverse, vtl_error *err);

/* Validates without applying (apply + roll back). Same return as apply. */
int vtl_doc_validate(vtl_doc *doc, const vtl_op *ops, size_t n,
                     vtl_error *err);

/* Lookup: borrowed pointer valid until the next apply, or NULL. */
const void *vtl_doc_get(const vtl_doc *doc, vtl_entity_kind kind, vtl_id id);
const vtl_timeline *vtl_doc_timeline(const vtl_doc *doc);
/* Entities of a kind sorted by id: borrowed array of n pointers valid until
 * the next apply. */
const void *const *vtl_doc_list(vtl_doc *doc, vtl_entity_kind kind, size_t *n);
size_t vtl_doc_count(const vtl_doc *doc, vtl_entity_kind kind);

/* Ops that recreate the whole document on a fresh one (for snapshots, clone
 * and import): Timeline sets first, then creates in dependency order. */
int vtl_doc_to_ops(vtl_doc *doc, vtl_op **ops, size_t *n);

/* ---- evaluation ------------------------------------------------------------------ */

typedef struct {
  const char *text;     /* borrowed from the document */
  const char *negative; /* borrowed */
  double weight;        /* the weights of one frame sum to 1 */
} vtl_prompt_weight;

#define VTL_MAX_PROMPTS_AT 16 /* blended prompts per frame, heaviest kept */

typedef struct {
  int64_t frame;
  double seconds;                  /* frame / fps */
  double values[VTL_PARAM__COUNT]; /* every parameter, by vtl_target */
  int64_t seed;                    /* resolved by the seed mode */
  vtl_id shot;                     /* shot holding the frame, 0 if none */
  int64_t shot_start;              /* its first frame (0 if none) */
  bool first_frame;                /* frame == shot_start: starts from source */
  int64_t source;                  /* vtl_source of the shot (NOISE if none) */
  vtl_id source_asset;             /* image asset, or 0 */
  double source_strength;          /* denoise of the first frame */
  vtl_prompt_weight prompts[VTL_MAX_PROMPTS_AT];
  int nprompts;                    /* 0: no clip covers the frame */
  uint64_t dep_hash;               /* changes exactly when something that
                                      influences frames <= frame changes */
  int nerrors;                     /* expressions that failed at this frame */
  char error[256];                 /* the first failure's message */
} vtl_params;

/* Every render parameter at `frame` (clamped to 0..length-1).
 * Returns 0; expression failures are reported in p->nerrors / p->error and
 * the failing keyframe's plain value is used instead. */
int vtl_params_at(vtl_doc *doc, int64_t frame, vtl_params *p);

/* One parameter at a frame (same rules as vtl_params_at). */
double vtl_param_at(vtl_doc *doc, vtl_target param, int64_t frame);

/* ---- curves (used by evaluation, exposed for clients and tests) ------------ */

/* Value of the curve through keys[0..n) (sorted by frame, n >= 1) at `frame`.
 * Before the first key: its value; after the last: the last value.
 * `vals[i]` is the value of key i at its own frame (expression already
 * evaluated); expression segments are handled by the caller. */
double vtl_curve_segment(const vtl_keyframe *a, double va,
                         const vtl_keyframe *b, double vb, double frame);

/* Cubic bezier easing y(x) on [0,1] with control points (x1,y1), (x2,y2)
 * (CSS cubic-bezier), x1 and x2 clamped to [0,1]. */
double vtl_bezier_ease(double x1, double y1, double x2, double y2, double x);

/* Parameter u in [0,1] where a cubic with x controls 0, x1, x2, 1 (x1, x2 in
 * [0,1], so monotonic) reaches x: Newton steps guarded by bisection. Shared
 * by evaluation and template cutting so that both agree to the bit. */
double vtl_bezier_solve(double x1, double x2, double x);

#endif /* VTL_TIMELINE_H */
