/* test_haproxy.c — several vtl-server processes behind a real HAProxy
 * (docs/scaling.md): the proxy sends every client of a room to the same
 * process by hashing the room in the URL (/ws?room=NAME), so the room keeps
 * one writer and one total order.
 *
 *   ws_url_room  (no proxy) the server reads ?room= (%-decoded) and refuses
 *                a Hello that names another room (ROOM_NOT_FOUND, fatal)
 *   haproxy      two servers with separate --data directories holding the
 *                same rooms, haproxy -db in front with the configuration of
 *                docs/scaling.md; clients of "alpha" edit through the proxy
 *                and converge; /metrics and direct connections show that
 *                alpha lives on one process and "gamma" on the other
 *
 * haproxy is looked up as $VTL_HAPROXY, /usr/sbin/haproxy, /usr/bin/haproxy
 * (Debian: apt-get install haproxy); without it the test exits 77 (ctest:
 * skipped). Every process is killed and every directory removed, pass or
 * fail (the servers also die with the test: PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "task.h"
#include "vtl_client.h"
#include "vtl_import.h"

#define T_MS 10000 /* generous: the servers run under sanitizers */
#define E(x) VTL__V1__ERROR__CODE__CODE_##x
#define NSHARDS 2

/* HAProxy's djb2 (the `djb2` converter without avalanche), mod NSHARDS: the
 * backend (vtl0, vtl1) that the configuration below routes a room to. */
static unsigned shard_of(const char *room) {
  uint32_t h = 5381;
  for (const unsigned char *p = (const unsigned char *)room; *p; p++)
    h = (h << 5) + h + *p;
  return h % NSHARDS;
}

static const char *haproxy_bin(void) {
  const char *env = getenv("VTL_HAPROXY");
  if (env && env[0]) return access(env, X_OK) == 0 ? env : NULL;
  static const char *paths[] = {"/usr/sbin/haproxy", "/usr/bin/haproxy",
                                "/usr/local/sbin/haproxy"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
    if (access(paths[i], X_OK) == 0) return paths[i];
  return NULL;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  socklen_t al = sizeof a;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &al) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static bool port_accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

/* The value of sample `name` (labels included) on a metrics page; -1 when
 * absent. */
static double metric(const char *page, const char *name) {
  size_t n = strlen(name);
  for (const char *p = page; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (strncmp(p, name, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

static double room_metric(int port, const char *family, const char *room) {
  static char page[1 << 20];
  char name[128];
  if (vtc_http_get(port, "/metrics", page, sizeof page, NULL, 0) != 200) return -2;
  snprintf(name, sizeof name, "%s{room=\"%s\"}", family, room);
  return metric(page, name);
}

static int json_eq(vtc_conn *a, vtc_conn *b) {
  char *ja = vtc_json(a), *jb = vtc_json(b);
  int eq = ja && jb && strcmp(ja, jb) == 0;
  if (!eq) fprintf(stderr, "replicas differ:\n%s\n---\n%s\n", ja, jb);
  free(ja);
  free(jb);
  return eq;
}

/* Connects to port with the room in the URL, says Hello, waits for the
 * catch-up. NULL on failure. */
static vtc_conn *join(vtc_ctx *c, int port, const char *room,
                      const char *token) {
  vtc_conn *k = vtc_connect_room(c, port, room);
  if (!k || vtc_wait_open(k, T_MS)) return NULL;
  vtc_hello(k, room, token, 0);
  if (vtc_wait_synced(k, T_MS)) return NULL;
  return k;
}

/* ---- the fixture: two servers and a haproxy, torn down whatever happens ---- */

typedef struct {
  char top[256], dir[NSHARDS][300], cfg[300], log[300];
  vtc_server srv[NSHARDS];
  bool srv_up[NSHARDS];
  pid_t hap;
  int hport;
  vtc_ctx c;
  bool ctx_up;
} fixture;

static int copy_file(const char *from, const char *to) {
  char buf[65536];
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ssize_t n = 0;
  while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) { n = -1; break; }
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  return in >= 0 && out >= 0 && n == 0 ? 0 : -1;
}

/* docs/scaling.md's configuration, for NSHARDS servers on loopback. */
static int write_cfg(fixture *f) {
  FILE *o = fopen(f->cfg, "w");
  if (!o) return -1;
  fprintf(o,
    "global\n"
    "  maxconn 1024\n"
    "defaults\n"
    "  mode http\n"
    "  timeout connect 2s\n"
    "  timeout client 30s\n"
    "  timeout server 30s\n"
    "  timeout http-request 10s\n"
    "  timeout tunnel 1h\n"
    "  option httpchk GET /metrics\n"
    "  default-server check inter 2s fall 3 rise 2\n"
    "frontend vtl\n"
    "  bind 127.0.0.1:%d\n"
    "  http-request set-var(txn.shard) url_param(room),url_dec(1),djb2,mod(%d)"
    " if { url_param(room) -m found }\n"
    "  use_backend vtl%%[var(txn.shard)] if { var(txn.shard) -m found }\n"
    "  default_backend vtl_any\n",
    f->hport, NSHARDS);
  for (int i = 0; i < NSHARDS; i++)
    fprintf(o, "backend vtl%d\n  server s%d 127.0.0.1:%d\n", i, i,
            f->srv[i].port);
  fprintf(o, "backend vtl_any\n  balance roundrobin\n");
  for (int i = 0; i < NSHARDS; i++)
    fprintf(o, "  server s%d 127.0.0.1:%d\n", i, f->srv[i].port);
  return fclose(o);
}

static void print_log(const fixture *f) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "sed 's/^/haproxy: /' %s >&2", f->log);
  if (system(cmd)) { /* nothing to add */ }
}

/* Checks the configuration, starts haproxy -db, waits until it accepts. */
static int start_haproxy(fixture *f, const char *bin) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s -c -q -f %s > %s 2>&1", bin, f->cfg, f->log);
  if (system(cmd) != 0) {
    fprintf(stderr, "haproxy -c refused %s:\n", f->cfg);
    print_log(f);
    return -1;
  }
  f->hap = fork();
  if (f->hap < 0) return -1;
  if (f->hap == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan when the test dies */
    int fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
    execl(bin, "haproxy", "-db", "-f", f->cfg, (char *)NULL);
    _exit(127);
  }
  for (int waited = 0; waited < T_MS; waited += 20) {
    int st;
    if (waitpid(f->hap, &st, WNOHANG) == f->hap) {
      f->hap = 0;
      fprintf(stderr, "haproxy exited at start-up:\n");
      print_log(f);
      return -1;
    }
    if (port_accepts(f->hport)) return 0;
    usleep(20000);
  }
  fprintf(stderr, "haproxy does not accept on %d\n", f->hport);
  print_log(f);
  return -1;
}

static void stop_haproxy(fixture *f) {
  if (f->hap <= 0) return;
  kill(f->hap, SIGTERM);
  int st;
  for (int i = 0; i < 300; i++) {
    if (waitpid(f->hap, &st, WNOHANG) == f->hap) { f->hap = 0; return; }
    usleep(10000);
  }
  kill(f->hap, SIGKILL);
  waitpid(f->hap, &st, 0);
  f->hap = 0;
}

/* Stops everything that runs; the servers' exit statuses (0 = clean, as
 * every server test demands) are returned as non-zero when one failed. */
static int teardown(fixture *f) {
  int rc = 0;
  stop_haproxy(f);
  for (int i = 0; i < NSHARDS; i++)
    if (f->srv_up[i]) {
      int st = vtc_server_stop(&f->srv[i], f->ctx_up ? &f->c : NULL);
      if (st != 0) {
        fprintf(stderr, "vtl-server %d exited with %d\n", i, st);
        rc = 1;
      }
      f->srv_up[i] = false;
    }
  if (f->ctx_up) vtc_ctx_done(&f->c);
  f->ctx_up = false;
  if (f->top[0]) vtc_rmdir(f->top);
  return rc;
}

/* ---- the tests ----------------------------------------------------------------- */

/* Rooms "alpha" and "gamma" in one store, the same file copied to every
 * --data directory: each process could open either room (the same tokens),
 * so only the proxy decides where a room lives. */
static int setup(fixture *f, char dtok[][64], char vtok[][64],
                 const char *const rooms[], int nrooms, int nservers) {
  memset(f, 0, sizeof *f);
  if (vtc_tmpdir(f->top, sizeof f->top)) return -1;
  for (int i = 0; i < nservers; i++) {
    snprintf(f->dir[i], sizeof f->dir[i], "%s/s%d", f->top, i);
    if (mkdir(f->dir[i], 0700)) return -1;
  }
  for (int r = 0; r < nrooms; r++)
    if (vtc_room_create(f->dir[0], rooms[r], dtok[r], vtok[r])) return -1;
  for (int i = 1; i < nservers; i++) {
    char from[400], to[400];
    snprintf(from, sizeof from, "%s/vtl.db", f->dir[0]);
    snprintf(to, sizeof to, "%s/vtl.db", f->dir[i]);
    if (copy_file(from, to)) return -1;
  }
  for (int i = 0; i < nservers; i++) {
    if (vtc_server_start(&f->srv[i], f->dir[i], NULL)) return -1;
    f->srv_up[i] = true;
  }
  if (vtc_ctx_init(&f->c)) return -1;
  f->ctx_up = true;
  return 0;
}

static int ws_url_room_body(fixture *f) {
  const char *rooms[2] = {"alpha", "caf\xc3\xa9"}; /* the second %-encoded */
  char dtok[2][64], vtok[2][64];
  ASSERT_OK(setup(f, dtok, vtok, rooms, 2, 1));
  int port = f->srv[0].port;
  /* the room in the URL, %-encoded by the client, equal to the Hello's */
  vtc_conn *a = join(&f->c, port, rooms[1], dtok[1]);
  ASSERT_NOT_NULL(a);
  ASSERT_CONTAINS(a->path, "/ws?room=caf%C3%A9");
  ASSERT_EQ(a->role, VTL__V1__ROLE__ROLE_DIRECTOR);
  /* no room in the URL: still accepted (direct clients, older clients) */
  vtc_conn *b = vtc_connect(&f->c, port);
  ASSERT_OK(vtc_wait_open(b, T_MS));
  vtc_hello(b, "alpha", vtok[0], 0);
  ASSERT_OK(vtc_wait_synced(b, T_MS));
  /* another room in the Hello than in the URL: fatal, nothing opened */
  vtc_conn *m = vtc_connect_room(&f->c, port, "alpha");
  ASSERT_OK(vtc_wait_open(m, T_MS));
  vtc_hello(m, rooms[1], dtok[1], 0);
  ASSERT_OK(vtc_wait_errors(m, 1, T_MS));
  ASSERT_EQ(m->errs[0].code, E(ROOM_NOT_FOUND));
  ASSERT(m->errs[0].fatal);
  ASSERT_CONTAINS(m->errs[0].message, "URL names room \"alpha\"");
  ASSERT_OK(vtc_wait_closed(m, T_MS));
  ASSERT(!m->welcomed);
  return 0;
}

TEST_IMPL(ws_url_room) {
  fixture f;
  memset(&f, 0, sizeof f);
  int rc = ws_url_room_body(&f);
  return teardown(&f) || rc;
}

static int haproxy_body(fixture *f, const char *bin) {
  /* two rooms that the configuration sends to different processes */
  const char *rooms[3] = {"alpha", "gamma", "se\xc3\xb1" "al"}; /* señal */
  const unsigned home[3] = {shard_of(rooms[0]), shard_of(rooms[1]),
                            shard_of(rooms[2])};
  ASSERT_NE(home[0], home[1]);
  char dtok[3][64], vtok[3][64];
  ASSERT_OK(setup(f, dtok, vtok, rooms, 3, NSHARDS));
  snprintf(f->cfg, sizeof f->cfg, "%s/haproxy.cfg", f->top);
  snprintf(f->log, sizeof f->log, "%s/haproxy.log", f->top);
  int started = -1;
  for (int attempt = 0; attempt < 3 && started; attempt++) {
    f->hport = free_port(); /* a race with other tests: retried */
    ASSERT_GT(f->hport, 0);
    ASSERT_OK(write_cfg(f));
    started = start_haproxy(f, bin);
  }
  ASSERT_OK(started);
  fprintf(stderr, "haproxy on %d; vtl-server s0 on %d, s1 on %d; "
          "alpha -> s%u, gamma -> s%u\n", f->hport, f->srv[0].port,
          f->srv[1].port, home[0], home[1]);

  /* 4 directors of alpha, a director and a viewer of gamma, all through
   * the proxy */
  enum { NA = 4, ROUNDS = 12 };
  vtc_conn *al[NA], *gd, *gv;
  for (int i = 0; i < NA; i++) {
    al[i] = join(&f->c, f->hport, "alpha", dtok[0]);
    ASSERT_NOT_NULL(al[i]);
  }
  gd = join(&f->c, f->hport, "gamma", dtok[1]);
  gv = join(&f->c, f->hport, "gamma", vtok[1]);
  ASSERT(gd && gv);
  ASSERT_EQ(gv->role, VTL__V1__ROLE__ROLE_VIEWER);

  /* concurrent edits: each director makes a track, then keyframes on it
   * and renames the timeline (a conflict the total order settles) */
  vtl_id track[NA];
  uint64_t good = 0;
  for (int d = 0; d < NA; d++) {
    vtl_op op;
    track[d] = vtc_mint(al[d]);
    CHECK(vtl_op_create(&op, VTL_ENT_TRACK, track[d]));
    CHECK(vtl_op_add_str(&op, "name", "t"));
    CHECK(vtc_send_batch(al[d], vtc_mint(al[d]), &op, 1));
    vtl_op_free(&op);
    good++;
  }
  for (int i = 0; i < ROUNDS; i++)
    for (int d = 0; d < NA; d++) {
      vtl_op ops[2];
      char name[32];
      CHECK(vtl_op_create(&ops[0], VTL_ENT_KEYFRAME, vtc_mint(al[d])));
      CHECK(vtl_op_add_int(&ops[0], "track", (int64_t)track[d]));
      CHECK(vtl_op_add_int(&ops[0], "frame", i));
      CHECK(vtl_op_add_real(&ops[0], "value", i * 0.25 + d));
      snprintf(name, sizeof name, "d%d r%d", d, i);
      CHECK(vtl_op_set_str(&ops[1], VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "name",
                           name));
      CHECK(vtc_send_batch(al[d], vtc_mint(al[d]), ops, 2));
      vtl_op_free(&ops[0]);
      vtl_op_free(&ops[1]);
      good++;
    }
  for (int i = 0; i < 3; i++) {
    vtl_op op;
    CHECK(vtl_op_create(&op, VTL_ENT_MARKER, vtc_mint(gd)));
    CHECK(vtl_op_add_int(&op, "frame", i));
    CHECK(vtl_op_add_str(&op, "label", "g"));
    CHECK(vtc_send_batch(gd, vtc_mint(gd), &op, 1));
    vtl_op_free(&op);
  }
  for (int d = 0; d < NA; d++) ASSERT_OK(vtc_wait_seq(al[d], good, T_MS));
  ASSERT_OK(vtc_wait_seq(gd, 3, T_MS));
  ASSERT_OK(vtc_wait_seq(gv, 3, T_MS));

  /* alpha's replicas agree: one writer ordered every batch */
  for (int d = 0; d < NA; d++) {
    ASSERT(!al[d]->diverged);
    ASSERT_U64_EQ(al[d]->seq, good);
    ASSERT_EQ(al[d]->nerrs, 0);
    if (d) ASSERT(json_eq(al[0], al[d]));
  }
  ASSERT_EQ(vtl_doc_count(al[0]->doc, VTL_ENT_KEYFRAME), NA * ROUNDS);
  ASSERT(json_eq(gd, gv));

  /* where each room lives: every alpha session on its home process, none
   * on the other; gamma the other way round */
  int ha = f->srv[home[0]].port, hg = f->srv[home[1]].port;
  ASSERT_EQ(room_metric(ha, "vtl_room_sessions", "alpha"), NA);
  ASSERT_EQ(room_metric(ha, "vtl_room_seq", "alpha"), (double)good);
  ASSERT_EQ(room_metric(ha, "vtl_room_sessions", "gamma"), -1); /* not open */
  ASSERT_EQ(room_metric(hg, "vtl_room_sessions", "gamma"), 2);
  ASSERT_EQ(room_metric(hg, "vtl_room_seq", "gamma"), 3);
  ASSERT_EQ(room_metric(hg, "vtl_room_sessions", "alpha"), -1);

  /* the home process' document equals the replicas; the other process'
   * copy of the store never saw an edit of the room */
  vtc_conn *ra = join(&f->c, ha, "alpha", vtok[0]);
  ASSERT_NOT_NULL(ra);
  ASSERT_U64_EQ(ra->welcome_seq, good);
  ASSERT(json_eq(al[0], ra));
  vtc_conn *rg = join(&f->c, hg, "gamma", vtok[1]);
  ASSERT_NOT_NULL(rg);
  ASSERT_U64_EQ(rg->welcome_seq, 3);
  ASSERT(json_eq(gd, rg));
  vtc_conn *xa = join(&f->c, hg, "alpha", vtok[0]);
  vtc_conn *xg = join(&f->c, ha, "gamma", vtok[1]);
  ASSERT(xa && xg);
  ASSERT_U64_EQ(xa->welcome_seq, 0);
  ASSERT_U64_EQ(xg->welcome_seq, 0);

  /* a late joiner through the proxy lands on the home process too */
  vtc_conn *late = join(&f->c, f->hport, "alpha", vtok[0]);
  ASSERT_NOT_NULL(late);
  ASSERT_U64_EQ(late->welcome_seq, good);
  ASSERT(json_eq(al[0], late));
  ASSERT_EQ(room_metric(ha, "vtl_room_sessions", "alpha"), NA + 2);

  /* a name outside ASCII, %-encoded in the URL: the proxy hashes the
   * decoded UTF-8 bytes, as shard_of (docs/scaling.md) does (the encoded
   * text "se%C3%B1al" would go to the other process) */
  vtc_conn *u = join(&f->c, f->hport, rooms[2], dtok[2]);
  ASSERT_NOT_NULL(u);
  ASSERT_CONTAINS(u->path, "?room=se%C3%B1al"); /* hashes elsewhere */
  ASSERT_EQ(room_metric(f->srv[home[2]].port, "vtl_room_sessions", rooms[2]), 1);
  ASSERT_EQ(room_metric(f->srv[!home[2]].port, "vtl_room_sessions", rooms[2]), -1);

  /* through the proxy, a Hello for another room than the URL's: refused */
  vtc_conn *m = vtc_connect_room(&f->c, f->hport, "alpha");
  ASSERT_OK(vtc_wait_open(m, T_MS));
  vtc_hello(m, "gamma", dtok[1], 0);
  ASSERT_OK(vtc_wait_errors(m, 1, T_MS));
  ASSERT_EQ(m->errs[0].code, E(ROOM_NOT_FOUND));
  ASSERT(m->errs[0].fatal);

  /* the web client's page (no room) is served through the proxy too */
  static char page[1 << 16];
  ASSERT_EQ(vtc_http_get(f->hport, "/", page, sizeof page, NULL, 0), 200);
  return 0;
}

TEST_IMPL(haproxy) {
  const char *bin = haproxy_bin();
  if (!bin) {
    fprintf(stderr, "haproxy not found ($VTL_HAPROXY, /usr/sbin/haproxy): "
            "skipped (Debian: apt-get install haproxy)\n");
    exit(77);
  }
  fixture f;
  memset(&f, 0, sizeof f);
  int rc = haproxy_body(&f, bin);
  if (rc && f.log[0]) print_log(&f);
  return teardown(&f) || rc;
}

TEST_LIST(
  TEST_ENTRY(ws_url_room)
  TEST_ENTRY(haproxy)
)
