/* main.c — vtl-refcheck: runs the cases of a reference kit against the
 * engine (the kit's README.md is the format; refcheck.c the runner).
 *
 *   vtl-refcheck [--kinds k1,k2] [--case NAME] [-v] DIR
 *
 * Exit status: 0 every selected case passed, 1 a case failed or the kit
 * could not be used, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"

static int usage(FILE *to) {
  fprintf(to,
          "usage: vtl-refcheck [--kinds k1,k2] [--case NAME] [-v] DIR\n"
          "  DIR          a reference kit (manifest.json inside)\n"
          "  --kinds LIST run only cases of these kinds (others: \"not run\")\n"
          "  --case NAME  run only this case\n"
          "  -v           print every compared output\n");
  return to == stderr ? 2 : 0;
}

int main(int argc, char **argv) {
  rc_options o = {0};
  for (int k = 1; k < argc; k++) {
    const char *a = argv[k];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return usage(stdout);
    if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
      o.verbose = true;
    } else if (strcmp(a, "--kinds") == 0 || strcmp(a, "--case") == 0) {
      if (k + 1 >= argc) return usage(stderr);
      if (a[2] == 'k') o.kinds = argv[++k];
      else o.case_name = argv[++k];
    } else if (strncmp(a, "--kinds=", 8) == 0) {
      o.kinds = a + 8;
    } else if (strncmp(a, "--case=", 7) == 0) {
      o.case_name = a + 7;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "vtl-refcheck: unknown option %s\n", a);
      return usage(stderr);
    } else if (!o.kit) {
      o.kit = a;
    } else {
      return usage(stderr);
    }
  }
  if (!o.kit || (o.kinds && !o.kinds[0])) return usage(stderr);
  return rc_run_kit(&o);
}
