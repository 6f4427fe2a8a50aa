#!/usr/bin/env node
// load.js — the Yjs peer of `sync_bench edits` (bench/sync.c): the same
// load against a y-websocket server (@y/websocket-server, the y-websocket
// 1.5.4 server; bench/README.md "Sync").
//
//   node load.js [-c 8,32,64] [-r 10] [-t 5] [-w 4] [-k 4]
//                [--rate-only|--flat-only] [--no-persist] [--json]
//
// For each client count N: a fresh server process (node, YPERSISTENCE = a
// temporary y-leveldb directory unless --no-persist) and N clients in this
// process, each a Y.Doc speaking the y-websocket sync protocol over `ws`
// to room "bench". Client i owns the Y.Map "track<i>" with k keys (its
// keyframes) and edits them in turn: one map.set per transaction, one
// update message per edit.
//   rate  every client makes r edits per second (phases staggered);
//   flat  every client keeps w edits not yet received by every other
//         client and makes the next one as soon as one lands everywhere.
// Measured over t seconds: edits delivered to the other clients per second
// (per receiver), latency from the edit to its receipt (the Y.Map observe
// event) at every other client (p50, p99, max), server CPU (utime+stime of
// /proc/PID/stat), this process's CPU. y-websocket has no acknowledgement:
// nothing tells a client its edit is stored (see README "Durability").
'use strict'
const { spawn } = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const WebSocket = require('ws')
const Y = require('yjs')
const syncProtocol = require('y-protocols/sync')
const encoding = require('lib0/encoding')
const decoding = require('lib0/decoding')

const args = process.argv.slice(2)
const opt = { c: [8, 32, 64], r: 10, t: 5, w: 4, k: 4, rate: true, flat: true, persist: true, json: false }
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '--json') opt.json = true
  else if (a === '--rate-only') opt.flat = false
  else if (a === '--flat-only') opt.rate = false
  else if (a === '--no-persist') opt.persist = false
  else if (a === '-c') opt.c = args[++i].split(',').map(Number)
  else if (['-r', '-t', '-w', '-k'].includes(a)) opt[a[1]] = Number(args[++i])
  else { console.error('usage: node load.js [-c 8,32,64] [-r 10] [-t 5] [-w 4] [-k 4] [--rate-only|--flat-only] [--no-persist] [--json]'); process.exit(2) }
}

const SERVER = path.join(__dirname, 'node_modules/@y/websocket-server/src/server.js')
const CLK_TCK = 100 // sysconf(_SC_CLK_TCK) on Linux
const now = () => performance.now() // ms

function procCpu (pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / CLK_TCK // utime, stime (fields 14, 15)
}

function freePort () {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
}

async function startServer () {
  const port = await freePort()
  const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port) }
  let dir = null
  if (opt.persist) { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yjs-bench-')); env.YPERSISTENCE = dir }
  const child = spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => { out += d; if (out.includes('running at')) resolve() })
    child.on('exit', (c) => reject(new Error('y-websocket server exited ' + c)))
  })
  return { child, port, dir }
}

async function stopServer (s) {
  const done = new Promise((resolve) => s.child.on('exit', resolve))
  s.child.kill('SIGTERM')
  await done
  if (s.dir) fs.rmSync(s.dir, { recursive: true, force: true })
}

// A y-websocket client: sync step 1 on open, answers sync messages, sends
// every local update; awareness (type 1) is ignored.
function connect (port, room) {
  const doc = new Y.Doc()
  const ws = new WebSocket(`ws://127.0.0.1:${port}/${room}`)
  ws.binaryType = 'arraybuffer'
  const c = { doc, ws, synced: false }
  ws.on('open', () => {
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0)
    syncProtocol.writeSyncStep1(e, doc)
    ws.send(encoding.toUint8Array(e))
  })
  ws.on('message', (data) => {
    const d = decoding.createDecoder(new Uint8Array(data))
    const type = decoding.readVarUint(d)
    if (type !== 0) return
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0)
    const t = syncProtocol.readSyncMessage(d, e, doc, c)
    if (t === syncProtocol.messageYjsSyncStep2) c.synced = true
    if (encoding.length(e) > 1) ws.send(encoding.toUint8Array(e))
  })
  doc.on('update', (update, origin) => {
    if (origin === c || ws.readyState !== 1) return
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0)
    syncProtocol.writeUpdate(e, update)
    ws.send(encoding.toUint8Array(e))
  })
  c.opened = new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject) })
  return c
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function until (pred, ms) {
  const end = now() + ms
  while (!pred()) { if (now() > end) throw new Error('timeout'); await sleep(5) }
}

async function run (n, flat) {
  const srv = await startServer()
  const cl = []
  for (let i = 0; i < n; i++) cl.push(connect(srv.port, 'bench'))
  await Promise.all(cl.map((c) => c.opened))
  await until(() => cl.every((c) => c.synced), 20000)
  // set-up: each client's track with k keys
  cl.forEach((c, i) => {
    c.i = i; c.track = c.doc.getMap('track' + i); c.nsent = 0; c.unseen = 0
    c.sent = []; c.seen = []
    c.doc.transact(() => { for (let j = 0; j < opt.k; j++) c.track.set('k' + j, { f: j * 24, v: 0, c: i, s: -1 }) })
  })
  await until(() => cl.every((c) => cl.every((o) => c.doc.getMap('track' + o.i).size === opt.k)), 20000)

  const lat = []
  let delivered = 0; let tEnd = Infinity; let measuring = false
  const send = (c) => {
    const s = c.nsent++
    c.sent[s] = now(); c.seen[s] = 0; c.unseen++
    c.track.set('k' + (s % opt.k), { f: (s % opt.k) * 24, v: (s % 1000) * 0.001, c: c.i, s })
  }
  // receipts: client j observes every other client's track
  cl.forEach((c) => {
    cl.forEach((o) => {
      if (o === c) return
      c.doc.getMap('track' + o.i).observe((ev) => {
        const t = now()
        for (const key of ev.keysChanged) {
          const v = ev.target.get(key)
          if (!v || v.s < 0 || o.sent[v.s] === undefined) continue
          lat.push(t - o.sent[v.s])
          if (t <= tEnd) delivered++
          if (++o.seen[v.s] === n - 1) {
            o.unseen--
            if (flat && measuring && t < tEnd) while (o.unseen < opt.w) send(o)
          }
        }
      })
    })
  })
  const t0 = now(); tEnd = t0 + opt.t * 1000; measuring = true
  const cpu0 = procCpu(srv.child.pid); const self0 = process.cpuUsage()
  cl.forEach((c, i) => { c.next = t0 + i * 1000 / (opt.r * n) })
  await new Promise((resolve) => {
    const tick = () => {
      const t = now()
      if (t >= tEnd) return resolve()
      for (const c of cl) {
        if (flat) { while (c.unseen < opt.w) send(c) } else { while (c.next <= t) { send(c); c.next += 1000 / opt.r } }
      }
      setTimeout(tick, 1)
    }
    tick()
  })
  const cpu1 = procCpu(srv.child.pid); const self1 = process.cpuUsage(self0)
  measuring = false
  try { await until(() => cl.every((c) => c.unseen === 0), 10000) } catch (e) {}
  const sent = cl.reduce((a, c) => a + c.nsent, 0)
  const complete = cl.every((c) => c.unseen === 0)
  lat.sort((a, b) => a - b)
  const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] : 0
  const res = {
    sys: 'yjs', mode: flat ? 'flat' : 'rate', n, rate: flat ? 0 : opt.r, window: flat ? opt.w : 0, secs: opt.t,
    sent, applied_per_s: null, delivered_per_s: delivered / opt.t / (n - 1),
    p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat.length ? lat[lat.length - 1] : 0, ack_p50_ms: null,
    server_cpu: (cpu1 - cpu0) / opt.t, client_cpu: (self1.user + self1.system) / 1e6 / opt.t,
    persist: opt.persist, ok: complete && lat.length === sent * (n - 1)
  }
  for (const c of cl) c.ws.terminate()
  await stopServer(srv)
  return res
}

function print (r) {
  if (opt.json) { console.log(JSON.stringify(r)); return }
  const load = r.mode === 'rate' ? `${r.n} x ${r.rate}/s` : `${r.n} flat (w=${r.window})`
  const f = (x, d) => x.toFixed(d).padStart(8)
  console.log(`${load.padEnd(18)} ${f(r.delivered_per_s, 0)} ${f(r.p50_ms, 2)} ${f(r.p99_ms, 2)} ${f(r.max_ms, 2)} ${f(r.server_cpu, 2)} ${f(r.client_cpu, 2)}${r.ok ? '' : ' (NOT OK)'}`)
}

async function main () {
  if (!opt.json) {
    console.log(`yjs load.js: y-websocket server${opt.persist ? ' with y-leveldb (YPERSISTENCE)' : ''}, ${opt.t} s per run, ${opt.k} keys per client, one map.set per edit`)
    console.log(`${'load'.padEnd(18)} ${'deliv/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'srvCPU'.padStart(8)} ${'cliCPU'.padStart(8)}`)
  }
  for (const flat of [false, true]) {
    if ((!flat && !opt.rate) || (flat && !opt.flat)) continue
    for (const n of opt.c) print(await run(n, flat))
  }
}
main().catch((e) => { console.error(e); process.exit(1) })
