"""Prints the figures of loadgen result lines read from stdin, labelled argv[1]."""
import json
import sys


def show(label, r):
    parts = [f"ok {r['ok']}", f"failed {r['failed']}", f"{r['per_second']:,}/s over {r['seconds']:.2f} s",
             f"latency p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms"]
    if r.get("resumed"):
        parts.append(f"resumed {r['resumed']}")
    if r.get("server_cpu_ms") and r["ok"]:
        parts.append(f"server CPU {r['server_cpu_ms'] * 1000 // r['ok']} µs per session (this pass, closing excluded)")
    if r.get("errors"):
        parts.append(f"errors {r['errors']}")
    print(f"{label}: " + ", ".join(parts), flush=True)


for line in sys.stdin:
    try:
        r = json.loads(line)
    except ValueError:
        print(line, end="")
        continue
    if r.get("type") != "result":
        continue
    show(sys.argv[1], r)
    if r.get("reconnect"):
        show(sys.argv[1] + " (reconnect, TLS resumption)", r["reconnect"])
