#!/usr/bin/env bash
# scaling.sh measures how mnemo and memcached scale with cores: for each
# thread count N it pins both servers (in alternation, as compare.sh does)
# to CPUs 0..N-1 with -t N, the load generator to the next N CPUs (or to
# what is left; on a box with fewer than 2N CPUs it shares the servers'
# CPUs and the table says so), runs the tput-tN-pP scenario of
# bench/compare.sh, and draws throughput and p99 against N for both
# servers (scaling.png, with python3-matplotlib; the table alone without
# it).
#
# Usage: bench/scaling.sh [-r RUNS] [-d DURATION] [-p PIPELINE] [-o OUTDIR] [N...]
#   default N: 1 2 4 8 16, capped at the CPUs of the box
#
# Example (the 16-core device): bench/scaling.sh -r 3 -d 10s 1 2 4 8
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3
DUR=10s
PIPE=1
OUT=""
while getopts "r:d:p:o:h" opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	d) DUR=$OPTARG ;;
	p) PIPE=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) sed -n '2,15p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
NCPU=$(nproc)
THREADS=("$@")
if [ ${#THREADS[@]} -eq 0 ]; then
	for n in 1 2 4 8 16; do [ "$n" -le "$NCPU" ] && THREADS+=("$n"); done
fi
OUT=${OUT:-/tmp/mnemo-scaling/$(date +%Y%m%d-%H%M%S)}
BIN=${BIN:-/tmp/mnemo-bench-bin}
mkdir -p "$OUT"
. bench/lib.sh
build_bins "$BIN" mnemo-bench
: >"$OUT/cpus.txt"
for n in "${THREADS[@]}"; do
	if [ "$n" -gt "$NCPU" ]; then
		echo "scaling.sh: -t $n needs $n CPUs, the box has $NCPU" >&2
		exit 2
	fi
	server="0-$((n - 1))"
	if [ $((2 * n)) -le "$NCPU" ]; then
		client="$n-$((2 * n - 1))"
	elif [ "$n" -lt "$NCPU" ]; then
		client="$n-$((NCPU - 1))"
	else
		client="0-$((NCPU - 1))" # shared with the servers
	fi
	echo "$n $server $client" >>"$OUT/cpus.txt"
	SERVER_CPUS=$server CLIENT_CPUS=$client NOBUILD=1 BIN=$BIN \
		bench/compare.sh -r "$RUNS" -d "$DUR" -o "$OUT/t$n" "tput-t$n-p$PIPE"
done
"$PY" bench/scaling.py "$OUT" | tee "$OUT/results.md"
