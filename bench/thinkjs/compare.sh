#!/usr/bin/env bash
# The file store against ThinkJS's, in one run: ROUNDS rounds (default 3), each starting
# every app on a fresh session folder and measuring it with run.sh; prints each run and
# the medians. Needs `npm ci` here, wrk, and the example app built in release mode:
#
#   cargo build --release -p session-example
#   ROUNDS=3 DURATION=10 bench/thinkjs/compare.sh
#
# APPS picks the apps (default: thinkjs file-fsync file-each file-nofsync); EXAMPLE names
# another build of the example app to measure as `file-other` (an earlier version, say).
# PREFILL=N fills each app's folder with at least N sessions before it is measured (made
# by the app itself, through wrk with no cookie), to measure a folder that holds many.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EXAMPLE_BIN=${EXAMPLE_BIN:-$ROOT/target/release/session-example}
ROUNDS=${ROUNDS:-3}
APPS=${APPS:-thinkjs file-fsync file-each file-nofsync}
PORT=${PORT:-8361}
PREFILL=${PREFILL:-0}
SCRATCH=$(mktemp -d "${SCRATCH_DIR:-$ROOT/target}/file-vs-thinkjs.XXXXXX")
SERVER_PID=
# A run that fails midway (a full disk, a server that would not start) stops its server
# too: one left on the port would answer the next run's requests in the place of its apps.
trap 'stop; rm -rf "$SCRATCH"' EXIT

start() {
  local app=$1 folder=$2
  mkdir -p "$folder"
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
    echo "something already answers on port $PORT: stop it, or set PORT" >&2
    exit 1
  fi
  case $app in
    thinkjs)
      (cd "$HERE" && PORT=$PORT SESSION_PATH=$folder exec node production.js) >"$SCRATCH/$app.log" 2>&1 &
      ;;
    file-*)
      # Only what differs from the defaults is set, so an earlier build reads it too.
      local bin=$EXAMPLE_BIN settings=()
      case $app in
        file-each) settings=(SESSION__ADAPTER__FILE__GROUP_COMMIT=false) ;;
        file-nofsync) settings=(SESSION__ADAPTER__FILE__FSYNC=false) ;;
        file-other) bin=${EXAMPLE:?EXAMPLE names the other build} ;;
      esac
      env SESSION__TYPE=file SESSION__ADAPTER__FILE__PATH="$folder" "${settings[@]}" \
        RUST_LOG=warn "$bin" --addr "127.0.0.1:$PORT" >"$SCRATCH/$app.log" 2>&1 &
      ;;
    *) echo "unknown app $app" >&2; exit 2 ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/incr" && return 0
    sleep 0.1
  done
  echo "$app did not start; its log:" >&2
  cat "$SCRATCH/$app.log" >&2
  exit 1
}

# Has the running app make sessions until its folder holds PREFILL files.
prefill() {
  local app=$1 folder=$2 have
  ((PREFILL > 0)) || return 0
  while have=$(find "$folder" -type f | wc -l) && ((have < PREFILL)); do
    wrk -t2 -c50 -d5s "http://127.0.0.1:$PORT/incr" >/dev/null
  done
  # ThinkJS writes its files after answering: let the last ones land.
  sleep 2
  echo "$app: the folder holds $(find "$folder" -type f | wc -l) files before the measurement" >&2
}

# Stops the server. Its folder stays until the comparison ends: on ext4 without a journal
# (this machine's root file system), the inode allocator skips every inode freed in the
# last 30 s (`dirty_expire_centisecs`), checking each one, so creating files in a folder
# whose group had tens of thousands of files removed just before cost 220-460 µs of kernel
# CPU per file against 21-27 µs otherwise (`recently_deleted` in the profile), and would be
# charged to the next app's new sessions.
stop() {
  [[ -n $SERVER_PID ]] || return 0
  pkill -P "$SERVER_PID" 2>/dev/null || true
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# Files removed just before the comparison (an earlier run's folders, a build's temporary
# files) slow creations for as long, so the first round waits that out.
SETTLE=${SETTLE:-35}
echo "waiting ${SETTLE}s for files removed before the run to stop costing new ones"
sleep "$SETTLE"

RESULTS=$SCRATCH/results
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for app in $APPS; do
    start "$app" "$SCRATCH/sessions-$round-$app"
    prefill "$app" "$SCRATCH/sessions-$round-$app"
    out=$(PORT=$PORT SERVER_PID=$SERVER_PID "$HERE/run.sh")
    stop
    existing=$(awk '/^existing: / { print $2 }' <<<"$out")
    new=$(awk '/^new: / { print $2 }' <<<"$out")
    existing_cpu=$(awk '/^existing cpu: / { print $3 }' <<<"$out")
    new_cpu=$(awk '/^new cpu: / { print $3 }' <<<"$out")
    echo "round $round $app: existing $existing req/s ($existing_cpu µs CPU/req), new $new req/s ($new_cpu µs CPU/req)"
    echo "$app $existing $new $existing_cpu $new_cpu" >>"$RESULTS"
  done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "| app | existing req/s | new req/s | existing µs CPU/req | new µs CPU/req |"
echo "|---|---:|---:|---:|---:|"
for app in $APPS; do
  row="| $app"
  for column in 2 3 4 5; do
    row="$row | $(awk -v a="$app" -v c="$column" '$1 == a { print $c }' "$RESULTS" | median)"
  done
  echo "$row |"
done
