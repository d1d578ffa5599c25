#!/usr/bin/env bash
# budget.sh measures the disk budget of mnemo's persistent engine
# (disk_size=, issue 14) through a running server, and memcached's extstore
# (-o ext_path=FILE:SIZE) on the same load: a writer stores TIMES x the
# budget of incompressible values under new keys (no key is written twice),
# while the store's directory is sampled with du every 0.2 s. Reported per
# server: the peak and the steady (median of the last half of the samples)
# directory size as multiples of the budget, the directory after the
# writes settle, the bytes the server wrote to disk per byte stored
# (/proc/PID/io write_bytes), its CPU seconds, and the get hit ratio
# afterwards over 2,000 keys spread over all the keys written and over the
# newest quarter of the budget's worth of keys.
#
# Usage: bench/budget.sh [-s SIZES] [-t TIMES] [-v VALUE_SIZE] [-m MB] [-S SERVERS] [-o OUTDIR]
#   defaults: -s "8m 64m 1g" -t 4 -v 16384 -m 16 -S "mnemo memcached"
#
# mnemo:     mnemo -m MB --engine persistent --engine-config path=DIR,disk_size=SIZE,warmup=false
# memcached: memcached -m MB -o ext_path=DIR/extstore:SIZE (its ext_path
#            size is rounded up to whole 64 MiB pages: at 8m it is one page)
# Environment: BIN (/tmp/mnemo-bench-bin), NOBUILD=1, DIR (a directory on
# the disk, default a new one under /var/tmp), SERVER_CPUS (0), EXTOPTS
# (more memcached -o options, such as ext_item_age=0).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="8m 64m 1g"
TIMES=4
VSIZE=16384
MEM=16
SERVERS="mnemo memcached"
OUT=""
while getopts "s:t:v:m:S:o:h" opt; do
	case $opt in
	s) SIZES=$OPTARG ;;
	t) TIMES=$OPTARG ;;
	v) VSIZE=$OPTARG ;;
	m) MEM=$OPTARG ;;
	S) SERVERS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2 ;;
	esac
done
BIN=${BIN:-/tmp/mnemo-bench-bin}
OUT=${OUT:-/tmp/mnemo-bench-results/budget-$(date +%Y%m%d-%H%M%S)}
DIR=${DIR:-$(mktemp -d /var/tmp/mnemo-budget.XXXXXX)}
SERVER_CPUS=${SERVER_CPUS:-0}
. bench/lib.sh
mkdir -p "$OUT"
build_bins "$BIN"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -srm), $(nproc) CPUs (shared); disk: $(df -h "$DIR" | awk 'NR==2{print $1, $2}')"
	echo "mnemo: $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty); memcached: $(memcached -V 2>&1 | head -1)"
	echo "budgets $SIZES; ${TIMES}x each written in values of $VSIZE B; -m $MEM"
} | tee "$OUT/env.txt"

PID=""
SAMPLER=""
cleanup() {
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT
bytes() { $PY -c 'import sys; s=sys.argv[1].lower(); m={"k":1<<10,"m":1<<20,"g":1<<30}.get(s[-1],1); print(int(s.rstrip("kmg"))*m)' "$1"; }

echo "| server | budget | written | peak / budget | steady / budget | settled / budget | disk writes / bytes stored | server CPU s | hit ratio, all keys | hit ratio, newest budget/4 |" >"$OUT/results.md"
echo "|---|---|---|---|---|---|---|---|---|---|" >>"$OUT/results.md"
for size in $SIZES; do
	for s in $SERVERS; do
		d=$DIR/$s-$size
		rm -rf "$d"
		mkdir -p "$d"
		p=$(free_port)
		if [ "$s" = memcached ]; then
			cmd=(memcached "${USER_FLAG[@]}" -l 127.0.0.1 -p "$p" -m "$MEM" -o "${EXTOPTS:+$EXTOPTS,}ext_path=$d/extstore:$size")
		else
			cmd=("$BIN/mnemo" "${USER_FLAG[@]}" -l 127.0.0.1 -p "$p" -m "$MEM" --engine persistent --engine-config "path=$d,disk_size=$size,warmup=false")
		fi
		echo "start: taskset -c $SERVER_CPUS ${cmd[*]}" | tee -a "$OUT/commands.txt"
		taskset -c "$SERVER_CPUS" "${cmd[@]}" >>"$OUT/$s-$size.log" 2>&1 &
		PID=$!
		wait_port "$p"
		(set +e; while :; do du -s -B1 "$d" 2>/dev/null | cut -f1; sleep 0.2; done) >"$OUT/$s-$size.du" &
		SAMPLER=$!
		$PY - "$p" "$PID" "$(bytes "$size")" "$TIMES" "$VSIZE" >"$OUT/$s-$size.json" <<'EOF'
import json, os, socket, sys, time
port, pid, budget, times, vsize = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def proc():
    io = dict(l.split(": ") for l in open(f"/proc/{pid}/io").read().split("\n") if l)
    st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(io["write_bytes"]), (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
pool = os.urandom(1 << 20)
n = budget * times // vsize
w0, c0 = proc()
t0 = time.time()
batch = 16
for i in range(0, n, batch):
    out = []
    for j in range(i, min(n, i + batch)):
        off = (j * 4099) % ((1 << 20) - vsize)
        out.append(b"set k%d 0 0 %d\r\n%s\r\n" % (j, vsize, pool[off:off + vsize]))
    s.sendall(b"".join(out))
    for _ in out:
        l = f.readline()
        if l != b"STORED\r\n":
            print("set:", l, file=sys.stderr)
secs = time.time() - t0
time.sleep(5)  # let the writes settle
w1, c1 = proc()
def hits(keys):
    h = 0
    for k in keys:
        s.sendall(b"get k%d\r\n" % k)
        l = f.readline()
        if l.startswith(b"VALUE"):
            f.read(int(l.split()[3]) + 2)
            f.readline()
            h += 1
    return h / len(keys)
step = max(1, n // 2000)
newest = max(1, budget // 4 // vsize)
print(json.dumps({"written": n * vsize, "secs": secs, "disk_writes": w1 - w0, "cpu": c1 - c0,
                  "hit_all": hits(range(0, n, step)), "hit_newest": hits(range(n - newest, n))}))
EOF
		kill "$SAMPLER" || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
		settled=$(du -s -B1 "$d" 2>/dev/null | cut -f1 || true)
		kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
		$PY - "$OUT/$s-$size" "$(bytes "$size")" "$settled" "$s" "$size" >>"$OUT/results.md" <<'EOF'
import json, statistics, sys
base, budget, settled, s, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
r = json.load(open(base + ".json"))
du = [int(x) for x in open(base + ".du").read().split()]
steady = statistics.median(du[len(du) // 2:])
print(f"| {s} | {size} | {r['written'] / budget:.1f}x | {max(du) / budget:.2f} | {steady / budget:.2f} | {settled / budget:.2f} |"
      f" {r['disk_writes'] / r['written']:.2f} | {r['cpu']:.1f} | {r['hit_all']:.3f} | {r['hit_newest']:.3f} |")
EOF
		tail -1 "$OUT/results.md"
	done
done
cat "$OUT/results.md"
