#!/usr/bin/env bash
# extstore.sh compares mnemo's persistent engine with memcached's extstore
# on a data set larger than memory (issue 14): the same items, the same
# -m, each server's disk tier on a directory of its own. Each server is
# filled with every key once, then read RUNS times in alternation with
# uniform gets over all keys for DURATION; the table gives the hit ratio,
# ops/s, p99, the server's CPU per request, its RSS and the disk its
# directory holds.
#
# Usage: bench/extstore.sh [-r RUNS] [-d DURATION] [-o OUTDIR] [-n ITEMS] [-v VALUE_SIZE] [-m MB]
#   defaults: 3 runs of 10s, 5,000,000 items of 100 bytes (15-byte keys), -m 64
#
# memcached: -m MB -o ext_path=DIR/extstore:SIZE (SIZE 4x the data)
# mnemo:     -m MB --engine persistent --engine-config path=DIR
# Environment: EXTOPTS (more memcached -o options, such as
# ext_item_size=64: by default memcached keeps items under 512 bytes in
# memory only), FILLCONNS and FILLDEPTH (the fill's connections and
# pipeline depth, default 50 and 16: extstore flushes to disk in the
# background, and a fast fill evicts items it has not flushed yet),
# SERVER_CPUS (0), CLIENT_CPUS (1), MEMCACHED (memcached),
# BIN (/tmp/mnemo-bench-bin), NOBUILD=1, DIR (a directory on the disk to
# use, default a new one under /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
DUR=10s
OUT=""
ITEMS=5000000
VSIZE=100
MEM=64
while getopts "r:d:o:n:v:m:h" opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	d) DUR=$OPTARG ;;
	o) OUT=$OPTARG ;;
	n) ITEMS=$OPTARG ;;
	v) VSIZE=$OPTARG ;;
	m) MEM=$OPTARG ;;
	*) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2 ;;
	esac
done
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
MEMCACHED=${MEMCACHED:-memcached}
BIN=${BIN:-/tmp/mnemo-bench-bin}
OUT=${OUT:-/tmp/mnemo-bench-results/extstore-$(date +%Y%m%d-%H%M%S)}
DIR=${DIR:-$(mktemp -d /var/tmp/mnemo-extstore.XXXXXX)}
. bench/lib.sh
mkdir -p "$OUT"
build_bins "$BIN" mnemo-bench
EXTSIZE=$(( (ITEMS * (VSIZE + 64) * 4 >> 20) + 64 ))M
{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -srm), $(nproc) CPUs; disk: $(df -h "$DIR" | awk 'NR==2{print $1, $2}')"
	echo "memcached: $($MEMCACHED -V 2>&1 | head -1)"
	echo "mnemo: $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty), $(go version | cut -d' ' -f3)"
	echo "$ITEMS items of $VSIZE B, -m $MEM; runs $RUNS of $DUR; servers on CPUs $SERVER_CPUS, generator on $CLIENT_CPUS"
} | tee "$OUT/env.txt"

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"' EXIT

LOAD=(-conns 50 -keys "$ITEMS" -key-size 15 -value-size "$VSIZE")
declare -A port pid dir
for s in memcached mnemo; do
	port[$s]=$(free_port)
	dir[$s]=$DIR/$s
	mkdir -p "${dir[$s]}"
	if [ $s = memcached ]; then
		cmd=("$MEMCACHED" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p "${port[$s]}" -m "$MEM" -c 4096 -o "ext_path=${dir[$s]}/extstore:$EXTSIZE${EXTOPTS:+,$EXTOPTS}")
	else
		cmd=("$BIN/mnemo" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p "${port[$s]}" -m "$MEM" -c 4096 --engine persistent --engine-config "path=${dir[$s]}")
	fi
	echo "start: taskset -c $SERVER_CPUS ${cmd[*]}" | tee -a "$OUT/commands.txt"
	taskset -c "$SERVER_CPUS" "${cmd[@]}" >>"$OUT/$s.log" 2>&1 &
	pid[$s]=$!
	PIDS+=("${pid[$s]}")
	wait_port "${port[$s]}"
	fill=("$BIN/mnemo-bench" -json -server "127.0.0.1:${port[$s]}" -server-pid "${pid[$s]}" "${LOAD[@]}" -conns "${FILLCONNS:-50}" -fill -fill-pipeline "${FILLDEPTH:-16}" -ratio 0:1 -requests 1 -duration 0)
	echo "fill: taskset -c $CLIENT_CPUS ${fill[*]}" | tee -a "$OUT/commands.txt"
	taskset -c "$CLIENT_CPUS" "${fill[@]}" >"$OUT/$s-fill.json"
done

for i in $(seq 1 "$RUNS"); do
	for s in memcached mnemo; do
		run=("$BIN/mnemo-bench" -json -server "127.0.0.1:${port[$s]}" -server-pid "${pid[$s]}" "${LOAD[@]}" -ratio 0:1 -duration "$DUR" -warmup 1s -seed "$i" -label "$s run $i")
		echo "run: taskset -c $CLIENT_CPUS ${run[*]}" >>"$OUT/commands.txt"
		taskset -c "$CLIENT_CPUS" "${run[@]}" >"$OUT/$s-$i.json"
		du -s -B1 "${dir[$s]}" | cut -f1 >"$OUT/$s-$i.disk"
	done
done

$PY - "$OUT" <<'EOF' | tee "$OUT/results.md"
import json, os, statistics, sys
out = sys.argv[1]
def runs(s):
    i = 1
    while os.path.exists(f"{out}/{s}-{i}.json"):
        d = json.load(open(f"{out}/{s}-{i}.json"))
        sp = d.get("server_process") or {}
        yield {
            "hit ratio": d["hit_ratio"],
            "ops/s": d["ops_per_sec"],
            "p99 (µs)": d["latency_us"]["p99"],
            "server CPU per request (µs)": sp.get("cpu_us_per_op", 0),
            "RSS (MB)": sp.get("rss_bytes", 0) / 1e6,
            "disk (MB)": int(open(f"{out}/{s}-{i}.disk").read()) / 1e6,
        }
        i += 1
mc, mn = list(runs("memcached")), list(runs("mnemo"))
fill = {s: json.load(open(f"{out}/{s}-fill.json")).get("fill", {}) for s in ("memcached", "mnemo")}
print("| figure | memcached extstore | mnemo persistent | ratio |")
print("|---|---|---|---|")
f = {s: fill[s].get("ops_per_sec", 0) for s in fill}
print(f"| fill (sets/s) | {f['memcached']:,.0f} | {f['mnemo']:,.0f} | {f['mnemo'] / f['memcached'] if f['memcached'] else float('nan'):.2f}x |")
for k in mc[0]:
    a = statistics.median(r[k] for r in mc)
    b = statistics.median(r[k] for r in mn)
    fmt = "{:.4f}" if k == "hit ratio" else "{:,.1f}" if "MB" in k or "CPU" in k else "{:,.0f}"
    print(f"| {k} | {fmt.format(a)} | {fmt.format(b)} | {b / a if a else float('nan'):.2f}x |")
print(f"\n{len(mc)}+{len(mn)} runs")
EOF
