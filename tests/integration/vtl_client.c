/* vtl_client.c — the test/bench protocol client (contract in vtl_client.h). */
#define _GNU_SOURCE /* mkdtemp, nftw */
#include "vtl_client.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "vtl_import.h"
#include "wire.h"

/* ---- messages in ---------------------------------------------------------------- */

static void diverge(vtc_conn *k, const char *why, uint64_t seq) {
  if (!k->diverged)
    snprintf(k->diverged_why, sizeof k->diverged_why, "%.200s at seq %llu", why,
             (unsigned long long)seq);
  k->diverged = true;
}

static void on_envelope(vtc_conn *k, const Vtl__V1__Envelope *e) {
  switch (e->msg_case) {
  case VTL__V1__ENVELOPE__MSG_WELCOME:
    k->welcomed = true;
    k->session_id = e->welcome->session_id;
    k->id_base = e->welcome->id_base;
    k->welcome_seq = e->welcome->seq;
    k->role = e->welcome->role;
    k->counter = 0;
    break;
  case VTL__V1__ENVELOPE__MSG_SNAPSHOT: {
    vtl_doc *d = NULL;
    vtl_error err = {0};
    if (!e->snapshot->document ||
        vtl_wire_doc_from_pb(e->snapshot->document, &d, &err)) {
      diverge(k, "snapshot does not load", e->snapshot->seq);
      break;
    }
    vtl_doc_free(k->doc);
    k->doc = d;
    k->seq = e->snapshot->seq;
    k->nsnapshots++;
    break;
  }
  case VTL__V1__ENVELOPE__MSG_OPS: {
    const Vtl__V1__Ops *o = e->ops;
    if (k->nops == k->ops_cap) {
      k->ops_cap = k->ops_cap ? 2 * k->ops_cap : 64;
      k->ops = realloc(k->ops, k->ops_cap * sizeof *k->ops);
    }
    k->ops[k->nops++] = (vtc_ops_rec){o->seq, o->session_id, o->batch_id,
                                      o->n_ops, uv_now(&k->ctx->loop)};
    if (o->n_ops == 0) break; /* duplicate ack */
    if (!k->doc) { diverge(k, "Ops before any snapshot", o->seq); break; }
    if (o->seq <= k->seq) break;
    if (o->seq != k->seq + 1) { diverge(k, "seq gap", o->seq); break; }
    vtl_op *ops;
    size_t n;
    vtl_error err = {0};
    if (vtl_wire_ops_from_pb(o->ops, o->n_ops, &ops, &n, &err) ||
        vtl_doc_apply(k->doc, ops, n, NULL, NULL, &err)) {
      diverge(k, err.message, o->seq);
    } else {
      vtl_ops_free(ops, n);
    }
    k->seq = o->seq;
    break;
  }
  case VTL__V1__ENVELOPE__MSG_ERROR:
    if (k->nerrs == k->errs_cap) {
      k->errs_cap = k->errs_cap ? 2 * k->errs_cap : 16;
      k->errs = realloc(k->errs, k->errs_cap * sizeof *k->errs);
    }
    k->errs[k->nerrs] = (vtc_error_rec){e->error->code, e->error->batch_id,
                                        e->error->fatal, ""};
    snprintf(k->errs[k->nerrs].message, 256, "%s",
             e->error->message ? e->error->message : "");
    k->nerrs++;
    break;
  case VTL__V1__ENVELOPE__MSG_PONG:
    k->npongs++;
    break;
  default:
    break;
  }
}

/* ---- lws ------------------------------------------------------------------------- */

static void out_free_all(vtc_conn *k) {
  for (size_t i = 0; i < k->out_n; i++)
    free(k->out[(k->out_head + i) % k->out_cap]);
  k->out_n = 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len) {
  vtc_conn *k = user;
  switch (reason) {
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    k->open = true;
    if (k->out_n) lws_callback_on_writable(wsi);
    break;
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
  case LWS_CALLBACK_CLIENT_CLOSED:
    if (k) {
      k->closed = true;
      k->open = false;
      k->wsi = NULL;
    }
    break;
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    if (len >= 2) k->close_code = ((const uint8_t *)in)[0] << 8 |
                                  ((const uint8_t *)in)[1];
    break;
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (lws_is_first_fragment(wsi)) k->rx_len = 0;
    if (k->rx_len + len > k->rx_cap) {
      k->rx_cap = (k->rx_len + len) * 2;
      k->rx = realloc(k->rx, k->rx_cap);
    }
    memcpy(k->rx + k->rx_len, in, len);
    k->rx_len += len;
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
      Vtl__V1__Envelope *e = vtl__v1__envelope__unpack(NULL, k->rx_len, k->rx);
      if (e) {
        on_envelope(k, e);
        vtl__v1__envelope__free_unpacked(e, NULL);
      } else {
        diverge(k, "undecodable server message", k->seq);
      }
      k->rx_len = 0;
    }
    break;
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    if (k->out_n) {
      uint8_t *b = k->out[k->out_head];
      size_t n = k->out_len[k->out_head];
      int bin = k->out_bin[k->out_head];
      k->out_head = (k->out_head + 1) % k->out_cap;
      k->out_n--;
      int w = lws_write(wsi, b + LWS_PRE, n,
                        bin ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
      free(b);
      if (w < (int)n) return -1;
      if (k->out_n) lws_callback_on_writable(wsi);
    }
    break;
  default:
    break;
  }
  return 0;
}

static const struct lws_protocols protocols[] = {
  {"vtl.v1", callback, 0, 65536, 0, NULL, 0},
  {NULL, NULL, 0, 0, 0, NULL, 0}};

int vtc_ctx_init(vtc_ctx *c) {
  memset(c, 0, sizeof *c);
  if (uv_loop_init(&c->loop)) return -1;
  uv_timer_init(&c->loop, &c->timer);
  c->timer.data = c;
  lws_set_log_level(LLL_ERR, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *foreign[1] = {&c->loop};
  info.options = LWS_SERVER_OPTION_LIBUV;
  info.foreign_loops = foreign;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.pcontext = &c->lws;
  c->lws = lws_create_context(&info);
  return c->lws ? 0 : -1;
}

static void destroy_cb(uv_timer_t *t) {
  vtc_ctx *c = t->data;
  lws_context_destroy(c->lws);
  uv_close((uv_handle_t *)t, NULL);
}

void vtc_ctx_done(vtc_ctx *c) {
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, destroy_cb, 0, 0); /* destroy from inside */
  uv_run(&c->loop, UV_RUN_DEFAULT);
  if (c->lws) {
    lws_context_destroy(c->lws);
    uv_run(&c->loop, UV_RUN_DEFAULT);
  }
  int rc = uv_loop_close(&c->loop);
  if (rc) fprintf(stderr, "vtc: uv_loop_close: %s\n", uv_strerror(rc));
  while (c->conns) {
    vtc_conn *k = c->conns;
    c->conns = k->next;
    out_free_all(k);
    free(k->out); free(k->out_len); free(k->out_bin);
    free(k->rx);
    free(k->ops);
    free(k->errs);
    vtl_doc_free(k->doc);
    free(k);
  }
}

vtc_conn *vtc_connect(vtc_ctx *c, int port) {
  vtc_conn *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->ctx = c;
  k->next = c->conns;
  c->conns = k;
  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = c->lws;
  ci.address = "127.0.0.1";
  ci.port = port;
  ci.path = "/ws";
  ci.host = "127.0.0.1";
  ci.origin = "127.0.0.1";
  ci.protocol = "vtl.v1";
  ci.userdata = k;
  ci.pwsi = &k->wsi;
  if (!lws_client_connect_via_info(&ci)) k->closed = true;
  return k;
}

void vtc_close(vtc_conn *k) {
  if (k->wsi) {
    lws_set_timeout(k->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
  }
}

static void on_timeout(uv_timer_t *t) {
  ((vtc_ctx *)t->data)->timed_out = true;
}

int vtc_run(vtc_ctx *c, bool (*done)(void *arg), void *arg, int timeout_ms) {
  c->timed_out = false;
  uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
  while (!done(arg) && !c->timed_out) uv_run(&c->loop, UV_RUN_ONCE);
  uv_timer_stop(&c->timer);
  return done(arg) ? 0 : -1;
}

static bool is_open(void *a) { vtc_conn *k = a; return k->open || k->closed; }
static bool is_synced(void *a) {
  vtc_conn *k = a;
  return k->closed || (k->welcomed && k->doc && k->seq >= k->welcome_seq);
}
static bool is_closed(void *a) { return ((vtc_conn *)a)->closed; }

int vtc_wait_open(vtc_conn *k, int ms) {
  return vtc_run(k->ctx, is_open, k, ms) == 0 && k->open ? 0 : -1;
}
int vtc_wait_synced(vtc_conn *k, int ms) {
  return vtc_run(k->ctx, is_synced, k, ms) == 0 && !k->closed ? 0 : -1;
}
int vtc_wait_closed(vtc_conn *k, int ms) { return vtc_run(k->ctx, is_closed, k, ms); }

typedef struct { vtc_conn *k; uint64_t n; } wait_n;
static bool has_seq(void *a) {
  wait_n *w = a;
  return w->k->closed || (w->k->doc && w->k->seq >= w->n);
}
static bool has_errs(void *a) {
  wait_n *w = a;
  return w->k->closed || w->k->nerrs >= w->n;
}
int vtc_wait_seq(vtc_conn *k, uint64_t s, int ms) {
  wait_n w = {k, s};
  return vtc_run(k->ctx, has_seq, &w, ms) == 0 && k->seq >= s ? 0 : -1;
}
int vtc_wait_errors(vtc_conn *k, size_t n, int ms) {
  wait_n w = {k, n};
  return vtc_run(k->ctx, has_errs, &w, ms) == 0 && k->nerrs >= n ? 0 : -1;
}

/* ---- messages out -------------------------------------------------------------- */

int vtc_send_raw(vtc_conn *k, const void *p, size_t n, bool binary) {
  if (k->closed) return -1;
  if (k->out_n == k->out_cap) {
    size_t cap = k->out_cap ? 2 * k->out_cap : 16;
    uint8_t **o = malloc(cap * sizeof *o);
    size_t *l = malloc(cap * sizeof *l);
    int *b = malloc(cap * sizeof *b);
    for (size_t i = 0; i < k->out_n; i++) {
      size_t j = (k->out_head + i) % k->out_cap;
      o[i] = k->out[j]; l[i] = k->out_len[j]; b[i] = k->out_bin[j];
    }
    free(k->out); free(k->out_len); free(k->out_bin);
    k->out = o; k->out_len = l; k->out_bin = b;
    k->out_cap = cap;
    k->out_head = 0;
  }
  uint8_t *buf = malloc(LWS_PRE + n + 1);
  if (!buf) return -1;
  if (n) memcpy(buf + LWS_PRE, p, n);
  size_t j = (k->out_head + k->out_n++) % k->out_cap;
  k->out[j] = buf;
  k->out_len[j] = n;
  k->out_bin[j] = binary;
  if (k->open && k->wsi) lws_callback_on_writable(k->wsi);
  return 0;
}

int vtc_send_env(vtc_conn *k, const Vtl__V1__Envelope *env) {
  size_t n = vtl__v1__envelope__get_packed_size(env);
  uint8_t *b = malloc(n ? n : 1);
  if (!b) return -1;
  vtl__v1__envelope__pack(env, b);
  int rc = vtc_send_raw(k, b, n, true);
  free(b);
  return rc;
}

int vtc_hello(vtc_conn *k, const char *room, const char *token,
              uint64_t last_seq) {
  Vtl__V1__Hello h = VTL__V1__HELLO__INIT;
  h.room = (char *)room;
  h.token = (char *)(token ? token : "");
  h.display_name = "test";
  h.client_kind = VTL__V1__CLIENT_KIND__CLIENT_KIND_TEST;
  h.last_seq = last_seq;
  h.protocol_version = 1;
  Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
  e.msg_case = VTL__V1__ENVELOPE__MSG_HELLO;
  e.hello = &h;
  return vtc_send_env(k, &e);
}

uint64_t vtc_mint(vtc_conn *k) { return k->id_base | ++k->counter; }

int vtc_send_batch(vtc_conn *k, uint64_t batch_id, const vtl_op *ops,
                   size_t n) {
  Vtl__V1__Op **pb = calloc(n ? n : 1, sizeof *pb);
  int rc = pb ? 0 : -1;
  for (size_t i = 0; !rc && i < n; i++)
    if (!(pb[i] = vtl_wire_op_to_pb(&ops[i]))) rc = -1;
  if (!rc) {
    Vtl__V1__OpBatch b = VTL__V1__OP_BATCH__INIT;
    b.batch_id = batch_id;
    b.base_seq = k->seq;
    b.n_ops = n;
    b.ops = pb;
    Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
    e.msg_case = VTL__V1__ENVELOPE__MSG_OP_BATCH;
    e.op_batch = &b;
    rc = vtc_send_env(k, &e);
  }
  for (size_t i = 0; pb && i < n; i++) vtl_wire_op_free_pb(pb[i]);
  free(pb);
  return rc;
}

int vtc_ping(vtc_conn *k, uint64_t nonce) {
  Vtl__V1__Ping p = VTL__V1__PING__INIT;
  p.nonce = nonce;
  Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
  e.msg_case = VTL__V1__ENVELOPE__MSG_PING;
  e.ping = &p;
  return vtc_send_env(k, &e);
}

void vtc_set_replica(vtc_conn *k, vtl_doc *doc, uint64_t seq) {
  vtl_doc_free(k->doc);
  k->doc = doc;
  k->seq = seq;
}

const vtc_ops_rec *vtc_find_batch(const vtc_conn *k, uint64_t batch_id) {
  for (size_t i = 0; i < k->nops; i++)
    if (k->ops[i].batch_id == batch_id) return &k->ops[i];
  return NULL;
}

const vtc_error_rec *vtc_find_error(const vtc_conn *k, uint64_t batch_id) {
  for (size_t i = 0; i < k->nerrs; i++)
    if (k->errs[i].batch_id == batch_id) return &k->errs[i];
  return NULL;
}

char *vtc_json(vtc_conn *k) {
  char *out = NULL;
  if (!k->doc || vtl_json_export(k->doc, &out)) return NULL;
  return out;
}

/* ---- the server process ------------------------------------------------------- */

int vtc_tmpdir(char *buf, size_t len) {
  snprintf(buf, len, "/tmp/vtl-test-XXXXXX");
  return mkdtemp(buf) ? 0 : -1;
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  return remove(p);
}

void vtc_rmdir(const char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int vtc_server_start(vtc_server *s, const char *dir, const char *env) {
  int fds[2];
  if (pipe(fds)) return -1;
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  s->pid = fork();
  if (s->pid < 0) return -1;
  if (s->pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    if (env) putenv((char *)env);
    execl(VTL_SERVER_BIN, "vtl-server", "--listen", "127.0.0.1:0", "--data",
          dir, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  s->out_fd = fds[0];
  /* the start-up line: "... ws://127.0.0.1:PORT/ws ..." */
  char buf[4096];
  size_t n = 0;
  s->port = 0;
  for (int waited = 0; waited < 20000 && !s->port;) {
    struct pollfd p = {s->out_fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) { waited += 100; continue; }
    ssize_t r = read(s->out_fd, buf + n, sizeof buf - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    buf[n] = '\0';
    const char *w = strstr(buf, "ws://127.0.0.1:");
    if (w && strchr(w, '\n')) s->port = atoi(w + strlen("ws://127.0.0.1:"));
  }
  if (!s->port) {
    fprintf(stderr, "vtc: vtl-server did not start: %s\n", buf);
    vtc_server_kill9(s);
    return -1;
  }
  return 0;
}

static bool never(void *a) { return false; }

int vtc_server_stop(vtc_server *s, vtc_ctx *c) {
  int st = 0;
  pid_t got = 0;
  kill(s->pid, SIGTERM);
  for (int i = 0; i < 2000 && got == 0; i++) {
    got = waitpid(s->pid, &st, WNOHANG);
    if (got) break;
    if (c) vtc_run(c, never, NULL, 10);
    else usleep(10000);
  }
  if (got != s->pid) {
    vtc_server_kill9(s);
    return -1;
  }
  close(s->out_fd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void vtc_server_kill9(vtc_server *s) {
  int st;
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &st, 0);
  close(s->out_fd);
}

int vtc_server_cmd(const char *args, char *out, size_t outlen) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s 2>&1", VTL_SERVER_BIN, args);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int vtc_room_create(const char *dir, const char *name, char *dtok,
                    char *vtok) {
  char args[512], out[4096];
  snprintf(args, sizeof args, "room create %s --data %s", name, dir);
  if (vtc_server_cmd(args, out, sizeof out) != 0) {
    fprintf(stderr, "vtc: room create: %s\n", out);
    return -1;
  }
  const char *d = strstr(out, "director token: "), *v = strstr(out, "viewer token:   ");
  if (!d || !v) return -1;
  sscanf(d + 16, "%63s", dtok);
  sscanf(v + 16, "%63s", vtok);
  return 0;
}
