#!/usr/bin/env python3
"""scaling.py OUTDIR: the table (and scaling.png) of a bench/scaling.sh run.

OUTDIR holds cpus.txt ("N server-cpus client-cpus" lines) and one
compare.sh result directory per thread count (tN/). For each N and server
it takes the median throughput and p99 of the runs, prints a Markdown
table with the ratios mnemo/memcached, and, when matplotlib is installed
(Debian python3-matplotlib), draws throughput and p99 against N.
"""
import glob
import json
import os
import re
import statistics
import sys


def median_of(files, path):
    vals = []
    for f in files:
        with open(f) as fh:
            r = json.load(fh)
        for p in path.split("."):
            r = r.get(p) if isinstance(r, dict) else None
        if r is not None:
            vals.append(r)
    return statistics.median(vals) if vals else None


def main(outdir):
    rows = []
    with open(os.path.join(outdir, "cpus.txt")) as fh:
        cpus = [line.split() for line in fh if line.strip()]
    for n, server_cpus, client_cpus in cpus:
        d = os.path.join(outdir, "t" + n)
        row = {"n": int(n), "server_cpus": server_cpus, "client_cpus": client_cpus}
        for s in ("memcached", "mnemo"):
            files = [f for f in glob.glob(os.path.join(d, "*-%s-*.json" % s))
                     if re.search(r"-%s-\d+\.json$" % s, f)]
            row[s] = {
                "ops": median_of(files, "ops_per_sec"),
                "p99": median_of(files, "latency_us.p99"),
                "cpu": median_of(files, "server_process.cpu_us_per_op"),
                "runs": len(files),
            }
        rows.append(row)
    print("| -t | server CPUs | generator CPUs | memcached ops/s | mnemo ops/s | ratio | memcached p99 | mnemo p99 | ratio | CPU/request ratio | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["memcached"], r["mnemo"]
        shared = " (shared)" if r["client_cpus"].startswith("0-") else ""

        def ratio(x, y):
            return "%.2f" % (y / x) if x and y else "-"
        print("| %d | %s | %s%s | %s | %s | %s | %s µs | %s µs | %s | %s | %d+%d |" % (
            r["n"], r["server_cpus"], r["client_cpus"], shared,
            "{:,.0f}".format(a["ops"] or 0), "{:,.0f}".format(b["ops"] or 0), ratio(a["ops"], b["ops"]),
            a["p99"], b["p99"], ratio(a["p99"], b["p99"]), ratio(a["cpu"], b["cpu"]),
            a["runs"], b["runs"]))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\n(no scaling.png: python3-matplotlib is not installed)")
        return
    ns = [r["n"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for s, style in (("memcached", "o-"), ("mnemo", "s-")):
        ax1.plot(ns, [r[s]["ops"] for r in rows], style, label=s)
        ax2.plot(ns, [r[s]["p99"] / 1000 if r[s]["p99"] else None for r in rows], style, label=s)
    ax1.set_xlabel("threads (-t) = server cores")
    ax1.set_ylabel("ops/s")
    ax1.set_title("throughput")
    ax2.set_xlabel("threads (-t) = server cores")
    ax2.set_ylabel("p99 (ms)")
    ax2.set_title("p99 latency")
    for ax in (ax1, ax2):
        ax.set_xticks(ns)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    png = os.path.join(outdir, "scaling.png")
    fig.savefig(png, dpi=100)
    print("\n" + png)


if __name__ == "__main__":
    main(sys.argv[1])
