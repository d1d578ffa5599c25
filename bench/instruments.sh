#!/usr/bin/env bash
# instruments.sh measures what the request-path instruments cost: one
# mnemo binary run without and with FLAGS (say, --metrics-listen and
# --hotkeys), compared by bench/ab-mnemo.sh (both -t 1 on CPU 0, the
# load generator on CPU 1, 1:10 sets:gets of 100 B values over 100k keys,
# 50 connections, pipeline 1 and 16, ROUNDS rounds of 5 s in alternation).
# "old" is without FLAGS, "new" with them.
#
# Usage: bench/instruments.sh MNEMO MNEMO_BENCH ROUNDS FLAGS...
set -euo pipefail
MNEMO=$(realpath "$1") BENCHBIN=$2 ROUNDS=$3
shift 3
DIR=$(mktemp -d /tmp/instruments.XXXXXX)
printf '#!/bin/sh\nexec %q "$@"\n' "$MNEMO" >"$DIR/off"
printf '#!/bin/sh\nexec %q "$@"' "$MNEMO" >"$DIR/on"
for f in "$@"; do printf ' %q' "$f" >>"$DIR/on"; done
echo >>"$DIR/on"
chmod +x "$DIR/off" "$DIR/on"
echo "old: $MNEMO; new: $MNEMO $*"
exec "$(dirname "$0")/ab-mnemo.sh" "$DIR/off" "$DIR/on" "$BENCHBIN" "$ROUNDS"
