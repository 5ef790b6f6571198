# Shared by the device-plane benchmark scripts: builds Ferry and the load
# generator, starts a server on fixed local ports in a temporary data
# directory, creates the bench hub, DPS and enrollment group, and stops the
# server on exit. Source it; do not run it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH_TMP=$(mktemp -d)
export FERRY_ADMIN_PASSWORD=bench-password
HTTPS_PORT=${HTTPS_PORT:-28443}
MQTT_PORT=${MQTT_PORT:-28883}
MQTT_PLAIN_PORT=${MQTT_PLAIN_PORT:-28884}
HTTP_PORT=${HTTP_PORT:-28080}
go build -o "$BENCH_TMP/ferry" ./cmd/ferry
go build -o "$BENCH_TMP/loadgen" ./bench/loadgen
FERRY_PID=
cleanup() {
  if [ -n "$FERRY_PID" ]; then kill "$FERRY_PID" 2>/dev/null || true; wait "$FERRY_PID" 2>/dev/null || true; fi
  rm -rf "$BENCH_TMP"
}
trap cleanup EXIT

# start_ferry starts the server and sets up the bench resources; ID_SCOPE
# is the provisioning service's ID scope afterwards.
start_ferry() {
  "$BENCH_TMP/ferry" serve --data "$BENCH_TMP/data" --http "127.0.0.1:$HTTP_PORT" --https "127.0.0.1:$HTTPS_PORT" \
    --mqtt "127.0.0.1:$MQTT_PORT" --mqtt-plain "127.0.0.1:$MQTT_PLAIN_PORT" --log-level error \
    >"$BENCH_TMP/ferry.out" 2>"$BENCH_TMP/ferry.err" &
  FERRY_PID=$!
  until curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null; do
    kill -0 "$FERRY_PID" 2>/dev/null || { cat "$BENCH_TMP/ferry.err" >&2; echo "ferry exited early" >&2; exit 1; }
    sleep 0.05
  done
  CA="$BENCH_TMP/data/pki/ca.crt"
  ID_SCOPE=$(lg setup | sed -n 's/.*"idScope":"\([^"]*\)".*/\1/p')
}

# lg runs the load generator against the server (extra flags, then MODE).
lg() {
  "$BENCH_TMP/loadgen" --https "https://127.0.0.1:$HTTPS_PORT" --ca "$BENCH_TMP/data/pki/ca.crt" \
    --mqtt "127.0.0.1:$MQTT_PORT" "$@"
}

# rss_kib prints a process's resident set in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# machine prints what the figures were taken on.
machine() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(date -u +%F), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# summary prints the interesting fields of a loadgen result line.
summary() { python3 bench/summary.py "$1"; }

# cpu_ms prints a process's user+system CPU time in milliseconds.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }

# measured runs the load generator (flags, then MODE) and prints its summary
# labelled $1, plus the CPU time process $2 spent per acknowledged item.
measured() {
  local label=$1 pid=$2
  shift 2
  local c0 c1 out
  c0=$(cpu_ms "$pid")
  out=$(lg "$@")
  c1=$(cpu_ms "$pid")
  echo "$out" | summary "$label"
  local ok
  ok=$(echo "$out" | python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin if l.startswith("{")][-1]; print(r["ok"] + (r.get("reconnect") or {}).get("ok", 0))')
  if [ "$ok" -gt 0 ]; then
    echo "  server CPU: $((c1 - c0)) ms for $ok, $(((c1 - c0) * 1000 / ok)) µs each"
  fi
}
