/* main.c — vtl-server: flags, sub-commands, start-up, signals, shutdown.
 *
 *   vtl-server --listen ADDR:PORT --data DIR [--demo [--demo-timeline FILE]]
 *              [--render [--model-root DIR]]
 *              [--snapshot-every N] [--web DIR] [--cert FILE --key FILE] [--origin URL]...
 *   vtl-server room create NAME --data DIR [--public] [--listen ADDR:PORT]
 *   vtl-server room list --data DIR
 *   (bench only: --demo-size N --demo-fps N --max-batch-rate N; --help)
 *
 * The program owns one libuv loop; libwebsockets joins it as a foreign loop
 * (LWS_SERVER_OPTION_LIBUV + foreign_loops). Shutdown on SIGINT/SIGTERM,
 * driven by a 10 ms timer on the loop:
 *   1. stop: refuse new upgrades, ignore new client messages;
 *   2. flush: wait until the store has committed and acknowledged all;
 *   3. close sessions: Error{SERVER_SHUTDOWN, fatal}, closed once their
 *      queues drained (at most 5 s in all);
 *   4. lws_context_destroy from the timer callback, join the render thread,
 *      close our handles; then uv_run returns, rooms are freed and
 *      uv_loop_close must give 0.
 * Exit status: 0 after a clean shutdown, 1 on a start-up error, 2 on usage
 * (and on a --config or --demo-timeline file that cannot be used).
 */
#define _DEFAULT_SOURCE /* realpath */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "wire.h"

#define SHUTDOWN_GRACE_MS 5000

uint64_t vtl_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void usage(FILE *f) {
  fprintf(f,
    "usage: vtl-server --listen ADDR:PORT --data DIR [--demo [--demo-timeline FILE]]\n"
    "                  [--render [--model-root DIR]]\n"
    "                  [--snapshot-every N] [--web DIR] [--cert FILE --key FILE] [--origin URL]...\n"
    "                  [--config FILE]\n"
    "       vtl-server room create NAME --data DIR [--public] [--listen ADDR:PORT]\n"
    "       vtl-server room list --data DIR\n"
    "\n"
    "  --listen ADDR:PORT  address to serve on (default 127.0.0.1:8080; port 0: any)\n"
    "  --data DIR          the data directory (SQLite database vtl.db)\n"
    "  --demo              open a room \"demo\" with fresh tokens printed at\n"
    "                      start-up, and publish a moving 256x256 test\n"
    "                      pattern to it at 12 fps (with --render: its film)\n"
    "  --demo-timeline FILE  with --demo: import this vtl timeline into room\n"
    "                      \"demo\" when the room is empty (checked before\n"
    "                      listening: a bad file exits 2)\n"
    "  --render            render every watched room's film with the diffusion\n"
    "                      engine (one thread, the default OpenCL device) and\n"
    "                      stream the frames to its subscribers\n"
    "  --model-root DIR    with --render: where timelines' models are (a\n"
    "                      timeline names one relative to DIR, e.g. \"models/tiny\";\n"
    "                      absolute paths and \"..\" are refused; default .)\n"
    "  --snapshot-every N  store a snapshot every N ops (default 1000)\n"
    "  --web DIR           static files served at / (default clients/web)\n"
    "  --cert FILE         TLS certificate (PEM); with --key: https and wss\n"
    "  --key FILE          TLS private key (PEM)\n"
    "  --origin URL        a browser Origin allowed to open the websocket\n"
    "                      (repeatable; without it any Origin may; requests\n"
    "                      without Origin and same-origin ones always may)\n"
    "  --config FILE       the same settings from a JSON object, e.g.\n"
    "                      {\"listen\": \"0.0.0.0:8080\", \"data\": \"/var/lib/vtl\",\n"
    "                       \"origin\": [\"https://example.org\"]}; flags override it\n"
    "  --public            room create: an empty token joins as a viewer\n"
    "\n"
    "  for benchmarks (bench/README.md), not for production:\n"
    "  --demo-size N       --demo pattern N x N pixels (16..1024; default 256)\n"
    "  --demo-fps N        --demo pattern frames per second (1..120; default 12)\n"
    "  --max-batch-rate N  OpBatch per second per session (1..1000000;\n"
    "                      default 50, the protocol limit)\n");
}

/* "ADDR:PORT", "[V6]:PORT" or "PORT". Returns 0 or -1. */
static int parse_listen(const char *arg, char *addr, size_t alen, int *port) {
  const char *colon = strrchr(arg, ':');
  const char *p = colon ? colon + 1 : arg;
  char *end;
  long v = strtol(p, &end, 10);
  if (!*p || *end || v < 0 || v > 65535) return -1;
  *port = (int)v;
  addr[0] = '\0';
  if (colon) {
    size_t n = (size_t)(colon - arg);
    if (n && arg[0] == '[' && arg[n - 1] == ']') { arg++; n -= 2; }
    if (n >= alen) return -1;
    memcpy(addr, arg, n);
    addr[n] = '\0';
  }
  return 0;
}

/* ---- sub-commands ----------------------------------------------------------- */

static int make_tokens(char dtok[64], char vtok[64], uint8_t dh[32],
                       uint8_t vh[32]) {
  if (vtl_auth_token_new(VTL__V1__ROLE__ROLE_DIRECTOR, dtok, 64) ||
      vtl_auth_token_new(VTL__V1__ROLE__ROLE_VIEWER, vtok, 64))
    return VTL_EIO;
  vtl_auth_hash(dtok, dh);
  vtl_auth_hash(vtok, vh);
  return 0;
}

static void print_room_urls(const char *name, const char *host, int port,
                            const char *dtok, const char *vtok) {
  printf("  director token: %s\n  viewer token:   %s\n", dtok, vtok);
  printf("  director: http://%s:%d/?room=%s#token=%s\n", host, port, name, dtok);
  printf("  viewer:   http://%s:%d/?room=%s#token=%s\n", host, port, name, vtok);
}

static int cmd_room_create(const char *name, const char *data, bool anon,
                           const char *host, int port, vtl_store *st) {
  char dtok[64], vtok[64], msg[512];
  uint8_t dh[32], vh[32];
  if (!name[0] || strlen(name) > VTL_MAX_NAME || !vtl_wire_utf8_valid(name)) {
    fprintf(stderr, "vtl-server: a room name is 1..256 bytes of UTF-8\n");
    return 2;
  }
  if (make_tokens(dtok, vtok, dh, vh)) {
    fprintf(stderr, "vtl-server: no randomness for tokens\n");
    return 1;
  }
  if (vtl_store_room_create(st, name, anon, dh, vh, msg, sizeof msg)) {
    fprintf(stderr, "vtl-server: %s\n", msg);
    return 1;
  }
  printf("room \"%s\" created in %s%s\n", name, data,
         anon ? " (anyone may watch)" : "");
  print_room_urls(name, host, port, dtok, vtok);
  printf("tokens are stored hashed: keep them, they cannot be shown again\n");
  return 0;
}

static void print_room(void *arg, const vtl_store_room_info *r) {
  (*(int *)arg)++;
  printf("%-24s seq %-8llu ops %-8llu %s\n", r->name,
         (unsigned long long)r->seq, (unsigned long long)r->nops,
         r->anonymous_viewers ? "public" : "");
}

/* ---- the demo room ------------------------------------------------------------- */

static int open_demo(vtl_store *st, const char *data, const char *host,
                     int port) {
  vtl_store_room_info info;
  if (vtl_store_room_find(st, "demo", &info) == VTL_ENOENT)
    return cmd_room_create("demo", data, true, host, port, st);
  char dtok[64], vtok[64];
  uint8_t dh[32], vh[32];
  if (make_tokens(dtok, vtok, dh, vh) ||
      vtl_store_room_set_tokens(st, info.id, dh, vh)) {
    fprintf(stderr, "vtl-server: cannot renew the demo room's tokens\n");
    return 1;
  }
  printf("room \"demo\" (fresh tokens for this run)\n");
  print_room_urls("demo", host, port, dtok, vtok);
  return 0;
}

/* ---- serving ----------------------------------------------------------------- */

typedef struct {
  vtl_server *sv;
  uv_signal_t sigint, sigterm;
  uv_timer_t stop_timer;
  int phase;            /* 0 running, 1 flushing, 2 closing sessions, 3 done */
  uint64_t deadline;    /* uv_now at which sessions are dropped */
} app;

static void on_stop_tick(uv_timer_t *t) {
  app *a = t->data;
  vtl_server *sv = a->sv;
  if (a->phase == 1) {
    bool inflight = false;
    for (vtl_room *r = sv->rooms; r; r = r->next)
      inflight |= r->inflight_head != NULL;
    if ((inflight || !vtl_store_idle(sv->store)) && uv_now(sv->loop) < a->deadline)
      return;
    for (vtl_session *s = sv->sessions; s; s = s->all_next)
      vtl_session_error(s, VTL__V1__ERROR__CODE__CODE_SERVER_SHUTDOWN, 0, true,
                        "the server is shutting down");
    a->phase = 2;
    return;
  }
  if (a->phase == 2) {
    if (sv->nsessions > 0 && uv_now(sv->loop) < a->deadline) return;
    a->phase = 3;
    vtl_store_close(sv->store); /* commits what is left, runs callbacks */
    sv->store = NULL;
    lws_context_destroy(sv->ctx); /* its handles close as the loop runs; */
    /* sv->ctx stays: destroy finishes in serve() after uv_run (4.1.6 frees
     * the context only on a second call, outside the loop; it NULLs sv->ctx
     * through info.pcontext when it is gone) */
    vtl_live_close(sv);
    vtl_render_stop(sv); /* joins the render thread */
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)t, NULL);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  app *a = h->data;
  if (a->phase) return;
  vtl_log(VTL_LOG_INFO, "server.stopping", "%s: shutting down",
          signum == SIGINT ? "SIGINT" : "SIGTERM");
  a->sv->stopping = true;
  a->phase = 1;
  a->deadline = uv_now(a->sv->loop) + SHUTDOWN_GRACE_MS;
  uv_timer_start(&a->stop_timer, on_stop_tick, 0, 10);
}

/* The HTTP / TLS / Origin flags (http.c). */
typedef struct {
  const char *web;            /* --web DIR, or NULL: clients/web */
  const char *cert, *key;     /* --cert / --key, or NULL */
  const char *origins[64];    /* --origin URLs (argv) */
  size_t norigins;
  unsigned max_batch_rate;    /* --max-batch-rate (bench) */
  unsigned demo_size, demo_fps; /* --demo-size / --demo-fps (bench) */
  vtl_doc *demo_timeline;     /* --demo-timeline FILE, loaded; owned */
  bool render;                /* --render */
  const char *model_root;     /* --model-root DIR (default ".") */
} serve_opts;

/* The web root: realpath of --web (which must be a directory), else of
 * clients/web in the working directory or the source tree; NULL and a
 * warning when there is none. Returns 0, or -1 when --web is unusable. */
static int web_root(const char *web, char **out) {
  static const char *defaults[] = {"clients/web", VTL_SOURCE_DIR "/clients/web"};
  struct stat st;
  *out = NULL;
  for (size_t i = 0; i < (web ? 1 : 2); i++) {
    const char *d = web ? web : defaults[i];
    char *r = realpath(d, NULL);
    if (r && stat(r, &st) == 0 && S_ISDIR(st.st_mode)) {
      *out = r;
      return 0;
    }
    free(r);
  }
  if (web) {
    fprintf(stderr, "vtl-server: --web %s is not a directory\n", web);
    return -1;
  }
  fprintf(stderr, "vtl-server: no clients/web directory: serving no files\n");
  return 0;
}

static int serve(const char *addr, int port, const char *data, bool demo,
                 unsigned snapshot_every, const serve_opts *o) {
  uv_loop_t loop;
  vtl_server sv;
  app a;
  char msg[1024];
  memset(&sv, 0, sizeof sv);
  memset(&a, 0, sizeof a);
  signal(SIGPIPE, SIG_IGN);
  char *root;
  if (web_root(o->web, &root)) return 1;
  for (int i = 0; o->cert && i < 2; i++) {
    const char *f = i ? o->key : o->cert;
    FILE *fp = fopen(f, "rb");
    if (!fp) {
      fprintf(stderr, "vtl-server: cannot read %s %s\n", i ? "key" : "certificate", f);
      free(root);
      return 1;
    }
    fclose(fp);
  }
  if (uv_loop_init(&loop) != 0) { free(root); return 1; }
  sv.loop = &loop;
  sv.cfg.listen_addr = addr[0] ? addr : NULL;
  sv.cfg.port = port;
  sv.cfg.data_dir = data;
  sv.cfg.snapshot_every = snapshot_every;
  sv.cfg.demo = demo;
  sv.cfg.demo_timeline = o->demo_timeline;
  sv.cfg.web_root = root;
  sv.cfg.origins = o->origins;
  sv.cfg.norigins = o->norigins;
  sv.cfg.tls = o->cert != NULL;
  sv.cfg.max_batch_rate = o->max_batch_rate;
  sv.cfg.demo_size = o->demo_size;
  sv.cfg.demo_fps = o->demo_fps;
  sv.cfg.render = o->render;
  sv.cfg.model_root = o->model_root;
  if (vtl_store_open(&sv.store, &loop, data, msg, sizeof msg)) {
    fprintf(stderr, "vtl-server: %s\n", msg);
    uv_loop_close(&loop);
    free(root);
    return 1;
  }

  a.sv = &sv;
  vtl_live_init(&sv); /* presence tick, demo frames */
  uv_signal_init(&loop, &a.sigint);
  uv_signal_init(&loop, &a.sigterm);
  uv_timer_init(&loop, &a.stop_timer);
  a.sigint.data = a.sigterm.data = a.stop_timer.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);

  lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *foreign[1] = {&loop};
  info.options = LWS_SERVER_OPTION_LIBUV;
  info.foreign_loops = foreign;
  info.port = port;
  info.iface = sv.cfg.listen_addr;
  info.protocols = vtl_ws_protocols;
  info.user = &sv;
  info.vhost_name = "vtl";
  info.pcontext = &sv.ctx; /* lws sets it to NULL once wholly destroyed */
  if (sv.cfg.tls) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = o->cert;
    info.ssl_private_key_filepath = o->key;
  }
  sv.ctx = lws_create_context(&info);
  struct lws_vhost *vh = sv.ctx ? lws_get_vhost_by_name(sv.ctx, "vtl") : NULL;
  int bound = vh ? lws_get_vhost_listen_port(vh) : -1;
  int rc = 0;
  if (!sv.ctx || bound <= 0) {
    fprintf(stderr, "vtl-server: cannot listen on %s:%d\n",
            addr[0] ? addr : "*", port);
    rc = 1;
  }
  const char *host = addr[0] ? addr : "localhost";
  if (!rc && o->render && vtl_render_start(&sv)) rc = 1;
  if (!rc && demo) rc = open_demo(sv.store, data, host, bound);
  if (!rc && demo) rc = vtl_demo_start(&sv); /* its film, its frames */
  if (rc) { /* start-up failed: take everything down the normal way */
    a.phase = 2;
    a.deadline = 0;
    sv.stopping = true;
    uv_timer_start(&a.stop_timer, on_stop_tick, 0, 10);
  } else {
    const char *tls = sv.cfg.tls ? "s" : "";
    printf("%s listening on http%s://%s:%d/ (websocket ws%s://%s:%d/ws, "
           "subprotocol vtl.v1; data %s)\n",
           VTL_SERVER_VERSION, tls, host, bound, tls, host, bound, data);
    fflush(stdout);
  }

  uv_run(&loop, UV_RUN_DEFAULT);
  if (sv.ctx) { /* the second, finalising call (see on_stop_tick) */
    lws_context_destroy(sv.ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  while (sv.rooms) {
    vtl_room *r = sv.rooms;
    sv.rooms = r->next;
    vtl_room_free(r);
  }
  free(root);
  int lc = uv_loop_close(&loop);
  if (lc != 0) {
    fprintf(stderr, "vtl-server: uv_loop_close: %s\n", uv_strerror(lc));
    return 1;
  }
  if (!rc) vtl_log(VTL_LOG_INFO, "server.stopped", "stopped");
  return rc;
}

int main(int argc, char **argv) {
  if (vtl_config_expand(&argc, &argv)) return 2;
  const char *data = NULL, *listen = "127.0.0.1:8080", *film = NULL;
  bool demo = false, pub = false;
  unsigned snapshot_every = 1000;
  serve_opts so;
  memset(&so, 0, sizeof so);
  so.max_batch_rate = VTL_MAX_BATCHES_PER_SEC;
  const char *pos[3] = {NULL, NULL, NULL};
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) { usage(stdout); return 0; }
    if (!strcmp(o, "--demo")) { demo = true; continue; }
    if (!strcmp(o, "--public")) { pub = true; continue; }
    if (!strcmp(o, "--render")) { so.render = true; continue; }
    if (!strcmp(o, "--data") || !strcmp(o, "--listen") ||
        !strcmp(o, "--snapshot-every") || !strcmp(o, "--web") ||
        !strcmp(o, "--cert") || !strcmp(o, "--key") || !strcmp(o, "--origin") ||
        !strcmp(o, "--demo-size") || !strcmp(o, "--demo-fps") ||
        !strcmp(o, "--max-batch-rate") || !strcmp(o, "--demo-timeline") ||
        !strcmp(o, "--model-root")) {
      if (i + 1 >= argc) { usage(stderr); return 2; }
      const char *v = argv[++i];
      if (!strcmp(o, "--data")) data = v;
      else if (!strcmp(o, "--demo-timeline")) film = v;
      else if (!strcmp(o, "--model-root")) so.model_root = v;
      else if (!strcmp(o, "--web")) so.web = v;
      else if (!strcmp(o, "--cert")) so.cert = v;
      else if (!strcmp(o, "--key")) so.key = v;
      else if (!strcmp(o, "--origin")) {
        if (so.norigins == sizeof so.origins / sizeof so.origins[0] ||
            !strstr(v, "://")) {
          fprintf(stderr, "vtl-server: --origin wants a URL like "
                  "https://example.org (at most 64)\n");
          return 2;
        }
        so.origins[so.norigins++] = v;
      }
      else if (!strcmp(o, "--listen")) listen = v;
      else if (strcmp(o, "--snapshot-every")) { /* the bench flags */
        char *end;
        long n = strtol(v, &end, 10);
        long lo = !strcmp(o, "--demo-size") ? 16 : 1;
        long hi = !strcmp(o, "--demo-size") ? 1024
                  : !strcmp(o, "--demo-fps") ? 120 : 1000000;
        if (!*v || *end || n < lo || n > hi) {
          fprintf(stderr, "vtl-server: %s wants %ld..%ld\n", o, lo, hi);
          return 2;
        }
        if (!strcmp(o, "--demo-size")) so.demo_size = (unsigned)n;
        else if (!strcmp(o, "--demo-fps")) so.demo_fps = (unsigned)n;
        else so.max_batch_rate = (unsigned)n;
      } else {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 0 || n > 100000000) { usage(stderr); return 2; }
        snapshot_every = (unsigned)n;
      }
      continue;
    }
    if (o[0] == '-' || npos == 3) {
      fprintf(stderr, "vtl-server: unexpected argument %s\n", o);
      usage(stderr);
      return 2;
    }
    pos[npos++] = o;
  }
  char addr[256];
  int port;
  if (parse_listen(listen, addr, sizeof addr, &port)) {
    fprintf(stderr, "vtl-server: --listen wants ADDR:PORT, not %s\n", listen);
    return 2;
  }
  if (!data) {
    fprintf(stderr, "vtl-server: --data DIR is required\n");
    usage(stderr);
    return 2;
  }
  if (!so.cert != !so.key) {
    fprintf(stderr, "vtl-server: --cert and --key go together\n");
    return 2;
  }
  if (film && (!demo || npos)) {
    fprintf(stderr, "vtl-server: --demo-timeline goes with --demo\n");
    return 2;
  }
  if (so.model_root && !so.render) {
    fprintf(stderr, "vtl-server: --model-root goes with --render\n");
    return 2;
  }
  if (!so.model_root) so.model_root = ".";
  struct stat mst;
  if (so.render && (stat(so.model_root, &mst) || !S_ISDIR(mst.st_mode))) {
    fprintf(stderr, "vtl-server: --model-root %s is not a directory\n",
            so.model_root);
    return 2;
  }
  if (film) { /* before listening: a bad file never serves */
    char msg[1024];
    if (vtl_demo_timeline_load(film, &so.demo_timeline, msg, sizeof msg)) {
      fprintf(stderr, "vtl-server: %s\n", msg);
      return 2;
    }
  }
  if (npos == 0) {
    int rc = serve(addr, port, data, demo, snapshot_every, &so);
    vtl_doc_free(so.demo_timeline);
    return rc;
  }

  bool create = npos == 3 && !strcmp(pos[0], "room") && !strcmp(pos[1], "create");
  bool list = npos == 2 && !strcmp(pos[0], "room") && !strcmp(pos[1], "list");
  if (!create && !list) {
    usage(stderr);
    return 2;
  }
  vtl_store *st;
  char msg[1024];
  if (vtl_store_open(&st, NULL, data, msg, sizeof msg)) {
    fprintf(stderr, "vtl-server: %s\n", msg);
    return 1;
  }
  int rc;
  if (create) {
    rc = cmd_room_create(pos[2], data, pub, addr[0] ? addr : "localhost",
                         port, st);
  } else {
    int n = 0;
    rc = vtl_store_room_list(st, print_room, &n) ? 1 : 0;
    if (!rc && n == 0) printf("no rooms in %s\n", data);
  }
  vtl_store_close(st);
  return rc;
}
