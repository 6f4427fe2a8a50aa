/* vtl_client.h — a vtl.v1 protocol client for tests and benches (lws client
 * on a libuv loop the caller's vtc_ctx owns), plus helpers that run a real
 * vtl-server process.
 *
 * One vtc_ctx holds any number of connections (a bench puts 64 on one).
 * Nothing runs between calls: vtc_run() turns the loop until a predicate
 * holds or a timeout passes. Each connection keeps a replica of the room's
 * document built only from what the server sent (Snapshot, then Ops in seq
 * order), a log of every Ops and Error received, and its Welcome.
 *
 * Not a full client: no pending/optimistic state (tests check the server).
 */
#ifndef VTL_CLIENT_H
#define VTL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "vtl.pb-c.h"
#include "vtl_timeline.h"

typedef struct vtc_ctx vtc_ctx;
typedef struct vtc_conn vtc_conn;

typedef struct {
  uint64_t seq, session, batch_id;
  size_t nops;              /* 0: a duplicate ack */
  uint64_t at_ms;           /* uv_now when received */
} vtc_ops_rec;

typedef struct {
  uint64_t session;         /* Presence.session_id */
  int state;                /* Vtl__V1__PresenceState */
  char name[257];
  uint32_t color;
  int64_t playhead;
  size_t nsel;
  double px, py;
  uint64_t at_ms;           /* uv_now when received */
} vtc_presence_rec;

typedef struct {
  int64_t frame;
  uint64_t doc_seq, dep_hash, stream_id;
  double render_ms;
  uint32_t width, height, stream_pos;
  int codec;                /* Vtl__V1__Codec */
  bool epoch, test_pattern;
  size_t bytes;             /* encoded size */
  bool decoded;             /* decoded to width*height*3 bytes */
  bool gap;                 /* not decodable: stream_pos broke the chain */
  uint64_t at_ms;
} vtc_frame_rec;

typedef struct {
  int code;                 /* Vtl__V1__Error__Code */
  uint64_t batch_id;
  bool fatal;
  char message[256];
} vtc_error_rec;

struct vtc_conn {
  void *data;               /* user pointer */
  vtc_ctx *ctx;             /* borrowed */
  vtc_conn *next;           /* ctx list; freed by vtc_ctx_done */
  struct lws *wsi;          /* NULL once closed */
  bool open, closed;        /* established; closed (or failed to connect) */
  char path[800];           /* the request path, e.g. /ws?room=film */
  int close_code;           /* websocket close code from the server, or 0 */
  /* outgoing FIFO of malloc'd buffers with LWS_PRE headroom */
  uint8_t **out; size_t *out_len; int *out_bin; size_t out_n, out_cap, out_head;
  uint8_t *rx; size_t rx_len, rx_cap;   /* receive assembly */
  /* protocol state */
  bool welcomed;
  uint64_t session_id, id_base, welcome_seq, counter;
  int role;
  vtl_doc *doc;             /* the replica (owned); NULL before catch-up */
  uint64_t seq;             /* the replica's seq */
  int nsnapshots;
  vtc_ops_rec *ops; size_t nops, ops_cap;       /* every Ops received */
  vtc_error_rec *errs; size_t nerrs, errs_cap;  /* every Error received */
  int npongs;
  bool diverged;            /* an Ops did not apply, or a seq gap */
  char diverged_why[256];
  /* live messages (presence, transport, frames) */
  vtc_presence_rec *pres; size_t npres, pres_cap; /* every Presence */
  Vtl__V1__Transport transport; /* the newest Transport (no pointers) */
  int ntransports;
  vtc_frame_rec *frames; size_t nframes, frames_cap; /* every Frame */
  void *zd;                 /* ZSTD_DCtx * of the current stream, owned */
  uint64_t zd_stream;       /* its stream_id; 0 = no epoch seen */
  uint32_t zd_pos;          /* stream_pos of the last decoded frame */
  uint8_t *pixels;          /* is malloc'd: the last decoded frame */
  size_t pixels_cap;
  bool no_decode;           /* record frames without decoding them (a
                               bench's many subscribers; decoded stays false) */
  /* called for every decoded frame (pixels: width*height*3 bytes) */
  void (*on_frame)(vtc_conn *k, const vtc_frame_rec *f, const uint8_t *px);
};

struct vtc_ctx {
  uv_loop_t loop;
  struct lws_context *lws;
  uv_timer_t timer;
  bool timed_out;
  vtc_conn *conns;
};

int vtc_ctx_init(vtc_ctx *c);
void vtc_ctx_done(vtc_ctx *c); /* closes everything; the loop ends empty */

/* Starts a connection to ws://127.0.0.1:PORT/ws with subprotocol vtl.v1. */
vtc_conn *vtc_connect(vtc_ctx *c, int port);
/* The same with an Origin header sent as given (NULL or "": none;
 * vtc_connect sends "http://127.0.0.1") and, with tls, wss:// accepting a self-signed certificate.
 * A refused upgrade ends as closed without ever being open. */
vtc_conn *vtc_connect_ex(vtc_ctx *c, int port, const char *origin, bool tls);
/* Connects to ws://127.0.0.1:PORT/ws?room=ROOM (ROOM %-encoded), the form
 * a proxy routes on (docs/scaling.md); the Hello must then name ROOM. */
vtc_conn *vtc_connect_room(vtc_ctx *c, int port, const char *room);
void vtc_close(vtc_conn *k);

/* Turns the loop until done(arg) or timeout_ms; 0 when done, -1 timeout. */
int vtc_run(vtc_ctx *c, bool (*done)(void *arg), void *arg, int timeout_ms);
/* Common waits (0 or -1): open, welcomed + caught up to Welcome.seq, replica
 * at seq >= s, at least n errors, closed. */
int vtc_wait_open(vtc_conn *k, int timeout_ms);
int vtc_wait_synced(vtc_conn *k, int timeout_ms);
int vtc_wait_seq(vtc_conn *k, uint64_t s, int timeout_ms);
int vtc_wait_errors(vtc_conn *k, size_t n, int timeout_ms);
int vtc_wait_closed(vtc_conn *k, int timeout_ms);

int vtc_send_env(vtc_conn *k, const Vtl__V1__Envelope *env);
int vtc_send_raw(vtc_conn *k, const void *p, size_t n, bool binary);
int vtc_hello(vtc_conn *k, const char *room, const char *token,
              uint64_t last_seq);
/* Next id of this session: id_base | ++counter. */
uint64_t vtc_mint(vtc_conn *k);
int vtc_send_batch(vtc_conn *k, uint64_t batch_id, const vtl_op *ops,
                   size_t n);
int vtc_ping(vtc_conn *k, uint64_t nonce);
/* Hello with a display name and capabilities (e.g. "zstd_stream"). */
int vtc_hello_ex(vtc_conn *k, const char *room, const char *token,
                 uint64_t last_seq, const char *name, const char *const *caps,
                 size_t ncaps);
int vtc_send_presence(vtc_conn *k, const Vtl__V1__Presence *p);
int vtc_send_transport(vtc_conn *k, const Vtl__V1__Transport *t);
int vtc_subscribe(vtc_conn *k, uint32_t max_w, uint32_t max_h, double max_fps,
                  bool enabled, bool request_epoch);
/* Stops (false) or resumes (true) reading the socket: a slow client. */
void vtc_set_reading(vtc_conn *k, bool on);
/* The newest Presence record of session id, or NULL. */
const vtc_presence_rec *vtc_find_presence(const vtc_conn *k, uint64_t session);
/* Gives the connection a replica (taken over) at seq, as if caught up. */
void vtc_set_replica(vtc_conn *k, vtl_doc *doc, uint64_t seq);
/* The Ops record of batch_id, or NULL. */
const vtc_ops_rec *vtc_find_batch(const vtc_conn *k, uint64_t batch_id);
const vtc_error_rec *vtc_find_error(const vtc_conn *k, uint64_t batch_id);
/* vtl_json_export of the replica (malloc'd) or NULL. */
char *vtc_json(vtc_conn *k);

/* ---- the server process ------------------------------------------------------ */

typedef struct {
  pid_t pid;
  int port;
  int out_fd;               /* its stdout (start-up line) */
  char dir[256];            /* --data */
  char startup[4096];       /* stdout up to the start-up line */
} vtc_server;

/* A fresh temporary directory (/tmp/vtl-test-XXXXXX) in buf. */
int vtc_tmpdir(char *buf, size_t len);
void vtc_rmdir(const char *dir);
/* Starts `vtl-server --listen 127.0.0.1:0 --data DIR [extra...]` and waits
 * for its start-up line. envs: NULL or "NAME=VALUE" to set. 0 or -1. */
int vtc_server_start(vtc_server *s, const char *dir, const char *env);
/* The same with one extra argument (e.g. "--demo"; NULL: none); the
 * start-up output (tokens of --demo) is kept in s->startup. */
int vtc_server_start_ex(vtc_server *s, const char *dir, const char *env,
                        const char *extra);
/* The same with a NULL-terminated list of extra arguments (at most 26). */
int vtc_server_start_argv(vtc_server *s, const char *dir, const char *env,
                          const char *const *extra);
/* SIGTERM and wait, turning c's loop (may be NULL) meanwhile so that its
 * connections see the shutdown: the exit status (0 = clean), or -1. */
int vtc_server_stop(vtc_server *s, vtc_ctx *c);
void vtc_server_kill9(vtc_server *s);
/* `vtl-server room create NAME --data DIR`: the tokens (64-byte buffers). */
int vtc_room_create(const char *dir, const char *name, char *dtok,
                    char *vtok);
/* Runs `vtl-server ARGS` with stdout+stderr into out (NUL-terminated):
 * the exit status. */
int vtc_server_cmd(const char *args, char *out, size_t outlen);
/* GET target from 127.0.0.1:port (Connection: close, 10 s at most), the
 * target sent exactly as written: the status, and the body in body
 * (NUL-terminated), or -1; the Content-Type in ctype unless it is NULL. */
int vtc_http_get(int port, const char *target, char *body, size_t blen,
                 char *ctype, size_t clen);
/* The value of the sample `name` (labels included, exactly) on the
 * server's /metrics page, or -1. */
double vtc_metric(int port, const char *name);

#endif /* VTL_CLIENT_H */
