'use strict';
// Our side of the gateway benchmark (bench/gateway_bench.cpp runs it): the peer's bench.js
// (bench/peers/gateway/bench.js: socket.io 4 + @socket.io/redis-adapter) adapted to our
// WebSocket gateway, with the same scenarios, modes, knobs, histogram and /proc measurements,
// so the figures compare line for line. What differs:
//   * the server under test is our gateway: for each (scenario, mode) a FRESH child process
//     `SERVER_CMD --redis-port REDIS_PORT` (the benchmark binary in its --serve mode: only the
//     gateway, one akv::client, on its own io_context) whose RSS and CPU are read from /proc
//     by pid, as the peer's server.js. IPC over its stdin/stdout, one JSON object per line:
//     it prints {type:'ready', port, versions} once listening and answers {cmd:'stats', id}
//     with {type:'stats', id, conns, ...its counters}; it exits when its stdin closes.
//   * the publisher PUBLISHes straight to Redis with ioredis: `PUBLISH ch<k> <json>` where the
//     JSON is {r: run, i: seq, t: send time} (the emitter's payload, without socket.io's
//     framing); the gateway delivers it as the `data` of {"channel":"ch<k>","data":{...}}.
//   * the clients (akv_clients.js) are `ws` WebSockets speaking our protocol (connect, then
//     subscribe to ch<j % channels>, connected once the subscribe is acknowledged).
//   * before publishing we wait until Redis shows a subscriber on every channel (PUBSUB NUMSUB),
//     as the peer waits for the adapter's PSUBSCRIBE (PUBSUB NUMPAT).
//   * no GC to run before the RSS readings (C++); server_heap_connected_mb is null.
//   * extra fields: the gateway's own counters (messages out, frames out, drops, slow-consumer
//     disconnects), frames received by the clients and the close codes they saw.
// Prints one JSON object per line per (scenario, mode) on stdout; diagnostics on stderr.
//
// Scenario k = CLIENTS[k] clients over CHANNELS[k] channels (client j subscribes to channel
// j % channels; message i goes to channel i % channels). Each (scenario, mode) is one unit
// with a FRESH server + client process(es), and one output line:
//   fixed: offered RATE msgs/s (total over all channels, open loop) for SECONDS
//   sat  : publish as fast as possible for SAT_SECONDS, keeping at most BACKLOG deliveries
//          outstanding (published*fanout - received, as reported by the clients every 10 ms;
//          one message always allowed), so sat latency ~ BACKLOG / throughput by construction
// then wait up to DRAIN_S for stragglers; lost = expected - received within that window;
// late_after_drain = of those, how many still arrived within a further QUIET_S.
//   conn : (mode `conn`, scenarios c<N>_ch<CONN_CHANNELS>_conn for each N of CONN_CLIENTS)
//          N idle clients (client j subscribed to ch<j % channels>), at most CONN_PER_PROC per
//          client process; the server's RSS before and once all are connected (marginal KB per
//          connection, connections per GB), held HOLD_S, then ONE message to every channel:
//          how many clients got it (broadcast_receivers, within BCAST_WAIT_S) and how many
//          disconnected since they were all connected (client_disconnects).
// Per line: as the peer's (see its header).
//
// Env knobs (defaults in brackets), the peer's:
//   REDIS_PORT [7230]        CLIENTS [100,1000,1000]   CHANNELS [1,1,100]
//   RATE [200] msgs/s        SECONDS [10]              SAT_SECONDS [5]
//   BACKLOG [20000]          DRAIN_S [5]   QUIET_S [5] MODES [fixed,sat]
//   DEADLINE_S [60] hard cap per (scenario, mode) incl. connect; on expiry the
//     children are SIGKILLed and the line is {error, truncated: true}
//   CLIENT_PROCS [1]         CONNECT_CONC [50]         CONNECT_TIMEOUT_S [30]
//   PAYLOAD [0] extra bytes of padding per message    SCENARIOS [.*] regex on names
//   MODES also takes `conn` (default fixed,sat,conn):  CONN_CLIENTS [5000,18000]
//   CONN_CHANNELS [100]  CONN_PER_PROC [4000] clients per client process (each under the
//   descriptor limit)    HOLD_S [35]   BCAST_WAIT_S [10]   CONN_DEADLINE_S [240] per unit
// and ours: SERVER_CMD (required): the gateway server's command line as a JSON array.
// Modules (ioredis, ws) come from the peer's npm install (NODE_PATH=<BENCH_DIR>/node_modules).
const { fork, execSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { performance } = require('perf_hooks');
const { spawn: spawnProcess } = require('child_process');
const EventEmitter = require('events');
const readline = require('readline');
const Redis = require('ioredis');

const HOST = '127.0.0.1';
const PORT = +(process.env.REDIS_PORT || 7230);
const list = (v, d) => (v || d).split(',').filter(Boolean).map(Number);
const CLIENTS = list(process.env.CLIENTS, '100,1000,1000');
const CHANNELS = list(process.env.CHANNELS, '1,1,100');
const RATE = +(process.env.RATE || 200);
const SECONDS = +(process.env.SECONDS || 10);
const SAT_SECONDS = +(process.env.SAT_SECONDS || 5);
const BACKLOG = +(process.env.BACKLOG || 20000);
const DRAIN_S = +(process.env.DRAIN_S || 5);
const MODES = (process.env.MODES || 'fixed,sat,conn').split(',').filter(Boolean);
const CONN_CLIENTS = list(process.env.CONN_CLIENTS, '5000,18000');
const CONN_CHANNELS = Math.max(1, +(process.env.CONN_CHANNELS || 100));
const CONN_PER_PROC = Math.max(1, +(process.env.CONN_PER_PROC || 4000));
const HOLD_S = +(process.env.HOLD_S || 35);
const BCAST_WAIT_S = +(process.env.BCAST_WAIT_S || 10);
const CONN_DEADLINE_S = +(process.env.CONN_DEADLINE_S || 240);
const DEADLINE_S = +(process.env.DEADLINE_S || 60);
const CLIENT_PROCS = Math.max(1, +(process.env.CLIENT_PROCS || 1));
const PAYLOAD = +(process.env.PAYLOAD || 0);
const SERVER_CMD = JSON.parse(process.env.SERVER_CMD || 'null');
if (!Array.isArray(SERVER_CMD) || !SERVER_CMD.length) { console.error('akv_bench.js: SERVER_CMD (JSON array) is required'); process.exit(2); }
const PEER = 'akv-gateway';
const SCEN_RE = new RegExp(process.env.SCENARIOS || '.*');
const QUIET_S = +(process.env.QUIET_S || 5);
const CONNECT_TIMEOUT_S = +(process.env.CONNECT_TIMEOUT_S || 30);
const PROGRESS_MS = +(process.env.PROGRESS_MS || 10);
const MAX_PENDING_PUBLISH = 1000;  // un-acked PUBLISH commands (Redis-side bound)

const BASE = Number(process.hrtime.bigint()) / 1e6 - performance.now();
const nowMs = () => performance.now() + BASE;   // CLOCK_MONOTONIC ms, as in clients.js
const sleep = ms => new Promise(r => setTimeout(r, ms));
const log = (...a) => console.error('[akv-gw-bench]', ...a);
const CLK_TCK = (() => { try { return +execSync('getconf CLK_TCK').toString().trim() || 100; } catch { return 100; } })();
const MB = 1024 * 1024;

const admin = new Redis({ host: HOST, port: PORT, maxRetriesPerRequest: null });
const pubRedis = new Redis({ host: HOST, port: PORT, maxRetriesPerRequest: null });
let pending = 0, pubErrors = 0;
// PUBLISH counting in-flight commands, as the peer's wrapped emitter
function publish(ch, msg) {
  pending++;
  return pubRedis.publish(ch, msg).then(() => { pending--; }, e => { pending--; pubErrors++; log('publish', e.message); });
}

// ---------------------------------------------------------------- /proc
function procMem(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const g = k => +((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [0, 0])[1]) * 1024;
    return { rss: g('VmRSS'), hwm: g('VmHWM') };
  } catch { return { rss: 0, hwm: 0 }; }
}
function procCpu(pid) {   // seconds of user+sys
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (+f[11] + +f[12]) / CLK_TCK;
  } catch { return 0; }
}
function hostBusy() {   // seconds of non-idle CPU on the whole host (all cores)
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / CLK_TCK;
  } catch { return 0; }
}
async function redisCpu() {
  const s = await admin.info('cpu');
  const g = re => +(s.match(re) || [0, 0])[1];
  return g(/used_cpu_user:([\d.]+)/) + g(/used_cpu_sys:([\d.]+)/);
}
const mb = b => +(b / MB).toFixed(1);
function procFds(pid) {   // open descriptors (the gateway must stay under RLIMIT_NOFILE)
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return null; }
}

// ---------------------------------------------------------------- children
function waitFor(child, type, ms, what) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => { cleanup(); rej(new Error(`timeout waiting for ${what || type}`)); }, ms);
    const onMsg = m => { if (m && m.type === type) { cleanup(); res(m); } };
    const onExit = code => { cleanup(); rej(new Error(`${what || type}: child exited (${code})`)); };
    const cleanup = () => { clearTimeout(t); child.off('message', onMsg); child.off('exit', onExit); };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}
let statsId = 0;
async function serverStats(server) {
  const id = ++statsId;
  const p = new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('server stats timeout')), 10000);
    const on = m => { if (m && m.type === 'stats' && m.id === id) { clearTimeout(t); server.off('message', on); res(m); } };
    server.on('message', on);
  });
  server.send({ cmd: 'stats', id });
  return p;
}
const live = new Set();
function spawn(file, env, execArgv = []) {
  const c = fork(path.join(__dirname, file), [], {
    env: Object.assign({}, process.env, env), execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  live.add(c);
  c.on('error', e => log(`${file}: ${e.message}`));   // e.g. IPC closed after a deadline kill
  c.once('exit', () => live.delete(c));
  return c;
}
// The gateway server: a child process speaking JSON lines on stdin/stdout, wrapped to look
// like a forked node child (message/exit events, send, kill, pid, exitCode).
class ServerProc extends EventEmitter {
  constructor(cmd) {
    super();
    this.child = spawnProcess(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    this.pid = this.child.pid;
    this.child.on('error', e => log(`server: ${e.message}`));
    this.child.stdin.on('error', () => {});
    readline.createInterface({ input: this.child.stdout }).on('line', line => {
      let m;
      try { m = JSON.parse(line); } catch { log(`server: ${line}`); return; }
      this.emit('message', m);
    });
    this.child.once('exit', (code, sig) => this.emit('exit', code === null ? sig : code));
  }
  get exitCode() { return this.child.exitCode !== null ? this.child.exitCode : this.child.signalCode; }
  send(m) { try { this.child.stdin.write(JSON.stringify(m) + '\n'); } catch {} }
  kill(sig) { return this.child.kill(sig); }
}
function spawnServer() {
  const s = new ServerProc(SERVER_CMD.concat(['--redis-port', String(PORT)]));
  live.add(s);
  s.once('exit', () => live.delete(s));
  return s;
}
function killAll(sig = 'SIGKILL') { for (const c of live) { try { c.kill(sig); } catch {} } }

// ---------------------------------------------------------------- histogram
const LOG101 = Math.log(1.01);
function merge(reports) {
  const h = new Map();
  let n = 0;
  for (const r of reports) for (const [b, c] of r.hist) { h.set(b, (h.get(b) || 0) + c); n += c; }
  const keys = [...h.keys()].sort((a, b) => a - b);
  const pct = p => {
    if (!n) return null;
    const want = Math.ceil((p / 100) * n);
    let acc = 0;
    for (const k of keys) { acc += h.get(k); if (acc >= want) return +(Math.exp(k * LOG101) / 1000).toFixed(3); }
    return null;
  };
  return { n, pct };
}

// A fresh gateway, ready, its counters read once, and its RSS before any client.
async function startServer() {
  const server = spawnServer();
  const ready = await waitFor(server, 'ready', 15000, 'server ready');
  await serverStats(server);
  return { server, ready, rssBase: procMem(server.pid).rss };
}

// The clients close and exit, then the gateway (SIGKILL if SIGTERM is not enough in 10 s).
async function teardown(procs, server) {
  for (const c of procs) c.send({ cmd: 'close' });
  await Promise.all(procs.map(c => new Promise(r => (c.exitCode !== null ? r() : c.once('exit', r)))));
  server.kill('SIGTERM');
  await new Promise(r => {
    if (server.exitCode !== null) return r();
    const t = setTimeout(() => { log('server did not exit on SIGTERM within 10 s: SIGKILL'); server.kill('SIGKILL'); }, 10000);
    server.once('exit', () => { clearTimeout(t); r(); });
  });
}

// ---------------------------------------------------------------- one unit
// Fresh server + clients per (scenario, mode): an overloaded fixed-rate run
// leaves a backlog in the server's write buffers that would pollute the next run.
let RUN = 0;
async function unit(clients, channels, mode, state) {
  const name = `c${clients}_ch${channels}`;
  const fanout = Array.from({ length: channels }, (_, ch) =>
    Math.floor(clients / channels) + (ch < clients % channels ? 1 : 0));

  const { server, ready, rssBase } = await startServer();

  // ---- clients (separate process(es))
  const url = `ws://${HOST}:${ready.port}/ws`;
  const per = Math.ceil(clients / CLIENT_PROCS);
  const procs = [];
  for (let first = 0; first < clients; first += per) {
    procs.push(spawn('akv_clients.js', {
      URL: url, FIRST: String(first), COUNT: String(Math.min(per, clients - first)),
      CHANNELS: String(channels),
    }));
  }
  const tc = nowMs();
  const conn = await Promise.all(procs.map(c => waitFor(c, 'connected', (CONNECT_TIMEOUT_S + 10) * 1000, 'clients connected')));
  const connectMs = nowMs() - tc;
  const ok = conn.reduce((a, m) => a + m.ok, 0);
  const connErrors = conn.reduce((a, m) => a + m.errors, 0);
  // every channel's Redis subscription must be live before publishing
  const chNames = Array.from({ length: channels }, (_, ch) => 'ch' + ch);
  let subscribed = 0;
  for (let i = 0; i < 500; i++) {
    const r = await admin.call('PUBSUB', 'NUMSUB', ...chNames);
    subscribed = 0;
    for (let k = 1; k < r.length; k += 2) if (+r[k] >= 1) subscribed++;
    if (subscribed === channels) break;
    await sleep(20);
  }
  if (subscribed < channels) log(`${name}_${mode}: only ${subscribed}/${channels} channels subscribed in Redis`);
  await sleep(300);
  const st0 = await serverStats(server);
  const rssConn = procMem(server.pid).rss;
  log(`${name}_${mode}: ${ok}/${clients} connected in ${connectMs.toFixed(0)} ms (${connErrors} errors); server rss ${mb(rssBase)} -> ${mb(rssConn)} MB`);
  if (state.aborted) return null;

  // ---- progress from clients
  const runId = ++RUN;
  let recvTotal = 0, lateTotal = 0;
  const recvBy = new Map(), lateBy = new Map();
  for (const c of procs) {
    c.on('message', m => {
      if (!m || m.type !== 'progress') return;
      if (m.run === runId) { recvTotal += m.recv - (recvBy.get(c) || 0); recvBy.set(c, m.recv); }
      else if (m.run === -1) { lateTotal += m.stale - (lateBy.get(c) || 0); lateBy.set(c, m.stale); }
    });
  }
  await Promise.all(procs.map(c => { const w = waitFor(c, 'started', 5000); c.send({ cmd: 'start', run: runId }); return w; }));

  // ---- publish
  const cpu0 = { srv: procCpu(server.pid), cli: procs.reduce((a, c) => a + procCpu(c.pid), 0), redis: await redisCpu(), pub: process.cpuUsage(), host: hostBusy() };
  let rssPeak = procMem(server.pid).rss;
  const rssTimer = setInterval(() => { rssPeak = Math.max(rssPeak, procMem(server.pid).rss); }, 100);
  const pad = PAYLOAD > 0 ? 'x'.repeat(PAYLOAD) : undefined;
  let sent = 0, expected = 0, waits = 0;
  const publishOne = () => {
    if (state.aborted) { sent++; return; }   // deadline hit: stop publishing
    const ch = sent % channels;
    const d = { r: runId, i: sent, t: nowMs() };
    if (pad) d.p = pad;
    publish('ch' + ch, JSON.stringify(d));
    sent++;
    expected += fanout[ch];
  };
  const t0 = nowMs();
  const dur = (mode === 'fixed' ? SECONDS : SAT_SECONDS) * 1000;
  if (mode === 'fixed') {
    const total = Math.round(RATE * SECONDS);
    await new Promise(res => {
      const iv = setInterval(() => {
        // schedule by elapsed time so timer drift does not lower the offered rate
        const due = Math.min(total, Math.floor(((nowMs() - t0) / 1000) * RATE));
        while (sent < due) publishOne();
        if (sent >= total || nowMs() - t0 > dur + 1000 || state.aborted) { clearInterval(iv); res(); }
      }, 5);
    });
  } else {
    // closed loop: keep <= BACKLOG deliveries outstanding (and <= MAX_PENDING_PUBLISH un-acked PUBLISHes)
    const end = t0 + dur;
    while (nowMs() < end && !state.aborted) {
      let burst = 0;
      while (burst < 100 && pending < MAX_PENDING_PUBLISH &&
             (expected - recvTotal <= 0 || expected - recvTotal + fanout[sent % channels] <= BACKLOG)) {
        publishOne(); burst++;
      }
      if (burst === 0) { waits++; await sleep(1); } else await new Promise(r => setImmediate(r));
    }
  }
  const tPubEnd = nowMs();

  // ---- drain: wait up to DRAIN_S for the expected deliveries
  const drainEnd = tPubEnd + DRAIN_S * 1000;
  while ((recvTotal < expected || pending > 0) && nowMs() < drainEnd && !state.aborted) await sleep(5);
  await sleep(2 * PROGRESS_MS + 5);
  if (state.aborted) return null;
  const tDone = nowMs();
  clearInterval(rssTimer);
  const cpu1 = { srv: procCpu(server.pid), cli: procs.reduce((a, c) => a + procCpu(c.pid), 0), redis: await redisCpu(), pub: process.cpuUsage(cpu0.pub), host: hostBusy() };
  const reports = await Promise.all(procs.map(c => { const w = waitFor(c, 'report', 10000); c.send({ cmd: 'stop' }); return w; }));
  const memEnd = procMem(server.pid);
  rssPeak = Math.max(rssPeak, memEnd.rss);
  const recv = reports.reduce((a, r) => a + r.recv, 0);

  // ---- quiet: count deliveries arriving after the drain window (late, not lost), up to QUIET_S
  let quietMs = 0;
  if (recv < expected) {
    const tq = nowMs();
    let last = -1, stableSince = nowMs();
    while (nowMs() - tq < QUIET_S * 1000 && lateTotal < expected - recv && !state.aborted) {
      if (lateTotal !== last) { last = lateTotal; stableSince = nowMs(); }
      else if (nowMs() - stableSince > 500) break;
      await sleep(20);
    }
    quietMs = Math.round(nowMs() - tq);
  }
  const st1 = await serverStats(server);
  if (state.aborted) return null;

  await teardown(procs, server);

  const lastRecv = Math.max(0, ...reports.map(r => r.lastRecv));
  const maxLat = Math.max(0, ...reports.map(r => r.maxLat));
  const { pct } = merge(reports);
  const wall = (tDone - t0) / 1000;
  const pubSecs = (tPubEnd - t0) / 1000;
  const span = (Math.max(lastRecv, tPubEnd) - t0) / 1000;   // first publish -> last delivery
  const cpuPct = x => +((100 * x) / wall).toFixed(1);
  return {
    peer: PEER, scenario: `${name}_${mode}`, clients, channels, mode,
    fanout_per_msg: +(clients / channels).toFixed(2),
    versions: ready.versions, redis: REDIS_VERSION, node: process.version, cores: os.cpus().length,
    client_procs: procs.length, transports: 'websocket', payload_pad_bytes: PAYLOAD,
    clients_connected: ok, connect_errors: connErrors, connect_ms: Math.round(connectMs),
    offered_msgs_per_s: mode === 'fixed' ? RATE : null,
    offered_deliveries_per_s: mode === 'fixed' ? Math.round(RATE * clients / channels) : null,
    backlog_limit_deliveries: mode === 'sat' ? BACKLOG : null,
    published: sent,
    published_per_s: Math.round(sent / pubSecs),
    publish_seconds: +pubSecs.toFixed(3),
    expected_deliveries: expected,
    delivered: recv,
    delivered_per_s: Math.round(recv / span),
    lost: expected - recv,                  // not delivered within DRAIN_S after the last publish
    late_after_drain: lateTotal,            // of those, arrived during the QUIET_S window
    undelivered_at_teardown: expected - recv - lateTotal,  // still not delivered after DRAIN_S + QUIET_S (no disconnects = still queued)
    drain_window_s: DRAIN_S,
    p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99), max_ms: recv ? +maxLat.toFixed(3) : null,
    drain_ms: Math.round(Math.max(0, lastRecv - tPubEnd)),
    truncated: recv < expected,
    client_disconnects: reports.reduce((a, r) => a + r.disconnects, 0),
    clients_connected_after: reports.reduce((a, r) => a + r.connected, 0),
    server_conns: st0.conns,
    server_conns_after: st1.conns,
    server_rss_base_mb: mb(rssBase),          // no clients, after GC
    server_rss_connected_mb: mb(rssConn),     // all clients connected + joined, idle, after GC
    server_rss_mb: mb(memEnd.rss),            // end of run (after drain)
    server_rss_peak_mb: mb(rssPeak),          // max sampled every 100 ms during the run
    server_heap_connected_mb: null,
    conns_per_gb: Math.round(ok / (rssConn / (1024 * MB))),
    conns_per_gb_marginal: rssConn > rssBase ? Math.round(ok / ((rssConn - rssBase) / (1024 * MB))) : null,
    kb_per_conn_marginal: ok ? +((rssConn - rssBase) / 1024 / ok).toFixed(1) : null,
    server_cpu_pct: cpuPct(cpu1.srv - cpu0.srv),   // % of one core over first publish -> end of drain
    clients_cpu_pct: cpuPct(cpu1.cli - cpu0.cli),
    redis_cpu_pct: cpuPct(cpu1.redis - cpu0.redis),
    publisher_cpu_pct: cpuPct((cpu1.pub.user + cpu1.pub.system) / 1e6),
    // host CPU not used by server/clients/redis/publisher (other tenants of the box), % of one core
    foreign_cpu_pct: cpuPct(Math.max(0, (cpu1.host - cpu0.host) - (cpu1.srv - cpu0.srv) - (cpu1.cli - cpu0.cli)
      - (cpu1.redis - cpu0.redis) - (cpu1.pub.user + cpu1.pub.system) / 1e6)),
    loadavg_1m: +os.loadavg()[0].toFixed(2),
    server_cpu_us_per_delivery: recv ? +(((cpu1.srv - cpu0.srv) * 1e6) / recv).toFixed(2) : null,
    backlog_waits: mode === 'sat' ? waits : null,
    publish_errors: pubErrors,
    run_seconds: +wall.toFixed(3),
    quiet_ms: quietMs,
    // ours only: the gateway's counters over the run, and what the clients saw
    server_messages_in: st1.messages_in - st0.messages_in,
    server_messages_out: st1.messages_out - st0.messages_out,
    server_frames_out: st1.frames_out - st0.frames_out,
    server_msgs_per_frame: st1.frames_out > st0.frames_out
      ? +((st1.messages_out - st0.messages_out) / (st1.frames_out - st0.frames_out)).toFixed(2) : null,
    server_dropped: st1.dropped - st0.dropped,
    server_slow_disconnects: st1.slow_disconnects - st0.slow_disconnects,
    client_frames: reports.reduce((a, r) => a + r.frames, 0),
    client_bad_lines: reports.reduce((a, r) => a + r.bad_lines, 0),
    client_close_codes: reports.reduce((a, r) => { for (const [k, v] of Object.entries(r.close_codes)) a[k] = (a[k] || 0) + v; return a; }, {}),
  };
}

// ---------------------------------------------------------------- connections
// N idle clients over `channels` channels, CONN_PER_PROC per client process: the server's RSS
// (marginal KB per connection), HOLD_S of holding them, then one message to every channel.
async function connUnit(clients, channels, state) {
  const name = `c${clients}_ch${channels}_conn`;

  const { server, ready, rssBase } = await startServer();

  // ---- clients, CONN_PER_PROC per process
  const url = `ws://${HOST}:${ready.port}/ws`;
  const procs = [];
  for (let first = 0; first < clients; first += CONN_PER_PROC) {
    procs.push(spawn('akv_clients.js', {
      URL: url, FIRST: String(first), COUNT: String(Math.min(CONN_PER_PROC, clients - first)),
      CHANNELS: String(channels),
    }));
  }
  const tc = nowMs();
  const conn = await Promise.all(procs.map(c => waitFor(c, 'connected', CONN_DEADLINE_S * 1000, 'clients connected')));
  const connectMs = nowMs() - tc;
  const ok = conn.reduce((a, m) => a + m.ok, 0);
  const connErrors = conn.reduce((a, m) => a + m.errors, 0);
  const used = Math.min(clients, channels);   // channels with a subscriber
  const chNames = Array.from({ length: used }, (_, ch) => 'ch' + ch);
  let subscribed = 0;
  for (let i = 0; i < 500; i++) {
    const r = await admin.call('PUBSUB', 'NUMSUB', ...chNames);
    subscribed = 0;
    for (let k = 1; k < r.length; k += 2) if (+r[k] >= 1) subscribed++;
    if (subscribed === used) break;
    await sleep(20);
  }
  if (subscribed < used) log(`${name}: only ${subscribed}/${used} channels subscribed in Redis`);
  if (state.aborted) return null;

  // ---- from here on every disconnect counts (the clients reset their counters on start)
  const runId = ++RUN;
  let recvTotal = 0, receiversTotal = 0;
  const recvBy = new Map(), rcvBy = new Map();
  for (const c of procs) {
    c.on('message', m => {
      if (!m || m.type !== 'progress' || m.run !== runId) return;
      recvTotal += m.recv - (recvBy.get(c) || 0); recvBy.set(c, m.recv);
      receiversTotal += m.receivers - (rcvBy.get(c) || 0); rcvBy.set(c, m.receivers);
    });
  }
  await Promise.all(procs.map(c => { const w = waitFor(c, 'started', 5000); c.send({ cmd: 'start', run: runId }); return w; }));
  await sleep(1000);
  const st0 = await serverStats(server);
  const memConn = procMem(server.pid);
  const rssConn = memConn.rss;
  const fds = procFds(server.pid);
  log(`${name}: ${ok}/${clients} connected in ${connectMs.toFixed(0)} ms (${connErrors} errors) by ${procs.length} processes; server rss ${mb(rssBase)} -> ${mb(rssConn)} MB, ${fds} descriptors`);

  // ---- hold
  const cpu0 = { srv: procCpu(server.pid), cli: procs.reduce((a, c) => a + procCpu(c.pid), 0), redis: await redisCpu(), pub: process.cpuUsage(), host: hostBusy() };
  let rssPeak = rssConn;
  const rssTimer = setInterval(() => { rssPeak = Math.max(rssPeak, procMem(server.pid).rss); }, 250);
  const th = nowMs();
  while (nowMs() - th < HOLD_S * 1000 && !state.aborted) await sleep(100);
  if (state.aborted) { clearInterval(rssTimer); return null; }
  const holdSecs = (nowMs() - th) / 1000;
  const cpuHold = { srv: procCpu(server.pid), cli: procs.reduce((a, c) => a + procCpu(c.pid), 0) };
  const rssHeld = procMem(server.pid).rss;

  // ---- one message to every channel: every client should get exactly one
  const tb = nowMs();
  for (let ch = 0; ch < channels; ch++) publish('ch' + ch, JSON.stringify({ r: runId, i: ch, t: nowMs() }));
  while ((receiversTotal < ok || pending > 0) && nowMs() - tb < BCAST_WAIT_S * 1000 && !state.aborted) await sleep(5);
  await sleep(2 * PROGRESS_MS + 5);
  clearInterval(rssTimer);
  if (state.aborted) return null;
  const tDone = nowMs();
  const cpu1 = { srv: procCpu(server.pid), cli: procs.reduce((a, c) => a + procCpu(c.pid), 0), redis: await redisCpu(), pub: process.cpuUsage(cpu0.pub), host: hostBusy() };
  const reports = await Promise.all(procs.map(c => { const w = waitFor(c, 'report', 10000); c.send({ cmd: 'stop' }); return w; }));
  const memEnd = procMem(server.pid);
  rssPeak = Math.max(rssPeak, memEnd.rss);
  const st1 = await serverStats(server);
  if (state.aborted) return null;

  await teardown(procs, server);

  const recv = reports.reduce((a, r) => a + r.recv, 0);
  const receivers = reports.reduce((a, r) => a + r.receivers, 0);
  const lastRecv = Math.max(0, ...reports.map(r => r.lastRecv));
  const { pct } = merge(reports);
  const wall = (tDone - th) / 1000;
  const cpuPct = (x, secs = wall) => +((100 * x) / secs).toFixed(1);
  const kb = ok ? (rssConn - rssBase) / 1024 / ok : null;
  return {
    peer: PEER, scenario: name, clients, channels, mode: 'conn',
    fanout_per_msg: +(clients / channels).toFixed(2),
    versions: ready.versions, redis: REDIS_VERSION, node: process.version, cores: os.cpus().length,
    client_procs: procs.length, clients_per_proc: CONN_PER_PROC, transports: 'websocket',
    clients_connected: ok, connect_errors: connErrors, connect_ms: Math.round(connectMs),
    connects_per_s: connectMs > 0 ? Math.round((ok * 1000) / connectMs) : null,
    server_conns: st0.conns,
    server_conns_after: st1.conns,
    server_fds: fds,                              // descriptors of the server, all connected
    server_rss_base_mb: mb(rssBase),              // no clients
    server_rss_connected_mb: mb(rssConn),         // all connected + subscribed, idle, 1 s later
    server_rss_held_mb: mb(rssHeld),              // after HOLD_S
    server_rss_mb: mb(memEnd.rss),                // after the broadcast
    server_rss_peak_mb: mb(rssPeak),              // max sampled every 250 ms over hold + broadcast
    server_rss_hwm_mb: mb(memConn.hwm),           // the kernel's high-water mark once connected
    server_heap_connected_mb: null,
    conns_per_gb: Math.round(ok / (rssConn / (1024 * MB))),
    conns_per_gb_marginal: rssConn > rssBase ? Math.round(ok / ((rssConn - rssBase) / (1024 * MB))) : null,
    kb_per_conn_marginal: kb === null ? null : +kb.toFixed(2),
    kb_per_conn_held: ok ? +((rssHeld - rssBase) / 1024 / ok).toFixed(2) : null,
    hold_s: +holdSecs.toFixed(1),
    server_cpu_pct_hold: cpuPct(cpuHold.srv - cpu0.srv, holdSecs),   // idle cost: pings, timers
    clients_cpu_pct_hold: cpuPct(cpuHold.cli - cpu0.cli, holdSecs),
    client_disconnects: reports.reduce((a, r) => a + r.disconnects, 0),   // since all connected
    clients_connected_after: reports.reduce((a, r) => a + r.connected, 0),
    broadcast_msgs: channels,
    broadcast_receivers: receivers,               // clients that got the broadcast
    broadcast_missing: clients - receivers,
    broadcast_deliveries: recv,
    broadcast_ms: recv ? Math.round(lastRecv - tb) : null,   // publish -> last client got it
    p50_ms: pct(50), p99_ms: pct(99),
    server_cpu_pct: cpuPct(cpu1.srv - cpu0.srv),  // % of one core over hold + broadcast
    clients_cpu_pct: cpuPct(cpu1.cli - cpu0.cli),
    redis_cpu_pct: cpuPct(cpu1.redis - cpu0.redis),
    publisher_cpu_pct: cpuPct((cpu1.pub.user + cpu1.pub.system) / 1e6),
    foreign_cpu_pct: cpuPct(Math.max(0, (cpu1.host - cpu0.host) - (cpu1.srv - cpu0.srv) - (cpu1.cli - cpu0.cli)
      - (cpu1.redis - cpu0.redis) - (cpu1.pub.user + cpu1.pub.system) / 1e6)),
    loadavg_1m: +os.loadavg()[0].toFixed(2),
    publish_errors: pubErrors,
    run_seconds: +((tDone - tc) / 1000).toFixed(3),
    // ours only: the gateway's counters over hold + broadcast
    server_messages_out: st1.messages_out - st0.messages_out,
    server_dropped: st1.dropped - st0.dropped,
    server_slow_disconnects: st1.slow_disconnects - st0.slow_disconnects,
    client_close_codes: reports.reduce((a, r) => { for (const [k, v] of Object.entries(r.close_codes)) a[k] = (a[k] || 0) + v; return a; }, {}),
  };
}

// Runs one unit under its deadline and prints its line (or an error line).
async function runUnit(name, fields, deadlineS, body) {
  const state = { aborted: false };
  let timer;
  const deadline = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`deadline ${deadlineS}s exceeded`)), deadlineS * 1000); });
  try {
    const r = await Promise.race([body(state), deadline]);
    console.log(JSON.stringify(r));
    return r;
  } catch (e) {
    log(`${name}: ${e.message}`);
    state.aborted = true;
    killAll();
    console.log(JSON.stringify(Object.assign({ peer: PEER, scenario: name }, fields, { error: e.message, truncated: true })));
    await sleep(500);
    return null;
  } finally {
    clearTimeout(timer);
  }
}

let REDIS_VERSION = '?';
(async () => {
  const info = await admin.info('server');
  REDIS_VERSION = (info.match(/redis_version:(\S+)/) || [0, '?'])[1];
  const n = Math.min(CLIENTS.length, CHANNELS.length);
  for (let k = 0; k < n; k++) {
    const clients = CLIENTS[k], channels = CHANNELS[k];
    for (const mode of MODES) {
      if (mode === 'conn') continue;
      const name = `c${clients}_ch${channels}_${mode}`;
      if (!SCEN_RE.test(name)) continue;
      const r = await runUnit(name, { clients, channels, mode }, DEADLINE_S, state => unit(clients, channels, mode, state));
      if (r) log(`${name}: ${r.delivered}/${r.expected_deliveries} delivered (${r.delivered_per_s}/s), lost ${r.lost} (late ${r.late_after_drain}), p50 ${r.p50_ms} p99 ${r.p99_ms} max ${r.max_ms} ms, server cpu ${r.server_cpu_pct}% rss ${r.server_rss_connected_mb}/${r.server_rss_peak_mb} MB`);
    }
  }
  if (MODES.includes('conn')) {
    for (const clients of CONN_CLIENTS) {
      const channels = CONN_CHANNELS;
      const name = `c${clients}_ch${channels}_conn`;
      if (!SCEN_RE.test(name)) continue;
      const r = await runUnit(name, { clients, channels, mode: 'conn' }, CONN_DEADLINE_S, state => connUnit(clients, channels, state));
      if (r) log(`${name}: ${r.clients_connected}/${clients} held ${r.hold_s} s, ${r.kb_per_conn_marginal} KB each (${r.conns_per_gb_marginal}/GB), ${r.client_disconnects} disconnects, broadcast reached ${r.broadcast_receivers}/${clients} in ${r.broadcast_ms} ms`);
    }
  }
  killAll();
  await admin.quit();
  await pubRedis.quit();
  process.exit(0);
})().catch(e => { console.error(e); killAll(); process.exit(1); });
