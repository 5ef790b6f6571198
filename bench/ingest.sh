#!/usr/bin/env bash
# QoS 1 telemetry ingest from 1,000 connected devices, Ferry (durable export
# sink on: a PUBACK only after the fsync) side by side with Mosquitto on the
# same machine, driven by the same load generator with the same topics and
# 256-byte payloads; each device publishes in a closed loop (next PUBLISH
# after the PUBACK). Over TLS (Mosquitto with Ferry's server certificate)
# and over plain TCP. Mosquitto runs with its defaults: no persistence, no
# auth, and nothing subscribed, so it only acknowledges.
# Usage: bench/ingest.sh [devices] [seconds]   (default 1000 15)
source "$(dirname "$0")/lib.sh"
n=${1:-1000}
secs=${2:-15}
MOSQ_TLS=${MOSQ_TLS:-28885}
MOSQ_PLAIN=${MOSQ_PLAIN:-28886}
start_ferry
lg -n "$n" -c 32 create | summary "create $n identities"
# Mosquitto drops to its own user when started as root: give it copies it
# can read (a throwaway benchmark key).
MQ="$BENCH_TMP/mosquitto"
mkdir -p "$MQ" && cp "$BENCH_TMP"/data/pki/{ca.crt,server.crt,server.key} "$MQ"/ && chmod 755 "$BENCH_TMP" "$MQ" && chmod 644 "$MQ"/*
cat >"$MQ/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous true
max_keepalive 65535
listener $MOSQ_TLS 127.0.0.1
cafile $MQ/ca.crt
certfile $MQ/server.crt
keyfile $MQ/server.key
listener $MOSQ_PLAIN 127.0.0.1
CONF
mosquitto -c "$MQ/mosquitto.conf" >"$MQ/mosquitto.log" 2>&1 &
MOSQ_PID=$!
trap 'kill $MOSQ_PID 2>/dev/null || true; cleanup' EXIT
sleep 0.5
kill -0 "$MOSQ_PID" 2>/dev/null || { cat "$MQ/mosquitto.log" >&2; exit 1; }
echo "command: loadgen -n $n -c 64 --duration ${secs}s [--target mqtt] [--tls=false] --mqtt ADDR telemetry"
measured "Ferry, TLS" "$FERRY_PID" -n "$n" -c 64 --duration "${secs}s" telemetry
measured "Mosquitto $(mosquitto -h | head -1 | cut -d' ' -f3), TLS" "$MOSQ_PID" -n "$n" -c 64 --duration "${secs}s" --target mqtt --mqtt "127.0.0.1:$MOSQ_TLS" telemetry
measured "Ferry, plain TCP" "$FERRY_PID" -n "$n" -c 64 --duration "${secs}s" --tls=false --mqtt "127.0.0.1:$MQTT_PLAIN_PORT" telemetry
measured "Mosquitto, plain TCP" "$MOSQ_PID" -n "$n" -c 64 --duration "${secs}s" --tls=false --target mqtt --mqtt "127.0.0.1:$MOSQ_PLAIN" telemetry
echo "Ferry export files: $(find "$BENCH_TMP/data/export" -type f | wc -l), $(du -sh "$BENCH_TMP/data/export" | cut -f1)"
machine
