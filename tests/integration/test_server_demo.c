/* test_server_demo.c — `vtl-server --demo --demo-timeline FILE` against the
 * real process (server/demo_timeline.c): the film in FILE is what every
 * client's snapshot of room "demo" holds, it is imported once (a director's
 * edit survives a restart, nothing is imported twice), a bad file stops
 * the server with exit status 2 naming the file, and kill -9 at start-up
 * leaves the room imported or empty, never partial.
 *
 * The film is demo/demo.vtl.json as it is today: expected values are read
 * from the file with jansson (independently of the server's import), never
 * written here. Same habits as test_server.c: a fresh --data directory per
 * test, SIGTERM at the end must give exit status 0.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <jansson.h>
#include <sqlite3.h>
#include <unistd.h>

#include "task.h"
#include "vtl_client.h"
#include "vtl_import.h"

#define T_MS 10000 /* generous: the server runs under sanitizers */
#define FILM "demo/demo.vtl.json" /* tests run in the source tree */

typedef struct {
  char dir[256];
  char dtok[64], vtok[64];
  vtc_server srv;
  vtc_ctx c;
} fixture;

static const char *const film_args[] = {"--demo", "--demo-timeline", FILM,
                                        NULL};

/* Starts (or restarts) the server on f->dir with the film; the tokens are
 * this run's (--demo prints fresh ones). */
static int start(fixture *f) {
  CHECK(vtc_server_start_argv(&f->srv, f->dir, NULL, film_args));
  const char *d = strstr(f->srv.startup, "director token: ");
  const char *v = strstr(f->srv.startup, "viewer token:   ");
  if (!d || !v) return -1;
  sscanf(d + 16, "%63s", f->dtok);
  sscanf(v + 16, "%63s", f->vtok);
  return 0;
}

static int setup(fixture *f) {
  memset(f, 0, sizeof *f);
  CHECK(vtc_tmpdir(f->dir, sizeof f->dir));
  CHECK(vtc_ctx_init(&f->c));
  return start(f);
}

static int teardown(fixture *f) {
  int rc = vtc_server_stop(&f->srv, &f->c);
  vtc_ctx_done(&f->c);
  vtc_rmdir(f->dir);
  return rc;
}

static vtc_conn *join(fixture *f, const char *token) {
  vtc_conn *k = vtc_connect(&f->c, f->srv.port);
  if (!k || vtc_wait_open(k, T_MS)) return NULL;
  vtc_hello(k, "demo", token, 0);
  if (vtc_wait_synced(k, T_MS)) return NULL;
  return k;
}

/* ---- the film, read from the file ------------------------------------------ */

/* True when object o has no `key` or its value equals the string s. */
static bool str_is(json_t *o, const char *key, const char *s) {
  json_t *v = json_object_get(o, key);
  return !v || (json_is_string(v) && !strcmp(json_string_value(v), s));
}
/* The same for a number (integers and reals alike). */
static bool num_is(json_t *o, const char *key, double x) {
  json_t *v = json_object_get(o, key);
  return !v || (json_is_number(v) && json_number_value(v) == x);
}

static vtl_id id_of(json_t *o) {
  return (vtl_id)json_integer_value(json_object_get(o, "id"));
}

/* Checks doc against the film file field by field: every track, keyframe,
 * prompt clip and shot of the file is there with the file's values, and
 * nothing more; the timeline's name, fps and length match. 0 or -1. */
static int matches_file(vtl_doc *doc) {
  json_error_t jerr;
  json_t *root = json_load_file(FILM, 0, &jerr);
  ASSERT_NOT_NULL(root);
  json_t *tl = json_object_get(root, "timeline"), *o;
  const vtl_timeline *t = vtl_doc_timeline(doc);
  ASSERT(str_is(tl, "name", t->name));
  ASSERT(num_is(tl, "fps", t->fps));
  ASSERT(num_is(tl, "length", (double)t->length));
  size_t i;
  json_t *tracks = json_object_get(root, "tracks");
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), json_array_size(tracks));
  json_array_foreach(tracks, i, o) {
    const vtl_track *x = vtl_doc_get(doc, VTL_ENT_TRACK, id_of(o));
    ASSERT_NOT_NULL(x);
    ASSERT(str_is(o, "name", x->name));
    ASSERT(num_is(o, "order", (double)x->order));
  }
  json_t *keys = json_object_get(root, "keyframes");
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_KEYFRAME), json_array_size(keys));
  json_array_foreach(keys, i, o) {
    const vtl_keyframe *x = vtl_doc_get(doc, VTL_ENT_KEYFRAME, id_of(o));
    ASSERT_NOT_NULL(x);
    ASSERT(num_is(o, "track", (double)x->track));
    ASSERT(num_is(o, "frame", (double)x->frame));
    ASSERT(num_is(o, "value", x->value));
    ASSERT(str_is(o, "expr", x->expr));
  }
  json_t *clips = json_object_get(root, "prompt_clips");
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_PROMPT_CLIP), json_array_size(clips));
  json_array_foreach(clips, i, o) {
    const vtl_prompt_clip *x = vtl_doc_get(doc, VTL_ENT_PROMPT_CLIP, id_of(o));
    ASSERT_NOT_NULL(x);
    ASSERT(str_is(o, "text", x->text));
    ASSERT(num_is(o, "start", (double)x->start));
    ASSERT(num_is(o, "end", (double)x->end));
  }
  json_t *shots = json_object_get(root, "shots");
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_SHOT), json_array_size(shots));
  json_array_foreach(shots, i, o) {
    const vtl_shot *x = vtl_doc_get(doc, VTL_ENT_SHOT, id_of(o));
    ASSERT_NOT_NULL(x);
    ASSERT(str_is(o, "name", x->name));
    ASSERT(num_is(o, "start", (double)x->start));
    ASSERT(num_is(o, "seed", (double)x->seed));
  }
  json_decref(root);
  return 0;
}

/* True when the replica is the whole film, byte for byte as exported. */
static int equals_film(vtc_conn *k) {
  static char text[1 << 20];
  char *want = NULL, *got = vtc_json(k);
  vtl_doc *film = NULL;
  vtl_error err;
  FILE *fp = fopen(FILM, "rb");
  ASSERT_NOT_NULL(fp);
  size_t len = fread(text, 1, sizeof text, fp);
  fclose(fp);
  ASSERT_LT(len, sizeof text);
  ASSERT_OK(vtl_json_import(text, len, &film, &err));
  ASSERT_OK(vtl_json_export(film, &want));
  ASSERT_NOT_NULL(got);
  ASSERT_STR_EQ(got, want);
  vtl_doc_free(film);
  free(want);
  free(got);
  return 0;
}

/* ---- tests --------------------------------------------------------------------- */

/* (a) A fresh data directory: every client's snapshot holds the film, as
 * the server's own batch at seq 1. */
TEST_IMPL(demo_timeline_fresh) {
  fixture f;
  CHECK(setup(&f));
  vtc_conn *a = join(&f, f.vtok), *b = join(&f, f.dtok);
  ASSERT_NOT_NULL(a);
  ASSERT_NOT_NULL(b);
  ASSERT_U64_EQ(a->welcome_seq, 1);
  ASSERT_OK(matches_file(a->doc));
  ASSERT_OK(matches_file(b->doc));
  ASSERT_OK(equals_film(a));
  return teardown(&f);
}

/* (b) A director's edit of the imported film survives a restart, and the
 * film is not imported again (seq stays: import 1, edit 2). */
TEST_IMPL(demo_timeline_kept_after_edit) {
  fixture f;
  CHECK(setup(&f));
  vtc_conn *a = join(&f, f.dtok);
  ASSERT_NOT_NULL(a);
  size_t n;
  const void *const *tracks = vtl_doc_list(a->doc, VTL_ENT_TRACK, &n);
  ASSERT_GT(n, 0);
  vtl_id track = *(const vtl_id *)tracks[0];
  vtl_op op;
  CHECK(vtl_op_set_str(&op, VTL_ENT_TRACK, track, "name", "edited by a director"));
  CHECK(vtc_send_batch(a, vtc_mint(a), &op, 1));
  vtl_op_free(&op);
  ASSERT_OK(vtc_wait_seq(a, 2, T_MS));
  ASSERT_EQ(a->nerrs, 0);
  ASSERT_OK(vtc_server_stop(&f.srv, &f.c));

  CHECK(start(&f));
  vtc_conn *b = join(&f, f.vtok);
  ASSERT_NOT_NULL(b);
  ASSERT_U64_EQ(b->welcome_seq, 2);
  const vtl_track *t = vtl_doc_get(b->doc, VTL_ENT_TRACK, track);
  ASSERT_NOT_NULL(t);
  ASSERT_STR_EQ(t->name, "edited by a director");
  ASSERT_EQ(vtl_doc_count(b->doc, VTL_ENT_TRACK), n); /* no duplicates */
  return teardown(&f);
}

/* Runs the server on dir with args and expects exit status 2, a message
 * naming `file`, and no listening. 0 or -1. */
static int refuses(const char *dir, const char *args, const char *file) {
  char cmd[1024], out[4096];
  snprintf(cmd, sizeof cmd, "--listen 127.0.0.1:0 --data %s %s", dir, args);
  ASSERT_EQ(vtc_server_cmd(cmd, out, sizeof out), 2);
  ASSERT_CONTAINS(out, file);
  ASSERT(!strstr(out, "listening on"));
  return 0;
}

static int write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "wb");
  ASSERT_NOT_NULL(fp);
  fputs(text, fp);
  return fclose(fp);
}

/* (c) An unusable film file stops the server before it listens, with
 * exit status 2 and a message naming the file: unreadable, not JSON, not a
 * valid timeline, ids outside the server's range; from a flag and from a
 * --config file. */
TEST_IMPL(demo_timeline_bad_file) {
  char dir[256], path[512], args[1024];
  CHECK(vtc_tmpdir(dir, sizeof dir));
  static const char *const bad[][2] = {
    {"missing.json", NULL},
    {"not-json.json", "{\"format\": \"vtl-timeline\", "},
    {"invalid.json", "{\"format\": \"vtl-timeline\", \"version\": 1, \"tracks\": "
                     "[{\"id\": 2, \"name\": \"x\", \"target\": \"wobble\"}]}"},
    {"dangling.json", "{\"format\": \"vtl-timeline\", \"version\": 1, "
                      "\"keyframes\": [{\"id\": 3, \"track\": 99, \"frame\": 0}]}"},
    {"big-ids.json", "{\"format\": \"vtl-timeline\", \"version\": 1, \"markers\": "
                     "[{\"id\": 16777216, \"frame\": 0, \"label\": \"m\"}]}"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, bad[i][0]);
    if (bad[i][1]) CHECK(write_file(path, bad[i][1]));
    snprintf(args, sizeof args, "--demo --demo-timeline %s", path);
    ASSERT_OK(refuses(dir, args, path));
  }
  char conf[512];
  snprintf(conf, sizeof conf, "%s/vtl.conf.json", dir);
  snprintf(args, sizeof args, "{\"demo\": true, \"demo-timeline\": \"%s\"}", path);
  CHECK(write_file(conf, args));
  snprintf(args, sizeof args, "--config %s", conf);
  ASSERT_OK(refuses(dir, args, path));
  vtc_rmdir(dir);
  return 0;
}

/* The op rows of the database in dir (after a kill -9: what is durable). */
static int count_ops(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/vtl.db", dir);
  sqlite3 *db;
  sqlite3_stmt *q;
  int n = -1;
  if (sqlite3_open(path, &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT count(*) FROM ops", -1, &q, NULL) ==
          SQLITE_OK) {
    if (sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
  return n;
}

/* (d) kill -9 right after start-up, at a few delays: the database holds
 * the import whole (one op row) or not at all, and the restarted server
 * serves the whole film at seq 1 either way. */
TEST_IMPL(demo_timeline_kill9_at_startup) {
  static const int delays_us[] = {0, 0, 1000, 5000, 50000};
  int outcomes[2] = {0, 0};
  for (size_t i = 0; i < sizeof delays_us / sizeof delays_us[0]; i++) {
    fixture f;
    CHECK(setup(&f));
    if (delays_us[i]) usleep((useconds_t)delays_us[i]);
    vtc_server_kill9(&f.srv);
    int n = count_ops(f.dir);
    ASSERT(n == 0 || n == 1);
    outcomes[n]++;
    CHECK(start(&f));
    vtc_conn *k = join(&f, f.vtok);
    ASSERT_NOT_NULL(k);
    ASSERT_U64_EQ(k->welcome_seq, 1);
    ASSERT_OK(equals_film(k));
    ASSERT_OK(teardown(&f));
  }
  printf("kill -9 at start-up: %d times empty (imported at restart), %d times "
         "imported\n", outcomes[0], outcomes[1]);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(demo_timeline_fresh)
  TEST_ENTRY(demo_timeline_kept_after_edit)
  TEST_ENTRY(demo_timeline_bad_file)
  TEST_ENTRY(demo_timeline_kill9_at_startup)
)
