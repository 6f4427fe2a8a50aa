/* demo.c — --demo: room "demo" (main.c creates it and prints its tokens).
 *
 * Its document: with --demo-timeline FILE, the film in FILE is imported
 * when the room is empty (a new data directory, or never edited), as one
 * batch through the normal commit path; a room with content is left alone
 * (demo_timeline.c). Without the flag the room starts empty.
 *
 * Its frames: with --render, the render service's (render.c), like any
 * room's: the film rendered with the timeline's model. Without it, the
 * synthetic moving test pattern (test_pattern.h) at 12 fps from a uv
 * timer on the loop, through the same vtl_room_publish_frame a renderer
 * uses; frames carry test_pattern = true. Frame numbers count up from 0
 * at start-up. --demo-size / --demo-fps (bench flags) change the size and
 * rate of the pattern. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "server.h"
#include "test_pattern.h"

#define DEMO_MAX_SIZE 1024 /* --demo-size (main.c checks the range) */
static uint8_t pixels[DEMO_MAX_SIZE * DEMO_MAX_SIZE * 3];
static uint32_t demo_w = VTL_TEST_PATTERN_W, demo_h = VTL_TEST_PATTERN_H;
static int64_t next_frame;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_demo_tick(uv_timer_t *t) {
  vtl_server *sv = t->data;
  if (sv->stopping) return;
  vtl_room *r;
  char msg[256];
  if (vtl_room_get(sv, "demo", &r, msg, sizeof msg)) return;
  bool any = false;
  for (vtl_session *s = r->sessions; s && !any; s = s->room_next)
    any = s->sub_on;
  int64_t f = next_frame++;
  if (!any) return; /* nobody watches: do not even draw */
  double t0 = now_ms();
  vtl_test_pattern(pixels, demo_w, demo_h, f);
  int rc = vtl_room_publish_frame(r, f, r->seq, 0, demo_w, demo_h, pixels,
                                  now_ms() - t0, VTL_FRAME_TEST_PATTERN);
  if (rc) vtl_log(VTL_LOG_WARN, "demo.frame", "demo frame %lld: %s", (long long)f,
                  vtl_strerror(rc));
}

int vtl_demo_start(vtl_server *sv) {
  vtl_room *r;
  char msg[256];
  if (vtl_room_get(sv, "demo", &r, msg, sizeof msg)) {
    vtl_log(VTL_LOG_ERROR, "demo.start", "%s", msg);
    return 1;
  }
  if (sv->cfg.demo_timeline && vtl_demo_timeline_import(r, sv->cfg.demo_timeline))
    return 1;
  if (sv->cfg.render) {
    const vtl_timeline *tl = vtl_doc_timeline(r->doc);
    printf("demo: rendering room \"demo\"'s film (%lldx%lld, model \"%s\" under "
           "%s) for its viewers\n", (long long)tl->width, (long long)tl->height,
           tl->model, sv->cfg.model_root);
    return 0;
  }
  unsigned fps = sv->cfg.demo_fps ? sv->cfg.demo_fps : VTL_TEST_PATTERN_FPS;
  if (sv->cfg.demo_size && sv->cfg.demo_size <= DEMO_MAX_SIZE)
    demo_w = demo_h = sv->cfg.demo_size; /* bench flag --demo-size */
  uv_timer_start(&sv->demo_timer, on_demo_tick, 0, 1000 / fps);
  printf("demo: publishing a %ux%u test pattern at %u fps to room \"demo\"\n",
         (unsigned)demo_w, (unsigned)demo_h, fps);
  return 0;
}
