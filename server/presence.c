/* presence.c — Presence (docs/protocol.md "Presence"): ephemeral, never
 * persisted. Per session the server keeps the newest state (colour,
 * playhead, selection, pointer); a forward to the other sessions goes out
 * at once when the last one is >= 50 ms old, else the session is marked
 * pending and the server's tick (a 10 ms uv_timer running only while some
 * session is pending) sends the state current at that time: at most 20
 * forwards per second per session, the latest state wins, none is lost at
 * the end of a burst.
 *
 * Also owns vtl_live_init / vtl_live_close: the server's live-path timers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "server.h"
#include "wire.h"

#define E(x) VTL__V1__ERROR__CODE__CODE_##x
#define PRESENCE_INTERVAL_MS (1000 / VTL_MAX_PRESENCE_PER_SEC)
#define PRESENCE_TICK_MS 10
#define MAX_SELECTION 256

static const uint32_t palette[] = {0xe6194b, 0x3cb44b, 0xffe119, 0x4363d8,
                                   0xf58231, 0x911eb4, 0x46f0f0, 0xf032e6,
                                   0xbcf60c, 0xfabebe, 0x008080, 0xe6beff};

void vtl_live_init(vtl_server *sv) {
  uv_timer_init(sv->loop, &sv->presence_timer);
  uv_timer_init(sv->loop, &sv->demo_timer);
  sv->presence_timer.data = sv->demo_timer.data = sv;
  sv->live_init = true;
}

void vtl_live_close(vtl_server *sv) {
  if (!sv->live_init) return;
  sv->live_init = false;
  uv_close((uv_handle_t *)&sv->presence_timer, NULL);
  uv_close((uv_handle_t *)&sv->demo_timer, NULL);
}

static vtl_msg *presence_msg(vtl_session *s, bool left) {
  Vtl__V1__Presence p = VTL__V1__PRESENCE__INIT;
  p.session_id = s->id;
  p.display_name = s->display_name ? s->display_name : "";
  p.color = s->pres_color;
  p.playhead = s->pres_playhead;
  p.n_selection = s->pres_nsel;
  p.selection = s->pres_sel;
  p.pointer_x = s->pres_px;
  p.pointer_y = s->pres_py;
  p.state = left ? VTL__V1__PRESENCE_STATE__PRESENCE_STATE_LEFT
                 : VTL__V1__PRESENCE_STATE__PRESENCE_STATE_JOINED;
  Vtl__V1__Envelope env = VTL__V1__ENVELOPE__INIT;
  env.msg_case = VTL__V1__ENVELOPE__MSG_PRESENCE;
  env.presence = &p;
  return vtl_msg_pack(&env);
}

/* Sends s's state to every other live session of its room now. */
static void forward(vtl_session *s) {
  vtl_server *sv = s->server;
  if (s->pres_pending) {
    s->pres_pending = false;
    sv->presence_pending--;
  }
  s->pres_sent_ms = uv_now(sv->loop);
  vtl_msg *m = presence_msg(s, false);
  if (m && s->room) {
    vtl_room_broadcast(s->room, m, s);
    vtl_metrics_add(VTL_M_PRESENCE_OUT, s->room->nsessions - 1);
  }
  vtl_msg_unref(m);
}

static void on_tick(uv_timer_t *t) {
  vtl_server *sv = t->data;
  uint64_t now = uv_now(sv->loop);
  for (vtl_session *s = sv->sessions; s && sv->presence_pending; s = s->all_next)
    if (s->pres_pending && now - s->pres_sent_ms >= PRESENCE_INTERVAL_MS)
      forward(s);
  if (!sv->presence_pending) uv_timer_stop(t);
}

void vtl_presence_on_live(vtl_session *s) {
  vtl_room *r = s->room;
  s->pres_color = palette[s->id % (sizeof palette / sizeof palette[0])];
  s->pres_px = -1;
  forward(s); /* JOINED to the others */
  for (vtl_session *o = r->sessions; o; o = o->room_next) {
    if (o == s || o->state != VTL_SESSION_LIVE) continue;
    vtl_msg *m = presence_msg(o, false);
    if (m) vtl_session_send(s, m);
    vtl_msg_unref(m);
  }
}

void vtl_presence_on_leave(vtl_session *s) {
  if (s->pres_pending) {
    s->pres_pending = false;
    s->server->presence_pending--;
  }
  if (s->state == VTL_SESSION_LIVE && s->room) {
    vtl_msg *m = presence_msg(s, true);
    if (m) vtl_room_broadcast(s->room, m, s);
    vtl_msg_unref(m);
  }
  free(s->pres_sel);
  s->pres_sel = NULL;
  s->pres_nsel = 0;
}

/* handle_presence: validate, keep the newest, forward now or at the tick. */
void vtl_presence_handle(vtl_session *s, const Vtl__V1__Presence *p) {
  if (s->state != VTL_SESSION_LIVE) {
    vtl_session_offence(s, E(MALFORMED), "Presence before Welcome");
    return;
  }
  const char *name = p->display_name;
  if (name && name[0]) { /* a rename */
    if (strlen(name) > VTL_MAX_NAME) {
      vtl_session_error(s, E(TOOLONG), 0, false,
                        "Presence.display_name: longer than %d bytes",
                        VTL_MAX_NAME);
      return;
    }
    if (!vtl_wire_utf8_valid(name)) {
      vtl_session_offence(s, E(MALFORMED),
                          "Presence.display_name: invalid UTF-8");
      return;
    }
  }
  if (p->color > 0xffffff) {
    vtl_session_error(s, E(RANGE), 0, false,
                      "Presence.color: 0xRRGGBB, at most 0xffffff");
    return;
  }
  if (!isfinite(p->pointer_x) || !isfinite(p->pointer_y)) {
    vtl_session_error(s, E(RANGE), 0, false,
                      "Presence.pointer: NaN or infinity");
    return;
  }
  size_t nsel = p->n_selection > MAX_SELECTION ? MAX_SELECTION : p->n_selection;
  uint64_t *sel = NULL;
  if (nsel) {
    sel = malloc(nsel * sizeof *sel);
    if (!sel) {
      vtl_session_error(s, E(NOMEM), 0, false, "out of memory");
      return;
    }
    memcpy(sel, p->selection, nsel * sizeof *sel);
  }
  if (name && name[0]) {
    char *d = strdup(name);
    if (d) { free(s->display_name); s->display_name = d; }
  }
  free(s->pres_sel);
  s->pres_sel = sel;
  s->pres_nsel = nsel;
  if (p->color) s->pres_color = p->color;
  s->pres_playhead = p->playhead;
  s->pres_px = p->pointer_x;
  s->pres_py = p->pointer_y;

  vtl_server *sv = s->server;
  if (uv_now(sv->loop) - s->pres_sent_ms >= PRESENCE_INTERVAL_MS) {
    forward(s);
    return;
  }
  if (!s->pres_pending) {
    s->pres_pending = true;
    sv->presence_pending++;
  } else {
    vtl_metrics_add(VTL_M_PRESENCE_COALESCED, 1); /* replaced unsent */
  }
  if (sv->live_init && !uv_is_active((uv_handle_t *)&sv->presence_timer))
    uv_timer_start(&sv->presence_timer, on_tick, PRESENCE_TICK_MS,
                   PRESENCE_TICK_MS);
}
