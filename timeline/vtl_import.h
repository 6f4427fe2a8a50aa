/* vtl_import.h — documents from the files people already have, and back.
 *
 * All functions work on memory buffers (timeline/ does no I/O); the CLI
 * (tools/vtl-timeline) reads and writes the files. Every import either
 * returns a complete document or an error naming the place (key, line)
 * and nothing else.
 */
#ifndef VTL_IMPORT_H
#define VTL_IMPORT_H

#include <stddef.h>

#include "vtl_timeline.h"

/* A growable list of malloc'd messages (what was ignored, approximated). */
typedef struct {
  char **items; /* malloc'd array of malloc'd strings */
  size_t n;
} vtl_warnings;

int vtl_warnings_add(vtl_warnings *w, const char *fmt, ...);
void vtl_warnings_free(vtl_warnings *w);

/* ---- JSON (docs/timeline-format.md) ---------------------------------------- */

/* Parses a whole document. Errors name the JSON path, e.g.
 * "keyframes[3].interp: unknown value \"wobble\" (hold, linear, ...)". */
int vtl_json_import(const char *json, size_t len, vtl_doc **out,
                    vtl_error *err);
/* Serialises the whole document; *out is malloc'd, NUL-terminated, with
 * entities sorted by id so that equal documents give equal bytes. */
int vtl_json_export(vtl_doc *doc, char **out);

/* ---- Deforum settings files (docs/deforum.md) ---------------------------- */

typedef struct {
  bool blend_prompts; /* crossfade between prompt keys as Deforum's
                         Interpolation mode does; false: hold each prompt
                         until the next key (Deforum's 2D/3D modes) */
} vtl_deforum_options;

/* Builds a document from a Deforum settings JSON file. Keys vtl does not
 * model are listed in `warnings` (never silently dropped). */
int vtl_deforum_import(const char *json, size_t len,
                       const vtl_deforum_options *opt, vtl_doc **out,
                       vtl_warnings *warnings, vtl_error *err);
/* Writes the document as Deforum settings (schedules, prompts with --neg);
 * what Deforum cannot express is listed in `warnings`. *out is malloc'd. */
int vtl_deforum_export(vtl_doc *doc, char **out, vtl_warnings *warnings,
                       vtl_error *err);

/* ---- manuscripts ----------------------------------------------------------- */

typedef enum { VTL_SPLIT_SENTENCE, VTL_SPLIT_PARAGRAPH } vtl_split;

typedef struct {
  double fps;            /* film frame rate */
  vtl_split split;       /* one clip per sentence or per paragraph */
  double words_per_sec;  /* reading speed that spaces clips (default 2.5) */
  double min_seconds;    /* shortest clip (default 2) */
  int64_t fade;          /* crossfade frames between clips (default fps/2) */
} vtl_manuscript_options;

/* Turns plain UTF-8 text into a document: one prompt clip per sentence or
 * paragraph on one prompt track, each as long as it takes to read, with
 * crossfades; the timeline's length and fps follow. */
int vtl_manuscript_import(const char *text, size_t len,
                          const vtl_manuscript_options *opt, vtl_doc **out,
                          vtl_error *err);

/* ---- shot templates: data files in templates/, docs/templates.md ------------ */

/* Ops that apply the template (JSON text) to shot `shot` scaled to the
 * shot's length and to `intensity`: keyframes of the template's tracks
 * inside the shot are replaced, the value after the shot is restored.
 * Ids for new entities are minted from *next_id (incremented). */
int vtl_template_apply(vtl_doc *doc, const char *template_json, size_t len,
                       vtl_id shot, double intensity, vtl_id *next_id,
                       vtl_op **ops, size_t *nops, vtl_error *err);

/* A template (JSON text, malloc'd) named `name` from the keyframes `keys`
 * relative to the shot that holds the first of them. */
int vtl_template_from_keys(vtl_doc *doc, const char *name, const vtl_id *keys,
                           size_t nkeys, char **out, vtl_error *err);

#endif /* VTL_IMPORT_H */
