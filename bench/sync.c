/* sync.c — sync_bench: vtl-server's live sync and frame fan-out, measured
 * against the real server process over loopback (bench/README.md "Sync").
 * A measuring program, not a test: nothing asserts a time.
 *
 *   sync_bench edits  [-c 8,32,64] [-r 10] [-t 5] [-w 4] [-k 4] [--json]
 *   sync_bench frames [-s 1,8,32] [-t 5] [--size 512] [--fps 30] [--json]
 *
 * edits: for each client count N, a fresh server (temporary --data, one
 * room made with `room create`) and N director sessions on one lws context
 * in this process. Each client makes its own track with k keyframes, then
 * edits them (one `set keyframe.value` op per batch, its keys in turn):
 *   rate    every client sends r batches per second (phases staggered);
 *   flat    every client keeps w batches "in flight" (sent and not yet
 *           received by every other client) and sends the next one as soon
 *           as one lands everywhere. The server runs with the bench flag
 *           --max-batch-rate 1000000 so the protocol limit (50/s/session)
 *           does not cap it.
 * Measured over t seconds: batches applied and persisted per second (the
 * sender's own Ops is its ack, sent only after the SQLite commit with
 * synchronous=FULL), the latency from the moment a batch is queued at its
 * sender to its receipt at every other client (p50, p99, max over all
 * (batch, receiver) pairs), the server's CPU (utime+stime of
 * /proc/PID/stat over the window), this process's CPU, and the mean commit
 * latency over the window (vtl_commit_latency_seconds sum / count of
 * /metrics: submission to the store until the commit callback).
 *
 * frames: `vtl-server --demo --demo-size 512 --demo-fps 30` and S viewer
 * sessions subscribed to room "demo" (no size or fps cap), once with the
 * per-frame codec (capability "zstd") and once with the streaming one
 * ("zstd_stream"). Measured: server CPU per second, frames and bytes per
 * frame received per subscriber, epochs, drops. One subscriber decodes
 * every frame (a check that the stream decodes); the others only record.
 * The pattern is drawn in the server (the render service's stand-in); its
 * cost is timed here separately (the same generator is linked in).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test_pattern.h"
#include "vtl_client.h"

static bool json_out;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* utime + stime of a process in seconds, or -1. */
static double proc_cpu(pid_t pid) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* comm may hold spaces */
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  /* after ") ": state(3) ... utime is field 14, stime 15 */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* One value of the server's /metrics (plain HTTP GET), or -1. */
static double metric(int port, const char *name) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  double v = -1;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
      size_t cap = 1 << 20, n = 0;
      char *b = malloc(cap);
      ssize_t r;
      while (b && n < cap - 1 && (r = read(fd, b + n, cap - 1 - n)) > 0)
        n += (size_t)r;
      if (b) {
        b[n] = '\0';
        size_t ln = strlen(name);
        for (char *p = b; (p = strstr(p, name)); p += ln)
          if ((p == b || p[-1] == '\n') && p[ln] == ' ') {
            v = atof(p + ln + 1);
            break;
          }
      }
      free(b);
    }
  }
  close(fd);
  return v;
}

static int cmp_f(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

static bool all_synced(void *a) {
  vtc_ctx *c = a;
  for (vtc_conn *k = c->conns; k; k = k->next)
    if (!k->closed && !(k->welcomed && k->doc && k->seq >= k->welcome_seq))
      return false;
  return true;
}

typedef struct { vtc_conn **k; int n; uint64_t seq; } seq_wait;
static bool all_at_seq(void *a) {
  seq_wait *w = a;
  for (int i = 0; i < w->n; i++)
    if (!w->k[i]->closed && w->k[i]->seq < w->seq) return false;
  return true;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* ---- edits ------------------------------------------------------------------- */

typedef struct {
  vtc_conn *k;
  vtl_id track, *keys;
  size_t scan;            /* k->ops harvested so far */
  double *sent;           /* by counter (24 bits of the id): queue time */
  uint16_t *seen;         /* by counter: receipts at other clients */
  size_t cap;             /* of sent / seen */
  int unseen;             /* sent in the window, not yet at every other */
  double next;            /* rate: next send time */
  uint64_t nsent;
} client;

typedef struct {
  const char *mode;
  int n, window;
  double rate, secs;
  uint64_t sent, acked, delivered, rejected;
  double applied_per_s, delivered_per_s, p50, p99, max, srv_cpu, self_cpu;
  double commit_ms, ack_p50;
  bool ok;
} edit_result;

static void grow(client *cl, size_t counter) {
  if (counter < cl->cap) return;
  size_t cap = cl->cap ? cl->cap : 1024;
  while (cap <= counter) cap *= 2;
  cl->sent = realloc(cl->sent, cap * sizeof *cl->sent);
  cl->seen = realloc(cl->seen, cap * sizeof *cl->seen);
  for (size_t i = cl->cap; i < cap; i++) { cl->sent[i] = -1; cl->seen[i] = 0; }
  cl->cap = cap;
}

static int send_edit(client *cl, int nkeys, double t) {
  uint64_t bid = vtc_mint(cl->k);
  size_t ctr = bid & ((1u << 24) - 1);
  vtl_op op;
  if (vtl_op_set_real(&op, VTL_ENT_KEYFRAME, cl->keys[cl->nsent % nkeys],
                      "value", (double)(cl->nsent % 1000) * 0.001))
    return -1;
  int rc = vtc_send_batch(cl->k, bid, &op, 1);
  vtl_op_free(&op);
  grow(cl, ctr);
  cl->sent[ctr] = t;
  cl->seen[ctr] = 0;
  cl->nsent++;
  cl->unseen++;
  return rc;
}

static int run_edits(int n, bool flat, double rate, int window, int nkeys,
                     double secs, edit_result *res) {
  memset(res, 0, sizeof *res);
  res->mode = flat ? "flat" : "rate";
  res->n = n;
  res->rate = flat ? 0 : rate;
  res->window = flat ? window : 0;
  res->secs = secs;
  char dir[256], dtok[64], vtok[64];
  if (vtc_tmpdir(dir, sizeof dir) || vtc_room_create(dir, "bench", dtok, vtok))
    return -1;
  vtc_server srv;
  const char *extra[] = {"--max-batch-rate", "1000000", NULL};
  if (vtc_server_start_argv(&srv, dir, NULL, flat ? extra : extra + 2)) return -1;
  vtc_ctx c;
  if (vtc_ctx_init(&c)) return -1;
  client *cl = calloc((size_t)n, sizeof *cl);
  vtc_conn **ks = calloc((size_t)n, sizeof *ks);
  int rc = -1;
  for (int i = 0; i < n; i++) {
    cl[i].k = ks[i] = vtc_connect(&c, srv.port);
    vtc_hello(cl[i].k, "bench", dtok, 0);
  }
  if (vtc_run(&c, all_synced, &c, 20000)) {
    fprintf(stderr, "sync_bench: clients did not join\n");
    goto out;
  }
  /* setup: each client's track and keys, one batch each */
  for (int i = 0; i < n; i++) {
    vtl_op ops[1 + 16];
    cl[i].keys = calloc((size_t)nkeys, sizeof *cl[i].keys);
    cl[i].track = vtc_mint(cl[i].k);
    vtl_op_create(&ops[0], VTL_ENT_TRACK, cl[i].track);
    char name[32];
    snprintf(name, sizeof name, "client %d", i);
    vtl_op_add_str(&ops[0], "name", name);
    for (int j = 0; j < nkeys; j++) {
      cl[i].keys[j] = vtc_mint(cl[i].k);
      vtl_op_create(&ops[1 + j], VTL_ENT_KEYFRAME, cl[i].keys[j]);
      vtl_op_add_int(&ops[1 + j], "track", (int64_t)cl[i].track);
      vtl_op_add_int(&ops[1 + j], "frame", j * 24);
      vtl_op_add_real(&ops[1 + j], "value", 0.0);
    }
    vtc_send_batch(cl[i].k, vtc_mint(cl[i].k), ops, (size_t)(1 + nkeys));
    for (int j = 0; j < 1 + nkeys; j++) vtl_op_free(&ops[j]);
  }
  seq_wait sw = {ks, n, (uint64_t)n};
  if (vtc_run(&c, all_at_seq, &sw, 20000)) {
    fprintf(stderr, "sync_bench: set-up batches did not land\n");
    goto out;
  }
  for (int i = 0; i < n; i++) cl[i].scan = cl[i].k->nops;

  /* id_base -> client */
  uint64_t *bases = calloc((size_t)n, sizeof *bases);
  for (int i = 0; i < n; i++) bases[i] = cl[i].k->id_base;

  size_t lat_cap = 1 << 20, nlat = 0, nack = 0, ack_cap = 1 << 16;
  float *lat = malloc(lat_cap * sizeof *lat), *acks = malloc(ack_cap * sizeof *acks);
  uv_timer_t tick;
  uv_timer_init(&c.loop, &tick);
  uv_timer_start(&tick, on_tick, 1, 1);

  double commits0 = metric(srv.port, "vtl_commit_latency_seconds_count");
  double csum0 = metric(srv.port, "vtl_commit_latency_seconds_sum");
  double t0 = now_s(), t_end = t0 + secs, t_drain = t_end + 10;
  double cpu0 = proc_cpu(srv.pid), self0 = self_cpu();
  double cpu1 = -1, self1 = 0, commits1 = -1, csum1 = -1;
  for (int i = 0; i < n; i++) cl[i].next = t0 + (rate > 0 ? i / (rate * n) : 0);
  bool draining = false;
  for (;;) {
    uv_run(&c.loop, UV_RUN_ONCE);
    double t = now_s();
    if (!draining && t >= t_end) {
      draining = true;
      cpu1 = proc_cpu(srv.pid);
      self1 = self_cpu();
    }
    /* harvest receipts */
    int open_edits = 0;
    for (int j = 0; j < n; j++) {
      vtc_conn *k = cl[j].k;
      for (; cl[j].scan < k->nops; cl[j].scan++) {
        const vtc_ops_rec *o = &k->ops[cl[j].scan];
        uint64_t base = o->batch_id & ~(uint64_t)((1u << 24) - 1);
        size_t ctr = o->batch_id & ((1u << 24) - 1);
        int s = -1;
        for (int q = 0; q < n; q++)
          if (bases[q] == base) { s = q; break; }
        if (s < 0 || ctr >= cl[s].cap || cl[s].sent[ctr] < 0) continue;
        double dt = (t - cl[s].sent[ctr]) * 1e3;
        if (s == j) { /* the ack: applied and committed */
          if (t <= t_end) res->acked++;
          if (nack == ack_cap) acks = realloc(acks, (ack_cap *= 2) * sizeof *acks);
          acks[nack++] = (float)dt;
          continue;
        }
        if (nlat == lat_cap) lat = realloc(lat, (lat_cap *= 2) * sizeof *lat);
        lat[nlat++] = (float)dt;
        if (t <= t_end) res->delivered++;
        if (++cl[s].seen[ctr] == n - 1) cl[s].unseen--;
      }
    }
    for (int j = 0; j < n; j++) open_edits += cl[j].unseen;
    if (draining) {
      if (open_edits == 0 || t > t_drain) break;
      continue;
    }
    for (int j = 0; j < n; j++) {
      if (flat) {
        while (cl[j].unseen < window) send_edit(&cl[j], nkeys, t);
      } else {
        while (cl[j].next <= t) {
          send_edit(&cl[j], nkeys, t);
          cl[j].next += 1.0 / rate;
        }
      }
    }
  }
  commits1 = metric(srv.port, "vtl_commit_latency_seconds_count");
  csum1 = metric(srv.port, "vtl_commit_latency_seconds_sum");
  uv_timer_stop(&tick);
  uv_close((uv_handle_t *)&tick, NULL);
  for (int j = 0; j < n; j++) {
    res->sent += cl[j].nsent;
    res->rejected += cl[j].k->nerrs;
  }
  qsort(lat, nlat, sizeof *lat, cmp_f);
  qsort(acks, nack, sizeof *acks, cmp_f);
  if (nlat) {
    res->p50 = lat[nlat / 2];
    res->p99 = lat[(size_t)(nlat * 0.99)];
    res->max = lat[nlat - 1];
  }
  if (nack) res->ack_p50 = acks[nack / 2];
  res->applied_per_s = res->acked / secs;
  res->delivered_per_s = res->delivered / secs / (n - 1);
  res->srv_cpu = (cpu1 - cpu0) / secs;
  res->self_cpu = (self1 - self0) / secs;
  res->commit_ms = commits0 >= 0 && commits1 > commits0 && csum0 >= 0
                       ? (csum1 - csum0) / (commits1 - commits0) * 1e3 : -1;
  bool diverged = false;
  for (int j = 0; j < n; j++) diverged |= cl[j].k->diverged;
  res->ok = !diverged && res->rejected == 0 && nlat == (size_t)(n - 1) * res->sent;
  if (diverged) fprintf(stderr, "sync_bench: a replica diverged\n");
  if (res->rejected)
    fprintf(stderr, "sync_bench: %llu batches rejected\n",
            (unsigned long long)res->rejected);
  free(lat);
  free(acks);
  free(bases);
  rc = 0;
out:
  if (vtc_server_stop(&srv, &c) != 0) fprintf(stderr, "sync_bench: server did not stop cleanly\n");
  vtc_ctx_done(&c);
  vtc_rmdir(dir);
  for (int i = 0; i < n; i++) {
    free(cl[i].keys);
    free(cl[i].sent);
    free(cl[i].seen);
  }
  free(cl);
  free(ks);
  return rc;
}

static void print_edit(const edit_result *r) {
  if (json_out) {
    printf("{\"sys\":\"vtl\",\"mode\":\"%s\",\"n\":%d,\"rate\":%g,\"window\":%d,"
           "\"secs\":%g,\"sent\":%llu,\"applied_per_s\":%.1f,"
           "\"delivered_per_s\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"max_ms\":%.2f,\"ack_p50_ms\":%.2f,\"server_cpu\":%.3f,"
           "\"client_cpu\":%.3f,\"commit_ms\":%.3f,\"ok\":%s}\n",
           r->mode, r->n, r->rate, r->window, r->secs,
           (unsigned long long)r->sent, r->applied_per_s, r->delivered_per_s,
           r->p50, r->p99, r->max, r->ack_p50, r->srv_cpu, r->self_cpu,
           r->commit_ms, r->ok ? "true" : "false");
  } else {
    char load[32];
    if (r->rate > 0) snprintf(load, sizeof load, "%d x %g/s", r->n, r->rate);
    else snprintf(load, sizeof load, "%d flat (w=%d)", r->n, r->window);
    printf("%-18s %9.0f %9.0f %8.2f %8.2f %8.2f %8.2f %9.2f %6.2f %6.2f %s\n",
           load, r->applied_per_s, r->delivered_per_s, r->p50, r->p99, r->max,
           r->ack_p50, r->commit_ms, r->srv_cpu, r->self_cpu,
           r->ok ? "" : "(NOT OK)");
  }
  fflush(stdout);
}

/* ---- frames ------------------------------------------------------------------ */

typedef struct {
  int subs;
  const char *codec;
  double secs, srv_cpu, self_cpu, fps_in, bytes_per_frame, epoch_bytes,
      delta_bytes, pattern_ms;
  uint64_t frames, epochs, gaps, undecoded;
  bool ok;
} frame_result;

static bool all_open_welcomed(void *a) {
  vtc_ctx *c = a;
  for (vtc_conn *k = c->conns; k; k = k->next)
    if (!k->closed && !k->welcomed) return false;
  return true;
}

static bool never(void *a) { (void)a; return false; }

static int run_frames(int subs, bool stream, int size, int fps, double secs,
                      double pattern_ms, frame_result *res) {
  memset(res, 0, sizeof *res);
  res->subs = subs;
  res->codec = stream ? "zstd_stream" : "zstd";
  res->secs = secs;
  res->pattern_ms = pattern_ms;
  char dir[256], sz[16], fp[16];
  if (vtc_tmpdir(dir, sizeof dir)) return -1;
  snprintf(sz, sizeof sz, "%d", size);
  snprintf(fp, sizeof fp, "%d", fps);
  const char *extra[] = {"--demo", "--demo-size", sz, "--demo-fps", fp, NULL};
  vtc_server srv;
  if (vtc_server_start_argv(&srv, dir, NULL, extra)) return -1;
  char vtok[64] = "";
  const char *v = strstr(srv.startup, "viewer token:   ");
  if (v) sscanf(v + 16, "%63s", vtok);
  vtc_ctx c;
  vtc_ctx_init(&c);
  const char *caps[] = {stream ? "zstd_stream" : "zstd"};
  vtc_conn **ks = calloc((size_t)subs, sizeof *ks);
  int rc = -1;
  for (int i = 0; i < subs; i++) {
    ks[i] = vtc_connect(&c, srv.port);
    ks[i]->no_decode = i > 0; /* the first one checks that frames decode */
    vtc_hello_ex(ks[i], "demo", vtok, 0, "viewer", caps, 1);
  }
  if (vtc_run(&c, all_open_welcomed, &c, 20000)) {
    fprintf(stderr, "sync_bench: viewers did not join\n");
    goto out;
  }
  for (int i = 0; i < subs; i++)
    vtc_subscribe(ks[i], (uint32_t)size, (uint32_t)size, 0, true, false);
  vtc_run(&c, never, NULL, 1000); /* warm-up */
  size_t *from = calloc((size_t)subs, sizeof *from);
  for (int i = 0; i < subs; i++) from[i] = ks[i]->nframes;
  double cpu0 = proc_cpu(srv.pid), self0 = self_cpu();
  vtc_run(&c, never, NULL, (int)(secs * 1000));
  double cpu1 = proc_cpu(srv.pid), self1 = self_cpu();
  res->srv_cpu = (cpu1 - cpu0) / secs;
  res->self_cpu = (self1 - self0) / secs;
  uint64_t bytes = 0, ebytes = 0, dbytes = 0, nd = 0;
  for (int i = 0; i < subs; i++) {
    for (size_t f = from[i]; f < ks[i]->nframes; f++) {
      const vtc_frame_rec *r = &ks[i]->frames[f];
      res->frames++;
      bytes += r->bytes;
      if (r->epoch) { res->epochs++; ebytes += r->bytes; }
      else { nd++; dbytes += r->bytes; }
      if (r->gap) res->gaps++;
      if (i == 0 && !r->decoded) res->undecoded++;
    }
  }
  free(from);
  if (res->frames) {
    res->fps_in = res->frames / secs / subs;
    res->bytes_per_frame = (double)bytes / res->frames;
    res->epoch_bytes = res->epochs ? (double)ebytes / res->epochs : 0;
    res->delta_bytes = nd ? (double)dbytes / nd : 0;
  }
  res->ok = res->frames > 0 && res->undecoded == 0;
  rc = 0;
out:
  if (vtc_server_stop(&srv, &c) != 0) fprintf(stderr, "sync_bench: server did not stop cleanly\n");
  vtc_ctx_done(&c);
  vtc_rmdir(dir);
  free(ks);
  return rc;
}

static void print_frames(const frame_result *r, int size) {
  double raw = (double)size * size * 3;
  if (json_out) {
    printf("{\"sys\":\"vtl\",\"bench\":\"frames\",\"subs\":%d,\"codec\":\"%s\","
           "\"secs\":%g,\"server_cpu\":%.3f,\"client_cpu\":%.3f,"
           "\"pattern_cpu\":%.3f,\"fps_per_sub\":%.1f,\"bytes_per_frame\":%.0f,"
           "\"epoch_bytes\":%.0f,\"delta_bytes\":%.0f,\"epochs\":%llu,"
           "\"gaps\":%llu,\"ok\":%s}\n",
           r->subs, r->codec, r->secs, r->srv_cpu, r->self_cpu,
           r->pattern_ms * r->fps_in / 1e3, r->fps_in, r->bytes_per_frame,
           r->epoch_bytes, r->delta_bytes, (unsigned long long)r->epochs,
           (unsigned long long)r->gaps, r->ok ? "true" : "false");
  } else {
    printf("%4d %-12s %8.1f %10.3f %10.3f %10.0f %8.1fx %10.0f %10.0f %5llu %s\n",
           r->subs, r->codec, r->fps_in, r->srv_cpu, r->self_cpu,
           r->bytes_per_frame, r->bytes_per_frame > 0 ? raw / r->bytes_per_frame : 0,
           r->epoch_bytes, r->delta_bytes, (unsigned long long)r->gaps,
           r->ok ? "" : "(NOT OK)");
  }
  fflush(stdout);
}

/* ---- main -------------------------------------------------------------------- */

static int parse_list(const char *s, int *out, int max) {
  int n = 0;
  while (*s && n < max) {
    out[n++] = atoi(s);
    s = strchr(s, ',');
    if (!s) break;
    s++;
  }
  return n;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  int counts[8] = {8, 32, 64}, ncounts = 3, subs[8] = {1, 8, 32}, nsubs = 3;
  double rate = 10, secs = 5;
  int window = 4, nkeys = 4, size = 512, fps = 30;
  bool do_rate = true, do_flat = true;
  for (int i = 2; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--json")) { json_out = true; continue; }
    if (!strcmp(o, "--rate-only")) { do_flat = false; continue; }
    if (!strcmp(o, "--flat-only")) { do_rate = false; continue; }
    if (!v) goto usage;
    i++;
    if (!strcmp(o, "-c")) ncounts = parse_list(v, counts, 8);
    else if (!strcmp(o, "-s")) nsubs = parse_list(v, subs, 8);
    else if (!strcmp(o, "-r")) rate = atof(v);
    else if (!strcmp(o, "-t")) secs = atof(v);
    else if (!strcmp(o, "-w")) window = atoi(v);
    else if (!strcmp(o, "-k")) nkeys = atoi(v);
    else if (!strcmp(o, "--size")) size = atoi(v);
    else if (!strcmp(o, "--fps")) fps = atoi(v);
    else goto usage;
  }
  if (nkeys < 1 || nkeys > 16 || window < 1 || rate <= 0 || secs <= 0) goto usage;
  if (!strcmp(what, "edits")) {
    if (!json_out)
      printf("vtl sync_bench edits: %g s per run, %d keys per client, one "
             "set-value op per batch\n%-18s %9s %9s %8s %8s %8s %8s %9s %6s %6s\n",
             secs, nkeys, "load", "applied/s", "deliv/s", "p50 ms", "p99 ms",
             "max ms", "ack p50", "commit ms", "srvCPU", "cliCPU");
    for (int f = 0; f < 2; f++) {
      if ((f == 0 && !do_rate) || (f == 1 && !do_flat)) continue;
      for (int i = 0; i < ncounts; i++) {
        edit_result r;
        if (counts[i] < 2 || run_edits(counts[i], f == 1, rate, window, nkeys, secs, &r)) {
          fprintf(stderr, "sync_bench: run with %d clients failed\n", counts[i]);
          return 1;
        }
        print_edit(&r);
      }
    }
    return 0;
  }
  if (!strcmp(what, "frames")) {
    /* the pattern's own cost (the render service's stand-in) */
    uint8_t *px = malloc((size_t)size * size * 3);
    double t0 = now_s();
    int reps = 60;
    for (int i = 0; i < reps; i++) vtl_test_pattern(px, (uint32_t)size, (uint32_t)size, i);
    double pattern_ms = (now_s() - t0) * 1e3 / reps;
    free(px);
    if (!json_out)
      printf("vtl sync_bench frames: %dx%d RGB test pattern at %d fps, %g s per run; "
             "drawing one frame costs %.2f ms (in the server's CPU below)\n"
             "%4s %-12s %8s %10s %10s %10s %9s %10s %10s %5s\n",
             size, size, fps, secs, pattern_ms, "subs", "codec", "fps/sub",
             "srvCPU/s", "cliCPU/s", "B/frame", "ratio", "epoch B", "delta B",
             "gaps");
    for (int i = 0; i < nsubs; i++)
      for (int s = 0; s < 2; s++) {
        frame_result r;
        if (run_frames(subs[i], s == 1, size, fps, secs, pattern_ms, &r)) {
          fprintf(stderr, "sync_bench: frames run with %d subscribers failed\n", subs[i]);
          return 1;
        }
        print_frames(&r, size);
      }
    return 0;
  }
usage:
  fprintf(stderr,
          "usage: sync_bench edits [-c 8,32,64] [-r 10] [-t 5] [-w 4] [-k 4] "
          "[--rate-only|--flat-only] [--json]\n"
          "       sync_bench frames [-s 1,8,32] [-t 5] [--size 512] [--fps 30] [--json]\n");
  return 2;
}
