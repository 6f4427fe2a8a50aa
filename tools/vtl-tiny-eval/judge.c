/* judge.c — see judge.h. Mirrors tools/train-tiny/dataset.py's background(). */
#include "judge.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtl_error.h"

struct vtl_vocab {
  json_t *root;
  int size;
  vtl_vocab_case *cases;
  size_t ncases;
};

static const int *grid_of(json_t *positions, const char *name, int *cr) {
  json_t *p = json_object_get(positions, name);
  if (!json_is_array(p) || json_array_size(p) != 2) return NULL;
  cr[0] = (int)json_integer_value(json_array_get(p, 0));
  cr[1] = (int)json_integer_value(json_array_get(p, 1));
  return cr;
}

int vtl_vocab_load(const char *path, vtl_vocab **out, char *msg,
                   size_t msglen) {
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (!root) {
    snprintf(msg, msglen, "%s:%d: %s", path, err.line, err.text);
    return VTL_EPARSE;
  }
  vtl_vocab *v = calloc(1, sizeof *v);
  json_t *held = json_object_get(root, "held_out");
  size_t n = json_array_size(held);
  if (!v || !(v->cases = calloc(n ? n : 1, sizeof *v->cases))) {
    free(v);
    json_decref(root);
    snprintf(msg, msglen, "out of memory");
    return VTL_ENOMEM;
  }
  v->root = root;
  v->size = (int)json_integer_value(json_object_get(root, "size"));
  json_t *cols = json_object_get(root, "colours");
  json_t *bgs = json_object_get(root, "backgrounds");
  json_t *pos = json_object_get(root, "positions");
  int rc = 0;
  if (v->size < 8 || v->size > 4096 || !json_is_object(cols) ||
      !json_is_object(bgs) || !json_is_object(pos) || !n) {
    snprintf(msg, msglen, "%s: needs size, colours, backgrounds, positions "
             "and held_out", path);
    rc = VTL_EPARSE;
  }
  for (size_t i = 0; !rc && i < n; i++) {
    json_t *h = json_array_get(held, i);
    vtl_vocab_case *c = &v->cases[i];
    c->colour = json_string_value(json_array_get(h, 0));
    c->shape = json_string_value(json_array_get(h, 1));
    c->position = json_string_value(json_array_get(h, 2));
    c->background = json_string_value(json_array_get(h, 3));
    c->time = json_string_value(json_array_get(h, 4));
    int cr[2];
    if (json_array_size(h) != 5 || !c->colour || !c->shape || !c->position ||
        !c->background || !c->time || !json_object_get(cols, c->colour) ||
        !json_object_get(bgs, c->background) || !grid_of(pos, c->position, cr)) {
      snprintf(msg, msglen, "%s: held_out[%zu]: [colour, shape, position, "
               "background, time] of the vocabulary's names", path, i);
      rc = VTL_EPARSE;
      break;
    }
    c->col = cr[0];
    c->row = cr[1];
  }
  if (rc) {
    vtl_vocab_free(v);
    return rc;
  }
  v->ncases = n;
  *out = v;
  return 0;
}

void vtl_vocab_free(vtl_vocab *v) {
  if (!v) return;
  json_decref(v->root);
  free(v->cases);
  free(v);
}

int vtl_vocab_size(const vtl_vocab *v) { return v->size; }
size_t vtl_vocab_cases(const vtl_vocab *v) { return v->ncases; }
const vtl_vocab_case *vtl_vocab_case_at(const vtl_vocab *v, size_t i) {
  return i < v->ncases ? &v->cases[i] : NULL;
}

static const char *first_phrase(const vtl_vocab *v, const char *table,
                                const char *key) {
  json_t *a = json_object_get(json_object_get(v->root, table), key);
  const char *s = json_string_value(json_array_get(a, 0));
  return s ? s : key;
}

static bool outdoor(const vtl_vocab *v, const char *background) {
  json_t *b = json_object_get(json_object_get(v->root, "backgrounds"), background);
  return json_is_true(json_object_get(b, "outdoor"));
}

void vtl_vocab_caption(const vtl_vocab *v, const vtl_vocab_case *c, char *out,
                       size_t outlen) {
  bool timed = c->time[0] && outdoor(v, c->background);
  snprintf(out, outlen, "a %s %s %s %s%s%s", c->colour, c->shape,
           first_phrase(v, "position_phrases", c->position),
           first_phrase(v, "background_phrases", c->background),
           timed ? " " : "", timed ? c->time : "");
}

static void rgb_of(json_t *a, float *rgb) {
  for (int k = 0; k < 3; k++)
    rgb[k] = (float)json_number_value(json_array_get(a, (size_t)k));
}

void vtl_vocab_background(const vtl_vocab *v, const char *background,
                          const char *time, float *rgb) {
  int n = v->size;
  json_t *b = json_object_get(json_object_get(v->root, "backgrounds"), background);
  json_t *stops = json_object_get(b, "stops");
  if (stops) {
    size_t ns = json_array_size(stops);
    for (int i = 0; i < n; i++) {
      double y = (i + 0.5) / n;
      size_t k = 0;
      for (size_t j = 0; j < ns; j++)
        if (json_number_value(json_array_get(json_array_get(stops, j), 0)) <= y) k = j;
      float a[3], c[3], row[3];
      json_t *sa = json_array_get(stops, k);
      rgb_of(json_array_get(sa, 1), a);
      if (k + 1 < ns) {
        json_t *sc = json_array_get(stops, k + 1);
        rgb_of(json_array_get(sc, 1), c);
        double a0 = json_number_value(json_array_get(sa, 0));
        double c0 = json_number_value(json_array_get(sc, 0));
        double f = c0 <= a0 ? 0.0 : (y - a0) / (c0 - a0);
        for (int ch = 0; ch < 3; ch++) row[ch] = (float)(a[ch] * (1 - f) + c[ch] * f);
      } else {
        memcpy(row, a, sizeof row);
      }
      for (int x = 0; x < n; x++) memcpy(&rgb[((size_t)i * n + x) * 3], row, sizeof row);
    }
  } else {
    float a[3], c[3];
    rgb_of(json_object_get(b, "a"), a);
    rgb_of(json_object_get(b, "b"), c);
    int p = (int)json_integer_value(json_object_get(b, "period"));
    bool stripes = !strcmp(json_string_value(json_object_get(b, "pattern")), "stripes");
    for (int i = 0; i < n; i++)
      for (int x = 0; x < n; x++) {
        bool first = stripes ? (i / p) % 2 == 0 : (i / p + x / p) % 2 == 0;
        memcpy(&rgb[((size_t)i * n + x) * 3], first ? a : c, sizeof a);
      }
  }
  if (time[0] && outdoor(v, background)) {
    json_t *t = json_object_get(json_object_get(v->root, "times"), time);
    float mul[3], add[3];
    rgb_of(json_object_get(t, "mul"), mul);
    rgb_of(json_object_get(t, "add"), add);
    for (size_t p = 0; p < (size_t)n * n; p++)
      for (int ch = 0; ch < 3; ch++) {
        float x = rgb[p * 3 + ch] * mul[ch] + add[ch];
        rgb[p * 3 + ch] = x < 0 ? 0 : x > 255 ? 255 : x;
      }
  }
}

/* The largest 4-connected group of mask pixels: its label in lab[], size. */
static int largest_group(const unsigned char *mask, int n, int *lab, int *stack,
                         int *best_label) {
  int best = 0, label = 0;
  for (int i = 0; i < n * n; i++) lab[i] = 0;
  for (int s = 0; s < n * n; s++) {
    if (!mask[s] || lab[s]) continue;
    int top = 0, count = 0;
    lab[s] = ++label;
    stack[top++] = s;
    while (top) {
      int p = stack[--top], y = p / n, x = p % n;
      count++;
      int nb[4] = {x > 0 ? p - 1 : -1, x < n - 1 ? p + 1 : -1,
                   y > 0 ? p - n : -1, y < n - 1 ? p + n : -1};
      for (int k = 0; k < 4; k++)
        if (nb[k] >= 0 && mask[nb[k]] && !lab[nb[k]]) {
          lab[nb[k]] = label;
          stack[top++] = nb[k];
        }
    }
    if (count > best) {
      best = count;
      *best_label = label;
    }
  }
  return best;
}

bool vtl_judge(const vtl_vocab *v, const vtl_vocab_case *c,
               const float *image, vtl_judgement *out) {
  int n = v->size;
  size_t np = (size_t)n * n;
  float *bg = malloc(np * 3 * sizeof *bg), *dist = malloc(np * sizeof *dist);
  unsigned char *mask = malloc(np);
  int *lab = malloc(np * sizeof *lab), *stack = malloc(np * sizeof *stack);
  memset(out, 0, sizeof *out);
  out->colour = "";
  bool ok = false;
  if (!bg || !dist || !mask || !lab || !stack) goto done;
  vtl_vocab_background(v, c->background, c->time, bg);
  for (size_t p = 0; p < np; p++) {
    double d2 = 0;
    for (int ch = 0; ch < 3; ch++) {
      double x = (image[ch * np + p] + 1.0) * 127.5 - bg[p * 3 + ch];
      d2 += x * x;
    }
    dist[p] = (float)sqrt(d2);
    mask[p] = dist[p] > VTL_JUDGE_DIFF;
  }
  int label = 0;
  out->pixels = largest_group(mask, n, lab, stack, &label);
  if (out->pixels < VTL_JUDGE_MIN_PIXELS) goto done;
  out->found = true;
  double sx = 0, sy = 0, dmax = 0;
  for (size_t p = 0; p < np; p++)
    if (lab[p] == label) {
      sx += (double)(p % n) + 0.5;
      sy += (double)(p / n) + 0.5;
      if (dist[p] > dmax) dmax = dist[p];
    }
  out->col = (int)(sx / out->pixels * 3 / n);
  out->row = (int)(sy / out->pixels * 3 / n);
  double mean[3] = {0, 0, 0};
  int m = 0;
  for (size_t p = 0; p < np; p++)
    if (lab[p] == label && dist[p] >= (VTL_JUDGE_DIFF + dmax) / 2) {
      for (int ch = 0; ch < 3; ch++) mean[ch] += (image[ch * np + p] + 1.0) * 127.5;
      m++;
    }
  double best = INFINITY;
  const char *name;
  json_t *rgb;
  json_object_foreach(json_object_get(v->root, "colours"), name, rgb) {
    double d2 = 0;
    for (int ch = 0; ch < 3; ch++) {
      double x = mean[ch] / m - json_number_value(json_array_get(rgb, (size_t)ch));
      d2 += x * x;
    }
    if (d2 < best) {
      best = d2;
      out->colour = name;
    }
  }
  ok = !strcmp(out->colour, c->colour) && out->col == c->col && out->row == c->row;
done:
  free(bg);
  free(dist);
  free(mask);
  free(lab);
  free(stack);
  return ok;
}
