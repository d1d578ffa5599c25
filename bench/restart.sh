#!/bin/bash
# restart.sh: how long a restart with -e takes, mnemo beside memcached.
#
#   bench/restart.sh [ITEMS]      (default 1000000)
#
# Each server stores ITEMS items (15-byte keys, 100-byte values, filled by
# mnemo-bench) in a memory file on /dev/shm, is stopped, and is started
# again on the same file; the time is from the exec to the first reply
# that hits the last key stored (mnemo answers only once its index is
# rebuilt, memcached once it has restored its file). Runs: mnemo after
# SIGUSR1 (graceful) and after SIGKILL (crash); memcached after SIGUSR1
# (its -e restores only a graceful stop). Also prints how many of a sample
# of 1000 keys each restart served. Environment: MEMCACHED (default
# memcached), BIN (default /tmp/mnemo-bench-bin), PORT (default 22122).
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${1:-1000000}
MEMCACHED=${MEMCACHED:-memcached}
BIN=${BIN:-/tmp/mnemo-bench-bin}
PORT=${PORT:-22122}
MEM=$(( ITEMS / 1000000 * 256 + 256 ))
. bench/lib.sh
build_bins "$BIN" mnemo-bench
FILE=/dev/shm/restart-bench.$$
trap 'rm -f $FILE; kill $(jobs -p) 2>/dev/null || true' EXIT

# ready PID: waits until the server answers a get of the last key with a
# hit and prints the seconds since START_NS; then counts hits in a sample.
ready() {
	"$PY" - "$PORT" "$ITEMS" "$START_NS" <<'PY'
import socket, sys, time
port, items, start = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
last = b"key:%011d" % (items - 1)
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        break
    except OSError:
        time.sleep(0.001)
f = s.makefile("rb")
def get(k):
    s.sendall(b"get " + k + b"\r\n")
    line = f.readline()
    if line.startswith(b"VALUE"):
        f.read(int(line.split()[3]) + 2); f.readline()
        return True
    return False
deadline = time.time() + 20
while not get(last):
    if time.time() > deadline:
        print("the last key never came back (20 s): the restart started empty")
        sys.exit(0)
    time.sleep(0.001)
t = (time.time_ns() - start) / 1e9
step = max(1, items // 1000)
hits = sum(get(b"key:%011d" % i) for i in range(0, items, step))
print("%.3f s to the first hit of the last key; %d of %d sampled keys served" % (t, hits, len(range(0, items, step))))
PY
}

run() { # name stop-signal command...
	local name=$1 sig=$2; shift 2
	rm -f $FILE
	"$@" & local pid=$!
	sleep 0.5
	"$BIN/mnemo-bench" -server 127.0.0.1:$PORT -keys "$ITEMS" -fill -requests 1 -conns 4 >/dev/null
	kill -$sig $pid; wait $pid || true
	# memcached refuses a restart in the same second as its stop
	# ("restart incompatible due to setting for [stop_time]"); the pause
	# is outside the measured time.
	sleep 2
	START_NS=$(date +%s%N)
	"$@" & pid=$!
	echo -n "$name: "; ready
	kill $pid; wait $pid || true
}

echo "$ITEMS items, -m $MEM, file on /dev/shm"
run "mnemo after SIGUSR1" USR1 "$BIN/mnemo" -p $PORT -U 0 -l 127.0.0.1 -m $MEM -e $FILE "${USER_FLAG[@]}"
run "mnemo after SIGKILL" KILL "$BIN/mnemo" -p $PORT -U 0 -l 127.0.0.1 -m $MEM -e $FILE "${USER_FLAG[@]}"
run "memcached after SIGUSR1" USR1 "$MEMCACHED" -p $PORT -U 0 -l 127.0.0.1 -m $MEM -e $FILE "${USER_FLAG[@]}"
