/* store.c — SQLite persistence of vtl-server (API in store.h).
 *
 * FILE: DATA_DIR/vtl.db, WAL mode (vtl.db-wal, vtl.db-shm beside it),
 * synchronous=FULL: a COMMIT returns only after the WAL is fsync'd, so an
 * acknowledged batch survives kill -9 and power loss.
 *
 * IDENTITY: PRAGMA application_id = 0x76746c31 ("vtl1"), user_version = 2.
 * A file with tables but another application_id is refused ("not a vtl
 * database"); a newer user_version is refused; a file SQLite cannot read,
 * or one failing `PRAGMA quick_check`, is refused as damaged.
 *
 * VERSIONS and MIGRATION (run at open, in one transaction, oldest first):
 *   1  rooms, tokens, ops, snapshots
 *   2  + transport (1 -> 2: CREATE TABLE transport; no row = never set)
 *
 * SCHEMA (version 2)
 *
 *   rooms      id INTEGER PRIMARY KEY    room number (internal)
 *              name TEXT UNIQUE          what Hello.room names; <= 256 bytes
 *              created_ms INTEGER        wall clock at creation
 *              id_bases INTEGER          id bases reserved so far: the next
 *                                        start hands out bases from here on,
 *                                        so no base is ever issued twice
 *              anonymous_viewers INTEGER 1: an empty token joins as viewer
 *
 *   tokens     room INTEGER              rooms.id
 *              role INTEGER              Vtl__V1__Role (0 viewer, 1 director)
 *              hash BLOB                 SHA-256 of the token (32 bytes); the
 *                                        token itself is never stored
 *              created_ms INTEGER
 *
 *   ops        room INTEGER, seq INTEGER PRIMARY KEY(room, seq), no gaps:
 *                                        the worker refuses seq != last + 1
 *              session INTEGER           sending session id
 *              batch_id INTEGER          the client's batch id (dedup key,
 *                                        index ops_batch)
 *              base_seq INTEGER          OpBatch.base_seq, as recorded
 *              time_ms INTEGER           commit time
 *              blob BLOB                 the packed vtl.v1.Envelope{ops: Ops}
 *                                        exactly as broadcast
 *
 *   snapshots  room INTEGER, seq INTEGER PRIMARY KEY(room, seq)
 *              time_ms INTEGER
 *              blob BLOB                 a packed vtl.v1.Document: the room's
 *                                        document after op `seq` (seq 0:
 *                                        the document a room was created
 *                                        with, written by vtl-server 0.1.0
 *                                        --demo; still loaded)
 *
 *   transport  room INTEGER PRIMARY KEY  rooms.id; one row per room
 *              seq INTEGER               Transport.seq of the stored state
 *              time_ms INTEGER           when it was stored
 *              blob BLOB                 a packed vtl.v1.Transport as last
 *                                        broadcast (written by the worker,
 *                                        grouped with the ops)
 *
 * START-UP of a room = the newest snapshot + replay of the ops after it.
 *
 * GROUP COMMIT: requests queue under `mu`; the worker takes the whole queue,
 * runs it as one BEGIN IMMEDIATE .. COMMIT, and hands the finished list
 * back through a uv_async_t; the loop thread runs the callbacks in order.
 * A failed transaction fails every request in it (status VTL_EIO) and
 * nothing of it is on disk.
 *
 * FAULT INJECTION: VTL_STORE_FAIL_TXN=N makes the Nth transaction fail
 * (rolled back) as if the disk had; used by the tests.
 */
#include "log.h"
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "vtl_error.h"

#define VTL_APP_ID 0x76746c31
#define VTL_SCHEMA_VERSION 2

static const char schema_sql[] =
  "CREATE TABLE rooms(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
  " created_ms INTEGER NOT NULL, id_bases INTEGER NOT NULL DEFAULT 1,"
  " anonymous_viewers INTEGER NOT NULL DEFAULT 0);"
  "CREATE TABLE tokens(room INTEGER NOT NULL, role INTEGER NOT NULL,"
  " hash BLOB NOT NULL, created_ms INTEGER NOT NULL);"
  "CREATE INDEX tokens_room ON tokens(room);"
  "CREATE TABLE ops(room INTEGER NOT NULL, seq INTEGER NOT NULL,"
  " session INTEGER NOT NULL, batch_id INTEGER NOT NULL,"
  " base_seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, blob BLOB NOT NULL,"
  " PRIMARY KEY(room, seq)) WITHOUT ROWID;"
  "CREATE INDEX ops_batch ON ops(room, batch_id);"
  "CREATE TABLE snapshots(room INTEGER NOT NULL, seq INTEGER NOT NULL,"
  " time_ms INTEGER NOT NULL, blob BLOB NOT NULL,"
  " PRIMARY KEY(room, seq)) WITHOUT ROWID;"
  "CREATE TABLE transport(room INTEGER PRIMARY KEY, seq INTEGER NOT NULL,"
  " time_ms INTEGER NOT NULL, blob BLOB NOT NULL);"
  "PRAGMA application_id = 1987341361;" /* 0x76746c31 */
  "PRAGMA user_version = 2;";

/* migrations[v] takes a version-v file to v+1 */
static const char *const migrations[] = {
  NULL,
  "CREATE TABLE transport(room INTEGER PRIMARY KEY, seq INTEGER NOT NULL,"
  " time_ms INTEGER NOT NULL, blob BLOB NOT NULL);"
  "PRAGMA user_version = 2;",
};

typedef struct {
  int64_t room;
  uint64_t seq; /* last seq on disk */
} room_seq;

struct vtl_store {
  sqlite3 *db;              /* loop thread / CLI connection */
  sqlite3 *wdb;             /* worker connection; NULL without a worker */
  uv_loop_t *loop;          /* borrowed; NULL for the CLI */
  uv_async_t *async;        /* is malloc'd; freed in its close callback */
  pthread_t thread;
  pthread_mutex_t mu;       /* guards everything below */
  pthread_cond_t cv;
  vtl_store_req *q_head, *q_tail;     /* submitted, not taken */
  vtl_store_req *d_head, *d_tail;     /* finished, callbacks not run */
  int running;              /* requests taken by the worker */
  bool stop;
  /* worker-thread only */
  room_seq *seqs;           /* last seq per room (cache), malloc'd */
  size_t nseqs;
  int txn_count, fail_txn;  /* fault injection */
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int fail(char *msg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t len, const char *fmt, ...) {
  if (msg && len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
  }
  return VTL_EIO;
}

static int64_t pragma_int(sqlite3 *db, const char *sql, int *rc) {
  sqlite3_stmt *st;
  int64_t v = 0;
  *rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (*rc != SQLITE_OK) return 0;
  *rc = sqlite3_step(st);
  if (*rc == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
    *rc = SQLITE_OK;
  } else if (*rc == SQLITE_DONE) {
    *rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return v;
}

/* Opens one connection with the pragmas every connection needs. */
static int open_conn(const char *path, sqlite3 **out, char *msg, size_t len) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    fail(msg, len, "%s: cannot open: %s", path,
         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return VTL_EIO;
  }
  sqlite3_busy_timeout(db, 10000);
  char *e = NULL;
  rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                    NULL, NULL, &e);
  if (rc != SQLITE_OK) {
    fail(msg, len, "%s: %s (%s)", path,
         rc == SQLITE_NOTADB ? "not a database file: damaged, or not vtl's"
         : rc == SQLITE_CORRUPT ? "the database is damaged"
                                : "cannot set WAL mode",
         e ? e : sqlite3_errstr(rc));
    sqlite3_free(e);
    sqlite3_close(db);
    return VTL_EIO;
  }
  *out = db;
  return 0;
}

/* Checks identity and integrity; creates the schema in a new file. */
static int check_schema(sqlite3 *db, const char *path, char *msg, size_t len) {
  int rc;
  int64_t ntables = pragma_int(
      db, "SELECT count(*) FROM sqlite_master WHERE type='table'", &rc);
  if (rc != SQLITE_OK)
    return fail(msg, len, "%s: %s (%s)", path,
                rc == SQLITE_NOTADB ? "not a database file: damaged, or not vtl's"
                                    : "the database is damaged",
                sqlite3_errstr(rc));
  int64_t app = pragma_int(db, "PRAGMA application_id", &rc);
  int64_t ver = pragma_int(db, "PRAGMA user_version", &rc);
  if (ntables == 0 && app == 0) {
    char *e = NULL;
    char sql[sizeof schema_sql + 32];
    snprintf(sql, sizeof sql, "BEGIN IMMEDIATE;%sCOMMIT;", schema_sql);
    if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK) {
      fail(msg, len, "%s: cannot create the schema: %s", path, e ? e : "?");
      sqlite3_free(e);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return VTL_EIO;
    }
    return 0;
  }
  if (app != VTL_APP_ID)
    return fail(msg, len,
                "%s: not a vtl database (SQLite application_id 0x%llx, "
                "expected 0x%x); refusing to touch it",
                path, (unsigned long long)app, VTL_APP_ID);
  if (ver > VTL_SCHEMA_VERSION)
    return fail(msg, len,
                "%s: schema version %lld is newer than this server's (%d)",
                path, (long long)ver, VTL_SCHEMA_VERSION);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
    return fail(msg, len, "%s: the database is damaged: %s", path,
                sqlite3_errmsg(db));
  rc = sqlite3_step(st);
  const char *r = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
                                   : NULL;
  if (!r || strcmp(r, "ok") != 0) {
    fail(msg, len, "%s: the database is damaged (quick_check: %s)", path,
         r ? r : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return VTL_EIO;
  }
  sqlite3_finalize(st);
  for (int64_t v = ver; v >= 1 && v < VTL_SCHEMA_VERSION; v++) {
    char *e = NULL;
    char sql[1024];
    snprintf(sql, sizeof sql, "BEGIN IMMEDIATE;%sCOMMIT;", migrations[v]);
    if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK) {
      fail(msg, len, "%s: cannot migrate schema version %lld to %lld: %s",
           path, (long long)v, (long long)v + 1, e ? e : "?");
      sqlite3_free(e);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return VTL_EIO;
    }
    vtl_log(VTL_LOG_INFO, "store.migrated", "%s: schema migrated from version %lld to "
            "%lld", path, (long long)v, (long long)v + 1);
  }
  return 0;
}

/* ---- the worker ------------------------------------------------------------ */

static uint64_t *seq_slot(vtl_store *st, int64_t room, int *rc) {
  for (size_t i = 0; i < st->nseqs; i++)
    if (st->seqs[i].room == room) return &st->seqs[i].seq;
  room_seq *n = realloc(st->seqs, (st->nseqs + 1) * sizeof *n);
  if (!n) { *rc = SQLITE_NOMEM; return NULL; }
  st->seqs = n;
  sqlite3_stmt *q;
  uint64_t last = 0;
  *rc = sqlite3_prepare_v2(st->wdb, "SELECT max(seq) FROM ops WHERE room=?",
                           -1, &q, NULL);
  if (*rc != SQLITE_OK) return NULL;
  sqlite3_bind_int64(q, 1, room);
  if (sqlite3_step(q) == SQLITE_ROW) last = (uint64_t)sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  st->seqs[st->nseqs] = (room_seq){room, last};
  return &st->seqs[st->nseqs++].seq;
}

static int exec_req(vtl_store *st, vtl_store_req *r) {
  sqlite3_stmt *q = NULL;
  int rc = SQLITE_OK;
  switch (r->type) {
  case VTL_STORE_OP: {
    uint64_t *last = seq_slot(st, r->room, &rc);
    if (!last) return rc;
    if (r->seq != *last + 1) return SQLITE_CONSTRAINT; /* never a gap */
    rc = sqlite3_prepare_v2(st->wdb,
        "INSERT INTO ops(room,seq,session,batch_id,base_seq,time_ms,blob)"
        " VALUES(?,?,?,?,?,?,?)", -1, &q, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_int64(q, 1, r->room);
    sqlite3_bind_int64(q, 2, (int64_t)r->seq);
    sqlite3_bind_int64(q, 3, (int64_t)r->session);
    sqlite3_bind_int64(q, 4, (int64_t)r->batch_id);
    sqlite3_bind_int64(q, 5, (int64_t)r->base_seq);
    sqlite3_bind_int64(q, 6, (int64_t)now_ms());
    sqlite3_bind_blob(q, 7, r->blob, (int)r->len, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) { rc = SQLITE_OK; *last = r->seq; }
    break;
  }
  case VTL_STORE_SNAPSHOT:
    rc = sqlite3_prepare_v2(st->wdb,
        "INSERT OR REPLACE INTO snapshots(room,seq,time_ms,blob) VALUES(?,?,?,?)",
        -1, &q, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_int64(q, 1, r->room);
    sqlite3_bind_int64(q, 2, (int64_t)r->seq);
    sqlite3_bind_int64(q, 3, (int64_t)now_ms());
    sqlite3_bind_blob(q, 4, r->blob, (int)r->len, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
    break;
  case VTL_STORE_TRANSPORT:
    rc = sqlite3_prepare_v2(st->wdb,
        "INSERT OR REPLACE INTO transport(room,seq,time_ms,blob) VALUES(?,?,?,?)",
        -1, &q, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_int64(q, 1, r->room);
    sqlite3_bind_int64(q, 2, (int64_t)r->seq);
    sqlite3_bind_int64(q, 3, (int64_t)now_ms());
    sqlite3_bind_blob(q, 4, r->blob, (int)r->len, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
    break;
  case VTL_STORE_ID_BASES:
    rc = sqlite3_prepare_v2(st->wdb,
        "UPDATE rooms SET id_bases=max(id_bases,?) WHERE id=?", -1, &q, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_int64(q, 1, (int64_t)r->seq);
    sqlite3_bind_int64(q, 2, r->room);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
    break;
  }
  sqlite3_finalize(q);
  return rc;
}

/* One transaction over the list; returns 0 or VTL_EIO. */
static int run_txn(vtl_store *st, vtl_store_req *list) {
  int rc = sqlite3_exec(st->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  for (vtl_store_req *r = list; rc == SQLITE_OK && r; r = r->next)
    rc = exec_req(st, r);
  st->txn_count++;
  if (rc == SQLITE_OK && st->fail_txn && st->txn_count == st->fail_txn)
    rc = SQLITE_IOERR; /* fault injection */
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(st->wdb, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_exec(st->wdb, "ROLLBACK", NULL, NULL, NULL);
    st->nseqs = 0; /* the cache may hold seqs that were rolled back */
    vtl_log(VTL_LOG_ERROR, "store.commit", "transaction failed: %s",
            sqlite3_errstr(rc));
    return VTL_EIO;
  }
  return 0;
}

static void *worker_main(void *arg) {
  vtl_store *st = arg;
  pthread_mutex_lock(&st->mu);
  for (;;) {
    while (!st->q_head && !st->stop) pthread_cond_wait(&st->cv, &st->mu);
    if (!st->q_head) break; /* stop, and nothing left */
    vtl_store_req *list = st->q_head, *tail = st->q_tail;
    int n = 0;
    for (vtl_store_req *r = list; r; r = r->next) n++;
    st->q_head = st->q_tail = NULL;
    st->running = n;
    pthread_mutex_unlock(&st->mu);

    int status = run_txn(st, list);
    for (vtl_store_req *r = list; r; r = r->next) r->status = status;

    pthread_mutex_lock(&st->mu);
    if (st->d_tail) st->d_tail->next = list; else st->d_head = list;
    st->d_tail = tail;
    st->running = 0;
    uv_async_send(st->async);
  }
  pthread_mutex_unlock(&st->mu);
  return NULL;
}

/* Loop thread: runs the callbacks of finished requests, in order. */
static void deliver(vtl_store *st) {
  pthread_mutex_lock(&st->mu);
  vtl_store_req *list = st->d_head;
  st->d_head = st->d_tail = NULL;
  pthread_mutex_unlock(&st->mu);
  while (list) {
    vtl_store_req *r = list;
    list = r->next;
    r->next = NULL;
    r->cb(r, r->status);
  }
}

static void on_async(uv_async_t *a) { deliver(a->data); }

/* ---- public ------------------------------------------------------------------ */

int vtl_store_open(vtl_store **out, uv_loop_t *loop, const char *dir,
                   char *msg, size_t msglen) {
  *out = NULL;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return fail(msg, msglen, "%s: cannot create the data directory: %s", dir,
                strerror(errno));
  char path[4096];
  snprintf(path, sizeof path, "%s/vtl.db", dir);
  vtl_store *st = calloc(1, sizeof *st);
  if (!st) return fail(msg, msglen, "out of memory");
  int rc = open_conn(path, &st->db, msg, msglen);
  if (!rc) rc = check_schema(st->db, path, msg, msglen);
  if (!rc && loop) rc = open_conn(path, &st->wdb, msg, msglen);
  if (rc) {
    sqlite3_close(st->db);
    free(st);
    return rc;
  }
  const char *f = getenv("VTL_STORE_FAIL_TXN");
  st->fail_txn = f ? atoi(f) : 0;
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);
  if (loop) {
    st->loop = loop;
    st->async = malloc(sizeof *st->async);
    if (!st->async || uv_async_init(loop, st->async, on_async) != 0 ||
        pthread_create(&st->thread, NULL, worker_main, st) != 0) {
      free(st->async);
      sqlite3_close(st->wdb);
      sqlite3_close(st->db);
      free(st);
      return fail(msg, msglen, "cannot start the store worker");
    }
    st->async->data = st;
  }
  *out = st;
  return 0;
}

static void free_handle(uv_handle_t *h) { free(h); }

void vtl_store_close(vtl_store *st) {
  if (!st) return;
  if (st->loop) {
    pthread_mutex_lock(&st->mu);
    st->stop = true;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    deliver(st);
    uv_close((uv_handle_t *)st->async, free_handle);
    sqlite3_close(st->wdb);
  }
  sqlite3_close(st->db);
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->cv);
  free(st->seqs);
  free(st);
}

int vtl_store_submit(vtl_store *st, vtl_store_req *req, vtl_store_cb cb) {
  if (!st->loop || st->stop) return VTL_EINVAL;
  req->cb = cb;
  req->next = NULL;
  req->status = 0;
  pthread_mutex_lock(&st->mu);
  if (st->q_tail) st->q_tail->next = req; else st->q_head = req;
  st->q_tail = req;
  pthread_cond_signal(&st->cv);
  pthread_mutex_unlock(&st->mu);
  return 0;
}

bool vtl_store_idle(vtl_store *st) {
  pthread_mutex_lock(&st->mu);
  bool idle = !st->q_head && !st->d_head && st->running == 0;
  pthread_mutex_unlock(&st->mu);
  return idle;
}

static int insert_tokens(sqlite3 *db, int64_t room, const uint8_t dh[32],
                         const uint8_t vh[32]) {
  sqlite3_stmt *q;
  int rc = sqlite3_prepare_v2(db,
      "INSERT INTO tokens(room,role,hash,created_ms) VALUES(?,?,?,?)", -1, &q,
      NULL);
  for (int i = 0; rc == SQLITE_OK && i < 2; i++) {
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, room);
    sqlite3_bind_int(q, 2, i == 0 ? 1 : 0); /* ROLE_DIRECTOR, ROLE_VIEWER */
    sqlite3_bind_blob(q, 3, i == 0 ? dh : vh, 32, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (int64_t)now_ms());
    rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
  }
  sqlite3_finalize(q);
  return rc;
}

int vtl_store_room_create(vtl_store *st, const char *name, bool anon,
                          const uint8_t dh[32], const uint8_t vh[32],
                          char *msg, size_t msglen) {
  sqlite3 *db = st->db;
  sqlite3_stmt *q = NULL;
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db,
        "INSERT INTO rooms(name,created_ms,anonymous_viewers) VALUES(?,?,?)",
        -1, &q, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (int64_t)now_ms());
    sqlite3_bind_int(q, 3, anon);
    rc = sqlite3_step(q);
    rc = rc == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
  }
  sqlite3_finalize(q);
  int64_t room = sqlite3_last_insert_rowid(db);
  if (rc == SQLITE_OK) rc = insert_tokens(db, room, dh, vh);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      fail(msg, msglen, "a room named \"%s\" exists already", name);
      return VTL_EEXIST;
    }
    return fail(msg, msglen, "cannot create room \"%s\": %s", name,
                sqlite3_errstr(rc));
  }
  return 0;
}

int vtl_store_room_set_tokens(vtl_store *st, int64_t room,
                              const uint8_t dh[32], const uint8_t vh[32]) {
  sqlite3_stmt *q;
  int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK &&
      (rc = sqlite3_prepare_v2(st->db, "DELETE FROM tokens WHERE room=?", -1,
                               &q, NULL)) == SQLITE_OK) {
    sqlite3_bind_int64(q, 1, room);
    rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    sqlite3_finalize(q);
  }
  if (rc == SQLITE_OK) rc = insert_tokens(st->db, room, dh, vh);
  if (rc == SQLITE_OK) rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return VTL_EIO;
  }
  return 0;
}

static const char room_cols[] =
  "SELECT r.id, r.name, r.created_ms, r.id_bases, r.anonymous_viewers,"
  " (SELECT coalesce(max(seq),0) FROM ops o WHERE o.room=r.id),"
  " (SELECT count(*) FROM ops o WHERE o.room=r.id) FROM rooms r";

static void room_row(sqlite3_stmt *q, vtl_store_room_info *r) {
  memset(r, 0, sizeof *r);
  r->id = sqlite3_column_int64(q, 0);
  const char *n = (const char *)sqlite3_column_text(q, 1);
  snprintf(r->name, sizeof r->name, "%s", n ? n : "");
  r->created_ms = (uint64_t)sqlite3_column_int64(q, 2);
  r->id_bases = (uint64_t)sqlite3_column_int64(q, 3);
  r->anonymous_viewers = sqlite3_column_int(q, 4) != 0;
  r->seq = (uint64_t)sqlite3_column_int64(q, 5);
  r->nops = (uint64_t)sqlite3_column_int64(q, 6);
}

int vtl_store_room_find(vtl_store *st, const char *name,
                        vtl_store_room_info *out) {
  char sql[512];
  snprintf(sql, sizeof sql, "%s WHERE r.name=?", room_cols);
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
    return VTL_EIO;
  sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) room_row(q, out);
  sqlite3_finalize(q);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? VTL_ENOENT : VTL_EIO;
}

int vtl_store_room_list(vtl_store *st,
                        void (*cb)(void *arg, const vtl_store_room_info *r),
                        void *arg) {
  char sql[512];
  snprintf(sql, sizeof sql, "%s ORDER BY r.name", room_cols);
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
    return VTL_EIO;
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    vtl_store_room_info r;
    room_row(q, &r);
    cb(arg, &r);
  }
  sqlite3_finalize(q);
  return rc == SQLITE_DONE ? 0 : VTL_EIO;
}

int vtl_store_tokens(vtl_store *st, int64_t room, vtl_store_token **out,
                     size_t *n) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(st->db, "SELECT role, hash FROM tokens WHERE room=?",
                         -1, &q, NULL) != SQLITE_OK)
    return VTL_EIO;
  sqlite3_bind_int64(q, 1, room);
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (sqlite3_column_bytes(q, 1) != 32) continue;
    vtl_store_token *t = realloc(*out, (*n + 1) * sizeof *t);
    if (!t) { rc = SQLITE_NOMEM; break; }
    *out = t;
    t[*n].role = sqlite3_column_int(q, 0);
    memcpy(t[*n].hash, sqlite3_column_blob(q, 1), 32);
    (*n)++;
  }
  sqlite3_finalize(q);
  if (rc != SQLITE_DONE) {
    free(*out);
    *out = NULL;
    *n = 0;
    return VTL_EIO;
  }
  return 0;
}

int vtl_store_snapshot_latest(vtl_store *st, int64_t room, uint64_t *seq,
                              uint8_t **blob, size_t *len) {
  *blob = NULL;
  *len = 0;
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(st->db,
          "SELECT seq, blob FROM snapshots WHERE room=? ORDER BY seq DESC LIMIT 1",
          -1, &q, NULL) != SQLITE_OK)
    return VTL_EIO;
  sqlite3_bind_int64(q, 1, room);
  int rc = sqlite3_step(q), ret = 0;
  if (rc == SQLITE_ROW) {
    *seq = (uint64_t)sqlite3_column_int64(q, 0);
    *len = (size_t)sqlite3_column_bytes(q, 1);
    *blob = malloc(*len ? *len : 1);
    if (*blob) memcpy(*blob, sqlite3_column_blob(q, 1), *len);
    else ret = VTL_ENOMEM;
  } else {
    ret = rc == SQLITE_DONE ? VTL_ENOENT : VTL_EIO;
  }
  sqlite3_finalize(q);
  return ret;
}

int vtl_store_ops_each(vtl_store *st, int64_t room, uint64_t after,
                       bool want_blob,
                       int (*cb)(void *arg, uint64_t seq, uint64_t session,
                                 uint64_t batch_id, const void *blob,
                                 size_t len),
                       void *arg) {
  sqlite3_stmt *q;
  const char *sql = want_blob
      ? "SELECT seq, session, batch_id, blob FROM ops WHERE room=? AND seq>?"
        " ORDER BY seq"
      : "SELECT seq, session, batch_id FROM ops WHERE room=? AND seq>?"
        " ORDER BY seq";
  if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
    return VTL_EIO;
  sqlite3_bind_int64(q, 1, room);
  sqlite3_bind_int64(q, 2, (int64_t)after);
  int rc, ret = 0;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    const void *b = want_blob ? sqlite3_column_blob(q, 3) : NULL;
    size_t n = want_blob ? (size_t)sqlite3_column_bytes(q, 3) : 0;
    ret = cb(arg, (uint64_t)sqlite3_column_int64(q, 0),
             (uint64_t)sqlite3_column_int64(q, 1),
             (uint64_t)sqlite3_column_int64(q, 2), b, n);
    if (ret) break;
  }
  if (!ret && rc != SQLITE_DONE) ret = VTL_EIO;
  sqlite3_finalize(q);
  return ret;
}

int vtl_store_transport_get(vtl_store *st, int64_t room, uint8_t **blob,
                            size_t *len) {
  *blob = NULL;
  *len = 0;
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(st->db, "SELECT blob FROM transport WHERE room=?",
                         -1, &q, NULL) != SQLITE_OK)
    return VTL_EIO;
  sqlite3_bind_int64(q, 1, room);
  int rc = sqlite3_step(q), ret = 0;
  if (rc == SQLITE_ROW) {
    *len = (size_t)sqlite3_column_bytes(q, 0);
    *blob = malloc(*len ? *len : 1);
    if (*blob) memcpy(*blob, sqlite3_column_blob(q, 0), *len);
    else ret = VTL_ENOMEM;
  } else {
    ret = rc == SQLITE_DONE ? VTL_ENOENT : VTL_EIO;
  }
  sqlite3_finalize(q);
  return ret;
}
