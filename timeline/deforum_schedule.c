/* deforum_schedule.c — Deforum's schedules ("0: (1.0), 30: (sin(t))") read
 * into vtl tracks: parsed into keys, every expression rewritten as Lua and
 * checked frame by frame against numexpr, ranges checked, and the keys
 * emitted as keyframes (or folded into a timeline field). The rules are in
 * deforum_import.c's header comment.
 *
 * deforum_int.h lists the files of the Deforum importer/exporter; the
 * format and the mapping are described in deforum_import.c and
 * docs/deforum.md.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deforum_int.h"

/* Copies s (n bytes) into out for a message: whitespace runs collapsed,
 * cut at 40 bytes with "..." appended. */
static void snippet(char *out, size_t outlen, const char *s, size_t n) {
  size_t j = 0;
  bool space = false;
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  while (n > 0 && isspace((unsigned char)*s)) s++, n--;
  for (size_t i = 0; i < n && j + 4 < outlen; i++) {
    if (j >= 40) {
      memcpy(out + j, "...", 3);
      j += 3;
      break;
    }
    if (isspace((unsigned char)s[i])) {
      if (!space) out[j++] = ' ';
      space = true;
      continue;
    }
    space = false;
    out[j++] = s[i];
  }
  out[j] = '\0';
}


/* ---- schedules ------------------------------------------------------------------ */

static void skeys_free(vtl__deforum_skey *k, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(k[i].expr);
    free(k[i].src);
  }
  free(k);
}

/* numexpr source -> Lua (names, then operators). Returns 0 or an error. */
static int nx_to_lua(vtl__deforum_imp *d, const char *key, int64_t frame,
                     const char *src, size_t n, bool invert, char **out) {
  char msg[200], lua[VTL_MAX_EXPR + 1], snip[64];
  vtl__sbuf b = {0};
  snippet(snip, sizeof snip, src, n);
  if (vtl__deforum_nx_names(&b, src, n, d->seed_text, msg, sizeof msg)) {
    free(b.p);
    return vtl__deforum_fail(d->err, VTL_EEXPR, "%s: frame %lld: %s in \"%s\"",
                             key, (long long)frame, msg, snip);
  }
  if (b.oom) return VTL_ENOMEM;
  int rc = vtl_expr_from_numexpr(vtl__sbuf_str(&b), lua, sizeof lua);
  free(b.p);
  if (rc == VTL_ETOOLONG)
    return vtl__deforum_fail(d->err, rc,
                             "%s: frame %lld: expression longer than %d "
                             "bytes",
                             key, (long long)frame, VTL_MAX_EXPR);
  if (rc)
    return vtl__deforum_fail(d->err, rc, "%s: frame %lld: cannot read \"%s\"",
                             key, (long long)frame, snip);
  char *s;
  if (invert) {
    size_t len = strlen(lua) + 5;
    if (len > VTL_MAX_EXPR)
      return vtl__deforum_fail(d->err, VTL_ETOOLONG,
                               "%s: frame %lld: expression longer "
                               "than %d bytes",
                               key, (long long)frame, VTL_MAX_EXPR);
    size_t ln = strlen(lua);
    s = malloc(len + 1);
    if (s) {
      memcpy(s, "1-(", 3);
      memcpy(s + 3, lua, ln);
      memcpy(s + 3 + ln, ")", 2);
    }
  } else {
    s = strdup(lua);
  }
  if (!s) return VTL_ENOMEM;
  if (vtl_expr_check(d->x, s, msg, sizeof msg)) {
    free(s);
    return vtl__deforum_fail(d->err, VTL_EEXPR,
                             "%s: frame %lld: bad expression \"%s\": "
                             "%s",
                             key, (long long)frame, snip, msg);
  }
  *out = s;
  return 0;
}

/* Parses a schedule string into keys sorted by frame (a later duplicate
 * replaces an earlier one, as Deforum's dict does). Keys outside
 * 0..max_frames-1 are dropped with a warning.
 *   schedule := entry (',' entry)* [',']
 *   entry    := frame ':' ( '(' balanced ')' | text up to a top-level ',' )
 *   frame    := digits | a quoted or bare expression of max_f and s
 * This accepts what both Deforum parsers accept (the Colab regex needs the
 * parentheses; the A1111 split on ',' breaks on commas inside them). */
static int parse_schedule(vtl__deforum_imp *d, const char *key, const char *s,
                          bool invert, vtl__deforum_skey **out, size_t *nout) {
  size_t n = strlen(s), i = 0, nk = 0, cap = 0;
  vtl__deforum_skey *keys = NULL;
  char snip[64];
  int rc = 0;
#define BAD(fmt, ...)                                                          \
  do {                                                                         \
    snippet(snip, sizeof snip, s + start, n - start);                          \
    rc = vtl__deforum_fail(d->err, VTL_EPARSE,                                 \
                           "%s: bad schedule at \"%s\", " fmt, key, snip,      \
                           __VA_ARGS__);                                       \
    goto fail;                                                                 \
  } while (0)
  while (i < n && isspace((unsigned char)s[i])) i++;
  if (i == n) {
    return vtl__deforum_fail(d->err, VTL_EPARSE,
                             "%s: empty schedule (expected keys like "
                             "\"0: (1.0)\")",
                             key);
  }
  while (i < n) {
    size_t start = i;
    /* frame: up to a top-level ':' */
    int depth = 0;
    char quote = 0;
    while (i < n) {
      char c = s[i];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '(') {
        depth++;
      } else if (c == ')') {
        depth--;
      } else if ((c == ':' && depth == 0) || c == ',') {
        break;
      }
      i++;
    }
    if (i >= n || s[i] != ':') BAD("expected '%s'", ":");
    const char *fs = s + start, *fe = s + i;
    while (fs < fe && isspace((unsigned char)*fs)) fs++;
    while (fe > fs && isspace((unsigned char)fe[-1])) fe--;
    if (fe - fs >= 2 && (*fs == '"' || *fs == '\'') && fe[-1] == *fs) fs++, fe--;
    if (fs == fe) BAD("expected a frame before '%s'", ":");
    double fv;
    const char *cmsg;
    if (vtl__deforum_is_plain_number(fs, (size_t)(fe - fs), &fv)) {
      if (fv != floor(fv)) BAD("frame %g is not a whole number", fv);
    } else if (vtl__deforum_nx_const_eval(fs, (size_t)(fe - fs),
                                          (double)(d->length - 1),
                                          (double)d->seed, &fv, &cmsg)) {
      BAD("frame: %s", cmsg);
    } else {
      fv = trunc(fv); /* int(numexpr.evaluate(...)) */
    }
    i++; /* ':' */
    while (i < n && isspace((unsigned char)s[i])) i++;
    size_t vs, ve;
    bool paren = i < n && s[i] == '(';
    if (paren) {
      size_t close = vtl__deforum_match_paren(s, n, i);
      if (!close) BAD("expected '%s'", ")");
      vs = i + 1;
      ve = close - 1;
      i = close;
      while (i < n && isspace((unsigned char)s[i])) i++;
      if (i < n && s[i] != ',') BAD("expected ',' after '%s'", ")");
    } else {
      vs = i;
      depth = 0;
      while (i < n && !(s[i] == ',' && depth == 0)) {
        if (s[i] == '(') depth++;
        else if (s[i] == ')') depth--;
        i++;
      }
      if (depth != 0) BAD("expected '%s'", ")");
      ve = i;
    }
    /* Deforum tests the inside of the parentheses as it is: "( 0.5 )" is
     * not a number to it but an expression (held, not interpolated) */
    size_t rs = vs, re = ve;
    while (ve > vs && isspace((unsigned char)s[ve - 1])) ve--;
    while (vs < ve && isspace((unsigned char)s[vs])) vs++;
    if (!paren) rs = vs, re = ve;
    if (vs == ve) BAD("expected a value after '%s'", ":");
    if (i < n) i++; /* ',' */
    while (i < n && isspace((unsigned char)s[i])) i++;

    if (fv < 0 || fv >= (double)d->length) {
      if ((rc = vtl__deforum_warn(
               d,
               "%s: key at frame %.0f ignored (outside 0..%lld, "
               "as in Deforum)",
               key, fv, (long long)(d->length - 1))))
        goto fail;
      continue;
    }
    int64_t frame = (int64_t)fv;
    vtl__deforum_skey k = {frame, false, 0, NULL, NULL};
    if (!(k.src = vtl__deforum_strndup(s + vs, ve - vs))) {
      rc = VTL_ENOMEM;
      goto fail;
    }
    double num;
    if (vtl__deforum_is_plain_number(s + rs, re - rs, &num)) {
      k.num = true;
      k.value = invert ? 1 - num : num;
    } else if ((rc = nx_to_lua(d, key, frame, s + vs, ve - vs, invert,
                               &k.expr))) {
      free(k.src);
      goto fail;
    }
    /* insert sorted; a duplicate frame replaces the earlier key */
    size_t at = 0;
    while (at < nk && keys[at].frame < frame) at++;
    if (at < nk && keys[at].frame == frame) {
      free(keys[at].expr);
      free(keys[at].src);
      keys[at] = k;
      continue;
    }
    if (nk == cap) {
      size_t nc = cap ? cap * 2 : 8;
      vtl__deforum_skey *nkeys = realloc(keys, nc * sizeof *nkeys);
      if (!nkeys) {
        free(k.src);
        free(k.expr);
        rc = VTL_ENOMEM;
        goto fail;
      }
      keys = nkeys;
      cap = nc;
    }
    memmove(keys + at + 1, keys + at, (nk - at) * sizeof *keys);
    keys[at] = k;
    nk++;
  }
#undef BAD
  if (nk == 0) {
    rc = vtl__deforum_fail(d->err, VTL_ERANGE,
                           "%s: no key inside frames 0..%lld", key,
                           (long long)(d->length - 1));
    goto fail;
  }
  *out = keys;
  *nout = nk;
  return 0;
fail:
  skeys_free(keys, nk);
  return rc;
}

/* Checks a value of parameter p at a frame against vtl's range. Strength is
 * clamped (Deforum clamps it too) with one warning; anything else outside
 * the range is refused: Deforum would render it, but not meaningfully. */
static int check_range(vtl__deforum_imp *d, const char *key, int p,
                       int64_t frame, double v, bool *warned) {
  const vtl_param_desc *pd = &vtl_param_table[p];
  if (v >= pd->min && v <= pd->max) return 0;
  if (p == VTL_PARAM_STRENGTH) {
    if (!*warned) {
      *warned = true;
      return vtl__deforum_warn(
          d,
          "%s: %g at frame %lld is outside 0..1 and is clamped "
          "(as Deforum does)",
          key, 1 - v, (long long)frame);
    }
    return 0;
  }
  return vtl__deforum_fail(d->err, VTL_ERANGE,
                           "%s: %g at frame %lld is outside "
                           "vtl's %s range %g..%g",
                           key, v, (long long)frame, pd->name, pd->min,
                           pd->max);
}

/* Evaluates every expression key at every frame it covers (so that a file
 * whose expressions fail or leave the range is refused at import, with the
 * frame named) and checks numeric keys' ranges. */
static int validate_keys(vtl__deforum_imp *d, const char *key, int p,
                         bool invert, vtl__deforum_skey *keys, size_t nk) {
  bool warned = false, differs = false;
  char msg[200], snip[64];
  for (size_t i = 0; i < nk; i++) {
    if (keys[i].num) {
      TRY(check_range(d, key, p, keys[i].frame, keys[i].value, &warned));
      continue;
    }
    int64_t end = i + 1 < nk ? keys[i + 1].frame : d->length;
    snippet(snip, sizeof snip, keys[i].src, strlen(keys[i].src));
    for (int64_t f = keys[i].frame; f < end; f++) {
      double v, nv;
      const char *nmsg;
      if (vtl__deforum_eval_at(d->x, keys[i].expr, f, d->fps, d->length, &v,
                               msg, sizeof msg))
        return vtl__deforum_fail(d->err, VTL_EEXPR,
                                 "%s: \"%s\" fails at frame %lld: %s", key,
                                 snip, (long long)f, msg);
      if (vtl__deforum_nx_evaluate(keys[i].src, strlen(keys[i].src), true,
                                   (double)f, (double)(d->length - 1),
                                   (double)d->seed, &nv, &nmsg))
        return vtl__deforum_fail(d->err, VTL_EEXPR,
                                 "%s: \"%s\" fails at frame %lld in "
                                 "numexpr: %s",
                                 key, snip, (long long)f, nmsg);
      if (invert) nv = 1 - nv;
      if (!differs && !(fabs(v - nv) <= 1e-9 * fmax(1, fabs(nv)))) {
        differs = true;
        TRY(vtl__deforum_warn(
            d,
            "%s: \"%s\" gives %.17g at frame %lld in vtl but %.17g "
            "in Deforum's numexpr (integer or boolean arithmetic); vtl's "
            "value is used",
            key, snip, invert ? 1 - v : v, (long long)f, invert ? 1 - nv : nv));
      }
      if (f == keys[i].frame) keys[i].value = v;
      TRY(check_range(d, key, p, f, v, &warned));
    }
  }
  return 0;
}

/* Creates the track and keyframes of parameter p from parsed keys, or folds
 * a single numeric key into the timeline / drops it when it is the
 * default. */
int vtl__deforum_emit_keys(vtl__deforum_imp *d, const char *name, int p,
                           const vtl__deforum_skey *keys, size_t nk) {
  if (nk == 1 && keys[0].num) {
    double v = keys[0].value;
    switch (p) {
    case VTL_PARAM_GUIDANCE: d->tl_guidance = v; return 0;
    case VTL_PARAM_STEPS: d->tl_steps = (int64_t)trunc(v); return 0;
    case VTL_PARAM_STRENGTH: d->tl_strength = v < 0 ? 0 : v > 1 ? 1 : v; return 0;
    case VTL_PARAM_SEED: break; /* falls back to the timeline's seed */
    default:
      if (v == vtl_param_table[p].def) return 0;
    }
  }
  vtl_id track = d->next_id++;
  vtl_op *op = vtl__deforum_push_op(d);
  if (!op) return VTL_ENOMEM;
  vtl_op_create(op, VTL_ENT_TRACK, track);
  TRY(vtl_op_add_str(op, "name", name));
  TRY(vtl_op_add_int(op, "target", p));
  TRY(vtl_op_add_int(op, "order", d->order++));
  for (size_t i = 0; i < nk; i++) {
    if (!(op = vtl__deforum_push_op(d))) return VTL_ENOMEM;
    vtl_op_create(op, VTL_ENT_KEYFRAME, d->next_id++);
    TRY(vtl_op_add_int(op, "track", (int64_t)track));
    TRY(vtl_op_add_int(op, "frame", keys[i].frame));
    TRY(vtl_op_add_real(op, "value", keys[i].value));
    TRY(vtl_op_add_int(op, "interp", VTL_INTERP_LINEAR));
    if (!keys[i].num) TRY(vtl_op_add_str(op, "expr", keys[i].expr));
  }
  return 0;
}

/* Reads schedule `key` (a string, or a bare number) into parameter p. */
int vtl__deforum_import_schedule(vtl__deforum_imp *d, const char *key, int p,
                                 bool invert) {
  json_t *v = vtl__deforum_get(d, key);
  if (!v) return 0;
  vtl__deforum_skey *keys = NULL;
  size_t nk = 0;
  if (json_is_number(v)) {
    double num = json_number_value(v);
    if (!(keys = calloc(1, sizeof *keys))) return VTL_ENOMEM;
    keys[0] = (vtl__deforum_skey){0, true, invert ? 1 - num : num, NULL, NULL};
    nk = 1;
  } else if (json_is_string(v)) {
    TRY(parse_schedule(d, key, json_string_value(v), invert, &keys, &nk));
  } else {
    return vtl__deforum_fail(d->err, VTL_ETYPE,
                             "%s: expected a schedule string like "
                             "\"0: (1.0)\", got %s",
                             key, vtl__deforum_jtype(v));
  }
  int rc = 0;
  if (p == VTL_PARAM_SEED) {
    /* -1 in a seed schedule is "random" in Deforum: make it deterministic */
    for (size_t i = 0; i < nk && !rc; i++) {
      if (keys[i].num && keys[i].value == -1) {
        uint32_t h = 2166136261u;
        for (size_t j = 0; j < d->len; j++)
          h = (h ^ (unsigned char)d->src[j]) * 16777619u;
        h = (h ^ (uint32_t)keys[i].frame) * 16777619u;
        keys[i].value = h;
        rc =
            vtl__deforum_warn(d,
                              "%s: -1 (a random seed in Deforum) at frame %lld "
                              "replaced by %u, a hash of the file",
                              key, (long long)keys[i].frame, (unsigned)h);
      }
    }
  }
  if (!rc && keys[0].frame != 0)
    rc = vtl__deforum_warn(
        d,
        "%s: no key at frame 0 (Deforum needs one); the first key's "
        "value is held before it",
        key);
  if (!rc) rc = validate_keys(d, key, p, invert, keys, nk);
  if (!rc) rc = vtl__deforum_emit_keys(d, key, p, keys, nk);
  skeys_free(keys, nk);
  return rc;
}

/* A Colab constant (fov, near_plane, far_plane) when the A1111 schedule is
 * absent; its track is named after the schedule, as export writes it. */
int vtl__deforum_import_constant(vtl__deforum_imp *d, const char *key,
                                 const char *track, int p) {
  double v;
  bool warned = false;
  if (!json_object_get(d->root, key)) return 0;
  TRY(vtl__deforum_get_real(d, key, vtl_param_table[p].def, &v));
  TRY(check_range(d, key, p, 0, v, &warned));
  vtl__deforum_skey k = {0, true, v, NULL, NULL};
  return vtl__deforum_emit_keys(d, track, p, &k, 1);
}
