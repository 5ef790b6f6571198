#!/usr/bin/env bash
# Device sessions per second over TLS (SAS auth), with the load generator
# on the same machine: (1) hub CONNECT of pre-created devices, full
# handshakes, Go's default key exchange offer and P-256 only, each followed
# by a reconnect of the same devices with TLS session resumption (the
# P-256 one is what SDKs with a session cache and a classical curve do);
# (2) DPS registration with a group-derived key and then the hub CONNECT
# (devices self-register). Each pass also reports the server's CPU time
# per session over that pass (--server-pid).
# Usage: bench/connect.sh [devices]   (default 6000)
source "$(dirname "$0")/lib.sh"
n=${1:-6000}
start_ferry
lg -n "$n" -c 32 create | summary "create $n identities (PUT /devices, 32 parallel)"
echo "command: loadgen -n $n --procs 2 -c 64 --reconnect --server-pid PID connect"
measured "hub CONNECT, default key exchange offer" "$FERRY_PID" -n "$n" --procs 2 -c 64 --reconnect --server-pid "$FERRY_PID" connect
echo "command: loadgen -n $n --procs 2 -c 64 --curve p256 --reconnect --server-pid PID connect"
measured "hub CONNECT, P-256 only" "$FERRY_PID" -n "$n" --procs 2 -c 64 --curve p256 --reconnect --server-pid "$FERRY_PID" connect
dn=$((n / 3))
echo "command: loadgen -n $dn --offset 1000000 --procs 2 -c 1000 --dps --id-scope SCOPE connect"
measured "DPS register (wait retry-after 1 s) + hub CONNECT" "$FERRY_PID" -n "$dn" --offset 1000000 --procs 2 -c 1000 --dps --id-scope "$ID_SCOPE" --server-pid "$FERRY_PID" connect
echo "command: loadgen -n $dn --offset 2000000 --procs 2 -c 64 --dps --honor-retry-after=false --id-scope SCOPE connect"
measured "DPS register (poll at once) + hub CONNECT" "$FERRY_PID" -n "$dn" --offset 2000000 --procs 2 -c 64 --dps --honor-retry-after=false --id-scope "$ID_SCOPE" --server-pid "$FERRY_PID" connect
machine
