#!/usr/bin/env python3
"""table.py OUTDIR: the ratio table of a bench/compare.sh run.

Reads the mnemo-bench JSON files that compare.sh wrote to OUTDIR
(<scenario>-<server>-<run>.json), takes the median of the runs of each
metric per server and prints a Markdown table of mnemo/memcached ratios
against the goals of issue 6.
"""
import glob
import json
import os
import re
import statistics
import sys


def load(outdir):
    runs = {}  # (scenario, server, phase) -> [result]
    for f in sorted(glob.glob(os.path.join(outdir, "*.json"))):
        m = re.match(r"(.+)-(memcached|mnemo)-(?:(steady|poke|gc)-)?(\d+)\.json$", os.path.basename(f))
        if not m:
            continue
        with open(f) as fh:
            try:
                r = json.load(fh)
            except json.JSONDecodeError:
                continue
        runs.setdefault((m.group(1), m.group(2), m.group(3) or ""), []).append(r)
    return runs


def get(r, path):
    if path == "@rss_per_live":
        # The server's RSS after the run over the bytes of the items it
        # holds (keys and values; every key was filled).
        rss = get(r, "server_process.rss_bytes")
        live = (r.get("keys") or 0) * ((r.get("key_size") or 0) + (r.get("value_size") or 0))
        return rss / live if rss and live else None
    for p in path.split("."):
        if r is None:
            return None
        r = r.get(p)
    return r


def med(rs, path):
    vals = [get(r, path) for r in rs]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if unit == "MB":
        return f"{v / 1e6:.1f} MB"
    if unit == "B":
        return f"{v:.0f} B"
    if unit == "ratio":
        return f"{v:.4f}"
    if unit == "ops":
        return f"{v:,.0f}"
    if unit == "x":
        return f"{v:.3f}x"
    if unit == "f2":
        return f"{v:.2f}"
    if unit == "usf":
        return f"{v:.2f} µs"
    if unit == "us":
        return f"{v:.0f} µs"
    return f"{v}"


# scenario -> list of (metric label, json path, unit, goal: (op, bound) on the ratio)
METRICS = {
    "tput": [
        ("throughput (ops/s)", "ops_per_sec", "ops", (">=", 1.0)),
        ("p99 latency", "latency_us.p99", "us", ("<=", 1.0)),
        ("p50 latency", "latency_us.p50", "us", None),
        ("p99.9 latency", "latency_us.p99_9", "us", None),
        ("server CPU per request", "server_process.cpu_us_per_op", "usf", None),
        ("server CPU (cores busy)", "server_process.cpu_utilization", "f2", None),
        ("generator CPU (cores busy)", "server_process.client_cpu_utilization", "f2", None),
    ],
    "churn16k": [
        ("RSS after the run", "server_process.rss_bytes", "MB", None),
        ("RSS / live bytes (goal <= 1.2)", "@rss_per_live", "x", None),
        ("throughput (ops/s)", "ops_per_sec", "ops", None),
        ("p99 latency", "latency_us.p99", "us", None),
        ("server CPU per request", "server_process.cpu_us_per_op", "usf", None),
    ],
    "hit-zipf": [("hit ratio", "hit_ratio", "ratio", (">=", 1.0))],
    "idle-10k": [("memory per idle connection", "idle.bytes_per_conn", "B", ("<=", 1.0))],
    "tls-idle-10k": [("memory per idle TLS connection", "idle.bytes_per_conn", "B", ("<=", 1.0))],
    "handshake": [
        ("new connections per second", "handshakes.conns_per_sec", "ops", (">=", 1.0)),
        ("connection latency p50", "handshakes.latency_us.p50", "us", None),
        ("connection latency p99", "handshakes.latency_us.p99", "us", ("<=", 1.0)),
        ("server CPU per connection", "server_process.cpu_us_per_op", "usf", None),
        ("resumed connections", "handshakes.resumed", "ops", None),
    ],
}


def metrics_for(sc):
    if sc.startswith(("tput", "mget", "conns")) or sc in ("tls-p1", "tls-p16", "tls-16k-p1", "tls-16k-p16"):
        return METRICS["tput"]
    if sc in ("tls-handshake", "tls-resume", "tls-handshake-pq"):
        return METRICS["handshake"]
    if sc.startswith("rss-"):
        return [("RSS after the fill", "server_process.rss_after_fill_bytes", "MB", ("<=", 0.7))]
    return METRICS.get(sc, [])


def verdict(ratio, goal):
    if goal is None or ratio is None:
        return ""
    op, bound = goal
    ok = ratio >= bound if op == ">=" else ratio <= bound
    return f"{op} {bound}: {'met' if ok else 'NOT met'}"


def main():
    outdir = sys.argv[1]
    runs = load(outdir)
    env = ""
    p = os.path.join(outdir, "env.txt")
    if os.path.exists(p):
        env = open(p).read().strip()
    print("```")
    print(env)
    print("```")
    print()
    print("| scenario | metric | memcached | mnemo | mnemo/memcached | goal | runs |")
    print("|---|---|---|---|---|---|---|")
    scenarios = sorted({k[0] for k in runs}, key=lambda s: list(runs).index(next(k for k in runs if k[0] == s)))
    for sc in scenarios:
        if sc == "gc-10m":
            continue
        mc, mn = runs.get((sc, "memcached", ""), []), runs.get((sc, "mnemo", ""), [])
        for label, path, unit, goal in metrics_for(sc):
            a, b = med(mc, path), med(mn, path)
            ratio = b / a if a and b is not None else None
            print(f"| {sc} | {label} | {fmt(a, unit)} | {fmt(b, unit)} | {fmt(ratio, 'ratio') if ratio is not None else '-'} | {verdict(ratio, goal)} | {len(mc)}+{len(mn)} |")
        bad = sum((r.get("bad_values", 0) or 0) + (r.get("protocol_errors", 0) or 0) for r in mc + mn)
        if bad:
            print(f"| {sc} | bad values + protocol errors | | | {bad} | must be 0 | |")
    if any(k[0] == "gc-10m" for k in runs):
        print()
        print("| scenario | server | p99.9 steady | p99.9 poke | p99.9 gc | gc / steady | gc / poke | goal (gc / steady) | runs |")
        print("|---|---|---|---|---|---|---|---|---|")
        for s in ("memcached", "mnemo"):
            st = runs.get(("gc-10m", s, "steady"), [])
            pk = runs.get(("gc-10m", s, "poke"), [])
            gc = runs.get(("gc-10m", s, "gc"), [])
            a, p, b = med(st, "latency_us.p99_9"), med(pk, "latency_us.p99_9"), med(gc, "latency_us.p99_9")
            r1 = b / a if a and b is not None else None
            r2 = b / p if p and b is not None else None
            goal = ("<=", 2.0) if s == "mnemo" else None
            name = s if s == "mnemo" else s + " (control: no GC, no poking)"
            print(f"| gc-10m | {name} | {fmt(a, 'us')} | {fmt(p, 'us')} | {fmt(b, 'us')} | {fmt(r1, 'ratio') if r1 else '-'} | {fmt(r2, 'ratio') if r2 else '-'} | {verdict(r1, goal)} | {len(st)}+{len(pk)}+{len(gc)} |")


if __name__ == "__main__":
    main()
