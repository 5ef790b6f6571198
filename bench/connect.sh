#!/usr/bin/env bash
# Device sessions per second over TLS (SAS auth), with the load generator
# on the same machine: (1) hub CONNECT of pre-created devices, full
# handshakes, Go's default key exchange offer and P-256 only, then a
# reconnect with TLS session resumption; (2) DPS registration with a
# group-derived key and then the hub CONNECT (devices self-register).
# Usage: bench/connect.sh [devices]   (default 6000)
source "$(dirname "$0")/lib.sh"
n=${1:-6000}
start_ferry
lg -n "$n" -c 32 create | summary "create $n identities (PUT /devices, 32 parallel)"
echo "command: loadgen -n $n --procs 2 -c 64 --reconnect connect"
lg -n "$n" --procs 2 -c 64 --reconnect connect | summary "hub CONNECT, default key exchange offer"
lg -n "$n" --procs 2 -c 64 --curve p256 connect | summary "hub CONNECT, P-256 only"
dn=$((n / 3))
echo "command: loadgen -n $dn --offset 1000000 --procs 2 -c 1000 --dps --id-scope SCOPE connect"
lg -n "$dn" --offset 1000000 --procs 2 -c 1000 --dps --id-scope "$ID_SCOPE" connect | summary "DPS register (wait retry-after 1 s) + hub CONNECT"
echo "command: loadgen -n $dn --offset 2000000 --procs 2 -c 64 --dps --honor-retry-after=false --id-scope SCOPE connect"
lg -n "$dn" --offset 2000000 --procs 2 -c 64 --dps --honor-retry-after=false --id-scope "$ID_SCOPE" connect | summary "DPS register (poll at once) + hub CONNECT"
machine
