/* fields.c — the schema of the document: one field table per entity.
 *
 * These tables are the single source of truth for names, types, ranges,
 * defaults and proto field numbers. validate/apply, JSON import/export and
 * the wire mapping all walk them; tests/test_proto.c checks that every
 * (name, tag) here matches the entity messages of proto/vtl.proto.
 */
#include <stddef.h>
#include <string.h>

#include "vtl_timeline.h"

const vtl_param_desc vtl_param_table[VTL_PARAM__COUNT] = {
#define X(up, name, def, lo, hi, kind) {name, def, lo, hi, #kind[0]},
  VTL_PARAM_MAP(X)
#undef X
};

const char *const vtl_target_names[VTL_TARGET__COUNT + 1] = {
#define X(up, name, def, lo, hi, kind) name,
  VTL_PARAM_MAP(X)
#undef X
  "prompt", NULL};

const char *const vtl_sampler_names[] = {"ddim", "euler", "euler_a",
                                         "dpmpp_2m", "lcm", NULL};
const char *const vtl_spacing_names[] = {"leading", "trailing", "linspace",
                                         NULL};
const char *const vtl_seed_mode_names[] = {"fixed", "iter", "ladder",
                                           "alternate", "random", "schedule",
                                           NULL};
const char *const vtl_anim_mode_names[] = {"2d", "3d", NULL};
const char *const vtl_interp_names[] = {"hold", "linear", "bezier", "ease_in",
                                        "ease_out", "ease_in_out", NULL};
const char *const vtl_source_names[] = {"noise", "black", "image", NULL};
const char *const vtl_asset_kind_names[] = {"image", "manuscript", "sound",
                                            NULL};

int vtl_enum_lookup(const char *const *names, const char *name) {
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], name) == 0) return i;
  return -1;
}

#define R VTL_FF_RENDER
#define F VTL_FF_FIXED
#define O VTL_FF_OPTIONAL
#define INT(st, f, tag, lo, hi, def, fl)                                     \
  {#f, tag, VTL_FT_INT, offsetof(st, f), lo, hi, NULL, 0, fl, def}
#define REAL(st, f, tag, lo, hi, def, fl)                                    \
  {#f, tag, VTL_FT_REAL, offsetof(st, f), lo, hi, NULL, 0, fl, def}
#define BOOL(st, f, tag, fl)                                                 \
  {#f, tag, VTL_FT_BOOL, offsetof(st, f), 0, 1, NULL, 0, fl, 0}
#define STR(st, f, tag, max, fl)                                             \
  {#f, tag, VTL_FT_STR, offsetof(st, f), 0, max, NULL, 0, fl, 0}
#define ENUM(st, f, tag, names, def, fl)                                     \
  {#f, tag, VTL_FT_ENUM, offsetof(st, f), 0, 0, names, 0, fl, def}
#define REF(st, f, tag, kind, fl)                                            \
  {#f, tag, VTL_FT_REF, offsetof(st, f), 0, 0, NULL, kind, fl, 0}

#define MAXF (VTL_MAX_FRAMES - 1)

static const vtl_field_desc timeline_fields[] = {
  STR(vtl_timeline, name, 2, VTL_MAX_NAME, 0),
  REAL(vtl_timeline, fps, 3, 1, 240, 12, R),
  INT(vtl_timeline, width, 4, 8, 8192, 512, R),
  INT(vtl_timeline, height, 5, 8, 8192, 512, R),
  INT(vtl_timeline, length, 6, 1, VTL_MAX_FRAMES, 120, R),
  STR(vtl_timeline, model, 7, VTL_MAX_NAME, R),
  ENUM(vtl_timeline, sampler, 8, vtl_sampler_names, 0, R),
  ENUM(vtl_timeline, spacing, 9, vtl_spacing_names, 0, R),
  INT(vtl_timeline, steps, 10, 1, 1000, 20, R),
  REAL(vtl_timeline, guidance, 11, 0, 50, 7.5, R),
  REAL(vtl_timeline, strength, 12, 0, 1, 0.35, R),
  INT(vtl_timeline, seed, 13, 0, 4294967295.0, 0, R),
  ENUM(vtl_timeline, seed_mode, 14, vtl_seed_mode_names, 1, R),
  INT(vtl_timeline, seed_iter_n, 15, 1, 1000000, 1, R),
  ENUM(vtl_timeline, anim_mode, 16, vtl_anim_mode_names, 0, R),
};

static const vtl_field_desc track_fields[] = {
  STR(vtl_track, name, 2, VTL_MAX_NAME, 0),
  ENUM(vtl_track, target, 3, vtl_target_names, 0, F | R),
  INT(vtl_track, order, 4, -1000000, 1000000, 0, 0),
  BOOL(vtl_track, mute, 5, R),
  BOOL(vtl_track, lock, 6, 0),
  INT(vtl_track, color, 7, 0, 0xffffff, 0x8899aa, 0),
};

static const vtl_field_desc keyframe_fields[] = {
  REF(vtl_keyframe, track, 2, VTL_ENT_TRACK, F | R),
  INT(vtl_keyframe, frame, 3, 0, MAXF, 0, R),
  REAL(vtl_keyframe, value, 4, -1e10, 1e10, 0, R), /* seeds reach 2^32 */
  ENUM(vtl_keyframe, interp, 5, vtl_interp_names, 1, R),
  REAL(vtl_keyframe, out_dt, 6, 0, VTL_MAX_FRAMES, 0, R),
  REAL(vtl_keyframe, out_dv, 7, -1e9, 1e9, 0, R),
  REAL(vtl_keyframe, in_dt, 8, -VTL_MAX_FRAMES, 0, 0, R),
  REAL(vtl_keyframe, in_dv, 9, -1e9, 1e9, 0, R),
  STR(vtl_keyframe, expr, 10, VTL_MAX_EXPR, R),
};

static const vtl_field_desc prompt_clip_fields[] = {
  REF(vtl_prompt_clip, track, 2, VTL_ENT_TRACK, F | R),
  INT(vtl_prompt_clip, start, 3, 0, MAXF, 0, R),
  INT(vtl_prompt_clip, end, 4, 1, VTL_MAX_FRAMES, 1, R),
  STR(vtl_prompt_clip, text, 5, VTL_MAX_TEXT, R),
  STR(vtl_prompt_clip, negative, 6, VTL_MAX_TEXT, R),
  REAL(vtl_prompt_clip, weight, 7, 0, 100, 1, R),
  INT(vtl_prompt_clip, fade_in, 8, 0, VTL_MAX_FRAMES, 0, R),
  INT(vtl_prompt_clip, fade_out, 9, 0, VTL_MAX_FRAMES, 0, R),
};

static const vtl_field_desc shot_fields[] = {
  STR(vtl_shot, name, 2, VTL_MAX_NAME, 0),
  INT(vtl_shot, start, 3, 0, MAXF, 0, R),
  ENUM(vtl_shot, source, 4, vtl_source_names, 0, R),
  REF(vtl_shot, asset, 5, VTL_ENT_ASSET, O | R),
  INT(vtl_shot, seed, 6, -1, 4294967295.0, -1, R),
  REAL(vtl_shot, strength, 7, 0, 1, 0.75, R),
};

static const vtl_field_desc marker_fields[] = {
  INT(vtl_marker, frame, 2, 0, MAXF, 0, 0),
  STR(vtl_marker, label, 3, VTL_MAX_NAME, 0),
  STR(vtl_marker, note, 4, VTL_MAX_TEXT, 0),
};

static const vtl_field_desc asset_fields[] = {
  STR(vtl_asset, name, 2, VTL_MAX_NAME, 0),
  ENUM(vtl_asset, kind, 3, vtl_asset_kind_names, 0, R),
  STR(vtl_asset, mime, 4, VTL_MAX_NAME, 0),
  STR(vtl_asset, sha256, 5, 64, R),
  INT(vtl_asset, size, 6, 0, 1099511627776.0, 0, 0),
};

#define N(a) (int)(sizeof(a) / sizeof(a[0]))
const vtl_entity_desc vtl_entities[VTL_ENT__COUNT] = {
  {"timeline", "timeline", sizeof(vtl_timeline), 1, timeline_fields,
   N(timeline_fields)},
  {"track", "tracks", sizeof(vtl_track), VTL_MAX_TRACKS, track_fields,
   N(track_fields)},
  {"keyframe", "keyframes", sizeof(vtl_keyframe), VTL_MAX_KEYFRAMES,
   keyframe_fields, N(keyframe_fields)},
  {"prompt_clip", "prompt_clips", sizeof(vtl_prompt_clip), VTL_MAX_CLIPS,
   prompt_clip_fields, N(prompt_clip_fields)},
  {"shot", "shots", sizeof(vtl_shot), VTL_MAX_SHOTS, shot_fields,
   N(shot_fields)},
  {"marker", "markers", sizeof(vtl_marker), VTL_MAX_MARKERS, marker_fields,
   N(marker_fields)},
  {"asset", "assets", sizeof(vtl_asset), VTL_MAX_ASSETS, asset_fields,
   N(asset_fields)},
};

int vtl_field_lookup(vtl_entity_kind kind, const char *name) {
  if ((unsigned)kind >= VTL_ENT__COUNT || !name) return -1;
  const vtl_entity_desc *e = &vtl_entities[kind];
  for (int i = 0; i < e->nfields; i++)
    if (strcmp(e->fields[i].name, name) == 0) return i;
  return -1;
}

int vtl_field_by_tag(vtl_entity_kind kind, int tag) {
  if ((unsigned)kind >= VTL_ENT__COUNT) return -1;
  const vtl_entity_desc *e = &vtl_entities[kind];
  for (int i = 0; i < e->nfields; i++)
    if (e->fields[i].tag == tag) return i;
  return -1;
}
