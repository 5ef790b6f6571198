#!/usr/bin/env bash
# Resident memory per idle connected device: RSS of the ferry process
# (/proc/PID/status VmRSS) with 0, 5,000 and 19,000 idle devices connected
# over MQTT with TLS (SAS auth, CONNECT then nothing but PINGREQ), divided
# by the devices. The identities are created first with parallel
# PUT /devices; the 19,000 devices come from two load-generator processes
# dialing from 127.0.0.2 and 127.0.0.3 (at most 20,000 open files each).
# Usage: bench/memory.sh
source "$(dirname "$0")/lib.sh"
start_ferry
lg -n 19000 -c 32 create | summary "create 19000 identities (PUT /devices, 32 parallel)"
metrics() {
  curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk '
    /^go_memstats_heap_inuse_bytes / {h=$2} /^go_memstats_stack_inuse_bytes / {s=$2} /^go_goroutines / {g=$2}
    END {printf "heap in use %.1f MiB, stacks %.1f MiB, goroutines %d", h/1048576, s/1048576, g}'
}
sleep 2
base=$(rss_kib "$FERRY_PID")
echo "baseline: RSS $((base / 1024)) MiB, $(metrics)"
hold() {
  local n=$1 procs=$2
  echo "command: loadgen -n $n --procs $procs -c 64 --hold 10m idle"
  # exec, so that $! is the load generator itself and kill reaches it
  (exec "$BENCH_TMP/loadgen" --https "https://127.0.0.1:$HTTPS_PORT" --ca "$BENCH_TMP/data/pki/ca.crt" \
    --mqtt "127.0.0.1:$MQTT_PORT" -n "$n" --procs "$procs" -c 64 --hold 10m idle >"$BENCH_TMP/idle.out") &
  local pid=$!
  until grep -q '"ready"' "$BENCH_TMP/idle.out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "loadgen exited" >&2; exit 1; }
    sleep 0.2
  done
  sleep 5
  local rss
  rss=$(rss_kib "$FERRY_PID")
  echo "$n idle devices: RSS $((rss / 1024)) MiB, +$(((rss - base) / 1024)) MiB, $(((rss - base) * 1024 / n / 1024)).$(( ((rss - base) * 1024 / n % 1024) * 10 / 1024 )) KiB per device; $(metrics)"
  kill "$pid"
  wait "$pid" || true
  summary "$n idle devices, connected and held" <"$BENCH_TMP/idle.out"
  sleep 3
}
hold 5000 1
hold 19000 2
machine
