/* test_server_edges.c — vtl-server at its edges, against the real process:
 * the limits (ops per batch, batch rate), hostile input from one client
 * while another keeps editing, static files and path escapes, /metrics,
 * TLS with a self-signed certificate, and the Origin allow-list.
 *
 * Same habits as test_server.c: a fresh --data directory and server per
 * test, SIGTERM at the end must give exit status 0 (sanitizers included).
 * HTTP is spoken over a plain socket (vtc_http_get) so that request targets go
 * out exactly as written, unnormalised.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "task.h"
#include "vtl_client.h"
#include "vtl_import.h"
#include "wire.h"

#define T_MS 10000 /* generous: the server runs under sanitizers */
#define E(x) VTL__V1__ERROR__CODE__CODE_##x

typedef struct {
  char dir[256];
  char dtok[64], vtok[64];
  vtc_server srv;
  vtc_ctx c;
} fixture;

/* Starts a server with extra arguments (NULL-terminated list or NULL). */
static int setup_args(fixture *f, const char *const *args) {
  memset(f, 0, sizeof *f);
  CHECK(vtc_tmpdir(f->dir, sizeof f->dir));
  CHECK(vtc_room_create(f->dir, "film", f->dtok, f->vtok));
  CHECK(vtc_server_start_argv(&f->srv, f->dir, NULL, args));
  CHECK(vtc_ctx_init(&f->c));
  return 0;
}

static int teardown(fixture *f) {
  int rc = vtc_server_stop(&f->srv, &f->c);
  vtc_ctx_done(&f->c);
  vtc_rmdir(f->dir);
  return rc;
}

static vtc_conn *join_ex(fixture *f, const char *token, const char *origin,
                         bool tls) {
  vtc_conn *k = vtc_connect_ex(&f->c, f->srv.port, origin, tls);
  if (!k || vtc_wait_open(k, T_MS)) return NULL;
  vtc_hello(k, "film", token, 0);
  if (vtc_wait_synced(k, T_MS)) return NULL;
  return k;
}
static vtc_conn *join(fixture *f, const char *token) {
  return join_ex(f, token, "127.0.0.1", false);
}

static void op_marker(vtl_op *op, vtl_id id, int64_t frame) {
  CHECK(vtl_op_create(op, VTL_ENT_MARKER, id));
  CHECK(vtl_op_add_int(op, "frame", frame));
  CHECK(vtl_op_add_str(op, "label", "mark"));
}

static uint64_t send_marker(vtc_conn *k) {
  vtl_op op;
  vtl_id id = vtc_mint(k);
  op_marker(&op, id, (int64_t)(id % 1000));
  uint64_t b = vtc_mint(k);
  CHECK(vtc_send_batch(k, b, &op, 1));
  vtl_op_free(&op);
  return b;
}

static int json_eq(vtc_conn *a, vtc_conn *b) {
  char *ja = vtc_json(a), *jb = vtc_json(b);
  int eq = ja && jb && strcmp(ja, jb) == 0;
  if (!eq) fprintf(stderr, "replicas differ:\n%s\n---\n%s\n", ja, jb);
  free(ja);
  free(jb);
  return eq;
}

/* Waits until k has an Ops or an Error for every batch id in ids. */
typedef struct { vtc_conn *k; const uint64_t *ids; size_t n; } resolved_wait;
static bool all_resolved(void *p) {
  resolved_wait *w = p;
  if (w->k->closed) return true;
  for (size_t i = 0; i < w->n; i++)
    if (!vtc_find_batch(w->k, w->ids[i]) && !vtc_find_error(w->k, w->ids[i]))
      return false;
  return true;
}
static int wait_resolved(vtc_conn *k, const uint64_t *ids, size_t n) {
  resolved_wait w = {k, ids, n};
  return vtc_run(k->ctx, all_resolved, &w, T_MS) == 0 && !k->closed ? 0 : -1;
}

static bool never(void *p) { return false; }
static void turn(vtc_ctx *c, int ms) { vtc_run(c, never, NULL, ms); }

/* ---- plain HTTP --------------------------------------------------------------- */

/* The value of the sample `name` (with its labels, exactly) on a metrics
 * page, or -1 when absent. */
static double metric(const char *page, const char *name) {
  size_t n = strlen(name);
  for (const char *p = page; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (strncmp(p, name, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

/* ---- limits ------------------------------------------------------------------- */

TEST_IMPL(batch_over_257_ops_limit) {
  fixture f;
  setup_args(&f, NULL);
  vtc_conn *a = join(&f, f.dtok);
  ASSERT_NOT_NULL(a);
  enum { N = 257 };
  vtl_op *ops = calloc(N, sizeof *ops);
  for (int i = 0; i < N; i++) op_marker(&ops[i], vtc_mint(a), i);
  uint64_t big = vtc_mint(a);
  CHECK(vtc_send_batch(a, big, ops, N));
  ASSERT_OK(vtc_wait_errors(a, 1, T_MS));
  ASSERT_EQ(a->errs[0].code, E(LIMIT));
  ASSERT_U64_EQ(a->errs[0].batch_id, big);
  ASSERT(!a->errs[0].fatal);
  ASSERT_CONTAINS(a->errs[0].message, "257");
  /* 256 is allowed: the same ops less the last */
  uint64_t ok = vtc_mint(a);
  CHECK(vtc_send_batch(a, ok, ops, N - 1));
  ASSERT_OK(vtc_wait_seq(a, 1, T_MS));
  ASSERT_U64_EQ(vtc_find_batch(a, ok)->seq, 1);
  ASSERT_NULL(vtc_find_batch(a, big));
  ASSERT_EQ(vtl_doc_count(a->doc, VTL_ENT_MARKER), N - 1);
  ASSERT_NULL(vtl_doc_get(a->doc, VTL_ENT_MARKER, ops[N - 1].id));
  for (int i = 0; i < N; i++) vtl_op_free(&ops[i]);
  free(ops);
  vtc_conn *late = join(&f, f.vtok);
  ASSERT_NOT_NULL(late);
  ASSERT_U64_EQ(late->seq, 1); /* the 257-op batch took no seq */
  ASSERT(json_eq(a, late));
  ASSERT_EQ(teardown(&f), 0);
  return 0;
}

TEST_IMPL(batch_rate_limited) {
  fixture f;
  setup_args(&f, NULL);
  vtc_conn *a = join(&f, f.dtok), *b = join(&f, f.dtok);
  ASSERT(a && b);
  enum { N = 400 }; /* at once: far over 50 per second, burst 50 */
  uint64_t ids[N];
  for (int i = 0; i < N; i++) ids[i] = send_marker(a);
  ASSERT_OK(wait_resolved(a, ids, N));
  size_t acked = 0, limited = 0;
  for (int i = 0; i < N; i++) {
    const vtc_error_rec *e = vtc_find_error(a, ids[i]);
    if (vtc_find_batch(a, ids[i])) { acked++; ASSERT_NULL(e); continue; }
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->code, E(RATE_LIMITED));
    ASSERT(!e->fatal);
    limited++;
  }
  ASSERT_EQ(acked + limited, N);
  ASSERT_GE(acked, 50);  /* the burst */
  ASSERT_GE(limited, 1);
  ASSERT_OK(vtc_wait_seq(a, acked, T_MS));
  ASSERT_U64_EQ(a->seq, acked); /* rejected batches took no seq */
  /* the limit is per session: b edits meanwhile */
  uint64_t bb = send_marker(b);
  ASSERT_OK(wait_resolved(b, &bb, 1));
  ASSERT_NOT_NULL(vtc_find_batch(b, bb));
  /* after a pause the bucket has refilled */
  turn(&f.c, 1100);
  uint64_t again = send_marker(a);
  ASSERT_OK(wait_resolved(a, &again, 1));
  ASSERT_NOT_NULL(vtc_find_batch(a, again));
  ASSERT_OK(vtc_wait_seq(b, acked + 2, T_MS));
  vtc_conn *late = join(&f, f.vtok);
  ASSERT_NOT_NULL(late);
  ASSERT_EQ(vtl_doc_count(late->doc, VTL_ENT_MARKER), acked + 2);
  ASSERT(json_eq(a, late));
  ASSERT(json_eq(b, late));
  ASSERT_EQ(teardown(&f), 0);
  return 0;
}

/* Kinds of hostile message, three of one kind per connection. */
enum { G_RANDOM, G_TRUNCATED, G_OVERSIZE, G_TEXT, G_SERVER_ONLY, G_EMPTY,
       G__COUNT };

static void send_garbage(vtc_conn *k, int kind, uint32_t *rng, int i) {
  uint8_t buf[512];
  switch (kind) {
  case G_RANDOM: {
    size_t n = 1 + *rng % sizeof buf;
    for (size_t j = 0; j < n; j++) {
      *rng = *rng * 1664525u + 1013904223u;
      buf[j] = (uint8_t)(*rng >> 24);
    }
    buf[0] = 0xff; /* field 31, varint wire type 7: never a valid Envelope */
    vtc_send_raw(k, buf, n, true);
    break;
  }
  case G_TRUNCATED: { /* a valid OpBatch Envelope cut short */
    vtl_op op;
    op_marker(&op, 1000 + (vtl_id)i, i);
    Vtl__V1__Op *pb = vtl_wire_op_to_pb(&op);
    Vtl__V1__OpBatch b = VTL__V1__OP_BATCH__INIT;
    b.batch_id = 77;
    b.n_ops = 1;
    b.ops = &pb;
    Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
    e.msg_case = VTL__V1__ENVELOPE__MSG_OP_BATCH;
    e.op_batch = &b;
    size_t n = vtl__v1__envelope__get_packed_size(&e);
    CHECK(n > sizeof buf);
    vtl__v1__envelope__pack(&e, buf);
    vtc_send_raw(k, buf, 1 + (size_t)i % (n - 1), true);
    vtl_wire_op_free_pb(pb);
    vtl_op_free(&op);
    break;
  }
  case G_OVERSIZE: {
    size_t n = (1u << 20) + 1 + (size_t)i;
    uint8_t *p = calloc(1, n);
    vtc_send_raw(k, p, n, true);
    free(p);
    break;
  }
  case G_TEXT:
    vtc_send_raw(k, "{\"op\":\"create\"}", 15, false);
    break;
  case G_SERVER_ONLY: { /* a Welcome from a client */
    Vtl__V1__Welcome w = VTL__V1__WELCOME__INIT;
    w.seq = 99;
    Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
    e.msg_case = VTL__V1__ENVELOPE__MSG_WELCOME;
    e.welcome = &w;
    vtc_send_env(k, &e);
    break;
  }
  case G_EMPTY: /* an Envelope with no msg */
    vtc_send_raw(k, "", 0, true);
    break;
  }
}

TEST_IMPL(garbage_while_another_edits) {
  fixture f;
  setup_args(&f, NULL);
  vtc_conn *b = join(&f, f.dtok), *v = join(&f, f.vtok);
  ASSERT(b && v);
  uint32_t rng = 12345;
  enum { ROUNDS = 4 };
  uint64_t ids[ROUNDS * G__COUNT * 2];
  size_t nids = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (int kind = 0; kind < G__COUNT; kind++) {
      vtc_conn *g = join(&f, round % 2 ? f.vtok : f.dtok);
      ASSERT_NOT_NULL(g);
      for (int i = 0; i < 3; i++) { /* b edits between the offences */
        send_garbage(g, kind, &rng, round * 7 + i);
        if (i < 2) ids[nids++] = send_marker(b);
        turn(&f.c, 5);
      }
      ASSERT_OK(vtc_wait_closed(g, T_MS));
      ASSERT_EQ(g->nerrs, 3);
      for (size_t j = 0; j < 3; j++) {
        int want = kind == G_OVERSIZE ? E(TOO_LARGE) : E(MALFORMED);
        ASSERT_EQ(g->errs[j].code, want);
        ASSERT_EQ(g->errs[j].fatal, j == 2); /* the 3rd offence closes */
      }
    }
  }
  /* garbage before Hello is fatal at once */
  vtc_conn *early = vtc_connect(&f.c, f.srv.port);
  ASSERT_OK(vtc_wait_open(early, T_MS));
  send_garbage(early, G_RANDOM, &rng, 0);
  ASSERT_OK(vtc_wait_closed(early, T_MS));
  ASSERT_EQ(early->nerrs, 1);
  ASSERT(early->errs[0].fatal);

  ASSERT_OK(wait_resolved(b, ids, nids));
  ASSERT_EQ(b->nerrs, 0); /* every edit of b went through */
  ASSERT_OK(vtc_wait_seq(b, nids, T_MS));
  ASSERT_OK(vtc_wait_seq(v, nids, T_MS));
  ASSERT(!b->diverged && !v->diverged);
  vtc_conn *late = join(&f, f.vtok);
  ASSERT_NOT_NULL(late);
  ASSERT_U64_EQ(late->seq, nids);
  ASSERT_EQ(vtl_doc_count(late->doc, VTL_ENT_MARKER), nids);
  ASSERT(json_eq(b, late));
  ASSERT(json_eq(v, late));
  ASSERT_EQ(teardown(&f), 0);
  return 0;
}

/* ---- HTTP: static files, escapes, /metrics ------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *fp = fopen(p, "wb");
  CHECK(fp == NULL);
  fputs(text, fp);
  fclose(fp);
}

TEST_IMPL(static_files) {
  static char body[1 << 20];
  char ct[256];
  /* the default root: clients/web of the source tree (ctest's cwd) */
  fixture f;
  setup_args(&f, NULL);
  ASSERT_EQ(vtc_http_get(f.srv.port, "/", body, sizeof body, ct, sizeof ct), 200);
  ASSERT_STR_EQ(ct, "text/html; charset=utf-8");
  ASSERT_CONTAINS(body, "browser client is coming");
  ASSERT_EQ(vtc_http_get(f.srv.port, "/index.html?room=film", body, sizeof body, ct,
                     sizeof ct), 200);
  ASSERT_EQ(vtc_http_get(f.srv.port, "/nope.js", body, sizeof body, ct, sizeof ct),
            404);
  ASSERT_EQ(teardown(&f), 0);

  /* --web DIR: a root inside a directory that also holds a secret */
  char top[256], web[300], sub[320], lnk[340];
  CHECK(vtc_tmpdir(top, sizeof top));
  snprintf(web, sizeof web, "%s/web", top);
  snprintf(sub, sizeof sub, "%s/sub", web);
  CHECK(mkdir(web, 0700));
  CHECK(mkdir(sub, 0700));
  write_file(top, "secret.txt", "root:TOPSECRET");
  write_file(web, "index.html", "<!doctype html><p>override</p>");
  write_file(web, "app.js", "console.log(1)");
  write_file(web, "style.css", "p{}");
  write_file(web, "data.json", "{}");
  write_file(web, "mod.wasm", "\x00" "asm");
  write_file(web, "pic.png", "png");
  write_file(web, "icon.svg", "<svg/>");
  write_file(web, "blob", "x");
  write_file(web, ".env", "TOKEN=x");
  write_file(sub, "index.html", "<p>sub</p>");
  snprintf(lnk, sizeof lnk, "%s/leak.txt", web);
  CHECK(symlink("../secret.txt", lnk));
  const char *args[] = {"--web", web, NULL};
  setup_args(&f, args);
  int port = f.srv.port;
  static const struct { const char *path, *type; } files[] = {
    {"/", "text/html; charset=utf-8"},
    {"/app.js", "text/javascript; charset=utf-8"},
    {"/style.css", "text/css; charset=utf-8"},
    {"/data.json", "application/json"},
    {"/mod.wasm", "application/wasm"},
    {"/pic.png", "image/png"},
    {"/icon.svg", "image/svg+xml"},
    {"/blob", "application/octet-stream"},
    {"/sub/", "text/html; charset=utf-8"},
    {"/sub", "text/html; charset=utf-8"},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    ASSERT_EQ(vtc_http_get(port, files[i].path, body, sizeof body, ct, sizeof ct),
              200);
    ASSERT_STR_EQ(ct, files[i].type);
  }
  ASSERT_EQ(vtc_http_get(port, "/", body, sizeof body, ct, sizeof ct), 200);
  ASSERT_CONTAINS(body, "override");
  static const char *escapes[] = {
    "/../secret.txt", "/../../../../../../etc/passwd",
    "/%2e%2e/secret.txt", "/%2E%2E/%2e%2e/%2e%2e/etc/passwd",
    "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt", "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt", "/./../secret.txt", "/..\\secret.txt",
    "//etc/passwd", "/etc/passwd", "/%2fetc%2fpasswd",
    "http://127.0.0.1/../secret.txt", "/leak.txt", "/.env", "/%2eenv",
    "/sub/..%5c..%5csecret.txt", "/%00/../secret.txt",
  };
  for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
    int st = vtc_http_get(port, escapes[i], body, sizeof body, ct, sizeof ct);
    /* refused (403), not found (404), a bad request (400), the connection
     * closed (-1), or (lws cuts "/%00/.." to "/") the index page: never a
     * file from outside the root */
    if (strstr(body, "root:") || strstr(body, "TOKEN=") ||
        !(st == 403 || st == 404 || st == 400 || st == -1 ||
          (st == 200 && strstr(body, "override")))) {
      fprintf(stderr, "escape %s: status %d, body %.80s\n", escapes[i], st, body);
      ASSERT(0);
    }
  }
  ASSERT_EQ(vtc_http_get(port, "/leak.txt", body, sizeof body, ct, sizeof ct), 403);
  ASSERT_EQ(vtc_http_get(port, "/.env", body, sizeof body, ct, sizeof ct), 404);
  ASSERT_EQ(vtc_http_get(port, "/missing.html", body, sizeof body, ct, sizeof ct),
            404);
  /* the websocket still works beside the files */
  ASSERT_NOT_NULL(join(&f, f.dtok));
  ASSERT_EQ(teardown(&f), 0);

  char out[4096], cmd[600];
  snprintf(cmd, sizeof cmd, "--listen 127.0.0.1:0 --data %s --web %s/nowhere",
           top, top);
  ASSERT_EQ(vtc_server_cmd(cmd, out, sizeof out), 1);
  ASSERT_CONTAINS(out, "is not a directory");
  vtc_rmdir(top);
  return 0;
}

TEST_IMPL(metrics_move) {
  static char p0[1 << 20], p1[1 << 20];
  char ct[256];
  fixture f;
  setup_args(&f, NULL);
  ASSERT_EQ(vtc_http_get(f.srv.port, "/metrics", p0, sizeof p0, ct, sizeof ct), 200);
  ASSERT_CONTAINS(ct, "text/plain; version=0.0.4");
  ASSERT_CONTAINS(p0, "# TYPE vtl_commit_latency_seconds histogram");
  ASSERT_EQ(metric(p0, "vtl_ops_applied_total"), 0);
  ASSERT_EQ(metric(p0, "vtl_rooms_loaded"), 0);
  ASSERT_EQ(metric(p0, "vtl_frames_out_total"), 0);

  vtc_conn *a = join(&f, f.dtok), *v = join(&f, f.vtok);
  ASSERT(a && v);
  uint64_t ids[6];
  for (int i = 0; i < 5; i++) ids[i] = send_marker(a);
  vtl_op del;
  CHECK(vtl_op_delete(&del, VTL_ENT_MARKER, 424242));
  ids[5] = vtc_mint(a);
  CHECK(vtc_send_batch(a, ids[5], &del, 1));
  vtl_op_free(&del);
  ASSERT_OK(wait_resolved(a, ids, 6));
  ASSERT_OK(vtc_wait_seq(v, 5, T_MS));
  turn(&f.c, 50); /* let the last writes go out */

  ASSERT_EQ(vtc_http_get(f.srv.port, "/metrics", p1, sizeof p1, ct, sizeof ct), 200);
  ASSERT_EQ(metric(p1, "vtl_ops_applied_total"), 5);
  ASSERT_EQ(metric(p1, "vtl_batches_applied_total"), 5);
  ASSERT_EQ(metric(p1, "vtl_batches_rejected_total{code=\"CODE_NOENT\"}"), 1);
  ASSERT_EQ(metric(p1, "vtl_commit_latency_seconds_count"), 5);
  ASSERT_EQ(metric(p1, "vtl_commit_latency_seconds_bucket{le=\"+Inf\"}"), 5);
  ASSERT(metric(p1, "vtl_commit_latency_seconds_sum") > 0);
  ASSERT_EQ(metric(p1, "vtl_sessions_opened_total"), 2);
  ASSERT_EQ(metric(p1, "vtl_sessions{state=\"live\"}"), 2);
  ASSERT_EQ(metric(p1, "vtl_rooms_loaded"), 1);
  ASSERT_EQ(metric(p1, "vtl_room_sessions{room=\"film\"}"), 2);
  ASSERT_EQ(metric(p1, "vtl_room_seq{room=\"film\"}"), 5);
  ASSERT(metric(p1, "vtl_messages_in_total") >= 8); /* 2 Hello, 6 batches */
  /* Welcome + Snapshot + 5 Ops (+ 1 Error) to each of two sessions */
  ASSERT(metric(p1, "vtl_messages_out_total") >= 14);
  ASSERT(metric(p1, "vtl_bytes_out_total") > metric(p0, "vtl_bytes_out_total"));
  ASSERT(metric(p1, "vtl_http_requests_total") >= 1);
  ASSERT(metric(p1, "vtl_send_queue_messages") >= 0);
  ASSERT(metric(p1, "vtl_frames_out_total") >= 0);
  ASSERT_EQ(teardown(&f), 0);
  return 0;
}

/* ---- TLS and Origin -------------------------------------------------------------- */

TEST_IMPL(tls_self_signed_round_trip) {
  char dir[256], cert[300], key[300], cmd[1200];
  CHECK(vtc_tmpdir(dir, sizeof dir));
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
           "-nodes -keyout %s -out %s -days 2 -subj /CN=127.0.0.1 "
           "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1", key, cert);
  ASSERT_EQ(system(cmd), 0);
  const char *args[] = {"--cert", cert, "--key", key, NULL};
  fixture f;
  setup_args(&f, args);
  ASSERT_CONTAINS(f.srv.startup, "https://127.0.0.1:");
  ASSERT_CONTAINS(f.srv.startup, "wss://127.0.0.1:");
  vtc_conn *a = join_ex(&f, f.dtok, "127.0.0.1", true);
  vtc_conn *v = join_ex(&f, f.vtok, "127.0.0.1", true);
  ASSERT(a && v);
  ASSERT_EQ(a->role, VTL__V1__ROLE__ROLE_DIRECTOR);
  uint64_t id = send_marker(a);
  ASSERT_OK(wait_resolved(a, &id, 1));
  ASSERT_NOT_NULL(vtc_find_batch(a, id));
  ASSERT_OK(vtc_wait_seq(v, 1, T_MS));
  ASSERT(json_eq(a, v));
  /* plain ws:// to the TLS port does not get a session */
  vtc_conn *plain = vtc_connect_ex(&f.c, f.srv.port, "127.0.0.1", false);
  ASSERT_NE(vtc_wait_open(plain, 2000), 0); /* no handshake: stalls or closes */
  ASSERT(!plain->open && !plain->welcomed);
  ASSERT_EQ(teardown(&f), 0);

  char out[4096];
  snprintf(cmd, sizeof cmd, "--listen 127.0.0.1:0 --data %s --cert %s", dir, cert);
  ASSERT_EQ(vtc_server_cmd(cmd, out, sizeof out), 2); /* --key missing */
  snprintf(cmd, sizeof cmd, "--listen 127.0.0.1:0 --data %s --cert %s/none.pem "
           "--key %s", dir, dir, key);
  ASSERT_EQ(vtc_server_cmd(cmd, out, sizeof out), 1);
  ASSERT_CONTAINS(out, "cannot read certificate");
  vtc_rmdir(dir);
  return 0;
}

TEST_IMPL(origin_allow_list) {
  const char *args[] = {"--origin", "https://good.example",
                        "--origin", "http://127.0.0.1:1234", NULL};
  fixture f;
  setup_args(&f, args);
  static const struct { const char *origin; bool ok; } cases[] = {
    {"https://good.example", true},
    {"HTTPS://Good.Example/", true},   /* case and a trailing '/' */
    {"http://127.0.0.1:1234", true},
    {"", true},                        /* no Origin: not a browser */
    {"https://evil.example", false},
    {"http://good.example", false},    /* another scheme */
    {"https://good.example.evil", false},
    {"null", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    vtc_conn *k = vtc_connect_ex(&f.c, f.srv.port, cases[i].origin, false);
    ASSERT_NOT_NULL(k);
    fprintf(stderr, "origin \"%s\": %s\n", cases[i].origin,
            cases[i].ok ? "let in" : "refused");
    if (cases[i].ok) {
      ASSERT_OK(vtc_wait_open(k, T_MS));
      vtc_hello(k, "film", f.dtok, 0);
      ASSERT_OK(vtc_wait_synced(k, T_MS));
    } else {
      ASSERT_OK(vtc_wait_closed(k, T_MS));
      if (k->open || k->welcomed)
        fprintf(stderr, "origin %s was let in\n", cases[i].origin);
      ASSERT(!k->welcomed);
      ASSERT_EQ(k->nerrs, 0); /* refused before any websocket */
    }
  }
  ASSERT_EQ(teardown(&f), 0);

  /* without --origin every Origin may connect */
  setup_args(&f, NULL);
  ASSERT_NOT_NULL(join_ex(&f, f.dtok, "https://evil.example", false));
  ASSERT_EQ(teardown(&f), 0);
  char out[4096], cmd[600];
  snprintf(cmd, sizeof cmd, "--listen 127.0.0.1:0 --data /tmp --origin good.example");
  ASSERT_EQ(vtc_server_cmd(cmd, out, sizeof out), 2);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(batch_over_257_ops_limit)
  TEST_ENTRY(batch_rate_limited)
  TEST_ENTRY(garbage_while_another_edits)
  TEST_ENTRY(static_files)
  TEST_ENTRY(metrics_move)
  TEST_ENTRY(tls_self_signed_round_trip)
  TEST_ENTRY(origin_allow_list)
)
