'use strict';
// Peer benchmark for flows: BullMQ's FlowProducer, 1 parent and FLOW_CHILDREN children per flow
// (issue 23, "Task queue II"). Driven by bench_flow.sh, which owns the redis-server and the npm
// install (bench_bullmq.sh's, same BENCH_DIR); prints ONE JSON LINE, scenario "flow", the
// shape of bench.js's lines with figures per flow.
//
// Two workers, as BullMQ's flow example: the children's queue FLOW_CHILD_QUEUE and the parents'
// FLOW_PARENT_QUEUE, each with concurrency FLOW_CONC and removeOnComplete {count: 0} (as
// bench.js's process_*; a child's return value is kept in its parent's processed hash all the
// same). A child's handler returns 1; a parent's reads job.getChildrenValues() and returns 1.
// The workers start first; then FLOW_ADDERS loops await FlowProducer.add() until FLOWS flows
// were added. Timed from the first add to the last parent completed; Redis figures as bench.js
// computes them (INFO cpu and commandstats diffs), divided by the flows.
//
// Env knobs (defaults in brackets):
//   REDIS_PORT [7200]   FLOWS [5000] flows   FLOW_CHILDREN [10] children per flow
//   FLOW_CONC [100] each worker's concurrency   FLOW_ADDERS [100] adds in flight
//   DEADLINE_S [55] cap (the line says truncated)
//   SCENARIOS [flow]    regex on the scenario name: nothing printed unless it matches "flow"
const { performance } = require('perf_hooks');
const os = require('os');
const Redis = require('ioredis');
const { FlowProducer, Worker } = require('bullmq');

const HOST = '127.0.0.1';
const PORT = +(process.env.REDIS_PORT || 7200);
const FLOWS = +(process.env.FLOWS || 5000);
const CHILDREN = +(process.env.FLOW_CHILDREN || 10);
const CONC = +(process.env.FLOW_CONC || 100);
const ADDERS = +(process.env.FLOW_ADDERS || 100);
const DEADLINE_S = +(process.env.DEADLINE_S || 55);
const SCEN_RE = new RegExp(process.env.SCENARIOS || 'flow');
const PARENT_QUEUE = 'flow_parents';
const CHILD_QUEUE = 'flow_children';

const now = () => performance.now();
const sleep = ms => new Promise(r => setTimeout(r, ms));
const connection = { host: HOST, port: PORT, maxRetriesPerRequest: null };
const admin = new Redis(connection);

// bench.js's snap() and diff(), per flow.
async function snap() {
  const [cs, cpu] = await Promise.all([admin.info('commandstats'), admin.info('cpu')]);
  const calls = {};
  for (const m of cs.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    calls[m[1]] = { calls: +m[2], usec: +m[3] };
  }
  const g = (re, s) => +(s.match(re) || [0, 0])[1];
  return { calls, cpu: g(/used_cpu_user:([\d.]+)/, cpu) + g(/used_cpu_sys:([\d.]+)/, cpu) };
}

const IGNORE = new Set(['info', 'flushall', 'config|resetstat', 'monitor', 'ping']);
const SCRIPT = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);
function diff(a, b, flows) {
  let total = 0, scripts = 0, usec = 0;
  const per = [];
  for (const [k, v] of Object.entries(b.calls)) {
    if (IGNORE.has(k)) continue;
    const d = v.calls - ((a.calls[k] || {}).calls || 0);
    const du = v.usec - ((a.calls[k] || {}).usec || 0);
    if (d <= 0) continue;
    total += d; per.push([k, d]);
    if (SCRIPT.has(k)) { scripts += d; usec += du; }
  }
  per.sort((x, y) => y[1] - x[1]);
  return {
    redis_cpu_us_per_flow: +(((b.cpu - a.cpu) * 1e6) / flows).toFixed(2),
    redis_calls_per_flow: +(total / flows).toFixed(2), // includes commands run inside Lua
    script_calls_per_flow: +(scripts / flows).toFixed(3),
    script_usec_per_flow: +(usec / flows).toFixed(2),
    calls_by_cmd: Object.fromEntries(per.slice(0, 16).map(([k, d]) => [k, +(d / flows).toFixed(3)])),
  };
}

function flow(i) {
  const children = [];
  for (let c = 0; c < CHILDREN; c++) {
    children.push({ name: 'child', queueName: CHILD_QUEUE, data: { i, c } });
  }
  return { name: 'parent', queueName: PARENT_QUEUE, data: { i }, children };
}

async function scFlow() {
  await admin.flushall();
  const info = await admin.info('server');
  const redis = (info.match(/redis_version:(\S+)/) || [0, '?'])[1];
  let childrenDone = 0, parentsDone = 0, badParents = 0, resolve;
  const finished = new Promise(r => { resolve = r; });
  const opts = { connection, concurrency: CONC, removeOnComplete: { count: 0 } };
  const children = new Worker(CHILD_QUEUE, async () => 1, opts);
  const parents = new Worker(PARENT_QUEUE, async job => {
    const values = await job.getChildrenValues();
    if (Object.keys(values).length !== CHILDREN) badParents++;
    return 1;
  }, opts);
  children.on('completed', () => { childrenDone++; });
  parents.on('completed', () => { if (++parentsDone >= FLOWS) resolve(); });
  for (const w of [children, parents]) w.on('error', e => console.error('worker error', e.message));
  const producer = new FlowProducer({ connection });
  await Promise.all([children.waitUntilReady(), parents.waitUntilReady(), producer.waitUntilReady()]);
  await sleep(200);

  const s0 = await snap();
  const deadline = now() + DEADLINE_S * 1000;
  const timer = setTimeout(resolve, DEADLINE_S * 1000);
  const t0 = now();
  let next = 0, added = 0;
  const adder = async () => {
    while (next < FLOWS && now() < deadline) {
      await producer.add(flow(next++));
      added++;
    }
  };
  await Promise.all(Array.from({ length: ADDERS }, adder));
  const addSecs = (now() - t0) / 1000;
  await finished;
  clearTimeout(timer);
  const secs = (now() - t0) / 1000;
  const s1 = await snap();
  await producer.close();
  await children.close();
  await parents.close();
  const done = parentsDone;
  return {
    lib: 'bullmq', version: require('bullmq/package.json').version, scenario: 'flow',
    redis, node: process.version, cores: os.cpus().length,
    children: CHILDREN, concurrency: CONC, add_inflight: ADDERS,
    flows: done, added, jobs: done + childrenDone, seconds: +secs.toFixed(3),
    add_seconds: +addSecs.toFixed(3), flows_per_s: Math.round(done / secs),
    truncated: done < FLOWS, bad_parents: badParents, ...diff(s0, s1, done || 1),
  };
}

(async () => {
  if (SCEN_RE.test('flow')) {
    try {
      console.log(JSON.stringify(await scFlow()));
    } catch (e) {
      console.log(JSON.stringify({ lib: 'bullmq', scenario: 'flow', error: e.message }));
    }
  }
  await admin.quit();
  process.exit(0);
})().catch(e => { console.error(e); process.exit(1); });
