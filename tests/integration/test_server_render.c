/* test_server_render.c — `vtl-server --render` (server/render*.c) against
 * the real process over real sockets: room "demo" with the demo film
 * (demo/demo.vtl.json, model "models/tiny", resolved from the source tree
 * the tests run in), a director that subscribes to its frames.
 *
 * Pixels are checked exactly: this process loads the same model through
 * engine/film.h, renders the same document (the client's replica, built
 * only from what the server sent) from the shot's first frame to the
 * frame, and converts it as the protocol says (round((x + 1) * 127.5),
 * clamped). The same machine and device give the same bytes.
 *
 * Same habits as the other server tests: a fresh --data directory per
 * test, SIGTERM at the end must give exit status 0 (under the sanitizers
 * that includes no leaks and a joined render thread).
 */
#include "film.h"
#include "task.h"
#include "vtl_client.h"

#define T_MS 10000        /* messages: generous, the server runs under ASan */
#define T_FRAME_MS 60000  /* a frame: the first one loads the model and may
                             build the OpenCL kernels on a cold cache */
#define MODEL "models/tiny"
#define SIDE 64           /* the demo film's frames */
#define MAX_FRAMES 4096

typedef struct {
  char dir[256];
  char dtok[64];
  vtc_server srv;
  vtc_ctx c;
  vtc_conn *k;              /* a director, subscribed (raw frames) */
  uint8_t *px[MAX_FRAMES];  /* the pixels of k->frames[i] */
} fixture;

static void keep_pixels(vtc_conn *k, const vtc_frame_rec *f, const uint8_t *px) {
  fixture *fx = k->data;
  size_t i = (size_t)(f - k->frames), n = (size_t)f->width * f->height * 3;
  if (i < MAX_FRAMES && (fx->px[i] = malloc(n))) memcpy(fx->px[i], px, n);
}

static int setup(fixture *f) {
  static const char *const args[] = {"--render", "--demo", "--demo-timeline",
                                     "demo/demo.vtl.json", NULL};
  memset(f, 0, sizeof *f);
  CHECK(vtc_tmpdir(f->dir, sizeof f->dir));
  CHECK(vtc_ctx_init(&f->c));
  CHECK(vtc_server_start_argv(&f->srv, f->dir, NULL, args));
  ASSERT_CONTAINS(f->srv.startup, "demo: rendering room \"demo\"'s film");
  const char *d = strstr(f->srv.startup, "director token: ");
  ASSERT_NOT_NULL(d);
  sscanf(d + 16, "%63s", f->dtok);
  vtc_conn *k = f->k = vtc_connect(&f->c, f->srv.port);
  ASSERT_OK(vtc_wait_open(k, T_MS));
  k->data = f;
  k->on_frame = keep_pixels;
  vtc_hello(k, "demo", f->dtok, 0);
  ASSERT_OK(vtc_wait_synced(k, T_MS));
  return vtc_subscribe(k, 0, 0, 0, true, false);
}

static int teardown(fixture *f) {
  int rc = vtc_server_stop(&f->srv, &f->c);
  vtc_ctx_done(&f->c);
  vtc_rmdir(f->dir);
  for (size_t i = 0; i < MAX_FRAMES; i++) free(f->px[i]);
  return rc;
}

/* ---- waiting --------------------------------------------------------------- */

typedef struct {
  vtc_conn *k;
  size_t from;      /* frames before this index are not looked at */
  int64_t frame;    /* the frame number wanted; -1: any */
  uint64_t seq;     /* rendered from this document seq or a later one */
  long found;
} frame_wait;

static bool has_frame(void *a) {
  frame_wait *w = a;
  for (size_t i = w->from; i < w->k->nframes && w->found < 0; i++) {
    const vtc_frame_rec *r = &w->k->frames[i];
    if ((w->frame < 0 || r->frame == w->frame) && r->doc_seq >= w->seq &&
        r->decoded)
      w->found = (long)i;
  }
  return w->k->closed || w->found >= 0;
}

/* The index of the first frame from `from` on with that number (-1: any)
 * rendered from seq or later, or -1 after the timeout. */
static long wait_frame(vtc_conn *k, size_t from, int64_t frame, uint64_t seq) {
  frame_wait w = {k, from, frame, seq, -1};
  vtc_run(k->ctx, has_frame, &w, T_FRAME_MS);
  return w.found;
}

typedef struct {
  vtc_conn *k;
  size_t from;
  const char *text;
} error_wait;

static bool has_error(void *a) {
  error_wait *w = a;
  for (size_t i = w->from; i < w->k->nerrs; i++)
    if (strstr(w->k->errs[i].message, w->text)) return true;
  return w->k->closed;
}

/* The first Error from index `from` on whose message contains text. */
static const vtc_error_rec *wait_error(vtc_conn *k, size_t from, const char *text) {
  error_wait w = {k, from, text};
  vtc_run(k->ctx, has_error, &w, T_FRAME_MS);
  for (size_t i = from; i < k->nerrs; i++)
    if (strstr(k->errs[i].message, text)) return &k->errs[i];
  return NULL;
}

typedef struct {
  vtc_conn *k;
  const int *count; /* a counter of k's */
  int n;
} count_wait;

static bool counted(void *a) {
  count_wait *w = a;
  return w->k->closed || *w->count > w->n;
}

/* The server answers a Ping (it is up and serving). */
static int answers_ping(vtc_conn *k) {
  count_wait w = {k, &k->npongs, k->npongs};
  CHECK(vtc_ping(k, 7));
  ASSERT_OK(vtc_run(k->ctx, counted, &w, T_MS));
  ASSERT(!k->closed);
  return 0;
}

/* ---- edits --------------------------------------------------------------------- */

/* Sets a string field through the normal ops path; waits for its Ops. */
static int set_str(vtc_conn *k, vtl_entity_kind kind, vtl_id id,
                   const char *field, const char *v) {
  vtl_op op;
  CHECK(vtl_op_set_str(&op, kind, id, field, v));
  uint64_t seq = k->seq, batch = vtc_mint(k);
  CHECK(vtc_send_batch(k, batch, &op, 1));
  vtl_op_free(&op);
  ASSERT_OK(vtc_wait_seq(k, seq + 1, T_MS));
  ASSERT_NULL(vtc_find_error(k, batch));
  return 0;
}

static int seek(vtc_conn *k, bool playing, int64_t frame, int64_t loop_start,
                int64_t loop_end) {
  Vtl__V1__Transport t = VTL__V1__TRANSPORT__INIT;
  t.playing = playing;
  t.frame = frame;
  t.loop_start = loop_start;
  t.loop_end = loop_end;
  count_wait w = {k, &k->ntransports, k->ntransports};
  CHECK(vtc_send_transport(k, &t));
  ASSERT_OK(vtc_run(k->ctx, counted, &w, T_MS));
  ASSERT_EQ(k->transport.frame, frame);
  return 0;
}

/* ---- what the engine renders ------------------------------------------------------ */

static struct {
  vtl_cl *cl;
  vtl_pipeline *p;
  vtl_film *film;
} engine;

static int engine_open(void) {
  if (engine.film) return 0;
  char msg[512];
  vtl_cl_options o;
  vtl_cl_options_init(&o);
  if (vtl_cl_init(&engine.cl, &o, msg, sizeof msg) ||
      vtl_pipeline_load(engine.cl, MODEL, NULL, &engine.p, msg, sizeof msg) ||
      vtl_film_new(engine.p, NULL, &engine.film)) {
    fprintf(stderr, "engine: %s\n", msg);
    return -1;
  }
  return 0;
}

static void engine_close(void) {
  vtl_film_free(engine.film);
  vtl_pipeline_free(engine.p);
  vtl_cl_close(engine.cl);
  memset(&engine, 0, sizeof engine);
}

/* Frame f of doc as RGB8: the shot's frames up to f, each from the one
 * before, converted as docs/protocol.md says. 0 or -1. */
static int expected(vtl_doc *doc, int64_t f, uint8_t *rgb) {
  CHECK(engine_open());
  vtl_params P;
  CHECK(vtl_params_at(doc, f, &P));
  size_t n = (size_t)SIDE * SIDE;
  float *prev = malloc(3 * n * sizeof *prev), *cur = malloc(3 * n * sizeof *cur);
  ASSERT(prev && cur);
  char msg[256];
  for (int64_t g = P.shot_start; g <= f; g++) {
    ASSERT_OK(vtl_film_frame(engine.film, doc, g, g > P.shot_start ? prev : NULL,
                             cur, NULL, msg, sizeof msg));
    float *t = prev;
    prev = cur;
    cur = t;
  }
  for (size_t c = 0; c < 3; c++)
    for (size_t i = 0; i < n; i++) {
      float v = roundf((prev[c * n + i] + 1.0f) * 127.5f);
      rgb[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  free(prev);
  free(cur);
  return 0;
}

/* Frame record i is a rendered frame of the replica as it is now (its doc
 * seq and dep_hash), with the engine's pixels. */
static int is_render_of_replica(fixture *fx, long i) {
  ASSERT_GE(i, 0);
  vtc_conn *k = fx->k;
  const vtc_frame_rec *r = &k->frames[i];
  ASSERT(!r->test_pattern);
  ASSERT_EQ(r->width, SIDE);
  ASSERT_EQ(r->height, SIDE);
  ASSERT_U64_EQ(r->doc_seq, k->seq);
  ASSERT(r->render_ms > 0);
  vtl_params P;
  CHECK(vtl_params_at(k->doc, r->frame, &P));
  ASSERT_U64_EQ(r->dep_hash, P.dep_hash);
  ASSERT_NOT_NULL(fx->px[i]);
  uint8_t want[SIDE * SIDE * 3];
  ASSERT_OK(expected(k->doc, r->frame, want));
  size_t diff = 0;
  for (size_t j = 0; j < sizeof want; j++) diff += want[j] != fx->px[i][j];
  if (diff) fprintf(stderr, "frame %lld: %zu of %zu bytes differ\n",
                    (long long)r->frame, diff, sizeof want);
  ASSERT_EQ(diff, 0);
  return 0;
}

/* ---- tests ------------------------------------------------------------------------- */

/* (1) The subscriber gets the film's frame at the playhead (the transport
 * was never set: paused at frame 0), rendered by the engine, exactly. */
TEST_IMPL(render_demo_frame) {
  fixture f;
  CHECK(setup(&f));
  long i = wait_frame(f.k, 0, -1, 0);
  ASSERT_GE(i, 0);
  ASSERT_EQ(f.k->frames[i].frame, f.k->transport.frame);
  ASSERT_OK(is_render_of_replica(&f, i));
  engine_close();
  return teardown(&f);
}

/* (2) An edit of the prompt at the playhead: a new frame for the playhead,
 * from the new document, with another dep_hash and other pixels. */
TEST_IMPL(render_edit_rerenders) {
  fixture f;
  CHECK(setup(&f));
  vtc_conn *k = f.k;
  long a = wait_frame(k, 0, 0, 0);
  ASSERT_GE(a, 0);
  vtc_frame_rec before = k->frames[a];
  ASSERT_OK(set_str(k, VTL_ENT_PROMPT_CLIP, 40, "text",
                    "a big green triangle on grass"));
  long b = wait_frame(k, (size_t)a + 1, 0, k->seq);
  ASSERT_GE(b, 0);
  ASSERT(k->frames[b].dep_hash != before.dep_hash);
  ASSERT(memcmp(f.px[a], f.px[b], SIDE * SIDE * 3) != 0);
  ASSERT_OK(is_render_of_replica(&f, b));
  engine_close();
  return teardown(&f);
}

/* (3) Models a client must not open, and one that is not there: each edit
 * is accepted, the subscriber is told why nothing renders, the server goes
 * on answering; the demo model again renders the first frame again. */
TEST_IMPL(render_bad_model_survives) {
  fixture f;
  CHECK(setup(&f));
  vtc_conn *k = f.k;
  long a = wait_frame(k, 0, 0, 0);
  ASSERT_GE(a, 0);
  static const struct {
    const char *model, *why;
    int code;
  } bad[] = {
    {"../etc", "\"..\" component", VTL__V1__ERROR__CODE__CODE_PERM},
    {"models/../../etc", "\"..\" component", VTL__V1__ERROR__CODE__CODE_PERM},
    {"/etc/passwd", "absolute path", VTL__V1__ERROR__CODE__CODE_PERM},
    {"models/missing", "models/missing", 0},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t nerrs = k->nerrs;
    ASSERT_OK(set_str(k, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "model", bad[i].model));
    const vtc_error_rec *e = wait_error(k, nerrs, bad[i].why);
    ASSERT_NOT_NULL(e);
    ASSERT_CONTAINS(e->message, "render: ");
    ASSERT(!e->fatal);
    ASSERT_U64_EQ(e->batch_id, 0);
    if (bad[i].code) ASSERT_EQ(e->code, bad[i].code);
    ASSERT_OK(answers_ping(k));
  }
  size_t n = k->nframes;
  ASSERT_OK(set_str(k, VTL_ENT_TIMELINE, VTL_TIMELINE_ID, "model", MODEL));
  long b = wait_frame(k, n, 0, k->seq);
  ASSERT_GE(b, 0);
  /* the document renders as at the start again: the same frame */
  ASSERT_U64_EQ(k->frames[b].dep_hash, k->frames[a].dep_hash);
  ASSERT(memcmp(f.px[a], f.px[b], SIDE * SIDE * 3) == 0);
  ASSERT_OK(is_render_of_replica(&f, b));
  engine_close();
  return teardown(&f);
}

/* (4) Seeking while paused: the frame published is the one sought, in
 * another shot (a chain of 3 frames from the shot "star" at 40) and back
 * in the first one (frames 0 .. 3, frame 0 cached). */
TEST_IMPL(render_seek_paused) {
  fixture f;
  CHECK(setup(&f));
  vtc_conn *k = f.k;
  ASSERT_GE(wait_frame(k, 0, 0, 0), 0);
  static const int64_t to[] = {42, 3};
  for (size_t j = 0; j < 2; j++) {
    size_t n = k->nframes;
    ASSERT_OK(seek(k, false, to[j], 0, 0));
    long i = wait_frame(k, n, to[j], 0);
    ASSERT_GE(i, 0);
    ASSERT_OK(is_render_of_replica(&f, i));
  }
  engine_close();
  return teardown(&f);
}

/* (5) Playing a loop: frames of the loop come as they are rendered, each
 * the frame of the document it says (its dep_hash). */
TEST_IMPL(render_playing) {
  fixture f;
  CHECK(setup(&f));
  vtc_conn *k = f.k;
  ASSERT_GE(wait_frame(k, 0, 0, 0), 0);
  size_t n = k->nframes;
  ASSERT_OK(seek(k, true, 10, 10, 16));
  int distinct = 0;
  int64_t last = -1;
  while (distinct < 4) {
    long i = wait_frame(k, n, -1, 0);
    ASSERT_GE(i, 0);
    const vtc_frame_rec *r = &k->frames[i];
    ASSERT(r->frame >= 10 && r->frame < 16);
    vtl_params P;
    CHECK(vtl_params_at(k->doc, r->frame, &P));
    ASSERT_U64_EQ(r->dep_hash, P.dep_hash);
    distinct += r->frame != last;
    last = r->frame;
    n = (size_t)i + 1;
  }
  return teardown(&f);
}

static bool never(void *a) { return false; }

/* (6) A transport change while a frame renders cancels it when it is no
 * longer wanted: seek far (a chain of 40 frames from the shot's start),
 * then back to frame 0 while the chain renders. (Three tries: the seek
 * might fall between two frames.) */
TEST_IMPL(render_cancel_unwanted) {
  fixture f;
  CHECK(setup(&f));
  vtc_conn *k = f.k;
  ASSERT_GE(wait_frame(k, 0, 0, 0), 0);
  double before = vtc_metric(f.srv.port, "vtl_render_cancelled_total");
  ASSERT_GE(before, 0);
  double after = before;
  for (int i = 0; i < 3 && after == before; i++) {
    ASSERT_OK(seek(k, false, 39, 0, 0));
    vtc_run(&f.c, never, NULL, 300); /* the chain is rendering */
    size_t n = k->nframes;
    ASSERT_OK(seek(k, false, 0, 0, 0));
    ASSERT_GE(wait_frame(k, n, 0, 0), 0); /* from the cache */
    after = vtc_metric(f.srv.port, "vtl_render_cancelled_total");
  }
  ASSERT_GT(after, before);
  ASSERT_GT(vtc_metric(f.srv.port, "vtl_render_frames_total"), 1);
  ASSERT_GT(vtc_metric(f.srv.port, "vtl_render_milliseconds_total"), 0);
  return teardown(&f);
}

/* (7) Paused frames stand alone: viewers on a streaming-zstd stream, one
 * joining it late without asking for an epoch, get the paused frame at
 * once (it is an epoch), and the next one after an edit. */
TEST_IMPL(render_paused_frame_is_epoch) {
  fixture f;
  CHECK(setup(&f));
  vtc_conn *k = f.k, *z[2];
  long a = wait_frame(k, 0, 0, 0);
  ASSERT_GE(a, 0);
  static const char *const caps[] = {"zstd_stream"};
  for (int i = 0; i < 2; i++) {
    z[i] = vtc_connect(&f.c, f.srv.port);
    ASSERT_OK(vtc_wait_open(z[i], T_MS));
    CHECK(vtc_hello_ex(z[i], "demo", f.dtok, 0, "viewer", caps, 1));
    ASSERT_OK(vtc_wait_synced(z[i], T_MS));
    CHECK(vtc_subscribe(z[i], 0, 0, 0, true, false));
    long j = wait_frame(z[i], 0, 0, 0);
    ASSERT_GE(j, 0);
    ASSERT(z[i]->frames[j].epoch);
    ASSERT_EQ(z[i]->frames[j].codec, VTL__V1__CODEC__CODEC_ZSTD_STREAM);
    ASSERT(memcmp(z[i]->pixels, f.px[a], SIDE * SIDE * 3) == 0);
  }
  ASSERT_U64_EQ(z[0]->frames[0].stream_id, z[1]->frames[0].stream_id);
  size_t n[2] = {z[0]->nframes, z[1]->nframes};
  ASSERT_OK(set_str(k, VTL_ENT_PROMPT_CLIP, 40, "text", "a yellow star"));
  for (int i = 0; i < 2; i++) {
    long j = wait_frame(z[i], n[i], 0, k->seq);
    ASSERT_GE(j, 0);
    ASSERT(z[i]->frames[j].dep_hash != k->frames[a].dep_hash);
  }
  return teardown(&f);
}

TEST_LIST(
  TEST_ENTRY(render_demo_frame)
  TEST_ENTRY(render_edit_rerenders)
  TEST_ENTRY(render_bad_model_survives)
  TEST_ENTRY(render_seek_paused)
  TEST_ENTRY(render_playing)
  TEST_ENTRY(render_cancel_unwanted)
  TEST_ENTRY(render_paused_frame_is_epoch)
)
