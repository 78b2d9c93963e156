'use strict';
// Client load for our gateway benchmark (akv_bench.js): COUNT WebSocket connections to the
// gateway in THIS node process (forked by akv_bench.js, separate from the gateway so its CPU/RSS
// are measured apart). Adapted from the peer's clients.js (bench/peers/gateway/clients.js): the
// same IPC, counters, histogram and connect pacing; socket.io-client is replaced by the `ws`
// package (the one socket.io-client itself runs on in node) speaking our protocol
// (websocket_gateway/README.md):
//   -> {"op":"connect"}                      (anonymous: no token)
//   <- {"op":"connected",...}
//   -> {"op":"subscribe","id":1,"channel":"ch<j % CHANNELS>"}
//   <- {"id":1,"ok":true,...}                 then the client counts as connected
//   <- {"channel":"ch0","data":{"r":run,"i":seq,"t":sendTime}}   (pushes)
// The gateway may put several messages in one text frame, separated by "\n": every frame is
// split on "\n" and each line parsed as JSON (socket.io-client JSON-parses each packet alike).
// Latency = receive - send, both on CLOCK_MONOTONIC, log histogram (1% buckets, exact max).
//
// Env (set by akv_bench.js): URL (ws://host:port/ws), FIRST, COUNT, CHANNELS, CONNECT_CONC [50],
//   CONNECT_TIMEOUT_S [30], PROGRESS_MS [10].
// IPC in : {cmd:'start', run} | {cmd:'stop'} | {cmd:'close'}
// IPC out: {type:'connected', ok, errors, ms} | {type:'started'} |
//          {type:'progress', run, recv, stale, receivers} (every PROGRESS_MS when changed) |
//          {type:'report', ...counters, hist: [[bucket, count], ...]}
// receivers: how many of the sockets got at least one message of the run (the connections
// scenario broadcasts one message to every channel and wants every socket to get it).
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

const URL = process.env.URL;
const FIRST = +(process.env.FIRST || 0);
const COUNT = +(process.env.COUNT || 100);
const CHANNELS = +(process.env.CHANNELS || 1);
const CONNECT_CONC = +(process.env.CONNECT_CONC || 50);
const CONNECT_TIMEOUT_S = +(process.env.CONNECT_TIMEOUT_S || 30);
const PROGRESS_MS = +(process.env.PROGRESS_MS || 10);

// monotonic ms, same clock as process.hrtime in every process
const BASE = Number(process.hrtime.bigint()) / 1e6 - performance.now();
const nowMs = () => performance.now() + BASE;

const NB = 2200;                          // 1.01^2200 us ~ 3.2e9 us: plenty
const LOG = Math.log(1.01);
let hist = new Uint32Array(NB);
let run = -1, recv = 0, stale = 0, maxLat = 0, firstRecv = 0, lastRecv = 0;
let disconnects = 0, closing = false, progressTimer = null;
let frames = 0, badLines = 0, errorReplies = 0, receivers = 0;
const closeCodes = {};                    // close code -> count (4008: slow consumer, ...)

function onMsg(d, s) {
  if (!d || d.r !== run) { stale++; return; }
  if (s.gotRun !== run) { s.gotRun = run; receivers++; }
  const t = nowMs();
  const lat = t - d.t;
  recv++;
  if (!firstRecv) firstRecv = t;
  lastRecv = t;
  if (lat > maxLat) maxLat = lat;
  const us = lat * 1000;
  const b = us <= 1 ? 0 : Math.min(NB - 1, Math.ceil(Math.log(us) / LOG));
  hist[b]++;
}

const sockets = [];
function connectOne(j) {
  return new Promise(resolve => {
    const channel = 'ch' + (j % CHANNELS);
    const s = new WebSocket(URL, { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_S * 1000 });
    let done = false;
    const timer = setTimeout(() => {
      console.error(`client ${j}: no subscribe reply within ${CONNECT_TIMEOUT_S} s`);
      fin(false);
    }, CONNECT_TIMEOUT_S * 1000);
    const fin = ok => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const onLine = line => {
      let m;
      try { m = JSON.parse(line); } catch { badLines++; return; }
      if (m.data !== undefined && m.channel !== undefined) { onMsg(m.data, s); return; }
      if (m.op === 'connected') {
        s.send(JSON.stringify({ op: 'subscribe', id: 1, channel }));
      } else if (m.id === 1 && m.ok) {
        fin(true);
      } else if (m.error) {
        errorReplies++;
        console.error(`client ${j}: ${JSON.stringify(m.error)}`);
        fin(false);
      }
    };
    s.on('message', (data, isBinary) => {
      if (isBinary) return;
      frames++;
      const text = data.toString();
      let from = 0;
      for (;;) {
        const nl = text.indexOf('\n', from);
        if (nl < 0) { if (from < text.length) onLine(from ? text.slice(from) : text); break; }
        if (nl > from) onLine(text.slice(from, nl));
        from = nl + 1;
      }
    });
    s.on('open', () => s.send('{"op":"connect"}'));
    s.on('error', e => { if (!done) console.error(`client ${j} error: ${e.message}`); fin(false); });
    s.on('close', code => {
      closeCodes[code] = (closeCodes[code] || 0) + 1;
      if (!closing) disconnects++;
      fin(false);
    });
    sockets.push(s);
  });
}

async function connectAll() {
  const t0 = nowMs();
  let next = 0, ok = 0, errors = 0;
  const worker = async () => {
    while (next < COUNT) {
      const j = FIRST + next++;
      if (await connectOne(j)) ok++; else errors++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONC, COUNT) }, worker));
  process.send({ type: 'connected', ok, errors, ms: +(nowMs() - t0).toFixed(1) });
}

function startProgress() {
  let lastR = -1, lastS = -1;
  progressTimer = setInterval(() => {
    if (recv !== lastR || stale !== lastS) {
      lastR = recv; lastS = stale;
      process.send({ type: 'progress', run, recv, stale, receivers });
    }
  }, PROGRESS_MS);
}

process.on('message', m => {
  if (m.cmd === 'start') {
    run = m.run; recv = 0; stale = 0; maxLat = 0; firstRecv = 0; lastRecv = 0; disconnects = 0;
    frames = 0; receivers = 0;
    hist = new Uint32Array(NB);
    process.send({ type: 'started' });
  } else if (m.cmd === 'stop') {
    const h = [];
    for (let b = 0; b < NB; b++) if (hist[b]) h.push([b, hist[b]]);
    process.send({
      type: 'report', recv, stale, maxLat, firstRecv, lastRecv, disconnects, receivers,
      connected: sockets.filter(s => s.readyState === WebSocket.OPEN).length, hist: h,
      frames, bad_lines: badLines, error_replies: errorReplies, close_codes: closeCodes,
    });
    run = -1; stale = 0;   // from now on, deliveries of the stopped run count as stale (late)
  } else if (m.cmd === 'close') {
    closing = true;
    clearInterval(progressTimer);
    for (const s of sockets) { try { s.close(1000); } catch {} }
    setTimeout(() => process.exit(0), 200);
  }
});
process.on('disconnect', () => process.exit(0));  // orchestrator gone

connectAll().then(startProgress).catch(e => { console.error(e); process.exit(1); });
