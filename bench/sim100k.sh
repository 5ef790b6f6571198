#!/usr/bin/env bash
# Runs N simulated devices (default 100,000) on this machine: SERVERS
# `ferry serve` processes (default 6; one process may hold at most 20,000
# open files, so about 17,000 devices each), each with its own hub, DPS and
# symmetric-key enrollment group, and one `ferry sim` per server with
# WORKERS worker processes (default 2), each dialling from its own
# 127.0.1.x source address and provisioning CONCURRENCY devices at once
# (default 16). Every device provisions through its server's DPS over TLS,
# connects to the hub and sends {"seq":n} every INTERVAL (default 60s).
# Once all are connected it holds for HOLD seconds (default 60) and prints,
# per server, the connected devices (the simulator's count and the TLS
# connections on the server's MQTT port), the messages sent and
# acknowledged over the hold and the telemetry records in the server's
# export, and per process RSS and CPU use over the hold. Server i listens
# on 127.0.0.1 ports PORT_BASE+100+i (HTTP), +200+i (HTTPS), +300+i (MQTT
# over TLS) and +400+i (plain MQTT); PORT_BASE defaults to 28000. Every
# server and simulator process runs with GOMAXPROCS=PROCS (default 1: a
# dozen and more Go runtimes share two cores, and one scheduler thread each
# spares them the hand-offs between threads).
# Usage: bench/sim100k.sh [N]
source "$(dirname "$0")/lib.sh"
n=${1:-100000}
SERVERS=${SERVERS:-6}
WORKERS=${WORKERS:-2}
CONCURRENCY=${CONCURRENCY:-16}
INTERVAL=${INTERVAL:-60s}
HOLD=${HOLD:-60}
PORT_BASE=${PORT_BASE:-28000}
PROCS=${PROCS:-1}
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
port() { echo $((PORT_BASE + $1 * 100 + $2)); } # port KIND(1 HTTP, 2 HTTPS, 3 MQTT, 4 plain) SERVER

for i in $(seq 0 $((SERVERS - 1))); do
  d="$BENCH_TMP/s$i"
  GOMAXPROCS=$PROCS "$BENCH_TMP/ferry" serve --data "$d" --http "127.0.0.1:$(port 1 "$i")" --https "127.0.0.1:$(port 2 "$i")" \
    --mqtt "127.0.0.1:$(port 3 "$i")" --mqtt-plain "127.0.0.1:$(port 4 "$i")" --log-level error \
    >"$d.out" 2>"$d.err" &
  SERVER_PIDS+=($!)
done
t0=$(now)
for i in $(seq 0 $((SERVERS - 1))); do
  d="$BENCH_TMP/s$i"
  until curl -fsS -o /dev/null "http://127.0.0.1:$(port 1 "$i")/readyz" 2>/dev/null; do
    kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || { cat "$d.err" >&2; echo "ferry $i exited early" >&2; exit 1; }
    sleep 0.05
  done
  export FERRY_CONFIG_DIR="$d-cli"
  f() { "$BENCH_TMP/ferry" "$@"; }
  key=$(head -c 32 /dev/urandom | base64)
  f login --url "https://127.0.0.1:$(port 2 "$i")" --username admin --ca-file "$d/pki/ca.crt" >/dev/null
  f group create -n bench >/dev/null
  f hub create -n hub -g bench --host-name 127.0.0.1 >/dev/null
  scope=$(f dps create -n dps -g bench --link-hub hub -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"]["idScope"])')
  f dps enrollment-group create --dps-name dps --enrollment-id fleet --iot-hubs 127.0.0.1 --primary-key "$key" >/dev/null
  count=$((n - i * per < per ? n - i * per : per))
  addrs=()
  for w in $(seq 1 "$WORKERS"); do addrs+=(--source-addr "127.0.1.$((i * WORKERS + w))"); done
  (FERRY_SIM_GROUP_KEY=$key GOMAXPROCS=$PROCS exec "$BENCH_TMP/ferry" sim --count "$count" --prefix "s$i-" --provisioning-host "127.0.0.1:$(port 3 "$i")" \
    --id-scope "$scope" --ca "$d/pki/ca.crt" --telemetry-interval "$INTERVAL" --workers "$WORKERS" "${addrs[@]}" \
    --concurrency "$CONCURRENCY" --stats-interval 2s --json >"$d-sim.out" 2>"$d-sim.err") &
  SIM_PIDS+=($!)
done
echo "command: $SERVERS x (GOMAXPROCS=$PROCS ferry serve; ferry sim --count $per --workers $WORKERS --concurrency $CONCURRENCY --telemetry-interval $INTERVAL, TLS, group key via DPS)"

# field FIELD I prints a field of simulator I's latest statistics line (no
# Python per call: under load its start-up took seconds).
field() {
  local v
  v=$(tail -n 1 "$BENCH_TMP/s$2-sim.out" 2>/dev/null | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" || true)
  echo "${v:-0}"
}
# total FIELD sums a field over every simulator.
total() {
  local s=0 i
  for i in $(seq 0 $((SERVERS - 1))); do s=$((s + $(field "$1" "$i"))); done
  echo "$s"
}
# exported I counts the telemetry records in server I's export (a PUBACK
# is sent only once its record is on disk).
exported() { cat "$BENCH_TMP/s$1/export/"*.ndjson | grep -c '"messageSource":"telemetry"' || true; }
# established I counts the TLS connections on server I's MQTT port.
established() { ss -Htn state established "( sport = :$(port 3 "$1") )" | wc -l; }
while :; do
  c=$(total connected)
  [ "$c" -ge "$n" ] && break
  for p in "${SIM_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { echo "a ferry sim exited" >&2; exit 1; }; done
  echo "  $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.0f", b - a}') s: $c connected, load average $(cut -d' ' -f1 /proc/loadavg)"
  sleep 15
done
echo "all $n devices provisioned and connected after $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s (failed attempts, retried: $(total failures))"

# procs lists the pids to measure: servers, sim parents and their workers.
procs() {
  local i
  for i in "${!SERVER_PIDS[@]}"; do echo "ferry-serve-$i ${SERVER_PIDS[$i]}"; done
  for i in "${!SIM_PIDS[@]}"; do
    echo "ferry-sim-$i ${SIM_PIDS[$i]}"
    for c in $(pgrep -P "${SIM_PIDS[$i]}"); do echo "ferry-sim-$i-worker $c"; done
  done
}
declare -A cpu0 sent0 acked0
while read -r name pid; do cpu0[$pid]=$(cpu_ms "$pid"); done < <(procs)
for i in $(seq 0 $((SERVERS - 1))); do sent0[$i]=$(field sent "$i") acked0[$i]=$(field acked "$i"); done
sleep "$HOLD"
echo "over a ${HOLD} s hold (load average $(cut -d' ' -f1-3 /proc/loadavg) at its end):"
printf "%-7s %9s %11s %9s %9s %7s %8s %11s %11s\n" server connected established sent acked queued reconn "acked all" exported
ts=0 ta=0 tq=0 tc=0 te=0 tr=0 tx=0 tall=0 short=0
for i in $(seq 0 $((SERVERS - 1))); do
  # acked first: every message acknowledged by then is already exported.
  a=$(field acked "$i") s=$(field sent "$i") q=$(field queued "$i") c=$(field connected "$i") r=$(field reconnects "$i")
  e=$(established "$i") x=$(exported "$i")
  [ "$x" -ge "$a" ] || short=$((short + a - x))
  printf "%-7s %9d %11d %9d %9d %7d %8d %11d %11d\n" "s$i" "$c" "$e" $((s - sent0[$i])) $((a - acked0[$i])) "$q" "$r" "$a" "$x"
  ts=$((ts + s - sent0[$i])) ta=$((ta + a - acked0[$i])) tq=$((tq + q)) tc=$((tc + c)) te=$((te + e)) tr=$((tr + r)) tall=$((tall + a)) tx=$((tx + x))
done
printf "%-7s %9d %11d %9d %9d %7d %8d %11d %11d\n" total "$tc" "$te" "$ts" "$ta" "$tq" "$tr" "$tall" "$tx"
echo "$tc of $n connected; $ts messages sent and $ta acknowledged over the hold ($((ta / HOLD))/s), $tq awaiting PUBACK at its end;"
echo "acknowledged since the start but missing from the export: $short"
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
