#!/usr/bin/env bash
# perreq.sh counts what a server spends per request under a load:
# user and system CPU time (/proc/PID/stat), voluntary and involuntary
# context switches of all its threads (/proc/PID/task/*/status), and
# read and write system calls (/proc/PID/io syscr, syscw; memcached's
# sendmsg is not counted there: use strace -c -f -p PID for it), over a
# window of the load, divided by the requests served in it (stats
# cmd_get + cmd_set).
#
# Usage: bench/perreq.sh memcached|mnemo VALUE_SIZE KEYS PIPELINE [SERVER FLAGS...]
#   e.g. bench/perreq.sh mnemo 16384 20000 1
#
# The server runs -t 1 -m 2048 -c 4096 on CPU 0, mnemo-bench (50
# connections, 1:10 sets:gets) on CPU 1; the window is 6 s, from 2 s into
# a 9 s run. BIN (default /tmp/mnemo-bench-bin) holds mnemo and
# mnemo-bench (bench/compare.sh builds them there).
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH=$1 VS=$2 KEYS=$3 PIPE=$4
shift 4
BIN=${BIN:-/tmp/mnemo-bench-bin}
. bench/lib.sh
P=$(free_port)
if [ "$WHICH" = memcached ]; then
	taskset -c 0 memcached "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p $P -t 1 -m 2048 -c 4096 "$@" &
else
	taskset -c 0 "$BIN/mnemo" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p $P -t 1 -m 2048 -c 4096 "$@" &
fi
SP=$!
trap 'kill $SP 2>/dev/null || true' EXIT
wait_port "$P"
LOAD=(-conns 50 -ratio 1:10 -keys "$KEYS" -key-size 15 -value-size "$VS")
taskset -c 1 "$BIN/mnemo-bench" -server 127.0.0.1:$P "${LOAD[@]}" -fill -fill-pipeline 16 -duration 1s -pipeline "$PIPE" >/dev/null
taskset -c 1 "$BIN/mnemo-bench" -server 127.0.0.1:$P "${LOAD[@]}" -pipeline "$PIPE" -duration 9s -warmup 1s >/dev/null &
BP=$!
sleep 2
echo -n "$WHICH: "
"$PY" bench/perreq.py $P $SP 6
wait $BP
