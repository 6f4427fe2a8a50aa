/* config.c — `--config FILE` expanded into flags (see config.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* Flags the file may set: those taking a value, then the switches. */
static const char *const valued[] = {"listen", "data", "cert", "key", "origin",
                                     "web", "snapshot-every", "demo-timeline",
                                     "model-root", NULL};
static const char *const switches[] = {"demo", "render", NULL};

static char **out_argv; /* the expanded vector, freed at exit */
static int out_argc;

static void free_out(void) {
  for (int i = 0; i < out_argc; i++) free(out_argv[i]);
  free(out_argv);
}

static int in(const char *const *names, const char *key) {
  for (int i = 0; names[i]; i++)
    if (!strcmp(names[i], key)) return 1;
  return 0;
}

static int push(char ***v, int *n, const char *s) {
  char **nv = realloc(*v, (size_t)(*n + 2) * sizeof *nv);
  if (!nv) return -1;
  *v = nv;
  if (!(nv[*n] = strdup(s))) return -1;
  nv[++*n] = NULL;
  return 0;
}

/* One value of key as a flag argument; 2 if its type is wrong. */
static int push_value(char ***v, int *n, const char *file, const char *key,
                      json_t *val) {
  char num[32];
  const char *s = NULL;
  if (json_is_string(val)) s = json_string_value(val);
  else if (json_is_integer(val)) {
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(val));
    s = num;
  }
  if (!s) {
    fprintf(stderr, "vtl-server: %s: \"%s\" wants a string or integer\n", file,
            key);
    return 2;
  }
  char flag[64];
  snprintf(flag, sizeof flag, "--%s", key);
  return push(v, n, flag) || push(v, n, s) ? 2 : 0;
}

static int expand_file(const char *file, char ***v, int *n) {
  json_error_t jerr;
  json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    fprintf(stderr, "vtl-server: %s:%d:%d: %s\n", file, jerr.line, jerr.column,
            jerr.text);
    return 2;
  }
  int rc = 0;
  if (!json_is_object(root)) {
    fprintf(stderr, "vtl-server: %s: expected a JSON object\n", file);
    rc = 2;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (rc) break;
    if (in(switches, key)) {
      if (!json_is_boolean(val)) {
        fprintf(stderr, "vtl-server: %s: \"%s\" wants true or false\n", file, key);
        rc = 2;
      } else if (json_is_true(val)) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", key);
        rc = push(v, n, flag) ? 2 : 0;
      }
    } else if (!in(valued, key)) {
      fprintf(stderr, "vtl-server: %s: unknown setting \"%s\"\n", file, key);
      rc = 2;
    } else if (json_is_array(val)) {
      size_t i;
      json_t *item;
      json_array_foreach(val, i, item) {
        if ((rc = push_value(v, n, file, key, item))) break;
      }
    } else {
      rc = push_value(v, n, file, key, val);
    }
  }
  json_decref(root);
  return rc;
}

int vtl_config_expand(int *argc, char ***argv) {
  int at = -1;
  for (int i = 1; i < *argc; i++)
    if (!strcmp((*argv)[i], "--config")) at = i;
  if (at < 0) return 0;
  if (at + 1 >= *argc) {
    fprintf(stderr, "vtl-server: --config needs a FILE\n");
    return 2;
  }
  char **v = NULL;
  int n = 0, rc = push(&v, &n, (*argv)[0]) ? 2 : 0;
  if (!rc) rc = expand_file((*argv)[at + 1], &v, &n);
  for (int i = 1; i < *argc && !rc; i++) {
    if (i == at || i == at + 1) continue;
    if (!strcmp((*argv)[i], "--config")) {
      fprintf(stderr, "vtl-server: --config given twice\n");
      rc = 2;
    } else {
      rc = push(&v, &n, (*argv)[i]) ? 2 : 0;
    }
  }
  out_argv = v;
  out_argc = n;
  atexit(free_out);
  if (rc) return rc;
  *argc = n;
  *argv = v;
  return 0;
}
