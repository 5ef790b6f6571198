#!/usr/bin/env bash
# Migrates N simulated devices end to end on one Ferry node over TLS and
# times each phase. Starts `ferry serve` (SQLite, durable export sink) on
# fixed local ports, creates hub A (127.0.0.1) and hub B (localhost; the
# same listener), DPS A linking A and DPS B linking B, each with the same
# symmetric-key enrollment group, a device template declaring DeviceMove and
# a hub device group of A; starts `ferry sim --count N` (TLS, telemetry every
# $INTERVAL) provisioning through DPS A; once all are connected, creates and
# starts one migration of the group to DPS B (at COMMAND_RATE commands a
# second) and polls `ferry migrate status` until it completes (or pauses).
# Then prints the phase breakdown from `ferry migrate report` (bench/migtool phases), stops the
# simulator (which flushes every device's queue) and the server, and checks
# the export for lost sequence numbers (bench/migtool seqcheck).
# Usage: bench/migrate.sh [N]   (default 10000)
# Environment: INTERVAL (60s; a moved device sends its next message at
# once, so the interval does not hold up verification), WAVES (empty: one
# wave; else e.g. 50,50), COMMAND_RATE (DeviceMove commands per second,
# default 1000;
# 0: unlimited), SIM_WORKERS (0: as few as needed),
# SIM_CONCURRENCY (256), GOGC (server and simulator, default 400: the Go
# collector runs a quarter as often, for about half as much memory again;
# GOGC=100 is Go's default), SIM_GOGC (the simulator's alone), PROFILE=1
# to record the server and the simulator
# with perf for 15 s from the migration's start (reports in
# $PROFILE_OUT-ferry.txt and -sim.txt, default /tmp/migrate-perf), KEEP=1 to
# keep the temporary directory.
source "$(dirname "$0")/lib.sh"
n=${1:-10000}
INTERVAL=${INTERVAL:-60s}
export GOGC=${GOGC:-400}
go build -o "$BENCH_TMP/migtool" ./bench/migtool
export FERRY_CONFIG_DIR="$BENCH_TMP/cli" FERRY_PASSWORD=$FERRY_ADMIN_PASSWORD
SIM_PID=
stop_sim() {
  if [ -n "$SIM_PID" ]; then kill -INT "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=; fi
}
if [ -n "${KEEP:-}" ]; then trap 'stop_sim; kill $FERRY_PID 2>/dev/null; echo "kept $BENCH_TMP"' EXIT; else trap 'stop_sim; cleanup' EXIT; fi
f() { "$BENCH_TMP/ferry" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

"$BENCH_TMP/ferry" serve --data "$BENCH_TMP/data" --http "127.0.0.1:$HTTP_PORT" --https "127.0.0.1:$HTTPS_PORT" \
  --mqtt "127.0.0.1:$MQTT_PORT" --mqtt-plain "127.0.0.1:$MQTT_PLAIN_PORT" --log-level error \
  >"$BENCH_TMP/ferry.out" 2>"$BENCH_TMP/ferry.err" &
FERRY_PID=$!
until curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null; do
  kill -0 "$FERRY_PID" 2>/dev/null || { cat "$BENCH_TMP/ferry.err" >&2; echo "ferry exited early" >&2; exit 1; }
  sleep 0.05
done
CA="$BENCH_TMP/data/pki/ca.crt"
model="dtmi:ferry:bench:Mover;1"
key=$(head -c 32 /dev/urandom | base64)
f login --url "https://127.0.0.1:$HTTPS_PORT" --username admin --ca-file "$CA" >/dev/null
f group create -n bench >/dev/null
f hub create -n hub-a -g bench --host-name 127.0.0.1 >/dev/null
f hub create -n hub-b -g bench --host-name localhost >/dev/null
scope=$(f dps create -n dps-a -g bench --link-hub hub-a -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"]["idScope"])')
f dps create -n dps-b -g bench --link-hub hub-b >/dev/null
f dps enrollment-group create --dps-name dps-a --enrollment-id fleet --iot-hubs 127.0.0.1 --primary-key "$key" >/dev/null
f dps enrollment-group create --dps-name dps-b --enrollment-id fleet --iot-hubs localhost --primary-key "$key" >/dev/null
cat >"$BENCH_TMP/model.json" <<EOF
{"@context": "dtmi:dtdl:context;2", "@id": "$model", "@type": "Interface", "displayName": "Bench device",
 "contents": [{"@type": "Component", "name": "migration", "schema": "dtmi:azureiot:DeviceMigration;1"}]}
EOF
f hub device-template import --hub-name hub-a -g bench --file "$BENCH_TMP/model.json" >/dev/null
f hub device-group create --hub-name hub-a -g bench --name movers --filter "\$template = '$model'" >/dev/null

echo "command: ferry sim --count $n --telemetry-interval $INTERVAL --workers ${SIM_WORKERS:-0} --concurrency ${SIM_CONCURRENCY:-256} (TLS, group key, via DPS A)"
t0=$(now)
(FERRY_SIM_GROUP_KEY=$key GOGC=${SIM_GOGC:-$GOGC} exec "$BENCH_TMP/ferry" sim --count "$n" --provisioning-host "127.0.0.1:$MQTT_PORT" --id-scope "$scope" \
  --ca "$CA" --model-id "$model" --telemetry-interval "$INTERVAL" --workers "${SIM_WORKERS:-0}" \
  --concurrency "${SIM_CONCURRENCY:-256}" --stats-interval 1s --json >"$BENCH_TMP/sim.out" 2>"$BENCH_TMP/sim.err") &
SIM_PID=$!
last() { tail -n 1 "$BENCH_TMP/sim.out" 2>/dev/null; }
field() { last | python3 -c "import json,sys; l=sys.stdin.read().strip(); print(json.loads(l)['$1'] if l else 0)"; }
until [ "$(field connected)" = "$n" ]; do
  kill -0 "$SIM_PID" 2>/dev/null || { tail "$BENCH_TMP/sim.err" >&2; echo "ferry sim exited" >&2; exit 1; }
  sleep 1
done
echo "all $n devices provisioned and connected after $(secs "$t0" "$(now)") s: $(last)"
sleep 3 # the hub writes connection states once a second
echo "sim RSS $(($(rss_kib "$SIM_PID") / 1024)) MiB, server RSS $(($(rss_kib "$FERRY_PID") / 1024)) MiB"

waves=()
[ -n "${WAVES:-}" ] && waves=(--waves "$WAVES")
rate=(--command-rate "${COMMAND_RATE:-1000}")
echo "command: ferry migrate create --device-group movers --target-dps dps-b --device-timeout 120s ${waves[*]} ${rate[*]}"
f migrate create -g bench -n m1 --source-hub hub-a --device-group movers --target-dps dps-b --device-timeout 120s \
  "${waves[@]}" "${rate[@]}" -o json >/dev/null
f migrate preflight -g bench -n m1 -o json | python3 -c 'import json,sys; p=json.load(sys.stdin); print("preflight:", {k: v for k, v in p.items() if not isinstance(v, list)})' || true
c0=$(cpu_ms "$FERRY_PID"); s0=$(cpu_ms "$SIM_PID")
if [ -n "${PROFILE:-}" ]; then
  for who in "ferry:$FERRY_PID" "sim:$SIM_PID"; do
    (perf record -F 499 -g -o "$BENCH_TMP/perf-${who%%:*}.data" -p "${who#*:}" -- sleep 15 >/dev/null 2>&1
     perf report -i "$BENCH_TMP/perf-${who%%:*}.data" --children -g none --sort symbol --percent-limit 1.5 --stdio 2>/dev/null |
       grep -v "^$" | head -80 >"${PROFILE_OUT:-/tmp/migrate-perf}-${who%%:*}.txt") &
  done
fi
t1=$(now)
f migrate start -g bench -n m1 >/dev/null
# Poll rather than --watch, which follows a paused migration for ever.
while :; do
  state=$(f migrate status -g bench -n m1 -o json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["state"]); print(s, file=sys.stderr)' 2>"$BENCH_TMP/status.json")
  case $state in Completed | Failed | Cancelled | Paused) break ;; esac
  sleep 0.5
done
t2=$(now)
cat "$BENCH_TMP/status.json"
c1=$(cpu_ms "$FERRY_PID"); s1=$(cpu_ms "$SIM_PID")
echo "migration of $n devices: $(secs "$t1" "$t2") s from 'migrate start' to $state (status polled every 0.5 s)"
echo "CPU during the migration: server $((c1 - c0)) ms, sim $((s1 - s0)) ms (sim workers not included)"
f migrate report -g bench -n m1 -o json >"$BENCH_TMP/report.json"
"$BENCH_TMP/migtool" phases <"$BENCH_TMP/report.json"

sleep "${INTERVAL%s}" # every device sends at least once more at the target
stop_sim
final=$(grep '"devices"' "$BENCH_TMP/sim.out" | tail -n 1)
echo "sim final: $final"
sent=$(echo "$final" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["sent"] if s["queued"] == 0 else -1)')
kill "$FERRY_PID"; wait "$FERRY_PID" 2>/dev/null || true; FERRY_PID=
"$BENCH_TMP/migtool" seqcheck --export "$BENCH_TMP/data/export" --prefix sim- --count "$n" --sent "$sent"
machine
