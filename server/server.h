/* server.h — vtl-server internals shared by its files (not a public API).
 *
 *   main.c   flags, sub-commands, start-up line, signals, shutdown order
 *   ws.c     the lws protocol callback: sessions, receive assembly, send
 *            queues (one write per SERVER_WRITEABLE)
 *   room.c   rooms: head document, seq, dedup, op log ring, sessions,
 *            commit pipeline, broadcast
 *   sync.c   message handlers handle_<msg>, one dispatch table
 *   store.c  SQLite (schema in its header); group commit on a worker thread
 *   auth.c   room tokens: random, stored hashed, constant-time compare
 *   http.c   plain HTTP: static files of clients/web/, /metrics, the
 *            Origin allow-list of upgrades (http.h)
 *   metrics.c counters and the Prometheus page (metrics.h)
 *   presence.c    Presence: per-session state, 20 Hz throttle, join/leave
 *   transport.c   Transport: the room's shared play state, persisted
 *   frames.c      frame streams: subscribe, publish (compress once per
 *                 stream), per-session droppable frame slot
 *   frame_codec.c zstd encoders (per-frame and streaming); no lws
 *   test_pattern.c the synthetic moving test pattern (pure function)
 *   demo.c        --demo: publishes the test pattern to room "demo"
 *                 (with --render: the render service draws its film)
 *   demo_timeline.c --demo-timeline: the film room "demo" starts with
 *   render.c      --render, loop side: room snapshots to the render
 *                 thread, its frames back to the subscribers
 *   render_thread.c  the render thread: what to render next, cancelling
 *   render_cache.c   the frame cache of a room (render thread)
 *   render_model.c   model paths and the loaded model (render thread)
 *   wire.c   proto <-> vtl_op (wire.h; also linked by clients)
 *
 * Threads: everything here runs on the loop thread except store.c's worker,
 * which touches only its own sqlite3 connection and the request queue, and
 * the render thread (render.h), which touches only its own copies of the
 * rooms' documents and transports. The render thread hands its frames to
 * the loop through a uv_async_t; only the loop thread calls
 * vtl_room_publish_frame (frames.c).
 */
#ifndef VTL_SERVER_H
#define VTL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <uv.h>

#include "store.h"
#include "vtl.pb-c.h"
#include "vtl_timeline.h"

#define VTL_SERVER_VERSION "vtl-server 0.1.0"

/* Impossible-but-survivable conditions (SQLite's ALWAYS / NEVER): in debug
 * builds they abort, in release builds they are tested and survived. */
#ifdef NDEBUG
#define VTL_ALWAYS(x) (x)
#define VTL_NEVER(x) (x)
#else
#define VTL_ALWAYS(x) ((x) ? 1 : (abort(), 0))
#define VTL_NEVER(x) ((x) ? (abort(), 1) : 0)
#endif

/* Protocol limits (docs/protocol.md, "Limits"). */
#define VTL_MAX_MESSAGE_BYTES   (1u << 20)
#define VTL_MAX_OPS_PER_BATCH   256
#define VTL_MAX_STRING_BYTES    4096
#define VTL_MAX_BATCHES_PER_SEC 50
#define VTL_MAX_PRESENCE_PER_SEC 20
#define VTL_MAX_OFFENCES        3
#define VTL_MAX_CAPABILITIES    16
#define VTL_MAX_CAPABILITY      64
/* Server bounds (not in the protocol). */
#define VTL_LOG_RING            4096     /* committed Ops kept per room for catch-up */
#define VTL_SEND_QUEUE_MAX      65536    /* queued messages before RESYNC_REQUIRED */
#define VTL_SEND_QUEUE_BYTES    (64u << 20)
#define VTL_ID_BASE_SHIFT       24       /* id = id_base | counter(24 bits) */
#define VTL_ID_BASE_RESERVE     64       /* bases reserved per store round trip */

typedef struct vtl_server vtl_server;
typedef struct vtl_room vtl_room;
typedef struct vtl_session vtl_session;

/* ---- messages ---------------------------------------------------------------
 * An encoded Envelope with LWS_PRE bytes of headroom, reference counted so
 * that one broadcast is encoded once and queued for every session. */
typedef struct vtl_msg {
  int refs;        /* owners: send queues, the room's log ring, requests */
  size_t len;      /* payload bytes at buf + LWS_PRE */
  uint8_t buf[];   /* LWS_PRE headroom, then the packed Envelope */
} vtl_msg;

vtl_msg *vtl_msg_pack(const Vtl__V1__Envelope *env); /* refs = 1; NULL: NOMEM */
vtl_msg *vtl_msg_from_bytes(const void *p, size_t n); /* copy; refs = 1 */
static inline uint8_t *vtl_msg_data(vtl_msg *m) { return m->buf + LWS_PRE; }
void vtl_msg_ref(vtl_msg *m);
void vtl_msg_unref(vtl_msg *m);

/* ---- sessions (handles; one per websocket connection) ------------------- */

typedef enum {
  VTL_SESSION_NEW,      /* connected, no Hello yet */
  VTL_SESSION_JOINING,  /* Hello accepted, waiting for an id base */
  VTL_SESSION_LIVE,     /* welcomed: receives the room's traffic */
} vtl_session_state;

struct vtl_session {
  void *data;                 /* user pointer (libuv habit) */
  vtl_server *server;         /* borrowed */
  struct lws *wsi;            /* borrowed from lws; NULL once closed */
  vtl_room *room;             /* borrowed; NULL before Hello */
  vtl_session *room_prev, *room_next; /* the room's session list */
  vtl_session *all_next;      /* the server's session list */
  vtl_session_state state;
  uint64_t id;                /* unique in the room: id_base >> 24 */
  int role;                   /* Vtl__V1__Role */
  char *display_name;         /* is malloc'd */
  char *url_room;             /* is malloc'd: the ?room= of the upgrade
                                 URL (decoded), or NULL; Hello must match */
  uint64_t last_seq;          /* Hello.last_seq (catch-up from here) */
  uint64_t id_base;           /* Welcome.id_base */
  uint64_t after_seq;         /* broadcast Ops with seq <= this are covered
                                 by the session's catch-up */
  vtl_msg *held_snapshot;     /* snapshot at after_seq waiting for the commit
                                 of after_seq; NULL when none */
  /* send queue: a FIFO of referenced messages (ops, errors, replies) */
  vtl_msg **q;                /* is malloc'd; q_cap slots, ring */
  size_t q_head, q_n, q_cap;
  size_t q_bytes;             /* payload bytes queued */
  vtl_msg *frame_slot;        /* newest frame only, droppable; sent only
                                 when q is empty (frames.c) */
  /* presence (presence.c); ephemeral, never persisted */
  uint32_t pres_color;        /* 0xRRGGBB; the server's pick until set */
  int64_t pres_playhead;      /* frame */
  uint64_t *pres_sel;         /* is malloc'd; pres_nsel <= 256 ids */
  size_t pres_nsel;
  double pres_px, pres_py;    /* pointer; px < 0 = none */
  bool pres_pending;          /* a newer state waits for the next tick */
  uint64_t pres_sent_ms;      /* uv_now of the last forward */
  /* frames (frames.c) */
  bool sub_on;                /* subscribed */
  uint32_t sub_w, sub_h;      /* Subscribe max size; 0 = the timeline's */
  double sub_fps;             /* Subscribe max fps; 0 = no cap */
  int codec;                  /* Vtl__V1__Codec from Hello capabilities */
  struct vtl_stream *stream;  /* borrowed: the room stream it is on */
  bool need_epoch;            /* no stream frame until the next epoch */
  uint64_t frames_sent, frames_dropped; /* counters */
  /* receive assembly */
  uint8_t *rx;                /* is malloc'd; the message being received */
  size_t rx_len, rx_cap;
  bool rx_oversize;           /* the current message passed the limit */
  bool rx_text;               /* the current message is a text frame */
  int offences;               /* malformed messages so far (3rd is fatal) */
  double rate_tokens;         /* OpBatch token bucket, refilled 50/s */
  uint64_t rate_ms;           /* last refill, uv_now */
  bool closing;               /* a fatal Error is queued: close after it */
  int close_status;           /* websocket close code */
};

/* Queues a message (takes a reference). Returns 0, or VTL_ELIMIT when the
 * queue passed its bound: the caller's message is dropped and the session
 * is sent RESYNC_REQUIRED and closed. Messages to a closing session are
 * dropped (0). */
int vtl_session_send(vtl_session *s, vtl_msg *m);
/* Sends Error{code, batch_id, message}; fatal also closes after it. */
void vtl_session_error(vtl_session *s, int wire_code, uint64_t batch_id,
                       bool fatal, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Counts an offence and answers Error{code}; the 3rd is fatal. */
void vtl_session_offence(vtl_session *s, int wire_code, const char *what);

/* ---- rooms ------------------------------------------------------------------
 * A room is loaded on the first Hello that names it (latest snapshot plus
 * replay of the op log) and stays loaded while the server runs. */

typedef struct vtl_batch vtl_batch; /* room.c: an applied, uncommitted batch */

typedef struct {
  uint64_t *keys;  /* batch ids; 0 = empty slot; is malloc'd */
  uint64_t *vals;  /* seq of each */
  size_t n, cap;   /* cap: power of two */
} vtl_u64map;

struct vtl_room {
  vtl_server *server;         /* borrowed */
  vtl_room *next;             /* the server's room list */
  int64_t db_id;              /* rooms.id */
  char *name;                 /* is malloc'd */
  vtl_doc *doc;               /* head: every applied batch; owned */
  uint64_t seq;               /* head seq (applied, maybe not committed) */
  uint64_t committed;         /* last durable seq */
  uint64_t last_snapshot_seq; /* seq of the newest stored snapshot */
  vtl_u64map dedup;           /* batch_id -> seq, every batch in the log */
  vtl_msg *log[VTL_LOG_RING]; /* committed Ops envelopes, by seq % RING */
  uint64_t log_first;         /* oldest seq held in log (0: none) */
  vtl_batch *inflight_head, *inflight_tail; /* applied, not yet committed */
  uint64_t id_bases_next;     /* next id base index to hand out */
  uint64_t id_bases_limit;    /* bases reserved durably: [1, limit) */
  bool id_reserving;          /* a reservation request is in flight */
  vtl_session *sessions;      /* list head (room_next) */
  size_t nsessions;
  Vtl__V1__Transport transport; /* the shared transport (transport.c);
                                   seq 0 = never set */
  struct vtl_stream *streams; /* frame streams, owned (frames.c) */
  uint64_t next_stream_id;
  struct render_room *render; /* the render service's state of the room,
                                 owned by it (render.c); NULL: none yet */
};

/* Finds a loaded room or loads it from the store. Returns 0, VTL_ENOENT
 * (no such room), VTL_EIO (store error; `msg` says why) or VTL_ENOMEM. */
int vtl_room_get(vtl_server *sv, const char *name, vtl_room **out,
                 char *msg, size_t msglen);
void vtl_room_free(vtl_room *r);
/* Adds s to the room; it is welcomed once an id base is durable. */
void vtl_room_join(vtl_room *r, vtl_session *s);
void vtl_room_leave(vtl_room *r, vtl_session *s);
/* Validates, applies and submits one batch (the caller checked role and
 * rate). s is the sender, or NULL for the server's own batch (session id
 * 0: demo_timeline.c). Returns 0 (broadcast after the commit), or a VTL_E*
 * with err. */
int vtl_room_apply(vtl_room *r, vtl_session *s, const Vtl__V1__OpBatch *b,
                   vtl_error *err);
/* Sends a message to every live session of the room except `except`. */
void vtl_room_broadcast(vtl_room *r, vtl_msg *m, vtl_session *except);

/* ---- the server ----------------------------------------------------------- */

typedef struct {
  const char *listen_addr;    /* e.g. "127.0.0.1" (borrowed from argv) */
  int port;                   /* 0: any free port */
  const char *data_dir;       /* borrowed */
  unsigned snapshot_every;    /* ops between snapshots */
  bool demo;                  /* --demo */
  vtl_doc *demo_timeline;     /* --demo-timeline, loaded before serving
                                 (borrowed from main.c); NULL: none */
  const char *web_root;       /* realpath of --web DIR (is malloc'd by
                                 main.c); NULL: no static files */
  const char *const *origins; /* --origin URLs (borrowed from argv) */
  size_t norigins;            /* 0: every Origin may upgrade (http.c) */
  bool tls;                   /* --cert/--key given: https and wss */
  unsigned max_batch_rate;    /* OpBatch per second per session (default
                                 VTL_MAX_BATCHES_PER_SEC; hidden bench flag) */
  unsigned demo_size, demo_fps; /* --demo pattern; 0: the test_pattern.h
                                   defaults (hidden bench flags) */
  bool render;                /* --render: the render service runs */
  const char *model_root;     /* --model-root DIR (borrowed from argv):
                                 timelines name models relative to it */
} vtl_server_config;

struct vtl_server {
  uv_loop_t *loop;            /* owned by main.c */
  struct lws_context *ctx;    /* NULL after destroy */
  vtl_store *store;           /* owned */
  vtl_server_config cfg;
  vtl_room *rooms;            /* loaded rooms, owned */
  vtl_session *sessions;      /* every connection, owned (all_next) */
  size_t nsessions;
  bool stopping;              /* SIGINT/SIGTERM seen: refuse new sessions */
  uv_timer_t presence_timer;  /* presence.c: the 20 Hz tick while pending */
  size_t presence_pending;    /* sessions with pres_pending */
  uv_timer_t demo_timer;      /* demo.c: test pattern frames */
  bool live_init;             /* the two timers above are initialised */
  struct vtl_render *render;  /* render.c, owned; NULL: no render service
                                 (no --render, or stopped) */
};

/* presence.c. vtl_live_init / _close own the server's timers (presence
 * tick, demo frames): init after the loop, close before uv_loop_close. */
void vtl_live_init(vtl_server *sv);
void vtl_live_close(vtl_server *sv);
void vtl_presence_on_live(vtl_session *s);  /* JOINED to others, others' to s */
void vtl_presence_on_leave(vtl_session *s); /* LEFT to the others */
void vtl_presence_handle(vtl_session *s, const Vtl__V1__Presence *p);

/* transport.c */
int vtl_transport_load(vtl_room *r); /* from the store at room load */
void vtl_transport_send(vtl_session *s); /* the room's transport to s */
void vtl_transport_handle(vtl_session *s, const Vtl__V1__Transport *t);

/* frames.c. vtl_room_publish_frame: see its contract in frames.c. */
#define VTL_FRAME_TEST_PATTERN 1u   /* flags: a generated pattern */
#define VTL_FRAME_EPOCH 2u          /* flags: an epoch on every stream (a
                                       frame that may stay on screen long,
                                       e.g. paused: late joiners get it) */
int vtl_room_publish_frame(vtl_room *r, int64_t frame_no, uint64_t doc_seq,
                           uint64_t dep_hash, uint32_t w, uint32_t h,
                           const uint8_t *rgb8, double render_ms,
                           unsigned flags);
void vtl_frames_hello(vtl_session *s, const Vtl__V1__Hello *h); /* codec */
void vtl_frames_subscribe(vtl_session *s, const Vtl__V1__Subscribe *m);
void vtl_frames_leave(vtl_session *s);   /* off its stream */
void vtl_frames_room_free(vtl_room *r);
/* ws.c calls it when the FIFO is empty: the frame to write, or NULL. */
vtl_msg *vtl_frames_take(vtl_session *s);

/* render.c (docs/render-service.md). _start: 0, or a VTL_E* after logging
 * why (no thread). _stop joins the render thread and frees its state; the
 * rooms' render pointers are dead afterwards (rooms are freed after it).
 * _touch tells it that something it follows changed: the room's document
 * (doc = true: vtl_room_apply, rollback), its transport, or who subscribes;
 * a no-op without the service. */
int vtl_render_start(vtl_server *sv);
void vtl_render_stop(vtl_server *sv);
void vtl_render_touch(vtl_room *r, bool doc);

/* demo.c */
int vtl_demo_start(vtl_server *sv); /* imports the film, publishes frames */

/* demo_timeline.c (see its header). _load: 0, or a VTL_E* with a sentence
 * naming the file and the problem in msg. _import: 0 (imported, or the
 * room has content and is left alone) or a VTL_E* (logged). */
int vtl_demo_timeline_load(const char *path, vtl_doc **out, char *msg,
                           size_t msglen);
int vtl_demo_timeline_import(vtl_room *r, vtl_doc *film);

/* sync.c: handles one decoded client message. */
void vtl_sync_dispatch(vtl_session *s, const Vtl__V1__Envelope *env);
/* sync.c: sends Welcome, catch-up (ops or snapshot) and goes LIVE. */
void vtl_sync_welcome(vtl_session *s);

/* ws.c */
extern const struct lws_protocols vtl_ws_protocols[];
void vtl_ws_request_write(vtl_session *s);

/* auth.c */
#define VTL_TOKEN_HASH_BYTES 32
/* Makes a fresh random token ("vtd_..." / "vtv_..." + 48 hex digits) into
 * buf (>= 64 bytes). Returns 0 or VTL_EIO (no randomness). */
int vtl_auth_token_new(int role, char *buf, size_t len);
void vtl_auth_hash(const char *token, uint8_t out[VTL_TOKEN_HASH_BYTES]);
/* Constant-time equality of two hashes. */
bool vtl_auth_equal(const uint8_t *a, const uint8_t *b);

/* room.c: small u64 -> u64 hash map (keys != 0). */
int vtl_u64map_put(vtl_u64map *m, uint64_t k, uint64_t v);
bool vtl_u64map_get(const vtl_u64map *m, uint64_t k, uint64_t *v);
void vtl_u64map_del(vtl_u64map *m, uint64_t k);
void vtl_u64map_free(vtl_u64map *m);

uint64_t vtl_now_ms(void); /* wall clock, ms since the Unix epoch */

#endif /* VTL_SERVER_H */
