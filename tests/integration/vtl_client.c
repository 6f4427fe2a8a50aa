/* vtl_client.c — the test/bench protocol client (contract in vtl_client.h). */
#define _GNU_SOURCE /* mkdtemp, nftw */
#include "vtl_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <zstd.h>

#include "vtl_import.h"
#include "wire.h"

/* ---- messages in ---------------------------------------------------------------- */

static void diverge(vtc_conn *k, const char *why, uint64_t seq) {
  if (!k->diverged)
    snprintf(k->diverged_why, sizeof k->diverged_why, "%.200s at seq %llu", why,
             (unsigned long long)seq);
  k->diverged = true;
}

static void on_frame(vtc_conn *k, const Vtl__V1__Frame *f);

static void on_presence(vtc_conn *k, const Vtl__V1__Presence *p) {
  if (k->npres == k->pres_cap) {
    k->pres_cap = k->pres_cap ? 2 * k->pres_cap : 32;
    k->pres = realloc(k->pres, k->pres_cap * sizeof *k->pres);
  }
  vtc_presence_rec *r = &k->pres[k->npres++];
  memset(r, 0, sizeof *r);
  r->session = p->session_id;
  r->state = p->state;
  snprintf(r->name, sizeof r->name, "%s", p->display_name ? p->display_name : "");
  r->color = p->color;
  r->playhead = p->playhead;
  r->nsel = p->n_selection;
  r->px = p->pointer_x;
  r->py = p->pointer_y;
  r->at_ms = uv_now(&k->ctx->loop);
}

static void on_envelope(vtc_conn *k, const Vtl__V1__Envelope *e) {
  switch (e->msg_case) {
  case VTL__V1__ENVELOPE__MSG_PRESENCE:
    on_presence(k, e->presence);
    break;
  case VTL__V1__ENVELOPE__MSG_TRANSPORT:
    k->transport = *e->transport;
    k->transport.base.n_unknown_fields = 0;
    k->transport.base.unknown_fields = NULL;
    k->ntransports++;
    break;
  case VTL__V1__ENVELOPE__MSG_FRAME:
    on_frame(k, e->frame);
    break;
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

/* Records a Frame and decodes it (docs/protocol.md "Frames", client
 * rule): an epoch resets the stream decoder; a stream frame decodes only
 * when its stream_pos follows the last decoded one, else it is a gap. */
static void on_frame(vtc_conn *k, const Vtl__V1__Frame *f) {
  if (k->nframes == k->frames_cap) {
    k->frames_cap = k->frames_cap ? 2 * k->frames_cap : 64;
    k->frames = realloc(k->frames, k->frames_cap * sizeof *k->frames);
  }
  vtc_frame_rec *r = &k->frames[k->nframes++];
  memset(r, 0, sizeof *r);
  r->frame = f->frame;
  r->doc_seq = f->doc_seq;
  r->dep_hash = f->dep_hash;
  r->render_ms = f->render_ms;
  r->stream_id = f->stream_id;
  r->width = f->width;
  r->height = f->height;
  r->stream_pos = f->stream_pos;
  r->codec = f->codec;
  r->epoch = f->epoch;
  r->test_pattern = f->test_pattern;
  r->bytes = f->data.len;
  r->at_ms = uv_now(&k->ctx->loop);
  if (k->no_decode) return;
  size_t n = (size_t)f->width * f->height * 3;
  if (n > k->pixels_cap) {
    free(k->pixels);
    k->pixels = malloc(n);
    k->pixels_cap = n;
  }
  if (!k->pixels) return;
  switch (f->codec) {
  case VTL__V1__CODEC__CODEC_RAW:
    if (f->data.len == n) {
      memcpy(k->pixels, f->data.data, n);
      r->decoded = true;
    }
    break;
  case VTL__V1__CODEC__CODEC_ZSTD:
    r->decoded = ZSTD_decompress(k->pixels, n, f->data.data, f->data.len) == n;
    break;
  case VTL__V1__CODEC__CODEC_ZSTD_STREAM: {
    if (!k->zd) k->zd = ZSTD_createDCtx();
    if (f->epoch) {
      ZSTD_DCtx_reset(k->zd, ZSTD_reset_session_only);
      k->zd_stream = f->stream_id;
    } else if (k->zd_stream != f->stream_id || f->stream_pos != k->zd_pos + 1) {
      r->gap = true;
      k->zd_stream = 0; /* wait for the next epoch */
      return;
    }
    ZSTD_inBuffer ib = {f->data.data, f->data.len, 0};
    ZSTD_outBuffer ob = {k->pixels, n, 0};
    for (;;) {
      size_t before_in = ib.pos, before_out = ob.pos;
      size_t rc = ZSTD_decompressStream(k->zd, &ob, &ib);
      if (ZSTD_isError(rc)) break;
      if (ob.pos == ob.size && ib.pos == ib.size) break;
      if (ib.pos == before_in && ob.pos == before_out) break;
    }
    r->decoded = ob.pos == n && ib.pos == ib.size;
    if (r->decoded) k->zd_pos = f->stream_pos;
    else k->zd_stream = 0;
    break;
  }
  default:
    break;
  }
  if (r->decoded && k->on_frame) k->on_frame(k, r, k->pixels);
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
  /* SSL init: vtc_connect_ex(tls) connections (self-signed allowed) */
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                 LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN; /* Origin as given */
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
    free(k->pres);
    free(k->frames);
    free(k->pixels);
    ZSTD_freeDCtx(k->zd);
    vtl_doc_free(k->doc);
    free(k);
  }
}

vtc_conn *vtc_connect(vtc_ctx *c, int port) {
  return vtc_connect_ex(c, port, "http://127.0.0.1", false);
}

static vtc_conn *connect_path(vtc_ctx *c, int port, const char *origin,
                              bool tls, const char *room);

vtc_conn *vtc_connect_ex(vtc_ctx *c, int port, const char *origin, bool tls) {
  return connect_path(c, port, origin, tls, NULL);
}

vtc_conn *vtc_connect_room(vtc_ctx *c, int port, const char *room) {
  return connect_path(c, port, "http://127.0.0.1", false, room);
}

static vtc_conn *connect_path(vtc_ctx *c, int port, const char *origin,
                              bool tls, const char *room) {
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
  size_t n = (size_t)snprintf(k->path, sizeof k->path, "/ws%s",
                              room ? "?room=" : "");
  for (const char *p = room; p && *p && n + 4 < sizeof k->path; p++) {
    unsigned char ch = (unsigned char)*p; /* encodeURIComponent's set */
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9') || strchr("-_.!~*'()", ch))
      k->path[n++] = (char)ch;
    else
      n += (size_t)snprintf(k->path + n, 4, "%%%02X", ch);
  }
  k->path[n] = '\0';
  ci.path = k->path;
  ci.host = "127.0.0.1";
  ci.origin = origin && origin[0] ? origin : NULL;
  if (tls)
    ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
                        LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
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

int vtc_hello_ex(vtc_conn *k, const char *room, const char *token,
                 uint64_t last_seq, const char *name, const char *const *caps,
                 size_t ncaps) {
  Vtl__V1__Hello h = VTL__V1__HELLO__INIT;
  h.room = (char *)room;
  h.token = (char *)(token ? token : "");
  h.display_name = (char *)(name ? name : "test");
  h.client_kind = VTL__V1__CLIENT_KIND__CLIENT_KIND_TEST;
  h.last_seq = last_seq;
  h.protocol_version = 1;
  h.n_capabilities = ncaps;
  h.capabilities = (char **)caps;
  Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
  e.msg_case = VTL__V1__ENVELOPE__MSG_HELLO;
  e.hello = &h;
  return vtc_send_env(k, &e);
}

int vtc_send_presence(vtc_conn *k, const Vtl__V1__Presence *p) {
  Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
  e.msg_case = VTL__V1__ENVELOPE__MSG_PRESENCE;
  e.presence = (Vtl__V1__Presence *)p;
  return vtc_send_env(k, &e);
}

int vtc_send_transport(vtc_conn *k, const Vtl__V1__Transport *t) {
  Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
  e.msg_case = VTL__V1__ENVELOPE__MSG_TRANSPORT;
  e.transport = (Vtl__V1__Transport *)t;
  return vtc_send_env(k, &e);
}

int vtc_subscribe(vtc_conn *k, uint32_t max_w, uint32_t max_h, double max_fps,
                  bool enabled, bool request_epoch) {
  Vtl__V1__Subscribe s = VTL__V1__SUBSCRIBE__INIT;
  s.max_width = max_w;
  s.max_height = max_h;
  s.max_fps = max_fps;
  s.enabled = enabled;
  s.request_epoch = request_epoch;
  Vtl__V1__Envelope e = VTL__V1__ENVELOPE__INIT;
  e.msg_case = VTL__V1__ENVELOPE__MSG_SUBSCRIBE;
  e.subscribe = &s;
  return vtc_send_env(k, &e);
}

void vtc_set_reading(vtc_conn *k, bool on) {
  if (k->wsi) lws_rx_flow_control(k->wsi, on ? 1 : 0);
}

const vtc_presence_rec *vtc_find_presence(const vtc_conn *k, uint64_t session) {
  for (size_t i = k->npres; i-- > 0;)
    if (k->pres[i].session == session) return &k->pres[i];
  return NULL;
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
  return vtc_server_start_ex(s, dir, env, NULL);
}

int vtc_server_start_ex(vtc_server *s, const char *dir, const char *env,
                        const char *extra) {
  const char *args[2] = {extra, NULL};
  return vtc_server_start_argv(s, dir, env, args);
}

int vtc_server_start_argv(vtc_server *s, const char *dir, const char *env,
                          const char *const *extra) {
  int fds[2];
  if (pipe(fds)) return -1;
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  s->pid = fork();
  if (s->pid < 0) return -1;
  if (s->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan when a test fails */
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    if (env) putenv((char *)env);
    const char *argv[32] = {"vtl-server", "--listen", "127.0.0.1:0", "--data",
                            dir};
    for (size_t i = 0; extra && extra[i] && i < 26; i++) argv[5 + i] = extra[i];
    execv(VTL_SERVER_BIN, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  s->out_fd = fds[0];
  /* the start-up line: "... ws://127.0.0.1:PORT/ws ..." */
  char buf[4096];
  size_t n = 0;
  buf[0] = '\0';
  s->port = 0;
  for (int waited = 0; waited < 20000 && !s->port;) {
    struct pollfd p = {s->out_fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) { waited += 100; continue; }
    ssize_t r = read(s->out_fd, buf + n, sizeof buf - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    buf[n] = '\0';
    const char *w = strstr(buf, "ws://127.0.0.1:"); /* or wss:// (TLS) */
    if (!w) w = strstr(buf, "wss://127.0.0.1:");
    if (w && strchr(w, '\n')) s->port = atoi(strchr(w, '/') + 2 + 10);
  }
  snprintf(s->startup, sizeof s->startup, "%s", buf);
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

int vtc_http_get(int port, const char *target, char *body, size_t blen,
                 char *ctype, size_t clen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  char req[1024];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Connection: close\r\n\r\n", target, port);
  if (write(fd, req, (size_t)n) != n) { close(fd); return -1; }
  static char resp[1 << 20];
  size_t got = 0;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
    if (r <= 0) break;
    got += (size_t)r;
    resp[got] = '\0';
    char *hend = strstr(resp, "\r\n\r\n"); /* lws may keep the connection */
    const char *cl = strcasestr(resp, "\r\ncontent-length:");
    if (hend && cl && cl < hend &&
        got >= (size_t)(hend + 4 - resp) + strtoul(cl + 17, NULL, 10))
      break;
  }
  close(fd);
  resp[got] = '\0';
  int status = -1;
  if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) return -1;
  char *hend = strstr(resp, "\r\n\r\n");
  snprintf(body, blen, "%s", hend ? hend + 4 : "");
  if (ctype) {
    ctype[0] = '\0';
    const char *ct = strcasestr(resp, "\r\ncontent-type:");
    if (ct && (!hend || ct < hend)) {
      ct += 15;
      while (*ct == ' ') ct++;
      snprintf(ctype, clen, "%.*s", (int)strcspn(ct, "\r\n"), ct);
    }
  }
  return status;
}

double vtc_metric(int port, const char *name) {
  static char page[1 << 18];
  if (vtc_http_get(port, "/metrics", page, sizeof page, NULL, 0) != 200) return -1;
  size_t n = strlen(name);
  for (const char *p = page; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (strncmp(p, name, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}
