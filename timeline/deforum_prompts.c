/* deforum_prompts.c — Deforum's prompts ({"frame": "text --neg negative"},
 * the A1111 positive/negative fields, Colab's cond/uncond series) read into
 * one prompt track of clips, held or crossfaded.
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

/* One key of a prompt object: the prompt from `frame` on. */
typedef struct {
  int64_t frame;
  char *text;     /* malloc'd */
  char *negative; /* malloc'd */
  const char *key;/* borrowed: the JSON key, for messages */
} pkey;

/* ---- prompts --------------------------------------------------------------------- */

static void pkeys_free(pkey *k, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(k[i].text);
    free(k[i].negative);
  }
  free(k);
}

static char *strip_dup(const char *s, size_t n) {
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  while (n > 0 && isspace((unsigned char)*s)) s++, n--;
  return vtl__deforum_strndup(s, n);
}

/* Frame of a prompt key: digits, or (A1111) a numexpr of max_f. */
static int prompt_frame(vtl__deforum_imp *d, const char *obj, const char *k,
                        int64_t *out) {
  const char *p = k;
  while (isdigit((unsigned char)*p)) p++;
  if (*k && !*p) {
    double v = strtod(k, NULL);
    *out = v > 1e15 ? (int64_t)1e15 : (int64_t)v;
    return 0;
  }
  double v;
  const char *msg;
  if (vtl__deforum_nx_const_eval(k, strlen(k), (double)(d->length - 1),
                                 (double)d->seed, &v, &msg))
    return vtl__deforum_fail(d->err, VTL_EPARSE, "%s.\"%.40s\": bad frame: %s",
                             obj, k, msg);
  v = trunc(v);
  *out = v < -1e15 ? (int64_t)-1e15 : v > 1e15 ? (int64_t)1e15 : (int64_t)v;
  return 0;
}

/* Deforum A1111 (process_args): "{P} {val} {'' if '--neg' in val else
 * '--neg'} {N}", then split on "--neg" and trimmed. More than one "--neg"
 * makes Deforum fail to split, so it is refused. */
static int split_prompt(vtl__deforum_imp *d, const char *obj, const char *key,
                        const char *val, const char *pos, const char *neg,
                        bool split, pkey *out) {
  vtl__sbuf b = {0};
  if (split) {
    vtl__sbuf_printf(&b, "%s %s %s %s", pos, val,
                     strstr(val, "--neg") ? "" : "--neg", neg);
  } else {
    vtl__sbuf_puts(&b, val);
  }
  if (b.oom) return VTL_ENOMEM;
  const char *all = vtl__sbuf_str(&b), *m = split ? strstr(all, "--neg") : NULL;
  if (m && strstr(m + 5, "--neg")) {
    free(b.p);
    return vtl__deforum_fail(d->err, VTL_EPARSE,
                             "%s.\"%.40s\": more than one --neg", obj, key);
  }
  out->text = strip_dup(all, m ? (size_t)(m - all) : strlen(all));
  out->negative = m ? strip_dup(m + 5, strlen(m + 5)) : strdup("");
  free(b.p);
  if (!out->text || !out->negative) return VTL_ENOMEM;
  if (strlen(out->text) > VTL_MAX_TEXT || strlen(out->negative) > VTL_MAX_TEXT)
    return vtl__deforum_fail(d->err, VTL_ETOOLONG,
                             "%s.\"%.40s\": prompt longer than %d "
                             "bytes",
                             obj, key, VTL_MAX_TEXT);
  if (strchr(out->text, '`') || strchr(out->negative, '`'))
    TRY(vtl__deforum_warn(
        d,
        "%s.\"%.40s\": `...` weight expressions are kept as text "
        "(vtl does not evaluate them)",
        obj, key));
  return 0;
}

/* Reads a {frame: prompt} object (or a plain string: frame 0) into pkeys
 * sorted by frame; a later duplicate frame replaces an earlier one. */
static int read_prompt_obj(vtl__deforum_imp *d, const char *obj, json_t *v,
                           const char *pos, const char *neg, bool split,
                           pkey **out, size_t *nout) {
  size_t nk = 0, n = json_is_object(v) ? json_object_size(v) : 1;
  pkey *keys = calloc(n ? n : 1, sizeof *keys);
  if (!keys) return VTL_ENOMEM;
  int rc = 0;
  if (json_is_string(v)) {
    keys[0].key = "0";
    rc = split_prompt(d, obj, "0", json_string_value(v), pos, neg, split,
                      &keys[0]);
    nk = 1;
  } else if (!json_is_object(v)) {
    rc = vtl__deforum_fail(d->err, VTL_ETYPE,
                           "%s: expected an object of frame: prompt, "
                           "got %s",
                           obj, vtl__deforum_jtype(v));
  } else {
    const char *k;
    json_t *pv;
    json_object_foreach(v, k, pv) {
      if (!json_is_string(pv)) {
        rc = vtl__deforum_fail(d->err, VTL_ETYPE,
                               "%s.\"%.40s\": expected a string, got "
                               "%s",
                               obj, k, vtl__deforum_jtype(pv));
        break;
      }
      pkey pk = {0};
      pk.key = k;
      if ((rc = prompt_frame(d, obj, k, &pk.frame))) break;
      rc = split_prompt(d, obj, k, json_string_value(pv), pos, neg, split, &pk);
      if (rc) {
        free(pk.text);
        free(pk.negative);
        break;
      }
      size_t at = 0;
      while (at < nk && keys[at].frame < pk.frame) at++;
      if (at < nk && keys[at].frame == pk.frame) {
        free(keys[at].text);
        free(keys[at].negative);
        keys[at] = pk;
        continue;
      }
      memmove(keys + at + 1, keys + at, (nk - at) * sizeof *keys);
      keys[at] = pk;
      nk++;
    }
  }
  if (rc) {
    pkeys_free(keys, nk);
    return rc;
  }
  *out = keys;
  *nout = nk;
  return 0;
}

static int add_clip(vtl__deforum_imp *d, vtl_id track, int64_t start,
                    int64_t end, const pkey *k, int64_t fade_in,
                    int64_t fade_out) {
  vtl_op *op = vtl__deforum_push_op(d);
  if (!op) return VTL_ENOMEM;
  vtl_op_create(op, VTL_ENT_PROMPT_CLIP, d->next_id++);
  TRY(vtl_op_add_int(op, "track", (int64_t)track));
  TRY(vtl_op_add_int(op, "start", start));
  TRY(vtl_op_add_int(op, "end", end));
  TRY(vtl_op_add_str(op, "text", k->text));
  TRY(vtl_op_add_str(op, "negative", k->negative));
  if (fade_in) TRY(vtl_op_add_int(op, "fade_in", fade_in));
  if (fade_out) TRY(vtl_op_add_int(op, "fade_out", fade_out));
  return 0;
}

/* Lays the keys out as clips on one prompt track.
 * Hold (Deforum 2D/3D: ffill then bfill): clip i spans [k_i, k_i+1), the
 *   first from frame 0, the last to the end.
 * Blend (A1111 interpolate_prompts: between k_i and k_i+1 the weights are
 *   1-w and w, w = (f-k_i)/(k_i+1 - k_i)): clip i spans [k_i-1, k_i+1) with
 *   fade_in k_i - k_i-1 and fade_out k_i+1 - k_i; the first starts at 0
 *   without a fade in, the last runs to the end without a fade out. eval.c's
 *   envelopes then give exactly Deforum's weights.
 * Keys at or after max_frames are dropped, except in blend mode the first
 * of them, towards which the last frames still fade. */
static int emit_prompts(vtl__deforum_imp *d, pkey *keys, size_t nk) {
  size_t n = 0;
  for (size_t i = 0; i < nk; i++) {
    if (keys[i].frame < 0 ||
        (keys[i].frame >= d->length && !(d->blend && n > 0 &&
                                         keys[n - 1].frame < d->length))) {
      TRY(vtl__deforum_warn(
          d,
          "prompts: key \"%.40s\" (frame %lld) ignored (outside "
          "0..%lld)",
          keys[i].key, (long long)keys[i].frame, (long long)(d->length - 1)));
      continue;
    }
    if (keys[i].frame >= d->length && keys[i].frame >= VTL_MAX_FRAMES - 1)
      return vtl__deforum_fail(d->err, VTL_ERANGE,
                               "prompts: key \"%.40s\": frame %lld "
                               "past vtl's limit",
                               keys[i].key, (long long)keys[i].frame);
    if (n != i) {
      pkey t = keys[n];
      keys[n] = keys[i];
      keys[i] = t;
    }
    n++;
  }
  if (n == 0)
    return vtl__deforum_fail(d->err, VTL_ERANGE,
                             "prompts: no prompt inside frames "
                             "0..%lld",
                             (long long)(d->length - 1));
  vtl_id track = d->next_id++;
  vtl_op *op = vtl__deforum_push_op(d);
  if (!op) return VTL_ENOMEM;
  vtl_op_create(op, VTL_ENT_TRACK, track);
  TRY(vtl_op_add_str(op, "name", "prompts"));
  TRY(vtl_op_add_int(op, "target", VTL_TARGET_PROMPT));
  TRY(vtl_op_add_int(op, "order", d->order++));
  for (size_t i = 0; i < n; i++) {
    int64_t k = keys[i].frame;
    int64_t next = i + 1 < n ? keys[i + 1].frame : -1;
    int64_t end = next >= 0 ? next : (k + 1 > d->length ? k + 1 : d->length);
    if (!d->blend) {
      TRY(add_clip(d, track, i == 0 ? 0 : k, end, &keys[i], 0, 0));
    } else {
      int64_t prev = i > 0 ? keys[i - 1].frame : 0;
      TRY(add_clip(d, track, prev, end, &keys[i], i > 0 ? k - prev : 0,
                   next >= 0 ? next - k : 0));
    }
  }
  return 0;
}

static int import_prompts_from(vtl__deforum_imp *d, const char *pos,
                               const char *neg);

/* Reads the prompts of whichever style the file has. */
int vtl__deforum_import_prompts(vtl__deforum_imp *d) {
  const char *pos = "", *neg = "", *tmp;
  /* A1111: the UI fields, saved under two names over the versions */
  TRY(vtl__deforum_get_str(d, "positive_prompts", "", &tmp));
  if (*tmp) pos = tmp;
  TRY(vtl__deforum_get_str(d, "animation_prompts_positive", pos, &pos));
  TRY(vtl__deforum_get_str(d, "negative_prompts", "", &tmp));
  if (*tmp) neg = tmp;
  TRY(vtl__deforum_get_str(d, "animation_prompts_negative", neg, &neg));
  /* process_args drops a "--neg" typed into the negative field by mistake */
  char *negbuf = strdup(neg);
  if (!negbuf) return VTL_ENOMEM;
  for (char *m; (m = strstr(negbuf, "--neg"));) memmove(m, m + 5, strlen(m + 5) + 1);
  neg = negbuf;
  int rc = import_prompts_from(d, pos, neg);
  free(negbuf);
  return rc;
}

static int import_prompts_from(vtl__deforum_imp *d, const char *pos,
                               const char *neg) {
  pkey *keys = NULL;
  size_t nk = 0;
  json_t *ap = json_object_get(d->root, "animation_prompts");
  json_t *pr = json_object_get(d->root, "prompts");
  json_t *cond = json_object_get(d->root, "cond_prompts");
  if (ap && !json_is_null(ap)) {
    vtl__deforum_get(d, "animation_prompts");
    if (pr && !json_equal(pr, ap)) {
      vtl__deforum_inactive(d, "prompts");
      TRY(vtl__deforum_warn(d, "prompts: ignored, animation_prompts is used"));
    } else if (pr) {
      vtl__deforum_get(d, "prompts");
    }
    TRY(read_prompt_obj(d, "animation_prompts", ap, pos, neg, true, &keys,
                        &nk));
  } else if (pr && !json_is_null(pr)) {
    vtl__deforum_get(d, "prompts");
    TRY(read_prompt_obj(d, "prompts", pr, pos, neg, true, &keys, &nk));
  } else if (cond && !json_is_null(cond) && !(json_is_string(cond) &&
                                              !*json_string_value(cond))) {
    /* Colab 0.7.1: two series held separately, then read per frame */
    pkey *c = NULL, *u = NULL;
    size_t nc = 0, nu = 0;
    vtl__deforum_get(d, "cond_prompts");
    json_t *unc = vtl__deforum_get(d, "uncond_prompts");
    int rc = read_prompt_obj(d, "cond_prompts", cond, "", "", false, &c, &nc);
    if (!rc && nc == 0)
      rc = vtl__deforum_fail(d->err, VTL_EINVAL, "cond_prompts: no prompt");
    if (!rc && unc && !(json_is_string(unc) && !*json_string_value(unc)))
      rc = read_prompt_obj(d, "uncond_prompts", unc, "", "", false, &u, &nu);
    if (!rc && !(keys = calloc(nc + nu, sizeof *keys))) rc = VTL_ENOMEM;
    for (size_t i = 0, j = 0; !rc && (i < nc || j < nu);) {
      int64_t f = i < nc && (j >= nu || c[i].frame <= u[j].frame) ? c[i].frame
                                                                  : u[j].frame;
      while (i < nc && c[i].frame <= f) i++;
      while (j < nu && u[j].frame <= f) j++;
      const pkey *ck = &c[i ? i - 1 : 0], *uk = nu ? &u[j ? j - 1 : 0] : NULL;
      keys[nk].frame = f;
      keys[nk].key = f == ck->frame || !uk ? ck->key : uk->key;
      keys[nk].text = strdup(ck->text);
      keys[nk].negative = strdup(uk ? uk->text : "");
      if (!keys[nk].text || !keys[nk].negative) rc = VTL_ENOMEM;
      nk++;
    }
    if (!rc) rc = emit_prompts(d, keys, nk);
    pkeys_free(c, nc);
    pkeys_free(u, nu);
    pkeys_free(keys, nk);
    return rc;
  } else {
    vtl__deforum_inactive(d, "cond_prompts");
    vtl__deforum_inactive(d, "uncond_prompts");
    return vtl__deforum_warn(
        d, "prompts: none in the file; the film has no prompt track");
  }
  vtl__deforum_inactive(d, "cond_prompts");
  vtl__deforum_inactive(d, "uncond_prompts");
  int rc = emit_prompts(d, keys, nk);
  pkeys_free(keys, nk);
  return rc;
}
