#!/usr/bin/env bash
# Runs N simulated devices (default 100,000) on this machine: SERVERS
# `ferry serve` processes (default 6; one process may hold at most 20,000
# open files, so about 17,000 devices each), each with its own hub, DPS and
# symmetric-key enrollment group, and one `ferry sim` per server with
# WORKERS worker processes (default 2), each dialling from its own
# 127.0.1.x source address. Every device provisions through its server's
# DPS over TLS, connects to the hub and sends {"seq":n} every INTERVAL
# (default 60s). Once all are connected it holds for HOLD seconds (default
# 60) and prints, per process, RSS and CPU use over the hold, and the
# messages sent and acknowledged over it.
# Usage: bench/sim100k.sh [N]
source "$(dirname "$0")/lib.sh"
n=${1:-100000}
SERVERS=${SERVERS:-6}
WORKERS=${WORKERS:-2}
INTERVAL=${INTERVAL:-60s}
HOLD=${HOLD:-60}
per=$(((n + SERVERS - 1) / SERVERS))
export FERRY_PASSWORD=$FERRY_ADMIN_PASSWORD
SERVER_PIDS=() SIM_PIDS=()
stop_all() {
  for p in "${SIM_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${SIM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SERVER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$BENCH_TMP"
}
trap stop_all EXIT
now() { date +%s.%N; }

# Servers listen on 127.0.0.1 ports 281xx (HTTP), 282xx (HTTPS), 283xx
# (MQTT over TLS) and 284xx (plain MQTT), xx = server index.
for i in $(seq 0 $((SERVERS - 1))); do
  d="$BENCH_TMP/s$i"
  "$BENCH_TMP/ferry" serve --data "$d" --http "127.0.0.1:$((28100 + i))" --https "127.0.0.1:$((28200 + i))" \
    --mqtt "127.0.0.1:$((28300 + i))" --mqtt-plain "127.0.0.1:$((28400 + i))" --log-level error \
    >"$d.out" 2>"$d.err" &
  SERVER_PIDS+=($!)
done
t0=$(now)
for i in $(seq 0 $((SERVERS - 1))); do
  d="$BENCH_TMP/s$i"
  until curl -fsS -o /dev/null "http://127.0.0.1:$((28100 + i))/readyz" 2>/dev/null; do
    kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || { cat "$d.err" >&2; echo "ferry $i exited early" >&2; exit 1; }
    sleep 0.05
  done
  export FERRY_CONFIG_DIR="$d-cli"
  f() { "$BENCH_TMP/ferry" "$@"; }
  key=$(head -c 32 /dev/urandom | base64)
  f login --url "https://127.0.0.1:$((28200 + i))" --username admin --ca-file "$d/pki/ca.crt" >/dev/null
  f group create -n bench >/dev/null
  f hub create -n hub -g bench --host-name 127.0.0.1 >/dev/null
  scope=$(f dps create -n dps -g bench --link-hub hub -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"]["idScope"])')
  f dps enrollment-group create --dps-name dps --enrollment-id fleet --iot-hubs 127.0.0.1 --primary-key "$key" >/dev/null
  count=$((n - i * per < per ? n - i * per : per))
  addrs=()
  for w in $(seq 1 "$WORKERS"); do addrs+=(--source-addr "127.0.1.$((i * WORKERS + w))"); done
  (FERRY_SIM_GROUP_KEY=$key exec "$BENCH_TMP/ferry" sim --count "$count" --prefix "s$i-" --provisioning-host "127.0.0.1:$((28300 + i))" \
    --id-scope "$scope" --ca "$d/pki/ca.crt" --telemetry-interval "$INTERVAL" --workers "$WORKERS" "${addrs[@]}" \
    --stats-interval 2s --json >"$d-sim.out" 2>"$d-sim.err") &
  SIM_PIDS+=($!)
done
echo "command: $SERVERS x (ferry serve; ferry sim --count $per --workers $WORKERS --telemetry-interval $INTERVAL, TLS, group key via DPS)"

# total FIELD sums a field of every simulator's latest statistics line.
total() {
  local s=0 v
  for i in $(seq 0 $((SERVERS - 1))); do
    v=$(tail -n 1 "$BENCH_TMP/s$i-sim.out" 2>/dev/null | python3 -c "import json,sys; l=sys.stdin.read().strip(); print(json.loads(l)['$1'] if l else 0)")
    s=$((s + v))
  done
  echo "$s"
}
while :; do
  c=$(total connected)
  [ "$c" -ge "$n" ] && break
  for p in "${SIM_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { echo "a ferry sim exited" >&2; exit 1; }; done
  echo "  $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.0f", b - a}') s: $c connected, load average $(cut -d' ' -f1 /proc/loadavg)"
  sleep 15
done
echo "all $n devices provisioned and connected after $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s"

# procs lists the pids to measure: servers, sim parents and their workers.
procs() {
  local i
  for i in "${!SERVER_PIDS[@]}"; do echo "ferry-serve-$i ${SERVER_PIDS[$i]}"; done
  for i in "${!SIM_PIDS[@]}"; do
    echo "ferry-sim-$i ${SIM_PIDS[$i]}"
    for c in $(pgrep -P "${SIM_PIDS[$i]}"); do echo "ferry-sim-$i-worker $c"; done
  done
}
declare -A cpu0
while read -r name pid; do cpu0[$pid]=$(cpu_ms "$pid"); done < <(procs)
sent0=$(total sent) acked0=$(total acked)
sleep "$HOLD"
sent1=$(total sent) acked1=$(total acked) conn=$(total connected)
echo "over a ${HOLD} s hold: $conn of $n connected at its end; $((sent1 - sent0)) messages sent, $((acked1 - acked0)) acknowledged ($(((acked1 - acked0) / HOLD))/s)"
printf "%-22s %8s %10s %8s\n" process pid "RSS MiB" "CPU %"
rss_sum=0 cpu_sum=0
while read -r name pid; do
  rss=$(rss_kib "$pid") cpu=$((($(cpu_ms "$pid") - cpu0[$pid]) / (HOLD * 10)))
  rss_sum=$((rss_sum + rss)) cpu_sum=$((cpu_sum + cpu))
  printf "%-22s %8d %10d %8d\n" "$name" "$pid" $((rss / 1024)) "$cpu"
done < <(procs)
printf "%-22s %8s %10d %8d\n" total "" $((rss_sum / 1024)) "$cpu_sum"
echo "(CPU % of one core, averaged over the hold)"
free -m | sed -n 1,2p
machine
