#!/usr/bin/env bash
# Runs mnemo's whole test suite: go vet and staticcheck, then every
# package's tests under the race detector with the invariant checks on
# (build tag "invariants"), interop tests and the import-layer test
# included, and the protocol suites once more with the persistent engine.
#
# The interop tests talk to real memcached software from Debian:
#   memcached            the reference server (differential tests)
#   libmemcached-tools   memccapable, the protocol conformance tester
#   python3-pymemcache   a real Python client
#   prometheus           promtool, which checks the /metrics pages of
#                        memcached_exporter (built from the Go module
#                        proxy by the test) against mnemo
#   nutcracker           twemproxy, for the scale-out test (three servers
#                        behind it)
#   systemd              systemd-analyze, which checks
#                        contrib/systemd/mnemo.service
#   openssl              s_client, a TLS client (the TLS tests)
# When one is missing this script installs it with apt-get if it runs as
# root, and otherwise stops, naming the packages to install.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v memcached >/dev/null 2>&1 || need+=(memcached)
command -v memccapable >/dev/null 2>&1 || need+=(libmemcached-tools)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v nutcracker >/dev/null 2>&1 || need+=(nutcracker)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Debian's python3 is the one that sees Debian's pymemcache; a python3 of
# pyenv or a virtualenv earlier on PATH does not.
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=$(command -v python3 || echo python3)
"$PYTHON" -c 'import pymemcache' >/dev/null 2>&1 || need+=(python3-pymemcache)
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test.sh: installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" python3 >/dev/null
	else
		echo "test.sh: missing Debian packages: ${need[*]}" >&2
		echo "test.sh: install them (sudo apt-get install ${need[*]}) and run again" >&2
		exit 1
	fi
fi
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
export MNEMO_PYTHON="$PYTHON" # the interop tests run pymemcache with it

# pebblegozstd: Pebble's pure-Go zstd, so that no C code is compiled for it
# (the race detector itself still needs cgo).
tags=pebblegozstd
go vet -tags "$tags" ./...
# Linux is where mnemo is tuned (its poller, fallocate, MADV_REMOVE), but it
# builds and runs on macOS and the BSDs too: vet those builds.
GOOS=darwin go vet -tags "$tags" ./...
GOOS=freebsd go vet -tags "$tags" ./...

# staticcheck, at a pinned version, from the Go module proxy.
staticcheck_version=v0.8.2
staticcheck="$(go env GOPATH)/bin/staticcheck"
if ! "$staticcheck" -version 2>/dev/null | grep -qF "(${staticcheck_version#v})"; then
	echo "test.sh: installing staticcheck $staticcheck_version"
	GOBIN="$(go env GOPATH)/bin" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
"$staticcheck" -tags "$tags" ./...

# The race-detector run also turns on the engines' invariant checks.
go test -race -count=1 -tags "$tags invariants" -timeout 20m ./...
# Every fuzz target, bounded: the parsers and a whole server fed arbitrary
# bytes. A crasher fails the run and is saved under the package's
# testdata/fuzz. Each target runs a fixed number of inputs (about 15 s each on a 2-core
# machine), not a time: Go 1.26's fuzzing coordinator can report
# "context deadline exceeded" as a failure when a -fuzztime duration ends
# while a worker is busy on a loaded machine (golang/go#75804, fixed in
# Go 1.27). MNEMO_FUZZTIME (such as 10m) overrides the counts with a
# duration for long runs.
fuzz_targets=(
	./protocol/text:FuzzDecode:200000x
	./protocol/binary:FuzzDecode:150000x
	./internal/number:FuzzParse:1000000x
	./config:FuzzParse:300000x
	./config:FuzzReadConf:300000x
	./internal/interop:FuzzServer:2000x
)
found=$(grep -rhE '^func Fuzz[A-Za-z0-9_]*\(' --include='*_test.go' . | wc -l)
if [ "$found" -ne "${#fuzz_targets[@]}" ]; then
	echo "test.sh: $found fuzz targets in the tree, ${#fuzz_targets[@]} listed here: list them all" >&2
	exit 1
fi
for target in "${fuzz_targets[@]}"; do
	IFS=: read -r pkg fn count <<<"$target"
	go test -tags "$tags" -run '^$' -fuzz "^$fn\$" -fuzztime "${MNEMO_FUZZTIME:-$count}" "$pkg"
done
# The protocol suites again, on the persistent engine.
MNEMO_TEST_ENGINE=persistent go test -race -count=1 -tags "$tags" -timeout 20m \
	./internal/interop ./internal/interop/binproto
