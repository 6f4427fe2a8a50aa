/* metrics.c — counters and the Prometheus text page (contract: metrics.h).
 *
 * Page layout (text/plain; version=0.0.4), every family with HELP and TYPE:
 *
 *   vtl_build_info{version="vtl-server 0.1.0"} 1          gauge
 *   vtl_<counter>_total N                                 counters of the map
 *   vtl_batches_rejected_total{code="CODE_LIMIT"} N       one line per code seen
 *   vtl_commit_latency_seconds_bucket{le="..."} N         histogram, cumulative
 *   vtl_commit_latency_seconds_sum / _count
 *   vtl_sessions{state="new|joining|live"} N              gauges from state
 *   vtl_rooms_loaded N
 *   vtl_room_sessions{room="film"} N, vtl_room_seq{room="film"} N,
 *   vtl_room_inflight_batches{room="film"} N              one per loaded room
 *   vtl_send_queue_messages / _bytes  (sum over sessions)
 *   vtl_send_queue_messages_max       (the longest queue)
 *   vtl_frame_slots_full              (sessions with a frame waiting)
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define NCODES 64 /* wire codes counted; larger ones go to the last slot */

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                 5,      10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

static struct {
  uint64_t counters[VTL_M__COUNT];
  uint64_t rejected[NCODES];           /* by wire code */
  uint64_t lat_buckets[NBUCKETS];      /* not cumulative; summed on render */
  uint64_t lat_count;
  double lat_sum;                      /* seconds */
} M; /* loop thread only */

static const struct {
  const char *name, *help;
} meta[VTL_M__COUNT] = {
#define X(e, name, help) {name, help},
  VTL_METRIC_MAP(X)
#undef X
};

void vtl_metrics_add(vtl_metric m, uint64_t n) {
  if (VTL_ALWAYS((unsigned)m < VTL_M__COUNT)) M.counters[m] += n;
}

uint64_t vtl_metrics_get(vtl_metric m) {
  return (unsigned)m < VTL_M__COUNT ? M.counters[m] : 0;
}

void vtl_metrics_rejected(int wire_code) {
  if (wire_code < 0) wire_code = 0;
  if (wire_code >= NCODES) wire_code = NCODES - 1;
  M.rejected[wire_code]++;
}

void vtl_metrics_commit_latency(double s) {
  if (!(s >= 0)) s = 0; /* NaN, clock steps */
  size_t i = 0;
  while (i < NBUCKETS && s > buckets[i]) i++;
  if (i < NBUCKETS) M.lat_buckets[i]++;
  M.lat_count++;
  M.lat_sum += s;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k < 0) { b->oom = 1; return; }
    if ((size_t)k < b->cap - b->n) { b->n += (size_t)k; return; }
    size_t cap = b->cap * 2 + (size_t)k;
    char *q = realloc(b->p, cap);
    if (!q) { b->oom = 1; return; }
    b->p = q;
    b->cap = cap;
  }
}

static void family(buf *b, const char *name, const char *type,
                   const char *help) {
  put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped (exposition format). */
static void put_label(buf *b, const char *v) {
  for (; *v; v++) {
    if (*v == '\\') put(b, "\\\\");
    else if (*v == '"') put(b, "\\\"");
    else if (*v == '\n') put(b, "\\n");
    else put(b, "%c", *v);
  }
}

static const char *code_name(int code) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&vtl__v1__error__code__descriptor, code);
  return v ? v->name : "CODE_OTHER";
}

int vtl_metrics_render(const vtl_server *sv, char **out, size_t *len) {
  buf b = {malloc(8192), 0, 8192, 0};
  if (!b.p) return VTL_ENOMEM;
  b.p[0] = '\0';

  family(&b, "vtl_build_info", "gauge", "The server's version");
  put(&b, "vtl_build_info{version=\"%s\"} 1\n", VTL_SERVER_VERSION);

  for (int i = 0; i < VTL_M__COUNT; i++) {
    family(&b, meta[i].name, "counter", meta[i].help);
    put(&b, "%s %llu\n", meta[i].name, (unsigned long long)M.counters[i]);
  }

  family(&b, "vtl_batches_rejected_total", "counter",
         "OpBatches rejected (nothing applied), by Error.Code");
  for (int c = 0; c < NCODES; c++)
    if (M.rejected[c])
      put(&b, "vtl_batches_rejected_total{code=\"%s\"} %llu\n", code_name(c),
          (unsigned long long)M.rejected[c]);

  family(&b, "vtl_commit_latency_seconds", "histogram",
         "From a batch's submission to the store to its durable commit "
         "(group commit, fsync included)");
  uint64_t cum = 0;
  for (size_t i = 0; i < NBUCKETS; i++) {
    cum += M.lat_buckets[i];
    put(&b, "vtl_commit_latency_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
        (unsigned long long)cum);
  }
  put(&b, "vtl_commit_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
      (unsigned long long)M.lat_count);
  put(&b, "vtl_commit_latency_seconds_sum %.9f\n", M.lat_sum);
  put(&b, "vtl_commit_latency_seconds_count %llu\n",
      (unsigned long long)M.lat_count);

  /* gauges, read from the server's state */
  size_t by_state[3] = {0, 0, 0}, qmsgs = 0, qbytes = 0, qmax = 0, slots = 0;
  for (const vtl_session *s = sv->sessions; s; s = s->all_next) {
    if ((unsigned)s->state < 3) by_state[s->state]++;
    qmsgs += s->q_n;
    qbytes += s->q_bytes;
    if (s->q_n > qmax) qmax = s->q_n;
    if (s->frame_slot) slots++;
  }
  family(&b, "vtl_sessions", "gauge",
         "Websocket sessions by state (new: no Hello yet; joining: waiting "
         "for an id base; live)");
  static const char *const states[3] = {"new", "joining", "live"};
  for (int i = 0; i < 3; i++)
    put(&b, "vtl_sessions{state=\"%s\"} %zu\n", states[i], by_state[i]);

  size_t nrooms = 0;
  for (const vtl_room *r = sv->rooms; r; r = r->next) nrooms++;
  family(&b, "vtl_rooms_loaded", "gauge", "Rooms loaded in this process");
  put(&b, "vtl_rooms_loaded %zu\n", nrooms);

  family(&b, "vtl_room_sessions", "gauge", "Sessions in a room");
  for (const vtl_room *r = sv->rooms; r; r = r->next) {
    put(&b, "vtl_room_sessions{room=\"");
    put_label(&b, r->name);
    put(&b, "\"} %zu\n", r->nsessions);
  }
  family(&b, "vtl_room_seq", "gauge", "A room's head seq (applied)");
  for (const vtl_room *r = sv->rooms; r; r = r->next) {
    put(&b, "vtl_room_seq{room=\"");
    put_label(&b, r->name);
    put(&b, "\"} %llu\n", (unsigned long long)r->seq);
  }
  family(&b, "vtl_room_inflight_batches", "gauge",
         "Batches applied and waiting for their commit");
  for (const vtl_room *r = sv->rooms; r; r = r->next) {
    put(&b, "vtl_room_inflight_batches{room=\"");
    put_label(&b, r->name);
    put(&b, "\"} %llu\n", (unsigned long long)(r->seq - r->committed));
  }

  family(&b, "vtl_send_queue_messages", "gauge",
         "Messages waiting in session send queues (sum)");
  put(&b, "vtl_send_queue_messages %zu\n", qmsgs);
  family(&b, "vtl_send_queue_bytes", "gauge",
         "Payload bytes waiting in session send queues (sum)");
  put(&b, "vtl_send_queue_bytes %zu\n", qbytes);
  family(&b, "vtl_send_queue_messages_max", "gauge",
         "The longest session send queue, messages");
  put(&b, "vtl_send_queue_messages_max %zu\n", qmax);
  family(&b, "vtl_frame_slots_full", "gauge",
         "Sessions with a frame waiting in their (one-frame) slot");
  put(&b, "vtl_frame_slots_full %zu\n", slots);

  if (b.oom) {
    free(b.p);
    return VTL_ENOMEM;
  }
  *out = b.p;
  *len = b.n;
  return 0;
}
