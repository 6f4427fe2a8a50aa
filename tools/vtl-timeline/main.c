/* vtl-timeline — timeline files from the command line.
 *
 *   vtl-timeline validate FILE
 *   vtl-timeline eval FILE (--frame N | --frames A-B)
 *   vtl-timeline import-deforum FILE [--blend-prompts] [-o OUT]
 *   vtl-timeline export-deforum FILE [-o OUT]
 *   vtl-timeline import-text FILE --fps N [--paragraphs] [-o OUT]
 *   vtl-timeline apply-template FILE --shot ID --template NAME|PATH
 *                [--intensity X] [--templates DIR] [-o OUT]
 *   vtl-timeline save-template FILE --name NAME --keys ID,ID,... [-o OUT]
 *
 * FILE is a vtl timeline (docs/timeline-format.md) or, for validate, eval
 * and export-deforum, a Deforum settings file (detected by content).
 * Exit status: 0 success, 2 bad input or usage (a message naming the place
 * on stderr, nothing on stdout and no output file), 1 system errors.
 * Output is built in memory and written at the very end (atomically with
 * -o: a temporary file renamed into place), so there is never partial output.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vtl_import.h"

#ifndef VTL_TEMPLATE_DIR
#define VTL_TEMPLATE_DIR "templates"
#endif

static void usage(void) {
  fputs("usage: vtl-timeline COMMAND FILE [options]\n"
        "  validate FILE\n"
        "  eval FILE (--frame N | --frames A-B)\n"
        "  import-deforum FILE [--blend-prompts] [-o OUT]\n"
        "  export-deforum FILE [-o OUT]\n"
        "  import-text FILE --fps N [--paragraphs] [-o OUT]\n"
        "  apply-template FILE --shot ID --template NAME|PATH [--intensity X]"
        " [--templates DIR] [-o OUT]\n"
        "  save-template FILE --name NAME --keys ID,ID,... [-o OUT]\n",
        stderr);
}

/* ---- commands --------------------------------------------------------------- */

static int cmd_validate(cli_args *a) {
  vtl_doc *doc;
  int rc = cli_load_doc(a, &doc);
  if (rc) return rc;
  const vtl_timeline *tl = vtl_doc_timeline(doc);
  char *out;
  if (cli_asprintf(&out, "ok: %s: %lld frames at %g fps, %zu tracks, %zu "
                   "keyframes, %zu prompt clips, %zu shots\n", a->file,
                   (long long)tl->length, tl->fps,
                   vtl_doc_count(doc, VTL_ENT_TRACK),
                   vtl_doc_count(doc, VTL_ENT_KEYFRAME),
                   vtl_doc_count(doc, VTL_ENT_PROMPT_CLIP),
                   vtl_doc_count(doc, VTL_ENT_SHOT))) {
    vtl_doc_free(doc);
    return CLI_ESYS;
  }
  vtl_doc_free(doc);
  return cli_output(a, out);
}

static int cmd_eval(cli_args *a) {
  if (a->frame_lo < 0)
    return cli_fail("eval: give --frame N or --frames A-B");
  vtl_doc *doc;
  int rc = cli_load_doc(a, &doc);
  if (rc) return rc;
  int64_t len = vtl_doc_timeline(doc)->length;
  if (a->frame_hi >= len) {
    vtl_doc_free(doc);
    return cli_fail("eval: frame %lld is past the end (the film has %lld "
                    "frames: 0..%lld)", (long long)a->frame_hi,
                    (long long)len, (long long)len - 1);
  }
  json_t *res = a->frame_range ? json_array() : NULL;
  json_t *one = NULL;
  rc = 0;
  for (int64_t f = a->frame_lo; f <= a->frame_hi && !rc; f++) {
    vtl_params p;
    if (vtl_params_at(doc, f, &p) || !(one = cli_params_json(&p))) {
      rc = CLI_ESYS;
      break;
    }
    if (res) json_array_append_new(res, one);
  }
  vtl_doc_free(doc);
  if (rc) {
    json_decref(res);
    return rc;
  }
  char *out = json_dumps(res ? res : one, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                              JSON_REAL_PRECISION(10));
  json_decref(res ? res : one);
  return out ? cli_output_line(a, out) : CLI_ESYS;
}

static int cmd_import_deforum(cli_args *a) {
  vtl_doc *doc;
  int rc = cli_load_deforum(a, &doc);
  if (rc) return rc;
  return cli_output_doc(a, doc);
}

static int cmd_export_deforum(cli_args *a) {
  vtl_doc *doc;
  int rc = cli_load_doc(a, &doc);
  if (rc) return rc;
  vtl_warnings w = {0};
  vtl_error err;
  char *out;
  rc = vtl_deforum_export(doc, &out, &w, &err);
  vtl_doc_free(doc);
  cli_print_warnings(&w, "export-deforum");
  vtl_warnings_free(&w);
  if (rc) return cli_fail("%s: %s", a->file, err.message);
  return cli_output_line(a, out);
}

static int cmd_import_text(cli_args *a) {
  if (a->fps <= 0) return cli_fail("import-text: give --fps N (1..240)");
  size_t len;
  char *text;
  int rc = cli_read_file(a->file, &text, &len);
  if (rc) return rc;
  vtl_manuscript_options opt = {.fps = a->fps,
                                .split = a->paragraphs ? VTL_SPLIT_PARAGRAPH
                                                       : VTL_SPLIT_SENTENCE};
  vtl_doc *doc;
  vtl_error err;
  rc = vtl_manuscript_import(text, len, &opt, &doc, &err);
  free(text);
  if (rc) return cli_fail("%s: %s", a->file, err.message);
  return cli_output_doc(a, doc);
}

static int cmd_apply_template(cli_args *a) {
  if (!a->shot || !a->name)
    return cli_fail("apply-template: give --shot ID and --template NAME");
  char *tpl;
  size_t tlen;
  int rc = cli_read_template(a->name, a->templates ? a->templates
                                                   : VTL_TEMPLATE_DIR,
                             &tpl, &tlen);
  if (rc) return rc;
  vtl_doc *doc;
  if ((rc = cli_load_doc(a, &doc))) {
    free(tpl);
    return rc;
  }
  vtl_id next = cli_next_free_id(doc);
  vtl_op *ops = NULL;
  size_t nops = 0;
  vtl_error err;
  rc = vtl_template_apply(doc, tpl, tlen, a->shot, a->intensity, &next, &ops,
                          &nops, &err);
  free(tpl);
  if (!rc) rc = vtl_doc_apply(doc, ops, nops, NULL, NULL, &err);
  vtl_ops_free(ops, nops);
  if (rc) {
    vtl_doc_free(doc);
    return cli_fail("%s: %s", a->name, err.message);
  }
  return cli_output_doc(a, doc);
}

static int cmd_save_template(cli_args *a) {
  if (!a->name || !a->nkeys)
    return cli_fail("save-template: give --name NAME and --keys ID,ID,...");
  vtl_doc *doc;
  int rc = cli_load_doc(a, &doc);
  if (rc) return rc;
  char *out;
  vtl_error err;
  rc = vtl_template_from_keys(doc, a->name, a->keys, a->nkeys, &out, &err);
  vtl_doc_free(doc);
  if (rc) return cli_fail("%s: %s", a->file, err.message);
  return cli_output_line(a, out);
}

static const struct {
  const char *name;
  int (*run)(cli_args *a);
} commands[] = {
  {"validate", cmd_validate},
  {"eval", cmd_eval},
  {"import-deforum", cmd_import_deforum},
  {"export-deforum", cmd_export_deforum},
  {"import-text", cmd_import_text},
  {"apply-template", cmd_apply_template},
  {"save-template", cmd_save_template},
};

int main(int argc, char **argv) {
  if (argc < 3) {
    usage();
    return CLI_EINPUT;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(argv[1], commands[i].name)) continue;
    cli_args a;
    int rc = cli_parse_args(argc - 2, argv + 2, &a);
    if (!rc) rc = commands[i].run(&a);
    cli_args_free(&a);
    return rc;
  }
  fprintf(stderr, "vtl-timeline: unknown command \"%s\"\n", argv[1]);
  usage();
  return CLI_EINPUT;
}
