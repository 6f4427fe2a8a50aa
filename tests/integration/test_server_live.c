/* test_server_live.c — vtl-server's live path end to end: Presence,
 * Transport and frame streams, against the real server process over real
 * sockets (fixtures as in test_server.c). Frames come from --demo's test
 * pattern; the tests decode them with zstd and compare every pixel with
 * the generator (server/test_pattern.c, linked in).
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <zstd.h>

#include "frame_codec.h"
#include "task.h"
#include "test_pattern.h"
#include "vtl_client.h"

#define T_MS 10000 /* generous: the server runs under sanitizers */
#define E(x) VTL__V1__ERROR__CODE__CODE_##x
#define C(x) VTL__V1__CODEC__CODEC_##x

typedef struct {
  char dir[256];
  char dtok[64], vtok[64];
  const char *room;
  vtc_server srv;
  vtc_ctx c;
} fixture;

/* demo = false: room "film" made with `room create`; true: --demo with
 * the demo film, room "demo" (public; tokens parsed from the start-up
 * output). */
static int setup(fixture *f, bool demo) {
  memset(f, 0, sizeof *f);
  CHECK(vtc_tmpdir(f->dir, sizeof f->dir));
  if (!demo) {
    CHECK(vtc_room_create(f->dir, "film", f->dtok, f->vtok));
    f->room = "film";
    CHECK(vtc_server_start(&f->srv, f->dir, NULL));
  } else {
    f->room = "demo";
    static const char *const args[] = {"--demo", "--demo-timeline",
                                       "demo/demo.vtl.json", NULL};
    CHECK(vtc_server_start_argv(&f->srv, f->dir, NULL, args));
    const char *d = strstr(f->srv.startup, "director token: ");
    const char *v = strstr(f->srv.startup, "viewer token:   ");
    if (!d || !v) return -1;
    sscanf(d + 16, "%63s", f->dtok);
    sscanf(v + 16, "%63s", f->vtok);
  }
  CHECK(vtc_ctx_init(&f->c));
  return 0;
}

static int teardown(fixture *f) {
  int rc = vtc_server_stop(&f->srv, &f->c);
  vtc_ctx_done(&f->c);
  vtc_rmdir(f->dir);
  return rc;
}

static vtc_conn *join_ex(fixture *f, const char *token, const char *name,
                         const char *const *caps, size_t ncaps) {
  vtc_conn *k = vtc_connect(&f->c, f->srv.port);
  if (!k || vtc_wait_open(k, T_MS)) return NULL;
  vtc_hello_ex(k, f->room, token, 0, name, caps, ncaps);
  if (vtc_wait_synced(k, T_MS)) return NULL;
  return k;
}
static vtc_conn *join(fixture *f, const char *token, const char *name) {
  return join_ex(f, token, name, NULL, 0);
}

static bool never(void *a) { (void)a; return false; }
static void turn(vtc_ctx *c, int ms) { vtc_run(c, never, NULL, ms); }

/* waits */
typedef struct { vtc_conn *k; uint64_t session; int state; int64_t playhead; } pres_wait;
static bool has_pres(void *a) {
  pres_wait *w = a;
  const vtc_presence_rec *p = vtc_find_presence(w->k, w->session);
  return w->k->closed || (p && p->state == w->state &&
                          (w->playhead < 0 || p->playhead == w->playhead));
}
static int wait_presence(vtc_conn *k, uint64_t session, int state,
                         int64_t playhead) {
  pres_wait w = {k, session, state, playhead};
  return vtc_run(k->ctx, has_pres, &w, T_MS) == 0 && !k->closed ? 0 : -1;
}
typedef struct { vtc_conn *k; int n; } n_wait;
static bool has_transports(void *a) {
  n_wait *w = a;
  return w->k->closed || w->k->ntransports >= w->n;
}
static int wait_transports(vtc_conn *k, int n) {
  n_wait w = {k, n};
  return vtc_run(k->ctx, has_transports, &w, T_MS) == 0 && !k->closed ? 0 : -1;
}
static bool has_frames(void *a) {
  n_wait *w = a;
  return w->k->closed || w->k->nframes >= (size_t)w->n;
}
static int wait_frames(vtc_conn *k, int n) {
  n_wait w = {k, n};
  return vtc_run(k->ctx, has_frames, &w, T_MS) == 0 && !k->closed ? 0 : -1;
}

#define PRES_JOINED VTL__V1__PRESENCE_STATE__PRESENCE_STATE_JOINED
#define PRES_LEFT VTL__V1__PRESENCE_STATE__PRESENCE_STATE_LEFT

/* ---- presence ------------------------------------------------------------------- */

TEST_IMPL(presence_join_update_leave) {
  fixture f;
  CHECK(setup(&f, false));
  vtc_conn *a = join(&f, f.dtok, "alice");
  ASSERT_NOT_NULL(a);
  vtc_conn *b = join(&f, f.vtok, "bob"); /* viewers send presence too */
  ASSERT_NOT_NULL(b);
  /* the newcomer gets the others' presence; the others its JOINED */
  ASSERT_OK(wait_presence(b, a->session_id, PRES_JOINED, -1));
  ASSERT_STR_EQ(vtc_find_presence(b, a->session_id)->name, "alice");
  ASSERT_NE(vtc_find_presence(b, a->session_id)->color, 0); /* server's pick */
  ASSERT_OK(wait_presence(a, b->session_id, PRES_JOINED, -1));
  ASSERT_STR_EQ(vtc_find_presence(a, b->session_id)->name, "bob");
  ASSERT_NULL(vtc_find_presence(a, a->session_id)); /* never one's own */

  uint64_t sel[3] = {11, 22, 33};
  Vtl__V1__Presence p = VTL__V1__PRESENCE__INIT;
  p.color = 0x123456;
  p.playhead = 42;
  p.n_selection = 3;
  p.selection = sel;
  p.pointer_x = 5.5;
  p.pointer_y = 1.25;
  p.session_id = 999; /* ignored: the server stamps it */
  vtc_send_presence(a, &p);
  ASSERT_OK(wait_presence(b, a->session_id, PRES_JOINED, 42));
  const vtc_presence_rec *r = vtc_find_presence(b, a->session_id);
  ASSERT_EQ(r->color, 0x123456);
  ASSERT_EQ(r->nsel, 3);
  ASSERT_NEAR(r->px, 5.5, 0);
  ASSERT_NEAR(r->py, 1.25, 0);
  ASSERT_STR_EQ(r->name, "alice");

  /* a burst of 40 updates: throttled to <= 20 Hz, the latest wins */
  size_t before = b->npres;
  uint64_t t0 = uv_now(&f.c.loop);
  for (int i = 0; i < 40; i++) {
    p.playhead = 100 + i;
    vtc_send_presence(a, &p);
  }
  ASSERT_OK(wait_presence(b, a->session_id, PRES_JOINED, 139));
  turn(&f.c, 300); /* nothing more may come */
  uint64_t span = uv_now(&f.c.loop) - t0;
  size_t got = 0;
  for (size_t i = before; i < b->npres; i++)
    if (b->pres[i].session == a->session_id) got++;
  ASSERT_GE(got, 1);
  ASSERT_LE(got, span / 50 + 2);
  ASSERT_LT(got, 40);
  ASSERT_EQ(vtc_find_presence(b, a->session_id)->playhead, 139);

  /* validation: bad UTF-8 (MALFORMED), too long (TOOLONG), bad colour */
  Vtl__V1__Presence q = VTL__V1__PRESENCE__INIT;
  q.display_name = "\xc3\x28";
  vtc_send_presence(a, &q);
  char longname[300];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  q.display_name = longname;
  vtc_send_presence(a, &q);
  q.display_name = NULL;
  q.color = 0x1000000;
  vtc_send_presence(a, &q);
  ASSERT_OK(vtc_wait_errors(a, 3, T_MS));
  ASSERT_EQ(a->errs[0].code, E(MALFORMED));
  ASSERT_EQ(a->errs[1].code, E(TOOLONG));
  ASSERT_EQ(a->errs[2].code, E(RANGE));
  ASSERT(!a->errs[0].fatal && !a->errs[1].fatal && !a->errs[2].fatal);
  /* a rename */
  q.color = 0;
  q.display_name = "alice \xe2\x9c\x93";
  q.playhead = 7;
  vtc_send_presence(a, &q);
  ASSERT_OK(wait_presence(b, a->session_id, PRES_JOINED, 7));
  ASSERT_STR_EQ(vtc_find_presence(b, a->session_id)->name, "alice \xe2\x9c\x93");
  ASSERT_EQ(vtc_find_presence(b, a->session_id)->color, 0x123456); /* kept */

  /* leave on disconnect; presence is not kept past the session */
  uint64_t a_id = a->session_id;
  vtc_close(a);
  ASSERT_OK(wait_presence(b, a_id, PRES_LEFT, -1));
  vtc_conn *c = join(&f, f.vtok, "carol");
  ASSERT_NOT_NULL(c);
  ASSERT_OK(wait_presence(c, b->session_id, PRES_JOINED, -1));
  ASSERT_NULL(vtc_find_presence(c, a_id));
  ASSERT_EQ(teardown(&f), 0);
  return 0;
}

/* ---- transport --------------------------------------------------------------------- */

TEST_IMPL(transport_shared_persisted) {
  fixture f;
  CHECK(setup(&f, false));
  vtc_conn *a = join(&f, f.dtok, "dir"), *v = join(&f, f.vtok, "view");
  ASSERT(a && v);
  ASSERT_OK(wait_transports(a, 1)); /* in the Welcome flow */
  ASSERT_U64_EQ(a->transport.seq, 0);
  ASSERT(!a->transport.playing);

  Vtl__V1__Transport t = VTL__V1__TRANSPORT__INIT;
  t.playing = true;
  t.frame = 10;
  t.loop_start = 5;
  t.loop_end = 50;
  t.fps = 24;
  t.seq = 77; /* ignored */
  vtc_send_transport(a, &t);
  ASSERT_OK(wait_transports(a, 2)); /* the sender's copy */
  ASSERT_OK(wait_transports(v, 2));
  ASSERT_U64_EQ(v->transport.seq, 1);
  ASSERT_U64_EQ(v->transport.updated_by, a->session_id);
  ASSERT(v->transport.playing);
  ASSERT_EQ(v->transport.frame, 10);
  ASSERT_EQ(v->transport.loop_start, 5);
  ASSERT_EQ(v->transport.loop_end, 50);
  ASSERT_NEAR(v->transport.fps, 24, 0);
  ASSERT_GT(v->transport.server_time_ms, 1600000000000);

  vtc_send_transport(v, &t); /* viewers may not */
  ASSERT_OK(vtc_wait_errors(v, 1, T_MS));
  ASSERT_EQ(v->errs[0].code, E(PERM));
  t.fps = 500;
  vtc_send_transport(a, &t);
  ASSERT_OK(vtc_wait_errors(a, 1, T_MS));
  ASSERT_EQ(a->errs[0].code, E(RANGE));

  t.playing = false; /* seek past the end: clamped; no loop */
  t.frame = 99999;
  t.loop_start = 30;
  t.loop_end = 30;
  t.fps = 0;
  vtc_send_transport(a, &t);
  ASSERT_OK(wait_transports(v, 3));
  ASSERT_U64_EQ(v->transport.seq, 2);
  ASSERT_EQ(v->transport.frame, 119); /* default length 120 */
  ASSERT_EQ(v->transport.loop_start, 0);
  ASSERT_EQ(v->transport.loop_end, 0);
  ASSERT(!v->transport.playing);

  /* persisted: a restarted server sends it to a newcomer */
  ASSERT_EQ(vtc_server_stop(&f.srv, &f.c), 0);
  CHECK(vtc_server_start(&f.srv, f.dir, NULL));
  vtc_conn *n = join(&f, f.vtok, "late");
  ASSERT_NOT_NULL(n);
  ASSERT_OK(wait_transports(n, 1));
  ASSERT_U64_EQ(n->transport.seq, 2);
  ASSERT_EQ(n->transport.frame, 119);
  ASSERT_U64_EQ(n->transport.updated_by, a->session_id);
  ASSERT_EQ(teardown(&f), 0);
  return 0;
}

TEST_IMPL(schema_v1_migrates) {
  fixture f;
  memset(&f, 0, sizeof f);
  CHECK(vtc_tmpdir(f.dir, sizeof f.dir));
  CHECK(vtc_room_create(f.dir, "film", f.dtok, f.vtok));
  f.room = "film";
  char path[300];
  snprintf(path, sizeof path, "%s/vtl.db", f.dir);
  sqlite3 *db; /* make it a version-1 file */
  CHECK(sqlite3_open(path, &db) != SQLITE_OK);
  CHECK(sqlite3_exec(db, "DROP TABLE transport; PRAGMA user_version = 1;",
                     NULL, NULL, NULL));
  sqlite3_close(db);
  CHECK(vtc_server_start(&f.srv, f.dir, NULL));
  CHECK(vtc_ctx_init(&f.c));
  vtc_conn *a = join(&f, f.dtok, "dir");
  ASSERT_NOT_NULL(a);
  Vtl__V1__Transport t = VTL__V1__TRANSPORT__INIT;
  t.frame = 33;
  vtc_send_transport(a, &t);
  ASSERT_OK(wait_transports(a, 2));
  ASSERT_EQ(vtc_server_stop(&f.srv, &f.c), 0);
  CHECK(sqlite3_open(path, &db) != SQLITE_OK);
  sqlite3_stmt *q;
  CHECK(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL));
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  ASSERT_EQ(sqlite3_column_int(q, 0), 2);
  sqlite3_finalize(q);
  CHECK(sqlite3_prepare_v2(db, "SELECT seq FROM transport", -1, &q, NULL));
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  ASSERT_EQ(sqlite3_column_int(q, 0), 1);
  sqlite3_finalize(q);
  sqlite3_close(db);
  vtc_ctx_done(&f.c);
  vtc_rmdir(f.dir);
  return 0;
}

/* ---- frames -------------------------------------------------------------------------- */

static uint8_t expect_px[1024 * 1024 * 3];
static int pixel_mismatches;

/* on_frame: compares a full-size decoded frame with the generator. */
static void check_pixels(vtc_conn *k, const vtc_frame_rec *f,
                         const uint8_t *px) {
  (void)k;
  static uint8_t full[VTL_TEST_PATTERN_W * VTL_TEST_PATTERN_H * 3];
  uint32_t W = VTL_TEST_PATTERN_W, H = VTL_TEST_PATTERN_H;
  vtl_test_pattern(full, W, H, f->frame);
  /* a smaller stream samples the nearest source pixel (frames.c) */
  for (uint32_t y = 0; y < f->height; y++)
    for (uint32_t x = 0; x < f->width; x++)
      memcpy(expect_px + ((size_t)y * f->width + x) * 3,
             full + ((size_t)(y * H / f->height) * W + x * W / f->width) * 3, 3);
  if (memcmp(expect_px, px, (size_t)f->width * f->height * 3) != 0) {
    fprintf(stderr, "frame %lld: pixels differ\n", (long long)f->frame);
    pixel_mismatches++;
  }
}

static int count_epochs(const vtc_conn *k) {
  int n = 0;
  for (size_t i = 0; i < k->nframes; i++) n += k->frames[i].epoch;
  return n;
}

/* Every frame decoded, none a gap, full size, a test pattern. */
static int frames_clean(const vtc_conn *k, int codec) {
  ASSERT_GT(k->nframes, 0);
  ASSERT(k->frames[0].epoch);
  for (size_t i = 0; i < k->nframes; i++) {
    const vtc_frame_rec *r = &k->frames[i];
    ASSERT(r->decoded);
    ASSERT(!r->gap);
    ASSERT(r->test_pattern);
    ASSERT_EQ(r->codec, codec);
    ASSERT_EQ(r->width, VTL_TEST_PATTERN_W);
    if (codec != C(ZSTD_STREAM)) ASSERT(r->epoch);
    if (i && !r->epoch) {
      ASSERT_EQ(r->stream_pos, k->frames[i - 1].stream_pos + 1);
      ASSERT_EQ(r->frame, k->frames[i - 1].frame + 1);
    }
  }
  return 0;
}

TEST_IMPL(frames_stream_epochs_late_joiner) {
  fixture f;
  CHECK(setup(&f, true));
  static const char *const stream_caps[] = {"zstd", "zstd_stream"};
  vtc_conn *a = join_ex(&f, "", "a", stream_caps, 2); /* public: viewer */
  ASSERT_NOT_NULL(a);
  a->on_frame = check_pixels;
  vtc_subscribe(a, 256, 256, 0, true, false);
  ASSERT_OK(wait_frames(a, VTL_FRAME_EPOCH_EVERY + 6)); /* past an epoch */
  ASSERT_OK(frames_clean(a, C(ZSTD_STREAM)));
  ASSERT_GE(count_epochs(a), 2);
  ASSERT_EQ(pixel_mismatches, 0);
  /* stream frames are much smaller than the first epoch */
  ASSERT_LT(a->frames[3].bytes, a->frames[0].bytes);

  /* a late joiner on the same stream starts at an epoch */
  vtc_conn *b = join_ex(&f, "", "b", stream_caps, 2);
  ASSERT_NOT_NULL(b);
  b->on_frame = check_pixels;
  vtc_subscribe(b, 256, 256, 0, true, false);
  ASSERT_OK(wait_frames(b, 4));
  ASSERT(b->frames[0].epoch);
  ASSERT_EQ(b->frames[0].stream_pos, 0);
  ASSERT_U64_EQ(b->frames[0].stream_id, a->frames[0].stream_id); /* one stream */
  ASSERT_OK(frames_clean(b, C(ZSTD_STREAM)));

  /* request_epoch: one comes within a few frames */
  size_t na = a->nframes;
  vtc_subscribe(a, 256, 256, 0, true, true);
  ASSERT_OK(wait_frames(a, (int)na + 4));
  bool early = false;
  for (size_t i = na; i < na + 4; i++) early |= a->frames[i].epoch;
  ASSERT(early);

  /* per-frame zstd, raw, a smaller size and an fps cap */
  static const char *const zstd_caps[] = {"zstd"};
  vtc_conn *z = join_ex(&f, "", "z", zstd_caps, 1);
  vtc_conn *raw = join_ex(&f, "", "raw", NULL, 0);
  vtc_conn *small = join_ex(&f, "", "small", stream_caps, 2);
  ASSERT(z && raw && small);
  z->on_frame = raw->on_frame = check_pixels;
  vtc_subscribe(z, 256, 256, 0, true, false);
  vtc_subscribe(raw, 256, 256, 0, true, false);
  vtc_subscribe(small, 0, 0, 4, true, false); /* 0: the film's size */
  small->on_frame = check_pixels;
  ASSERT_OK(wait_frames(z, 12));
  ASSERT_OK(wait_frames(raw, 12));
  ASSERT_OK(frames_clean(z, C(ZSTD)));
  ASSERT_OK(frames_clean(raw, C(RAW)));
  ASSERT_EQ(raw->frames[0].bytes, 256 * 256 * 3);
  ASSERT_GT(small->nframes, 0);
  ASSERT_LT(small->nframes, z->nframes); /* 4 fps against 12 */
  /* the square pattern fitted into the film's size, never enlarged */
  const vtl_timeline *tl = vtl_doc_timeline(small->doc);
  int64_t side = tl->width < tl->height ? tl->width : tl->height;
  if (side > 256) side = 256;
  ASSERT_LT(side, 256); /* the demo film is smaller than the pattern */
  for (size_t i = 0; i < small->nframes; i++) {
    ASSERT_EQ(small->frames[i].width, side);
    ASSERT_EQ(small->frames[i].height, side);
    ASSERT(small->frames[i].decoded);
    if (i) ASSERT_GE(small->frames[i].frame - small->frames[i - 1].frame, 2);
  }
  ASSERT_EQ(pixel_mismatches, 0);

  /* unsubscribe: frames stop */
  vtc_subscribe(z, 256, 256, 0, false, false);
  turn(&f.c, 300);
  size_t nz = z->nframes;
  turn(&f.c, 500);
  ASSERT_EQ(z->nframes, nz);
  ASSERT_EQ(teardown(&f), 0);
  return 0;
}

static uint64_t send_marker(vtc_conn *k, int64_t frame) {
  vtl_op op;
  CHECK(vtl_op_create(&op, VTL_ENT_MARKER, vtc_mint(k)));
  CHECK(vtl_op_add_int(&op, "frame", frame));
  uint64_t b = vtc_mint(k);
  CHECK(vtc_send_batch(k, b, &op, 1));
  vtl_op_free(&op);
  return b;
}

TEST_IMPL(slow_reader_does_not_block) {
  fixture f;
  CHECK(setup(&f, true));
  static const char *const stream_caps[] = {"zstd_stream"};
  vtc_conn *slow = join(&f, "", "slow"); /* raw frames: 192 KiB each */
  vtc_conn *d = join(&f, f.dtok, "director");
  vtc_conn *w = join_ex(&f, "", "watcher", stream_caps, 1);
  ASSERT(slow && d && w);
  w->on_frame = check_pixels;
  vtc_subscribe(slow, 256, 256, 0, true, false);
  vtc_subscribe(w, 256, 256, 0, true, false);
  ASSERT_OK(wait_frames(slow, 2));
  vtc_set_reading(slow, false);
  turn(&f.c, 2500); /* its socket buffers fill with frames */
  size_t slow_frames = slow->nframes;

  uint64_t s0 = d->seq;
  uint64_t t0 = uv_now(&f.c.loop);
  for (int i = 0; i < 20; i++) send_marker(d, i);
  ASSERT_OK(vtc_wait_seq(w, s0 + 20, T_MS));
  ASSERT_OK(vtc_wait_seq(d, s0 + 20, T_MS));
  uint64_t took = uv_now(&f.c.loop) - t0;
  fprintf(stderr, "20 batches reached the others in %llu ms while one "
          "session did not read\n", (unsigned long long)took);
  ASSERT_LT(took, 5000);
  size_t nw = w->nframes; /* and the others' frames keep flowing */
  ASSERT_OK(wait_frames(w, (int)nw + 6));
  ASSERT_OK(frames_clean(w, C(ZSTD_STREAM)));
  ASSERT_EQ(slow->nframes, slow_frames);

  /* the slow one reads again: every op arrives (never dropped); frames
   * resume, the ones that could not be sent were dropped */
  vtc_set_reading(slow, true);
  ASSERT_OK(vtc_wait_seq(slow, s0 + 20, T_MS));
  ASSERT(!slow->diverged);
  ASSERT_OK(wait_frames(slow, (int)slow->nframes + 3));
  int64_t jump = 0;
  for (size_t i = 1; i < slow->nframes; i++) {
    int64_t dlt = slow->frames[i].frame - slow->frames[i - 1].frame;
    if (dlt > jump) jump = dlt;
    ASSERT(slow->frames[i].decoded);
  }
  ASSERT_GT(jump, 1);
  ASSERT_EQ(pixel_mismatches, 0);
  ASSERT_EQ(teardown(&f), 0);
  return 0;
}

/* ---- figures: per-frame against streaming zstd on the test pattern ---- */

static double ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int measure(uint32_t w, uint32_t h, int codec, int nframes,
                   double *bytes, double *ms) {
  size_t n = (size_t)w * h * 3, cap = vtl_frame_enc_bound(n);
  uint8_t *px = malloc(n), *out = malloc(cap), *back = malloc(n);
  vtl_frame_enc e;
  CHECK(vtl_frame_enc_init(&e, codec));
  ZSTD_DCtx *dz = ZSTD_createDCtx();
  double total = 0, t = 0;
  for (int i = 0; i < nframes; i++) {
    vtl_test_pattern(px, w, h, i);
    bool epoch;
    uint32_t pos;
    double t0 = ms_now();
    size_t len = vtl_frame_encode(&e, out, cap, px, n, &epoch, &pos);
    t += ms_now() - t0;
    ASSERT_GT(len, 0);
    total += (double)len;
    if (codec == C(ZSTD)) {
      ASSERT_EQ(ZSTD_decompress(back, n, out, len), n);
    } else {
      if (epoch) ZSTD_DCtx_reset(dz, ZSTD_reset_session_only);
      ZSTD_inBuffer ib = {out, len, 0};
      ZSTD_outBuffer ob = {back, n, 0};
      while (ib.pos < ib.size || ob.pos < ob.size) {
        size_t p0 = ib.pos, o0 = ob.pos;
        size_t rc = ZSTD_decompressStream(dz, &ob, &ib);
        ASSERT(!ZSTD_isError(rc));
        if (ib.pos == p0 && ob.pos == o0) break;
      }
      ASSERT_EQ(ob.pos, n);
      ASSERT_EQ(epoch, i % VTL_FRAME_EPOCH_EVERY == 0);
    }
    ASSERT_OK(memcmp(px, back, n));
  }
  *bytes = total / nframes;
  *ms = t / nframes;
  ZSTD_freeDCtx(dz);
  vtl_frame_enc_done(&e);
  free(px);
  free(out);
  free(back);
  return 0;
}

TEST_IMPL(frame_codec_figures) {
  static const uint32_t sizes[][2] = {{256, 256}, {512, 512}};
  for (int s = 0; s < 2; s++) {
    double fb, fms, sb, sms;
    uint32_t w = sizes[s][0], h = sizes[s][1];
    ASSERT_OK(measure(w, h, C(ZSTD), 96, &fb, &fms));
    ASSERT_OK(measure(w, h, C(ZSTD_STREAM), 96, &sb, &sms));
    printf("test pattern %ux%u RGB (%u bytes raw), zstd level %d, 96 frames, "
           "epoch every %d:\n  per-frame ZSTD_compress: %.0f bytes/frame, "
           "%.3f ms/frame\n  streaming ZSTD_e_flush:  %.0f bytes/frame, "
           "%.3f ms/frame\n", w, h, w * h * 3, VTL_FRAME_ZSTD_LEVEL,
           VTL_FRAME_EPOCH_EVERY, fb, fms, sb, sms);
  }
  return 0;
}

TEST_LIST(
  TEST_ENTRY(presence_join_update_leave)
  TEST_ENTRY(transport_shared_persisted)
  TEST_ENTRY(schema_v1_migrates)
  TEST_ENTRY(frames_stream_epochs_late_joiner)
  TEST_ENTRY(slow_reader_does_not_block)
  TEST_ENTRY(frame_codec_figures)
)
