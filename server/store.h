/* store.h — vtl-server persistence: one SQLite database per data directory.
 * The schema and the blob formats are documented at the top of store.c.
 *
 * Two kinds of calls:
 *   - synchronous reads and administrative writes (room create/list, room
 *     load at the first Hello), made on the loop thread or by the CLI;
 *   - write REQUESTS (ops, snapshots, id-base reservations), caller-
 *     allocated, queued to a worker thread that commits everything queued
 *     in one transaction (group commit, synchronous=FULL) and completes each
 *     request on the loop thread through its callback, in submission order.
 * A request's callback with status 0 means: durable.
 */
#ifndef VTL_STORE_H
#define VTL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct vtl_store vtl_store;
typedef struct vtl_store_req vtl_store_req;
typedef void (*vtl_store_cb)(vtl_store_req *req, int status);

typedef enum {
  VTL_STORE_OP,        /* ops row: room, seq, session, batch_id, base_seq, blob */
  VTL_STORE_SNAPSHOT,  /* snapshots row: room, seq, blob */
  VTL_STORE_ID_BASES,  /* rooms.id_bases = seq (a new reservation limit) */
  VTL_STORE_TRANSPORT, /* transport row of the room: seq, blob */
} vtl_store_req_type;

struct vtl_store_req {
  void *data;               /* user pointer */
  vtl_store_req_type type;
  int64_t room;             /* rooms.id */
  uint64_t seq;             /* OP, SNAPSHOT: the seq; ID_BASES: new limit */
  uint64_t session, batch_id, base_seq; /* OP */
  const uint8_t *blob;      /* borrowed until the callback */
  size_t len;
  /* private */
  vtl_store_cb cb;
  int status;
  vtl_store_req *next;
};

typedef struct {
  int64_t id;
  char name[257];
  uint64_t created_ms;
  uint64_t id_bases;        /* id bases reserved so far */
  bool anonymous_viewers;   /* "" token = viewer */
  uint64_t seq;             /* last committed seq (max ops.seq) */
  uint64_t nops;            /* ops rows */
} vtl_store_room_info;

typedef struct {
  int role;                 /* Vtl__V1__Role */
  uint8_t hash[32];         /* SHA-256 of the token */
} vtl_store_token;

/* Opens (creating when absent) DIR/vtl.db, checks that it is a vtl database
 * and not damaged, sets WAL + synchronous=FULL. With a loop, starts the
 * commit worker (requests allowed); with NULL (CLI), synchronous calls only.
 * Returns 0, or VTL_EIO with a sentence in msg. */
int vtl_store_open(vtl_store **out, uv_loop_t *loop, const char *dir,
                   char *msg, size_t msglen);
/* Commits what is queued, stops the worker, closes the database. The
 * callbacks of queued requests run before it returns; the async handle is
 * closed on the loop (run the loop until it is empty afterwards). */
void vtl_store_close(vtl_store *st);

/* Queues a write request. Returns 0 or VTL_EINVAL (no worker, closing). */
int vtl_store_submit(vtl_store *st, vtl_store_req *req, vtl_store_cb cb);
/* True when no request is queued, running or awaiting its callback. */
bool vtl_store_idle(vtl_store *st);

/* Creates an empty room with a director and a viewer token hash.
 * VTL_EEXIST if the name is taken. */
int vtl_store_room_create(vtl_store *st, const char *name, bool anon,
                          const uint8_t dhash[32], const uint8_t vhash[32],
                          char *msg, size_t msglen);
/* Replaces a room's tokens by these two (--demo prints fresh ones). */
int vtl_store_room_set_tokens(vtl_store *st, int64_t room,
                              const uint8_t dhash[32], const uint8_t vhash[32]);
int vtl_store_room_find(vtl_store *st, const char *name,
                        vtl_store_room_info *out); /* VTL_ENOENT */
int vtl_store_room_list(vtl_store *st,
                        void (*cb)(void *arg, const vtl_store_room_info *r),
                        void *arg);
/* The room's token hashes: *out is malloc'd (*n entries). */
int vtl_store_tokens(vtl_store *st, int64_t room, vtl_store_token **out,
                     size_t *n);
/* The newest snapshot: *blob malloc'd. VTL_ENOENT when there is none. */
int vtl_store_snapshot_latest(vtl_store *st, int64_t room, uint64_t *seq,
                              uint8_t **blob, size_t *len);
/* Calls cb for every op of the room with seq > after, in seq order; blob
 * is NULL unless want_blob. A non-zero return from cb stops and is
 * returned. */
int vtl_store_ops_each(vtl_store *st, int64_t room, uint64_t after,
                       bool want_blob,
                       int (*cb)(void *arg, uint64_t seq, uint64_t session,
                                 uint64_t batch_id, const void *blob,
                                 size_t len),
                       void *arg);

/* The room's persisted Transport (a packed vtl.v1.Transport, *blob
 * malloc'd). VTL_ENOENT when it was never set. */
int vtl_store_transport_get(vtl_store *st, int64_t room, uint8_t **blob,
                            size_t *len);

#endif /* VTL_STORE_H */
