#!/usr/bin/env bash
# Peer benchmark of flows: BullMQ's FlowProducer (flow.js) against a private redis-server.
#
# Usage: bench_flow.sh [PORT]              (default PORT 7200)
#   As bench_bullmq.sh, which it sits beside: installs the pinned npm packages of
#   package.json into $BENCH_DIR (or a temp dir) unless they are there already (so a
#   BENCH_DIR that bench_bullmq.sh filled is reused), starts redis-server on 127.0.0.1:PORT
#   (no persistence), runs flow.js, which prints ONE JSON LINE on stdout, then shuts the
#   server down. Progress/diagnostics go to stderr.
#
# Knobs (env): FLOWS, FLOW_CHILDREN, FLOW_CONC, FLOW_ADDERS, DEADLINE_S, SCENARIOS (see
#   flow.js's header); REDIS_SERVER (binary, default redis-server), BENCH_DIR.
set -euo pipefail

PORT="${1:-7200}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"

if redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
  echo "port $PORT already has a server; pick another port" >&2
  exit 2
fi

if [[ -n "${BENCH_DIR:-}" ]]; then
  WORK="$BENCH_DIR"; mkdir -p "$WORK"; CLEAN=0
else
  WORK="$(mktemp -d /tmp/queue-peer-flow.XXXXXX)"; CLEAN=1
fi
cp "$HERE/package.json" "$HERE/flow.js" "$WORK/"

if [[ ! -d "$WORK/node_modules/bullmq" ]]; then
  echo "npm install into $WORK ..." >&2
  (cd "$WORK" && npm install --no-audit --no-fund --loglevel=error >&2)
fi

cleanup() {
  redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  if [[ "$CLEAN" == 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

"$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --save '' \
  --appendonly no --daemonize yes --dir "$WORK" \
  --pidfile "$WORK/redis-$PORT.pid" --logfile "$WORK/redis-$PORT.log"
for _ in $(seq 50); do
  redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done

echo "redis $("$REDIS_SERVER" --version | awk '{print $3}') on :$PORT, node $(node --version), $(nproc) cores" >&2
cd "$WORK"
REDIS_PORT="$PORT" node flow.js
