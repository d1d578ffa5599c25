#!/usr/bin/env bash
# ab-mnemo.sh compares two mnemo binaries (say, before and after a
# change) at pipeline 1 and 16: both servers -t 1 on CPU 0, the load
# generator on CPU 1, each filled once, then ROUNDS rounds of 5 s runs in
# alternation (old p1, old p16, new p1, new p16). Prints the medians of
# ops/s, p99 and server CPU per request.
#
# Usage: bench/ab-mnemo.sh OLD_MNEMO NEW_MNEMO MNEMO_BENCH [ROUNDS]
set -euo pipefail
OLD=$(realpath "$1") NEW=$(realpath "$2") BENCHBIN=$(realpath "$3") ROUNDS=${4:-4}
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=$(mktemp -d /tmp/ab-mnemo.XXXXXX)
ulimit -n "$(ulimit -Hn)"
L=(-conns 50 -ratio 1:10 -keys 100000 -key-size 15 -value-size 100)
declare -A BIN=([old]=$OLD [new]=$NEW) PORT PID
for v in old new; do
	PORT[$v]=$(free_port)
	taskset -c 0 "${BIN[$v]}" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p "${PORT[$v]}" -t 1 -m 1024 -c 4096 >"$OUT/$v.log" 2>&1 &
	PID[$v]=$!
done
stop() { kill "${PID[old]}" "${PID[new]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT
for v in old new; do
	wait_port "${PORT[$v]}"
done
for v in old new; do
	taskset -c 1 "$BENCHBIN" -server "127.0.0.1:${PORT[$v]}" "${L[@]}" -fill -duration 2s -pipeline 1 >/dev/null
done
for i in $(seq 1 "$ROUNDS"); do
	for v in old new; do
		for pl in 1 16; do
			taskset -c 1 "$BENCHBIN" -server "127.0.0.1:${PORT[$v]}" -server-pid "${PID[$v]}" "${L[@]}" \
				-pipeline "$pl" -duration 5s -warmup 1s -seed "$i" -json >"$OUT/$v-p$pl-$i.json"
		done
	done
done
"$PY" - "$OUT" "$ROUNDS" <<'PY'
import json, statistics as st, sys
out, n = sys.argv[1], int(sys.argv[2])
for pl in (1, 16):
    for v in ("old", "new"):
        rs = [json.load(open(f"{out}/{v}-p{pl}-{i}.json")) for i in range(1, n + 1)]
        med = lambda f: st.median(f(r) for r in rs)
        print(f"pipeline {pl:2} {v}: ops/s {med(lambda r: r['ops_per_sec']):,.0f}  "
              f"p99 {med(lambda r: r['latency_us']['p99']):,.0f} us  "
              f"server CPU/request {med(lambda r: r['server_process']['cpu_us_per_op']):.2f} us")
PY
echo "runs in $OUT"
