# server_lib.sh — what the server tests (tests/test_server_*.sh) share:
# starting `rackllm serve` on a free loopback port and waiting for its
# "listening" line, polling a condition with a deadline (never a bare
# sleep), JSON checks with jq, and cleaning up every process started.
# Sourced, not run.

BIN=${RACKLLM_BIN:?RACKLLM_BIN is not set (run through ctest)}
SHARED=${RACKLLM_SHARED:-../shared}
STORIES="$SHARED/models/stories260K.gguf"
TMP=$(mktemp -d)
PIDS=()
fails=0
checks=0

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

check() { # check NAME EXPECTED ACTUAL
  checks=$((checks + 1))
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1" >&2
    echo "  expected: $2" >&2
    echo "  got:      $3" >&2
    fails=$((fails + 1))
  fi
}

check_true() { # check_true NAME COMMAND...
  local name=$1
  shift
  checks=$((checks + 1))
  if ! "$@"; then
    echo "FAIL: $name ($*)" >&2
    fails=$((fails + 1))
  fi
}

finish() { # finish TEST-NAME
  if [ "$fails" -ne 0 ]; then
    echo "$1: $fails of $checks checks failed" >&2
    exit 1
  fi
  echo "$1: all $checks checks passed"
  exit 0
}

# wait_until SECONDS COMMAND...: polls COMMAND every 20 ms until it
# succeeds (0) or the time is up (1).
wait_until() {
  local end=$((SECONDS + $1))
  shift
  while ! "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.02
  done
  return 0
}

# start_server NAME [serve options...]: starts a server on a free port and
# waits (60 s at most) for its "listening" line. Sets URL and PID; its
# output is in $TMP/NAME.out and $TMP/NAME.err.
start_server() {
  local name=$1
  shift
  "$BIN" serve --port 0 --threads 1 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PID=$!
  PIDS+=("$PID")
  if ! wait_until 60 grep -qs "listening on http://" "$TMP/$name.out"; then
    echo "FAIL: server $name did not start" >&2
    cat "$TMP/$name.err" >&2
    exit 1
  fi
  URL=$(sed -n 's/^rackllm serve: listening on \(http:.*\)$/\1/p' "$TMP/$name.out")
}

# stop_server PID: SIGTERM, and the exit status (124 if it did not exit
# within 60 s).
stop_server() {
  kill -TERM "$1" 2>/dev/null
  local end=$((SECONDS + 60))
  while kill -0 "$1" 2>/dev/null; do
    if [ "$SECONDS" -ge "$end" ]; then
      kill -KILL "$1"
      wait "$1" 2>/dev/null
      return 124
    fi
    sleep 0.02
  done
  wait "$1"
}

# health URL FIELD: one field of /health (jq path, e.g. .active_sessions).
health() { curl -s --max-time 10 "$1/health" | jq -r "$2"; }
health_is() { [ "$(health "$1" "$2")" = "$3" ]; }

# metric URL 'NAME{labels}': a sample's value from /metrics (0 if absent).
metric() {
  curl -s --max-time 10 "$1/metrics" | awk -v k="$2" '$1 == k { v = $2 } END { print v == "" ? 0 : v }'
}
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }

# post URL PATH JSON-FILE OUT: POST, body to OUT, prints the status code.
post() {
  curl -s --max-time 60 -o "$4" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$3" "$1$2"
}

# stream_bg URL JSON OUT: a chat request in the background (curl's PID in
# BGPID: killing it is a client disconnect), the body (raw SSE when it
# streams) in OUT, the status code in OUT.code.
stream_bg() {
  printf '%s' "$2" >"$3.req"
  curl -sN --max-time 120 -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$3.req" "$1/v1/chat/completions" >"$3.code" &
  BGPID=$!
  PIDS+=("$BGPID")
}

# The "data:" JSON events of an SSE file, one per line ([DONE] left out).
sse_events() { sed -n 's/^data: \({.*}\)$/\1/p' "$1"; }
has_content() { grep -q '"content":"[^"]' "$1" 2>/dev/null; }
