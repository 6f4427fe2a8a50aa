/* cli.h — what the vtl-timeline commands share: arguments, file I/O,
 * loading documents of either format, and all-or-nothing output. */
#ifndef VTL_CLI_H
#define VTL_CLI_H

#include <jansson.h>

#include "vtl_import.h"

enum { CLI_OK = 0, CLI_ESYS = 1, CLI_EINPUT = 2 }; /* exit statuses */

typedef struct {
  const char *file;      /* the FILE argument */
  const char *out;       /* -o OUT, or NULL for stdout */
  int64_t frame_lo;      /* --frame / --frames; -1 if not given */
  int64_t frame_hi;
  bool frame_range;      /* --frames: print an array */
  double fps;            /* --fps, 0 if not given */
  bool paragraphs;       /* --paragraphs */
  bool blend_prompts;    /* --blend-prompts */
  vtl_id shot;           /* --shot */
  const char *name;      /* --template NAME or --name NAME */
  const char *templates; /* --templates DIR */
  double intensity;      /* --intensity, default 1 */
  vtl_id *keys;          /* --keys, malloc'd */
  size_t nkeys;
} cli_args;

/* Parses options after the command; prints the problem and returns
 * CLI_EINPUT on bad usage. */
int cli_parse_args(int argc, char **argv, cli_args *a);
void cli_args_free(cli_args *a);

/* Prints "vtl-timeline: <message>" and returns CLI_EINPUT. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_asprintf(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Whole file into a malloc'd NUL-terminated buffer. */
int cli_read_file(const char *path, char **text, size_t *len);
/* A template by name (DIR/NAME.json) or by path. */
int cli_read_template(const char *name, const char *dir, char **text,
                      size_t *len);

/* a->file as a vtl timeline, or as Deforum settings when it is not one. */
int cli_load_doc(cli_args *a, vtl_doc **doc);
/* a->file as Deforum settings; warnings go to stderr. */
int cli_load_deforum(cli_args *a, vtl_doc **doc);
void cli_print_warnings(const vtl_warnings *w, const char *what);

/* The lowest id above every entity's (for new entities). */
vtl_id cli_next_free_id(vtl_doc *doc);

/* Parameters of one frame as a JSON object (new reference). */
json_t *cli_params_json(const vtl_params *p);

/* Write `text` (malloc'd, consumed) to a->out or stdout, all or nothing;
 * _line adds a final newline; _doc exports and frees the document. */
int cli_output(cli_args *a, char *text);
int cli_output_line(cli_args *a, char *text);
int cli_output_doc(cli_args *a, vtl_doc *doc);

#endif /* VTL_CLI_H */
