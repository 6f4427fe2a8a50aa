#!/usr/bin/env python3
"""server.python_converge — several independent Python clients edit one room
of the real vtl-server with concurrent random batches, some of them invalid;
every replica, kept only by applying the broadcast Ops with the Python model
of vtl_py_client.py, must equal the server's document as a late-joining
client's Snapshot shows it. A viewer drops out half-way and catches up with
last_seq (missed Ops, no Snapshot); a viewer's edit is refused (PERM).

usage: test_converge.py --server PATH/vtl-server --gen DIR [--seed N]
  DIR holds vtl_pb2.py generated from proto/vtl.proto (protoc --python_out).
Exit status 0 on success; the server must also stop cleanly (status 0).
"""
import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vtl_py_client as V  # noqa: E402

DIRECTORS = 4
BATCHES = 45          # per director; under the burst of 50, never rate limited
WAIT = 30.0


def start_server(binary, data):
    out = subprocess.run([binary, "room", "create", "film", "--data", data],
                         check=True, capture_output=True, text=True).stdout
    dtok = re.search(r"director token: (\S+)", out).group(1)
    vtok = re.search(r"viewer token:\s+(\S+)", out).group(1)
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data", data],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"ws://127\.0\.0\.1:(\d+)/ws", line)
    if not m:
        proc.kill()
        raise RuntimeError("vtl-server did not start: %r" % line)
    return proc, int(m.group(1)), dtok, vtok


class Editor:
    """Random edits from what this client's replica shows (often stale:
    the others edit concurrently, so some batches fail on the server)."""

    def __init__(self, client, rng):
        self.c, self.r = client, rng

    def pick(self, kind, pred=None):
        ids = self.c.replica.ids(kind, pred)
        return self.r.choice(ids) if ids else None

    def valid_op(self):
        c, r = self.c, self.r
        roll = r.random()
        if roll < 0.10:
            return V.op_create(V.TRACK, c.mint(), name="t%d" % r.randrange(99),
                               target=r.choice([V.TARGET_PROMPT, 0, 1, 6, 7]),
                               order=r.randrange(-5, 5))
        if roll < 0.30:
            t = self.pick(V.TRACK, lambda e: e[3] != V.TARGET_PROMPT)
            if t:
                kw = dict(track=t, frame=r.randrange(0, 100000),
                          value=r.uniform(-10, 10), interp=r.randrange(6))
                if r.random() < 0.3:
                    kw["out_dt"] = 3  # an int for a REAL field
                return V.op_create(V.KEYFRAME, c.mint(), **kw)
        if roll < 0.40:
            t = self.pick(V.TRACK, lambda e: e[3] == V.TARGET_PROMPT)
            if t:
                s = r.randrange(0, 500)
                return V.op_create(V.PROMPT_CLIP, c.mint(), track=t, start=s,
                                   end=s + r.randrange(1, 60),
                                   text="a cat, %d" % r.randrange(1000),
                                   weight=r.uniform(0, 2))
        if roll < 0.48:
            return V.op_create(V.ASSET, c.mint(), name="img",
                               kind=r.randrange(3), mime="image/png",
                               sha256="%064x" % r.getrandbits(256),
                               size=r.randrange(1 << 20))
        if roll < 0.56:
            a = self.pick(V.ASSET, lambda e: e[3] == 0)
            kw = dict(start=r.randrange(0, 1000), name="shot")
            if a and r.random() < 0.7:
                kw.update(source=V.SOURCE_IMAGE, asset=a, strength=0.5)
            return V.op_create(V.SHOT, c.mint(), **kw)
        if roll < 0.64:
            return V.op_create(V.MARKER, c.mint(), frame=r.randrange(1000),
                               label="m", note="ü ✓")
        if roll < 0.80:  # sets, with the coercions the protocol allows
            k = r.randrange(5)
            if k == 0:
                return V.op_set(V.TIMELINE, 1, "name", "film %d" % r.randrange(99))
            if k == 1:
                return V.op_set(V.TIMELINE, 1, "fps", r.choice([12, 24.0, 30]))
            if k == 2:
                return V.op_set(V.TIMELINE, 1, "steps", float(r.randrange(1, 50)))
            kf = self.pick(V.KEYFRAME)
            if kf and k == 3:
                return V.op_set(V.KEYFRAME, kf, "value", r.uniform(-1, 1))
            t = self.pick(V.TRACK)
            if t:
                return V.op_set(V.TRACK, t, "mute", r.random() < 0.5)
        if roll < 0.92:  # deletes, with their cascades
            kind = r.choice([V.TRACK, V.ASSET, V.MARKER, V.KEYFRAME, V.SHOT])
            i = self.pick(kind)
            if i:
                return V.op_delete(kind, i)
        return V.op_create(V.MARKER, c.mint(), frame=r.randrange(1000))

    def invalid_op(self):
        c, r = self.c, self.r
        k = r.randrange(6)
        if k == 0:
            return V.op_delete(V.MARKER, 4242424242)                 # NOENT
        if k == 1:
            return V.op_set(V.TIMELINE, 1, "fps", 1000.0)            # RANGE
        if k == 2:
            return V.op_set(V.TIMELINE, 1, "width", "wide")          # TYPE
        if k == 3:
            return V.op_create(V.MARKER, 0, frame=1)                 # RANGE (id 0)
        if k == 4:
            t = self.pick(V.TRACK)
            if t:
                return V.op_set(V.TRACK, t, "target", 3)             # INVAL (fixed)
        return V.op_create(V.KEYFRAME, c.mint(), track=4242424242)   # REF

    def batch(self):
        ops = [self.valid_op() for _ in range(self.r.randrange(1, 5))]
        bad = self.r.random() < 0.2
        if bad:
            ops.insert(self.r.randrange(len(ops) + 1), self.invalid_op())
        return ops, bad


async def director(client, rng, sent):
    ed = Editor(client, rng)
    for _ in range(BATCHES):
        ops, bad = ed.batch()
        sent.append((await client.send_batch(ops), bad))
        await asyncio.sleep(rng.uniform(0.0, 0.03))


async def run(port, dtok, vtok, seed):
    url = "ws://127.0.0.1:%d/ws" % port
    rng = random.Random(seed)
    dirs = [V.Client(url, "film", dtok, "py-director-%d" % i)
            for i in range(DIRECTORS)]
    viewer = V.Client(url, "film", vtok, "py-viewer")
    for c in dirs + [viewer]:
        await c.connect()
        await c.wait_synced()
    ids = {c.welcome.id_base for c in dirs + [viewer]}
    assert len(ids) == DIRECTORS + 1, "id bases must differ"

    # a viewer may not edit
    denied = await viewer.send_batch([V.op_create(V.MARKER, viewer.mint())])
    await viewer.wait(lambda: denied in viewer.errors, WAIT)
    assert viewer.errors[denied].code == V.pb.Error.CODE_PERM

    sent = {c: [] for c in dirs}
    work = [asyncio.ensure_future(director(c, random.Random(rng.random()),
                                           sent[c])) for c in dirs]
    # half-way, the viewer drops out; it comes back below with last_seq
    await asyncio.sleep(0.4)
    await viewer.close()
    dropped_at = viewer.seq
    await asyncio.gather(*work)

    for c in dirs:
        await c.wait(lambda c=c: all(b in c.acks or b in c.errors
                                     for b, _ in sent[c]), WAIT)
    last = max([s for c in dirs for s in c.acks.values()] + [0])
    for c in dirs:
        await c.wait(lambda c=c: c.seq >= last, WAIT)

    # the viewer comes back with its replica: exactly the missed Ops
    back = V.Client(url, "film", vtok, "py-viewer-again")
    back.replica, back.seq = viewer.replica, viewer.seq
    await back.connect(last_seq=dropped_at)
    await back.wait(lambda: back.welcome is not None and back.seq >= last, WAIT)
    assert back.welcome.seq == last, (back.welcome.seq, last)
    assert back.nsnapshots == 0, "a short absence is caught up with Ops"

    late = V.Client(url, "film", vtok, "py-late")
    await late.connect()
    await late.wait_synced()
    assert late.seq == last, (late.seq, last)

    acked = sum(len(c.acks) for c in dirs)
    rejected = sum(len(c.errors) for c in dirs)
    print("seq %d: %d batches acked, %d rejected, %d entities, %d cascaded "
          "deletes/clears" % (last, acked, rejected, len(late.replica.ents),
                              dirs[0].replica.cascaded))
    ok = True
    for c in dirs + [back, late]:
        if c.problems:
            print("%s diverged: %s" % (c.name, c.problems[:3]))
            ok = False
        if c.replica.ents != late.replica.ents:
            diff = [k for k in set(c.replica.ents) | set(late.replica.ents)
                    if c.replica.ents.get(k) != late.replica.ents.get(k)]
            print("%s differs from the snapshot at %s" % (c.name, diff[:5]))
            for k in diff[:2]:
                print("  %r: %r vs %r" % (k, c.replica.ents.get(k),
                                          late.replica.ents.get(k)))
            ok = False
    for c in dirs:
        for b, bad in sent[c]:
            if bad and b in c.acks:
                print("%s: a batch with an invalid op was applied" % c.name)
                ok = False
        for b, e in c.errors.items():
            if e.fatal or e.code == V.pb.Error.CODE_RATE_LIMITED:
                print("%s: unexpected error %s" % (c.name, e))
                ok = False
        if c.other_errors:
            print("%s: errors not about a batch: %s" % (c.name, c.other_errors))
            ok = False
    assert acked == last, "every seq is one acked batch (%d vs %d)" % (acked, last)
    assert rejected > 0 and acked > DIRECTORS * BATCHES // 2, (acked, rejected)
    assert len(back.replica.ents) == len(late.replica.ents)
    for c in dirs + [back, late]:
        await c.close()
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    V.load_proto(a.gen)
    data = tempfile.mkdtemp(prefix="vtl-py-")
    proc = None
    try:
        proc, port, dtok, vtok = start_server(a.server, data)
        ok = asyncio.get_event_loop().run_until_complete(
            run(port, dtok, vtok, a.seed))
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        proc = None
        if rc != 0:
            print("vtl-server exited with status %d" % rc)
            ok = False
    finally:
        if proc:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    print("ok python_converge" if ok else "not ok python_converge")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
