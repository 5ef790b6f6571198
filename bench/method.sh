#!/usr/bin/env bash
# Direct-method round trip: the service side calls POST /twins/{id}/methods
# on Ferry's hub service API (HTTPS, bearer token) for devices connected
# over MQTT with TLS that answer at once; timed from the request to the
# HTTP response. One call at a time, then 32 at once.
# Usage: bench/method.sh [devices] [calls]   (default 100 2000)
source "$(dirname "$0")/lib.sh"
n=${1:-100}
calls=${2:-2000}
start_ferry
lg -n "$n" -c 32 create | summary "create $n identities"
echo "command: loadgen -n $n --calls $((calls / 4)) -c 1 method"
lg -n "$n" --calls $((calls / 4)) -c 1 method | summary "methods, 1 at a time"
echo "command: loadgen -n $n --calls $calls -c 32 method"
lg -n "$n" --calls "$calls" -c 32 method | summary "methods, 32 at a time"
machine
