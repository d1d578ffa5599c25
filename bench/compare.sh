#!/usr/bin/env bash
# compare.sh measures mnemo side by side with Debian's memcached: it
# builds mnemo and the load generator (cmd/mnemo-bench), starts memcached
# and mnemo with the same flags on loopback ports, runs the same load
# against each in alternation (memcached, mnemo, memcached, mnemo, ...),
# and writes a table of ratios mnemo/memcached over the median of the runs.
#
# Usage: bench/compare.sh [-r RUNS] [-d DURATION] [-o OUTDIR] [SCENARIO...]
#
# Scenarios (default: all but gc-10m):
#   tput-t1-p1 tput-t1-p16    throughput and latency, both servers -t 1
#   tput-def-p1 tput-def-p16  the same, both servers with default threads
#   tput16k-t1-p1 tput16k-t1-p16  -t 1 with 16 KB values (20k keys, -m 2048)
#   tput256k-t1-p1 tput256k-t1-p16  -t 1 with 256 KiB values (4k keys, -m 2048)
#   mget100-t1-p1 mget100-t1-p16    -t 1, gets of 100 keys each (100 B values,
#                             100k keys, no sets); an op is one get of 100 keys
#   conns1k-t1-p1             tput-t1-p1 with 1000 connections (mnemo crowded:
#                             more than 512 connections not parked)
#   churn16k                  RSS under overwrite churn: -t 1, -m 2048, 20k keys of
#                             16 KB values (328 MB of live data), 1:1 sets:gets at
#                             pipeline 16; RSS read after each run, as a ratio to the
#                             live bytes and to memcached's
#   tput-tN-pP                any other thread count N and pipeline depth P
#                             (bench/scaling.sh runs these)
#   rss-1m                    RSS after storing 1M items (15 B keys, 100 B values)
#   rss-1m-v10 rss-1m-v1k     the same with 10 B and 1 KB values (-m 2048 for 1 KB)
#   rss-10m                   the same with 10M items (-m 3072)
#   hit-zipf                  hit ratio, read-through Zipf(0.99), memory for 10% of keys
#   idle-10k                  memory per idle connection, 10k connections
#                             (IDLE_CONNS=N for another count)
#   gc-10m                    10M items: p99.9 at a fixed rate, steady vs. with
#                             a GC forced every 250 ms (mnemo; memcached as a
#                             control)
#   tls-p1 tls-p16            TLS 1.3 (-Z, one ECDSA P-256 certificate made by
#                             openssl for both servers): 100 B values, default
#                             threads, 50 connections, pipeline 1 and 16
#   tls-16k-p1 tls-16k-p16    the same with 16 KiB values (10k keys)
#   tls-handshake             new TLS 1.3 connections per second (full
#                             handshakes: connect, handshake, version, close),
#                             8 at a time, key exchange X25519 (what OpenSSL
#                             3.0 negotiates)
#   tls-resume                the same, resuming the session (tickets)
#   tls-handshake-pq          tls-handshake with Go's default key shares:
#                             X25519MLKEM768 with mnemo, X25519 with memcached
#   tls-idle-10k              memory per idle TLS connection (IDLE_CONNS)
#
# Environment:
#   SERVER_CPUS  CPUs the servers are pinned to (taskset -c), default 0
#   CLIENT_CPUS  CPUs the load generator is pinned to, default 1
#   MEMCACHED    the memcached binary, default memcached
#   BIN          where the built binaries go, default /tmp/mnemo-bench-bin
#   NOBUILD=1    use the binaries already in $BIN
#   MNEMO_FLAGS  extra flags for mnemo only, such as
#                "--engine-config compact=0" (word-split)
#
# The results go to OUTDIR (default /tmp/mnemo-bench-results/<date>): one JSON file per
# run, the servers' logs, and results.md, the table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=3
DUR=10s
OUT=""
while getopts "r:d:o:h" opt; do
	case $opt in
	r) RUNS=$OPTARG ;;
	d) DUR=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(tput-t1-p1 tput-t1-p16 tput-def-p1 tput-def-p16 rss-1m hit-zipf idle-10k)

SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
MEMCACHED=${MEMCACHED:-memcached}
BIN=${BIN:-/tmp/mnemo-bench-bin}
OUT=${OUT:-/tmp/mnemo-bench-results/$(date +%Y%m%d-%H%M%S)}
. bench/lib.sh
mkdir -p "$OUT"
build_bins "$BIN" mnemo-bench
MCVER=$($MEMCACHED -V 2>&1 | head -1)
NCPU=$(nproc)
{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -srm), $NCPU CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "memcached: $MCVER ($(command -v "$MEMCACHED"))"
	echo "mnemo: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty), $(go version | cut -d' ' -f3)"
	echo "servers on CPUs $SERVER_CPUS, load generator on CPUs $CLIENT_CPUS; runs $RUNS, duration $DUR"
} >"$OUT/env.txt"

# One certificate for both servers' TLS scenarios.
TLSDIR=$OUT/tls
TLSFLAGS=(-Z -o "ssl_chain_cert=$TLSDIR/server.pem,ssl_key=$TLSDIR/server.key")
TLSBENCH=(-tls -tls-ca "$TLSDIR/server.pem" -tls-version 1.3)
tls_cert() {
	[ -f "$TLSDIR/server.pem" ] && return 0
	mkdir -p "$TLSDIR"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$TLSDIR/server.key" -out "$TLSDIR/server.pem" 2>/dev/null
	echo "  cert: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout server.key -out server.pem" >>"$OUT/commands.txt"
}
cat "$OUT/env.txt"

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
trap cleanup EXIT

# A port the kernel says is free now (was a random one, which another
# program could hold).
port() { free_port; }

# start NAME PORT FLAGS...: starts memcached or mnemo pinned to
# SERVER_CPUS; sets SPID.
start() {
	local name=$1 p=$2
	shift 2
	local cmd
	if [ "$name" = memcached ]; then
		cmd=("$MEMCACHED" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p "$p" "$@")
	else
		# shellcheck disable=SC2206 # MNEMO_FLAGS is word-split on purpose
		cmd=("$BIN/mnemo" "${USER_FLAG[@]}" -U 0 -l 127.0.0.1 -p "$p" "$@" ${MNEMO_FLAGS:-})
	fi
	echo "  start: taskset -c $SERVER_CPUS ${cmd[*]}" >>"$OUT/commands.txt"
	taskset -c "$SERVER_CPUS" "${cmd[@]}" >>"$OUT/$name.log" 2>&1 &
	SPID=$!
	PIDS+=("$SPID")
	wait_port "$p"
}

stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# bench OUTFILE ARGS...: runs the load generator pinned to CLIENT_CPUS.
bench() {
	local f=$1
	shift
	echo "  bench: taskset -c $CLIENT_CPUS mnemo-bench $*" >>"$OUT/commands.txt"
	taskset -c "$CLIENT_CPUS" "$BIN/mnemo-bench" -json "$@" >"$f" || {
		echo "mnemo-bench failed (see $f)" >&2
		return 1
	}
}

LOAD=(-conns 50 -ratio 1:10 -keys 100000 -key-size 15 -value-size 100)
# The large-value loads (issue 15): 20k keys of 16 KB values, -m 2048.
LOAD16K=(-conns 50 -ratio 1:10 -keys 20000 -key-size 15 -value-size 16384)
MEM=1024

# Throughput: each server started once, filled once, then RUNS timed runs
# in alternation after a warm-up run. tput SCENARIO THREADS PIPELINE
# [tls [VALUE_SIZE KEYS]].
tput() {
	local sc=$1 threads=$2 pipe=$3 tls=${4:-} vsize=${5:-100} keys=${6:-100000}
	local -A port pid
	local tflag=() sflags=() bflags=() load=("${LOAD[@]}")
	[ "$threads" != def ] && tflag=(-t "$threads")
	if [ "$tls" = tls ]; then
		tls_cert
		sflags=("${TLSFLAGS[@]}")
		bflags=("${TLSBENCH[@]}")
	fi
	[ "$vsize" != 100 ] && load=(-conns 50 -ratio 1:10 -keys "$keys" -key-size 15 -value-size "$vsize")
	echo "== $sc" | tee -a "$OUT/commands.txt"
	for s in memcached mnemo; do
		port[$s]=$(port)
		start "$s" "${port[$s]}" "${tflag[@]}" -m "$MEM" -c 4096 "${sflags[@]}"
		pid[$s]=$SPID
		# The fill's depth stays under memcached's -R (20) with TLS:
		# memcached 1.6.18 stalls when a batch ends with requests
		# left decrypted inside OpenSSL (see BENCHMARKS.md, TLS).
		bench "$OUT/$sc-$s-fill.json" -server "127.0.0.1:${port[$s]}" "${bflags[@]}" "${load[@]}" -fill -fill-pipeline 16 -duration 2s -pipeline "$pipe"
	done
	for i in $(seq 1 "$RUNS"); do
		for s in memcached mnemo; do
			bench "$OUT/$sc-$s-$i.json" -server "127.0.0.1:${port[$s]}" -server-pid "${pid[$s]}" "${bflags[@]}" "${load[@]}" -pipeline "$pipe" -duration "$DUR" -warmup 1s -seed "$i" -label "$sc $s run $i"
		done
	done
	for s in memcached mnemo; do stop "${pid[$s]}"; done
}

# New TLS connections per second: each server started once, RUNS timed
# runs in alternation; tls-resume resumes sessions.
handshake() {
	local sc=$1 resume=() curve=(-tls-curve x25519)
	[ "$sc" = tls-resume ] && resume=(-tls-resume)
	[ "$sc" = tls-handshake-pq ] && curve=()
	local -A port pid
	tls_cert
	echo "== $sc" | tee -a "$OUT/commands.txt"
	for s in memcached mnemo; do
		port[$s]=$(port)
		start "$s" "${port[$s]}" -m 64 -c 4096 "${TLSFLAGS[@]}"
		pid[$s]=$SPID
	done
	for i in $(seq 1 "$RUNS"); do
		for s in memcached mnemo; do
			bench "$OUT/$sc-$s-$i.json" -server "127.0.0.1:${port[$s]}" -server-pid "${pid[$s]}" "${TLSBENCH[@]}" "${resume[@]}" "${curve[@]}" -handshakes -conns 8 -duration "$DUR" -warmup 1s -label "$sc $s run $i"
		done
	done
	for s in memcached mnemo; do stop "${pid[$s]}"; done
}

# RSS after filling KEYS items (default 1M) of VSIZE-byte values
# (default 100) into -m MEM (default 1024), a fresh server per run.
rss() {
	local sc=$1 keys=${2:-1000000} vsize=${3:-100} mem=${4:-1024} chk=()
	# A value too short to embed its key and version is not checked.
	[ "$vsize" -lt 40 ] && chk=(-check=false)
	echo "== $sc" | tee -a "$OUT/commands.txt"
	for i in $(seq 1 "$RUNS"); do
		for s in memcached mnemo; do
			local p
			p=$(port)
			start "$s" "$p" -m "$mem"
			bench "$OUT/$sc-$s-$i.json" -server "127.0.0.1:$p" -server-pid "$SPID" -conns 4 -keys "$keys" -key-size 15 -value-size "$vsize" "${chk[@]}" -fill -duration 0 -label "$sc $s run $i"
			stop "$SPID"
		done
	done
}

# Hit ratio: 1M keys, Zipf(0.99), read-through; -m 19 holds 10% of the
# keys in memcached (100k items in its 192-byte slab class need 18.3 MiB
# of pages; both servers get the same -m).
hit() {
	local sc=$1
	echo "== $sc" | tee -a "$OUT/commands.txt"
	for i in $(seq 1 "$RUNS"); do
		for s in memcached mnemo; do
			local p
			p=$(port)
			start "$s" "$p" -m 19
			bench "$OUT/$sc-$s-$i.json" -server "127.0.0.1:$p" -server-pid "$SPID" -conns 8 -pipeline 8 -ratio 0:1 -read-through -dist zipf -zipf 0.99 -keys 1000000 -key-size 15 -value-size 100 -requests 4000000 -duration 0 -seed "$i" -label "$sc $s run $i"
			stop "$SPID"
		done
	done
}

# Memory per idle connection: a fresh server, then IDLE_CONNS (default
# 10k) connections that each send one request and stay open. The server
# and the generator each hold a descriptor per connection: the open-file
# limit is raised to fit (up to the hard limit; the scenario is skipped
# if that is too low). mnemo parks idle connections after 1 s, so the
# generator waits 5 s before it reads the server's RSS (parking, then
# mnemo returns the freed memory to the OS once the burst is over).
idle() {
	local sc=$1 n=${IDLE_CONNS:-10000} sflags=() bflags=()
	if [ "$sc" = tls-idle-10k ]; then
		tls_cert
		sflags=("${TLSFLAGS[@]}")
		bflags=("${TLSBENCH[@]}")
	fi
	local need=$((n + 2000))
	if [ "$(ulimit -n)" -lt "$need" ]; then
		ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	fi
	if [ "$(ulimit -n)" -lt "$need" ]; then
		echo "$sc: open-file limit $(ulimit -n) is under $need; skipped" | tee -a "$OUT/commands.txt" >&2
		return 0
	fi
	echo "== $sc" | tee -a "$OUT/commands.txt"
	for i in $(seq 1 "$RUNS"); do
		for s in memcached mnemo; do
			local p
			p=$(port)
			start "$s" "$p" -c "$need" "${sflags[@]}"
			sleep 0.5
			bench "$OUT/$sc-$s-$i.json" -server "127.0.0.1:$p" -server-pid "$SPID" "${bflags[@]}" -idle "$n" -idle-settle 5s -label "$sc $s run $i"
			stop "$SPID"
		done
	done
}

# GC: 10M items, a paced load (40k ops/s, 50 connections) in three
# phases of 20 s: steady; "poke", where curl fetches mnemo's cheap
# /debug/pprof/cmdline every 250 ms (the cost of the poking itself); and
# "gc", where curl fetches /debug/pprof/heap?gc=1 every 250 ms, which runs a
# full GC each time. memcached runs the same three phases with no poking
# (a control for the machine's noise).
gc10m() {
	local sc=$1
	echo "== $sc" | tee -a "$OUT/commands.txt"
	local args=(-conns 50 -ratio 1:10 -keys 10000000 -key-size 15 -value-size 100 -rate 40000 -duration 20s -warmup 2s)
	for s in memcached mnemo; do
		local p pp
		p=$(port)
		pp=$(port)
		if [ $s = mnemo ]; then
			GODEBUG=gctrace=1 start mnemo "$p" -m 3072 --pprof "127.0.0.1:$pp"
		else
			start memcached "$p" -m 3072
		fi
		bench "$OUT/$sc-$s-fill.json" -server "127.0.0.1:$p" -server-pid "$SPID" "${args[@]}" -fill -duration 0 -warmup 0
		for i in $(seq 1 "$RUNS"); do
			for phase in steady poke gc; do
				local loop=""
				if [ $s = mnemo ] && [ $phase != steady ]; then
					local url="http://127.0.0.1:$pp/debug/pprof/cmdline"
					[ $phase = gc ] && url="http://127.0.0.1:$pp/debug/pprof/heap?gc=1"
					echo "  poke: every 250 ms: curl $url" >>"$OUT/commands.txt"
					(while :; do taskset -c "$CLIENT_CPUS" curl -s -o /dev/null "$url"; sleep 0.25; done) &
					loop=$!
				fi
				bench "$OUT/$sc-$s-$phase-$i.json" -server "127.0.0.1:$p" -server-pid "$SPID" "${args[@]}" -seed "$i" -label "$sc $s $phase $i"
				if [ -n "$loop" ]; then
					kill "$loop"
					wait "$loop" 2>/dev/null || true
				fi
			done
		done
		stop "$SPID"
	done
}

for sc in "${SCENARIOS[@]}"; do
	case $sc in
	tput-t1-p1) tput "$sc" 1 1 ;;
	tput-t1-p16) tput "$sc" 1 16 ;;
	tput-def-p1) tput "$sc" def 1 ;;
	tput-def-p16) tput "$sc" def 16 ;;
	tput16k-t1-p1 | tput16k-t1-p16)
		saved=("${LOAD[@]}")
		LOAD=("${LOAD16K[@]}") MEM=2048
		tput "$sc" 1 "${sc##*-p}"
		LOAD=("${saved[@]}") MEM=1024
		;;
	tput256k-t1-p1 | tput256k-t1-p16)
		# 256 KiB values: 4,000 keys (1 GB), -m 2048
		saved=("${LOAD[@]}")
		LOAD=(-conns 50 -ratio 1:10 -keys 4000 -key-size 15 -value-size 262144) MEM=2048
		tput "$sc" 1 "${sc##*-p}"
		LOAD=("${saved[@]}") MEM=1024
		;;
	mget100-t1-p1 | mget100-t1-p16)
		# gets of 100 keys each ("get k1 ... k100"), all hits, no sets
		saved=("${LOAD[@]}")
		LOAD=(-conns 50 -ratio 0:1 -keys 100000 -key-size 15 -value-size 100 -multiget 100)
		tput "$sc" 1 "${sc##*-p}"
		LOAD=("${saved[@]}")
		;;
	conns1k-t1-p1)
		# 1000 connections at pipeline 1: a crowded mnemo (more than
		# 512 connections not parked), busy connections
		[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
		saved=("${LOAD[@]}")
		LOAD=(-conns 1000 -ratio 1:10 -keys 100000 -key-size 15 -value-size 100)
		tput "$sc" 1 1
		LOAD=("${saved[@]}")
		;;
	churn16k)
		saved=("${LOAD[@]}")
		LOAD=(-conns 50 -ratio 1:1 -keys 20000 -key-size 15 -value-size 16384) MEM=2048
		tput "$sc" 1 16
		LOAD=("${saved[@]}") MEM=1024
		;;
	tput-t[0-9]*-p[0-9]*)
		# any thread count and depth (bench/scaling.sh uses these)
		t=${sc#tput-t}
		tput "$sc" "${t%%-*}" "${sc##*-p}"
		;;
	rss-1m) rss "$sc" ;;
	rss-1m-v10) rss "$sc" 1000000 10 ;;
	rss-1m-v1k) rss "$sc" 1000000 1024 2048 ;;
	rss-10m) rss "$sc" 10000000 100 3072 ;;
	hit-zipf) hit "$sc" ;;
	idle-10k) idle "$sc" ;;
	gc-10m) gc10m "$sc" ;;
	tls-p1) tput "$sc" def 1 tls ;;
	tls-p16) tput "$sc" def 16 tls ;;
	tls-16k-p1) tput "$sc" def 1 tls 16384 10000 ;;
	tls-16k-p16) tput "$sc" def 16 tls 16384 10000 ;;
	tls-handshake | tls-resume | tls-handshake-pq) handshake "$sc" ;;
	tls-idle-10k) idle "$sc" ;;
	*) echo "unknown scenario $sc" >&2; exit 2 ;;
	esac
done

"$PY" "$ROOT/bench/table.py" "$OUT" | tee "$OUT/results.md"
