# bench/lib.sh: what the benchmark scripts share. A script sources it
# after changing to the repository root:
#
#	cd "$(dirname "$0")/.."
#	. bench/lib.sh
#
# It sets PY (Debian's python3 where there is one: it has pymemcache) and
# USER_FLAG (-u root when run as root: mnemo, like memcached, refuses to
# run as root without -u), and defines the functions below. Each script
# keeps its own flags, loads and result tables.

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
USER_FLAG=()
[ "$(id -u)" = 0 ] && USER_FLAG=(-u root)

# build_bins DIR [CMD...]: builds mnemo and each named cmd/CMD (say
# mnemo-bench) into DIR, without cgo; with NOBUILD set, builds nothing
# and uses what DIR holds.
build_bins() {
	local dir=$1 cmd
	shift
	mkdir -p "$dir"
	[ -n "${NOBUILD:-}" ] && return 0
	for cmd in mnemo "$@"; do
		CGO_ENABLED=0 go build -o "$dir/$cmd" "./cmd/$cmd"
	done
}

# free_port prints a loopback TCP port that is free now.
free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT waits until a server accepts connections on
# 127.0.0.1:PORT; after 20 s it says so and fails.
wait_port() {
	local i
	for i in $(seq 400); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "${0##*/}: no server answers on port $1" >&2
	return 1
}

# start_server NAME CMD... runs CMD -p PORT on SERVER_CPUS (default 0),
# PORT a free port, its output in $OUT/NAME.log; it sets PORT and PID and
# waits until the server answers. A server that does not start stops
# the script, its log printed.
start_server() {
	local name=$1
	shift
	PORT=$(free_port)
	taskset -c "${SERVER_CPUS:-0}" "$@" -p "$PORT" >"$OUT/$name.log" 2>&1 &
	PID=$!
	if ! wait_port "$PORT"; then
		cat "$OUT/$name.log" >&2
		exit 1
	fi
}

# stop_server stops the server start_server started last (SIGTERM, then
# waits for it to exit); without one it does nothing.
stop_server() {
	if [ -n "${PID:-}" ]; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	PID=""
}

# server_stat PORT NAME prints the value of NAME in the `stats` of the
# server on 127.0.0.1:PORT (nothing when it has no such statistic).
server_stat() {
	"$PY" - "$1" "$2" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    b = s.recv(65536)
    if not b:
        break
    buf += b
for line in buf.decode().split("\r\n"):
    p = line.split(" ")
    if len(p) == 3 and p[1] == sys.argv[2]:
        print(p[2])
EOF
}
