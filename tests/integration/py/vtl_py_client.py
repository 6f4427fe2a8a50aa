"""vtl_py_client — an independent vtl.v1 client in Python (docs/protocol.md).

It shares nothing with the C code but proto/vtl.proto: the messages are
generated from it by `protoc --python_out` into the build tree (never
committed), and the document model is rebuilt here from the protocol's own
rules, so that a test where C server and Python clients agree proves the
protocol from two implementations.

The replica is a dict keyed by (EntityKind, id) whose values map field
numbers (2..) to Python values. Ops apply as the protocol says:

  Create  every field takes its schema default (DEFAULTS below, from the
          comments of vtl.proto; proto zero otherwise), then the listed ones
  Delete  a Track takes its Keyframes and PromptClips with it; an Asset is
          cleared from the Shots using it (source IMAGE -> NOISE, asset 0)
  Set     one field (last writer wins, in seq order)

Values are coerced to the field's type: a REAL field may arrive as
int_value, an INT field as an integral real_value.
"""
import asyncio
import importlib
import sys

TIMELINE, TRACK, KEYFRAME, PROMPT_CLIP, SHOT, MARKER, ASSET = range(7)
# EntityKind -> (message name, Document field)
KINDS = {
    TIMELINE: ("Timeline", "timeline"),
    TRACK: ("Track", "tracks"),
    KEYFRAME: ("Keyframe", "keyframes"),
    PROMPT_CLIP: ("PromptClip", "prompt_clips"),
    SHOT: ("Shot", "shots"),
    MARKER: ("Marker", "markers"),
    ASSET: ("Asset", "assets"),
}
# Schema defaults that differ from the proto zero (vtl.proto comments).
DEFAULTS = {
    TIMELINE: {3: 12.0, 4: 512, 5: 512, 6: 120, 10: 20, 11: 7.5, 12: 0.35,
               14: 1, 15: 1},
    TRACK: {7: 0x8899AA},
    KEYFRAME: {5: 1},
    PROMPT_CLIP: {4: 1, 7: 1.0},
    SHOT: {6: -1, 7: 0.75},
    MARKER: {},
    ASSET: {},
}
TARGET_PROMPT = 20
SOURCE_NOISE, SOURCE_IMAGE = 0, 2

pb = None  # the generated module (load_proto)


def load_proto(gen_dir):
    """Imports vtl_pb2 generated from proto/vtl.proto into gen_dir."""
    global pb
    sys.path.insert(0, gen_dir)
    pb = importlib.import_module("vtl_pb2")
    return pb


def _fields(kind):
    """{number: FieldDescriptor} of an entity message, id (1) excluded."""
    d = pb.DESCRIPTOR.message_types_by_name[KINDS[kind][0]]
    return {f.number: f for f in d.fields if f.number != 1}


def _coerce(fd, v):
    FD = fd.__class__
    if fd.type == FD.TYPE_DOUBLE:
        return float(v)
    if fd.type == FD.TYPE_BOOL:
        return bool(v)
    if fd.type == FD.TYPE_STRING:
        return str(v)
    return int(v)  # int64, uint64 (REF), enum


def _zero(fd):
    FD = fd.__class__
    return {FD.TYPE_DOUBLE: 0.0, FD.TYPE_BOOL: False,
            FD.TYPE_STRING: ""}.get(fd.type, 0)


def value_of(v):
    """The Python value of a vtl.v1.Value."""
    which = v.WhichOneof("kind")
    if which is None:
        raise ValueError("a Value with no kind")
    return getattr(v, which)


class Replica:
    """A document: {(kind, id): {field number: value}}."""

    def __init__(self):
        self.ents = {}
        self.cascaded = 0  # entities deleted or cleared by a cascade

    @classmethod
    def from_document(cls, doc):
        r = cls()
        for kind, (_, attr) in KINDS.items():
            fields = _fields(kind)
            msgs = [doc.timeline] if kind == TIMELINE else getattr(doc, attr)
            for m in msgs:
                r.ents[(kind, m.id)] = {n: _coerce(fd, getattr(m, fd.name))
                                        for n, fd in fields.items()}
        return r

    def ids(self, kind, pred=None):
        return [i for (k, i), e in self.ents.items()
                if k == kind and (pred is None or pred(e))]

    def get(self, kind, id_):
        return self.ents.get((kind, id_))

    def apply(self, ops):
        """Applies the ops of an Ops message (already accepted by the
        server: any failure here is a divergence, raised)."""
        for op in ops:
            which = op.WhichOneof("op")
            if which == "create":
                c = op.create
                fields = _fields(c.kind)
                ent = {n: DEFAULTS[c.kind].get(n, _zero(fd))
                       for n, fd in fields.items()}
                ent = {n: _coerce(fields[n], v) for n, v in ent.items()}
                for fv in c.fields:
                    ent[fv.field] = _coerce(fields[fv.field], value_of(fv.value))
                key = (c.kind, c.id)
                if key in self.ents:
                    raise ValueError("create of an existing %r" % (key,))
                self.ents[key] = ent
            elif which == "delete":
                self._delete(op.delete.kind, op.delete.id)
            elif which == "set":
                s = op.set
                ent = self.ents[(s.kind, s.id)]
                fd = _fields(s.kind)[s.field.field]
                ent[s.field.field] = _coerce(fd, value_of(s.field.value))
            else:
                raise ValueError("an Op with nothing set")

    def _delete(self, kind, id_):
        if (kind, id_) not in self.ents:
            raise ValueError("delete of a missing %r" % ((kind, id_),))
        if kind == TRACK:  # its keyframes and prompt clips (field 2: track)
            for k in (KEYFRAME, PROMPT_CLIP):
                for cid in self.ids(k, lambda e: e[2] == id_):
                    del self.ents[(k, cid)]
                    self.cascaded += 1
        elif kind == ASSET:  # shots using it: source NOISE, asset 0
            for sid in self.ids(SHOT, lambda e: e[5] == id_):
                shot = self.ents[(SHOT, sid)]
                if shot[4] == SOURCE_IMAGE:
                    shot[4] = SOURCE_NOISE
                shot[5] = 0
                self.cascaded += 1
        del self.ents[(kind, id_)]


class Client:
    """One websocket session. Keeps the replica (Snapshot, then Ops in seq
    order), the acks and errors of its batches, and every problem seen."""

    def __init__(self, url, room, token, name="py"):
        self.url, self.room, self.token, self.name = url, room, token, name
        self.ws = None
        self.task = None
        self.welcome = None
        self.replica = None
        self.seq = 0
        self.nsnapshots = 0
        self.counter = 0
        self.acks = {}       # batch_id -> seq (ours, from Ops)
        self.errors = {}     # batch_id -> Error
        self.other_errors = []
        self.problems = []   # divergences: must stay empty
        self.closed = False
        self.changed = asyncio.Event()

    async def connect(self, last_seq=0, origin=None):
        import websockets
        self.ws = await websockets.connect(
            self.url, subprotocols=["vtl.v1"], max_size=None,
            ping_interval=None, origin=origin)
        env = pb.Envelope()
        h = env.hello
        h.room, h.token, h.display_name = self.room, self.token, self.name
        h.client_kind = pb.CLIENT_KIND_TEST
        h.last_seq = last_seq
        h.protocol_version = 1
        await self.ws.send(env.SerializeToString())
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for data in self.ws:
                if isinstance(data, str):
                    self.problems.append("a text message from the server")
                    continue
                env = pb.Envelope()
                env.ParseFromString(data)
                self._on(env)
                self.changed.set()
        except Exception as e:  # closed: recorded, the test decides
            if not isinstance(e, asyncio.CancelledError):
                self.other_errors.append(("closed", repr(e)))
        finally:
            self.closed = True
            self.changed.set()

    def _on(self, env):
        which = env.WhichOneof("msg")
        if which == "welcome":
            self.welcome = env.welcome
            self.counter = 0
        elif which == "snapshot":
            self.replica = Replica.from_document(env.snapshot.document)
            self.seq = env.snapshot.seq
            self.nsnapshots += 1
        elif which == "ops":
            o = env.ops
            if self.welcome and o.session_id == self.welcome.session_id:
                self.acks[o.batch_id] = o.seq
            if len(o.ops) == 0:
                return  # a duplicate ack
            if self.replica is None:
                self.problems.append("Ops %d before any snapshot" % o.seq)
                return
            if o.seq <= self.seq:
                return
            if o.seq != self.seq + 1:
                self.problems.append("seq gap: %d after %d" % (o.seq, self.seq))
                return
            try:
                self.replica.apply(o.ops)
            except Exception as e:
                self.problems.append("Ops %d does not apply: %r" % (o.seq, e))
            self.seq = o.seq
        elif which == "error":
            e = env.error
            if e.batch_id:
                self.errors[e.batch_id] = e
            else:
                self.other_errors.append((e.code, e.message))

    def mint(self):
        self.counter += 1
        return self.welcome.id_base | self.counter

    async def send_batch(self, ops):
        """Sends ops (a list of vtl.v1.Op) as one OpBatch: its batch id."""
        env = pb.Envelope()
        b = env.op_batch
        b.batch_id = self.mint()
        b.base_seq = self.seq
        b.ops.extend(ops)
        await self.ws.send(env.SerializeToString())
        return b.batch_id

    async def wait(self, pred, timeout=20.0):
        loop = asyncio.get_event_loop()
        end = loop.time() + timeout
        while not pred():
            left = end - loop.time()
            if left <= 0:
                raise TimeoutError("timed out waiting")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def wait_synced(self, timeout=20.0):
        await self.wait(lambda: self.closed or (
            self.welcome is not None and self.replica is not None
            and self.seq >= self.welcome.seq), timeout)
        if self.closed:
            raise RuntimeError("closed before catch-up: %r" % self.other_errors)

    async def close(self):
        if self.ws:
            await self.ws.close()
        if self.task:
            await self.task


# ---- op builders --------------------------------------------------------------

def _value(v):
    val = pb.Value()
    if isinstance(v, bool):
        val.bool_value = v
    elif isinstance(v, int):
        val.int_value = v
    elif isinstance(v, float):
        val.real_value = v
    else:
        val.string_value = v
    return val


def op_create(kind, id_, /, **fields):
    """fields: name=value by the entity message's field names."""
    op = pb.Op()
    op.create.kind = kind
    op.create.id = id_
    d = pb.DESCRIPTOR.message_types_by_name[KINDS[kind][0]]
    for name, v in fields.items():
        fv = op.create.fields.add()
        fv.field = d.fields_by_name[name].number
        fv.value.CopyFrom(_value(v))
    return op


def op_set(kind, id_, name, v):
    op = pb.Op()
    op.set.kind = kind
    op.set.id = id_
    d = pb.DESCRIPTOR.message_types_by_name[KINDS[kind][0]]
    op.set.field.field = d.fields_by_name[name].number
    op.set.field.value.CopyFrom(_value(v))
    return op


def op_delete(kind, id_):
    op = pb.Op()
    op.delete.kind = kind
    op.delete.id = id_
    return op
