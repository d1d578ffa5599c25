#!/usr/bin/env bash
# persistent-rss.sh measures where the persistent engine's memory goes
# beyond -m (issue 14): a fresh server (-m 64, on SERVER_CPUS, default 0)
# is filled with ITEMS items (default 5,000,000; 15 B keys, 100 B values)
# by mnemo-bench on CLIENT_CPUS (default 1), rests REST seconds (default
# 5), and then its VmRSS, VmHWM and Go MemStats (from --pprof) are read.
# The memory engine gets the same load as the baseline. RUNS rounds
# (default 2), the servers in alternation.
#
# Usage: bench/persistent-rss.sh [-r RUNS] [-n ITEMS] [-o OUTDIR] [-c ENGINE_CONFIG_EXTRA]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=2
ITEMS=5000000
OUT=""
EXTRA=""
while getopts "r:n:o:c:h" opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	n) ITEMS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	c) EXTRA=",$OPTARG" ;;
	*) sed -n '2,10p' "$0"; exit 2 ;;
	esac
done
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
REST=${REST:-5}
BIN=${BIN:-/tmp/mnemo-rss-bin}
OUT=${OUT:-/tmp/mnemo-bench-results/persistent-rss-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
. bench/lib.sh
build_bins "$BIN" mnemo-bench

PID=""
trap stop_server EXIT

# one NAME ENGINEARGS...: one measured run.
one() {
	local name=$1
	shift
	local port pport dir
	port=$(free_port)
	pport=$(free_port)
	dir=$(mktemp -d)
	taskset -c "$SERVER_CPUS" "$BIN/mnemo" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p "$port" -m 64 \
		--pprof "127.0.0.1:$pport" "${@//DIR/$dir}" >"$OUT/$name.log" 2>&1 &
	PID=$!
	wait_port "$port"
	local t0 t1
	t0=$(date +%s.%N)
	taskset -c "$CLIENT_CPUS" "$BIN/mnemo-bench" -server "127.0.0.1:$port" -keys "$ITEMS" -value-size 100 \
		-fill -requests 1 -ratio 0:1 -conns 16 -json >"$OUT/$name.json"
	t1=$(date +%s.%N)
	sleep "$REST"
	{
		echo "fill_seconds $($PY -c "print(round($t1-$t0,2))")"
		grep -E '^(VmRSS|VmHWM)' "/proc/$PID/status" | awk '{print $1, $2}'
		$PY - "$pport" <<'EOF'
import sys, urllib.request
t = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/debug/pprof/heap?debug=1").read().decode()
for line in t.splitlines():
    line = line.strip()
    for k in ("HeapAlloc", "HeapInuse", "HeapIdle", "HeapReleased", "HeapSys", "Sys", "NextGC", "NumGC", "GCCPUFraction"):
        if line.startswith("# " + k + " = "):
            print(k, line.split(" = ")[1])
EOF
	} >"$OUT/$name.txt"
	curl -s -o "$OUT/$name.heap.pb.gz" "http://127.0.0.1:$pport/debug/pprof/heap" || true
	stop_server
	rm -rf "$dir"
}

for run in $(seq "$RUNS"); do
	one "memory-$run"
	one "persistent-$run" --engine persistent --engine-config "path=DIR$EXTRA"
done

$PY - "$OUT" "$RUNS" >"$OUT/results.md" <<'EOF'
import sys, os, statistics
out, runs = sys.argv[1], int(sys.argv[2])
def read(name):
    d = {}
    for line in open(os.path.join(out, name + ".txt")):
        k, v = line.split(None, 1)
        d[k.rstrip(":")] = float(v.split()[0])
    return d
print("| server | run | fill s | VmRSS MiB | VmHWM MiB | HeapAlloc MiB | HeapIdle-Released MiB | NextGC MiB | NumGC |")
print("|---|---|---|---|---|---|---|---|---|")
for srv in ("memory", "persistent"):
    for r in range(1, runs + 1):
        d = read(f"{srv}-{r}")
        mib = lambda k: d.get(k, float("nan")) / 1048576
        print(f"| {srv} | {r} | {d['fill_seconds']:.1f} | {d['VmRSS']/1024:.1f} | {d['VmHWM']/1024:.1f} | {mib('HeapAlloc'):.1f} | {(d['HeapIdle']-d['HeapReleased'])/1048576:.1f} | {mib('NextGC'):.1f} | {d['NumGC']:.0f} |")
EOF
cat "$OUT/results.md"
