#!/bin/sh
# Measures the issuer with wrk as the client: tokens/s, p50/p99, and the
# issuer process's CPU time per token, next to the raw EdDSA signing rate
# measured just before and just after (the machine may be shared).
#
#   issuer/loadtest/wrk.sh [requests-to-premint] [connections] [duration] [group|batch]
set -eu
N=${1:-150000}
C=${2:-32}
D=${3:-5s}
JTI=${4:-group}
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT INT TERM
go build -o "$DIR/lt" ./issuer/loadtest
"$DIR/lt" -serve "$DIR/bodies" -n "$N" -jti "$JTI" > "$DIR/out" 2>&1 &
PID=$!
i=0
until grep -q ready "$DIR/out"; do
  i=$((i + 1)); [ $i -lt 300 ] || { cat "$DIR/out"; exit 1; }
  sleep 0.1
done
URL=$(awk '/ready/{print $2}' "$DIR/out")
ticks() { awk '{print $14 + $15}' /proc/$PID/stat; }
"$DIR/lt" -sign-only -sign 1s
T0=$(ticks)
wrk -t2 -c"$C" -d"$D" -s issuer/loadtest/token.lua "$URL" -- "$DIR/bodies" > "$DIR/wrk"
T1=$(ticks)
"$DIR/lt" -sign-only -sign 1s
cat "$DIR/wrk"
REQ=$(awk '/requests in/{print $1}' "$DIR/wrk")
HZ=$(getconf CLK_TCK)
echo "issuer CPU per token: $(echo "($T1 - $T0) * 1000000 / $HZ / $REQ" | bc) µs (jti=$JTI)"
