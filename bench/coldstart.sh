#!/usr/bin/env bash
# Measures cold start: from exec of `ferry serve` with an empty data
# directory (so the schema, the CA, the server certificate, the signing key
# and the administrator are all created) to the first 200 from /readyz.
# Usage: bench/coldstart.sh [runs]    (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
bin=$(mktemp -d)/ferry
go build -o "$bin" ./cmd/ferry
port=18080
times=()
for i in $(seq 1 "$runs"); do
  data=$(mktemp -d)
  t0=$(date +%s%N)
  FERRY_ADMIN_PASSWORD=bench-password "$bin" serve --data "$data" --http "127.0.0.1:$port" \
    --https 127.0.0.1:0 --mqtt 127.0.0.1:0 >/dev/null 2>&1 &
  pid=$!
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "ferry exited early" >&2; exit 1; fi
    sleep 0.005
  done
  t1=$(date +%s%N)
  kill "$pid"; wait "$pid" || true
  rm -rf "$data"
  times+=($(( (t1 - t0) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
n=${#sorted[@]}
echo "cold start to /readyz over $n runs (ms): min ${sorted[0]}, median ${sorted[$((n/2))]}, max ${sorted[$((n-1))]}"
echo "all: ${times[*]}"
