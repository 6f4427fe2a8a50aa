#!/usr/bin/python3
"""deforum_reference.py — what Deforum computes per frame, for test_deforum.c.

An independent reimplementation of Deforum's own per-frame expansion, in
Deforum's own terms (pandas + numexpr, as Deforum does), written from
reading deforum-stable-diffusion (helpers/animation.py, render.py) and
sd-webui-deforum (animation_key_frames.py, prompt.py, seed.py, render.py,
render_modes.py, args.py). It does not look at vtl at all; the C test
compares vtl_params_at() against its output.

    tests/deforum_reference.py tests/data/deforum/NAME.json \
        > tests/data/deforum/NAME.expected.json
    # all of them:
    cd tests/data/deforum && for f in *.json; do
      case $f in *.expected.json) continue;; esac
      ../../deforum_reference.py "$f" > "${f%.json}.expected.json"; done

Needs Debian's python3-pandas and python3-numexpr (only to regenerate the
expected files; the C test reads the JSON).

Output (vtl units: strength is 1 - Deforum's, clamped to 0..1 as Deforum
clamps it; steps and seeds are int() of the series like Deforum's):
  {"max_frames": N, "blend_only": bool,
   "params": {vtl_param_name: [value per frame]},
   "seeds": [seed per frame, null where the frame is not diffused or the
             seed is not reproducible],
   "texts": [[text, negative], ...],
   "prompts_hold":  [[[text_index, weight], ...] per frame],
   "prompts_blend": [[[text_index, weight], ...] per frame]}

Choices where Deforum has none (see docs/deforum.md):
  * A schedule without a key at frame 0 makes Deforum fail; here the first
    value is held before the first key (what get_inbetweens' first_valid
    line intends).
  * Prompt keys that are expressions see max_f = max_frames - 1 (as the
    schedules do).
"""
import json
import math
import re
import sys

import numexpr
import numpy as np
import pandas as pd

NUMBER = re.compile(r'^(?=.)([+-]?([0-9]*)(\.([0-9]+))?)$')


def is_number(s):
    # A1111's check_is_number on the sanitized value; at least one digit
    return NUMBER.match(s) is not None and re.search(r'[0-9]', s) is not None


def sanitize(v):
    return v.replace("'", "").replace('"', "").replace("(", "").replace(")", "")


def split_entries(string):
    """frame:(value) entries; commas inside parentheses stay in the value."""
    entries, depth, cur = [], 0, ''
    for c in string:
        if c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
        if c == ',' and depth == 0:
            entries.append(cur)
            cur = ''
        else:
            cur += c
    if cur.strip():
        entries.append(cur)
    return entries


def parse_key_frames(string, max_frames, seed):
    frames = {}
    max_f = max_frames - 1
    for entry in split_entries(string):
        frame, value = entry.split(':', 1)
        frame = frame.strip().strip('"').strip("'")
        if frame.isdigit():
            f = int(frame)
        else:
            f = int(numexpr.evaluate(frame, local_dict={'max_f': max_f, 's': seed}))
        value = value.strip()
        frames[f] = value
    return frames


def get_inbetweens(key_frames, max_frames, seed):
    series = pd.Series([np.nan for _ in range(max_frames)])
    max_f = max_frames - 1
    value_is_number = True  # NaN until the first key (Deforum would fail)
    value = None
    for i in range(max_frames):
        if i in key_frames:
            value = key_frames[i]
            sv = sanitize(value)
            value_is_number = is_number(sv)
            if value_is_number:
                series[i] = float(sv)
        if not value_is_number:
            series[i] = numexpr.evaluate(
                value, local_dict={'t': i, 'max_f': max_f, 's': seed,
                                   'max_frames': max_frames})
    series = series.astype(float)
    series[0] = series[series.first_valid_index()]
    series[max_frames - 1] = series[series.last_valid_index()]
    return series.interpolate(method='linear', limit_direction='both')


def schedule(settings, key, max_frames, seed):
    v = settings[key]
    if not isinstance(v, str):
        v = '0:(%r)' % v
    return get_inbetweens(parse_key_frames(v, max_frames, seed), max_frames, seed)


def prompt_frame(k, max_frames):
    if k.isdigit():
        return int(k)
    return int(numexpr.evaluate(k, local_dict={'max_f': max_frames - 1}))


def split_neg(full):
    parts = full.split('--neg')
    pos = parts[0].strip()
    neg = '--neg'.join(parts[1:]).strip()
    return pos, neg


def prompts(settings, max_frames):
    """{frame: (text, negative)} the way A1111's process_args builds them."""
    if 'animation_prompts' in settings:
        src = settings['animation_prompts']
    elif 'prompts' in settings:
        src = settings['prompts']
    else:
        return None
    pos = settings.get('animation_prompts_positive',
                       settings.get('positive_prompts', '')) or ''
    neg = settings.get('animation_prompts_negative',
                       settings.get('negative_prompts', '')) or ''
    neg = neg.replace('--neg', '')
    out = {}
    for k, val in src.items():
        full = f"{pos} {val} {'' if '--neg' in val else '--neg'} {neg}"
        out[prompt_frame(k, max_frames)] = split_neg(full)
    return out


def prompts_hold(keyed, max_frames):
    series = pd.Series([None] * max_frames, dtype=object)
    for f, tp in keyed.items():
        if 0 <= f < max_frames:
            series[f] = tp
    series = series.ffill().bfill()
    return [[(series[f], 1.0)] for f in range(max_frames)]


def prompts_blend(keyed, max_frames):
    """interpolate_prompts: between keys the weights 1-w and w."""
    keys = sorted(keyed)
    frames = [None] * max_frames
    for i in range(len(keys) - 1):
        cur, nxt = keys[i], keys[i + 1]
        step = 1 / (nxt - cur)
        for f in range(cur, nxt):
            if 0 <= f < max_frames:
                w = step * (f - cur)
                frames[f] = [(keyed[cur], 1 - w), (keyed[nxt], w)]
    for f in keys:
        if 0 <= f < max_frames:
            frames[f] = [(keyed[f], 1.0)]
    last = None
    for f in range(max_frames):  # ffill
        if frames[f] is None:
            frames[f] = last
        last = frames[f]
    first = next(x for x in frames if x is not None)
    return [x if x is not None else first for x in frames]


def seeds(settings, max_frames, cadence, seed_series):
    seed = settings.get('seed', -1)
    behavior = settings.get('seed_behavior', 'iter')
    n = int(settings.get('seed_iter_N', 1))
    out = [None] * max_frames
    if seed == -1 or behavior == 'random':
        return out
    internal = 0
    frame = 0
    while frame < max_frames:
        if behavior == 'schedule':
            seed = int(seed_series[frame])
        out[frame] = seed
        frame += cadence
        # next_seed()
        if behavior == 'iter':
            seed += 1 if internal % n == 0 else 0
            internal += 1
        elif behavior == 'ladder':
            seed += 2 if internal == 0 else -1
            internal = 1 if internal == 0 else 0
        elif behavior == 'alternate':
            seed += 1 if internal == 0 else -1
            internal = 1 if internal == 0 else 0
    return out


def main(path):
    with open(path, encoding='utf-8') as f:
        s = json.load(f)
    max_frames = int(s['max_frames'])
    seed = int(s.get('seed', -1))
    mode = s.get('animation_mode', '2D')
    interp = mode == 'Interpolation'
    a1111 = any(k in s for k in ('cfg_scale_schedule', 'sd_model_name',
                                 'deforum_git_commit_id', 'positive_prompts',
                                 'animation_prompts_positive'))
    params = {}

    def put(name, series, fn=float):
        params[name] = [fn(x) for x in series]

    motion = [('angle', 'angle'), ('zoom', 'zoom'),
              ('translation_x', 'translation_x'),
              ('translation_y', 'translation_y'),
              ('translation_z', 'translation_z'),
              ('rotation_3d_x', 'rotation_3d_x'),
              ('rotation_3d_y', 'rotation_3d_y'),
              ('rotation_3d_z', 'rotation_3d_z'),
              ('fov_schedule', 'fov'), ('near_schedule', 'near'),
              ('far_schedule', 'far'), ('noise_schedule', 'noise'),
              ('contrast_schedule', 'contrast')]
    if not interp:
        for key, name in motion:
            if key in s:
                put(name, schedule(s, key, max_frames, seed))
        for key, name in (('fov', 'fov'), ('near_plane', 'near'),
                          ('far_plane', 'far')):
            if key in s and name not in params:
                put(name, [float(s[key])] * max_frames)
        if 'strength_schedule' in s:
            put('strength', schedule(s, 'strength_schedule', max_frames, seed),
                lambda x: 1 - max(0.0, min(1.0, x)))
        cadence = int(s.get('diffusion_cadence', 2 if a1111 else 1))
        params['cadence'] = [cadence] * max_frames
    else:
        cadence = 1
        params['strength'] = [1.0] * max_frames
    if 'cfg_scale_schedule' in s:
        put('guidance', schedule(s, 'cfg_scale_schedule', max_frames, seed))
    elif 'scale' in s:
        params['guidance'] = [float(s['scale'])] * max_frames
    if s.get('enable_steps_scheduling', not a1111) and 'steps_schedule' in s:
        put('steps', schedule(s, 'steps_schedule', max_frames, seed), int)
    elif 'steps' in s:
        params['steps'] = [int(s['steps'])] * max_frames
    seed_series = None
    if s.get('seed_behavior') == 'schedule':
        seed_series = schedule(s, 'seed_schedule', max_frames, seed)
        put('seed', seed_series, int)

    out = {'max_frames': max_frames, 'blend_only': interp, 'params': params,
           'seeds': seeds(s, max_frames, cadence, seed_series)}
    keyed = prompts(s, max_frames)
    if keyed is not None:
        texts = sorted(set(keyed.values()))
        index = {t: i for i, t in enumerate(texts)}
        out['texts'] = [list(t) for t in texts]

        def enc(frames):
            res = []
            for fr in frames:
                merged = {}
                for tp, w in fr:
                    merged[index[tp]] = merged.get(index[tp], 0.0) + w
                res.append([[i, w] for i, w in sorted(merged.items()) if w > 0])
            return res
        out['prompts_blend'] = enc(prompts_blend(keyed, max_frames))
        out['prompts_hold'] = (out['prompts_blend'] if interp else
                               enc(prompts_hold(keyed, max_frames)))
    json.dump(out, sys.stdout, indent=None, separators=(',', ':'))
    sys.stdout.write('\n')


if __name__ == '__main__':
    main(sys.argv[1])
