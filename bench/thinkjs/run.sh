#!/usr/bin/env bash
# Measures GET /incr of an already-running server on 127.0.0.1:$PORT with wrk:
# first over N existing sessions (cookies rotated by wrk/rotate.lua), then with
# no cookie, so that every request makes a new session.
#
#   PORT=8361 [SERVER_PID=<pid>] [DURATION=10] [N=1000] ./run.sh
#
# With SERVER_PID, the CPU time used by that process and all its descendants
# during each wrk run is reported too, in µs per request.
set -euo pipefail

: "${PORT:?PORT of the running server is required}"
DURATION=${DURATION:-10}
N=${N:-1000}
URL="http://127.0.0.1:$PORT/incr"
HERE=$(cd "$(dirname "$0")" && pwd)

COOKIES=$(mktemp)
trap 'rm -f "$COOKIES"' EXIT
export COOKIES

# utime + stime, in clock ticks, of a pid and all its descendants.
tree_ticks() {
  local pid=$1 ticks=0 child
  if [[ -r /proc/$pid/stat ]]; then
    # Fields 14 and 15; strip "pid (comm) " first, since comm may hold spaces.
    ticks=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || ticks=0
  fi
  for child in $(pgrep -P "$pid" || true); do
    ticks=$((ticks + $(tree_ticks "$child")))
  done
  echo "$ticks"
}

# Runs wrk with the given arguments; sets RPS, REQS and CPU_US (per request).
measure() {
  local before=0 after=0 out
  if [[ -n ${SERVER_PID:-} ]]; then before=$(tree_ticks "$SERVER_PID"); fi
  out=$(wrk -t2 -c50 -d"${DURATION}s" "$@")
  if [[ -n ${SERVER_PID:-} ]]; then after=$(tree_ticks "$SERVER_PID"); fi
  echo "$out"
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "warning: wrk saw errors (see above)" >&2
  fi
  RPS=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  REQS=$(awk '/ requests in / { print $1 }' <<<"$out")
  CPU_US=""
  if [[ -n ${SERVER_PID:-} ]]; then
    CPU_US=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$REQS" \
      'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  fi
}

echo "creating $N sessions on $URL"
seq "$N" | xargs -P 8 -I{} curl -sf -o /dev/null -w '%header{set-cookie}\n' "$URL" |
  cut -d';' -f1 | grep '=' >"$COOKIES" || true
got=$(wc -l <"$COOKIES")
if ((got != N)); then
  echo "expected $N session cookies, got $got" >&2
  exit 1
fi

echo "== existing sessions"
measure -s "$HERE/wrk/rotate.lua" "$URL"
EXISTING_RPS=$RPS EXISTING_CPU=$CPU_US

echo "== new sessions"
measure "$URL"
NEW_RPS=$RPS NEW_CPU=$CPU_US

echo "existing: $EXISTING_RPS"
echo "new: $NEW_RPS"
if [[ -n ${SERVER_PID:-} ]]; then
  echo "existing cpu: $EXISTING_CPU µs/request"
  echo "new cpu: $NEW_CPU µs/request"
fi
