#!/usr/bin/env bash
# test_server_drain.sh — SIGTERM while sessions stream: the server stops
# accepting connections, answers the queued request 503, lets the running
# streams finish whole (finish_reason, usage, [DONE]) and exits 0; a drain
# that runs out of time ends the streams with an error event and still
# exits 0; SIGINT on an idle server exits 0 at once.
set -u
. "$(dirname "$0")/server_lib.sh"

REQ='{"model":"stories260K","messages":[{"role":"user","content":"Tell a story."}],"max_tokens":60,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}'

start_server drain -m "$STORIES" --floor 1 --capacity 2 --queue 2 --step-delay 30
S=$URL
SPID=$PID
stream_bg "$S" "$REQ" "$TMP/a.sse"
stream_bg "$S" "$REQ" "$TMP/b.sse"
check_true "two running" wait_until 20 health_is "$S" .active_sessions 2
stream_bg "$S" "$REQ" "$TMP/c.sse"
check_true "one queued" wait_until 20 health_is "$S" .queue_length 1
check_true "a streams" wait_until 20 has_content "$TMP/a.sse"
check_true "b streams" wait_until 20 has_content "$TMP/b.sse"
check "still streaming at SIGTERM" "yes" "$(grep -q '\[DONE\]' "$TMP/a.sse" "$TMP/b.sse" && echo no || echo yes)"

kill -TERM "$SPID"
refused() { ! curl -s --max-time 5 -o /dev/null "$S/health"; }
check_true "new connections refused" wait_until 10 refused
check_true "server exits" wait_until 60 bash -c "! kill -0 $SPID 2>/dev/null"
wait "$SPID"
check "exit status" "0" "$?"
check "drain announced" "yes" "$(grep -q 'SIGTERM: draining' "$TMP/drain.err" && echo yes)"

for x in a b; do
  check "$x: 200" "200" "$(cat "$TMP/$x.sse.code")"
  check "$x: [DONE]" "data: [DONE]" "$(grep '^data:' "$TMP/$x.sse" | tail -n 1)"
  check "$x: whole" "length 60" "$(sse_events "$TMP/$x.sse" | jq -r '.choices[0].finish_reason // empty, .usage.completion_tokens // empty' | xargs)"
done
check "queued: 503" "503" "$(cat "$TMP/c.sse.code")"
check "queued: error object" "server_error server_shutting_down" "$(jq -r '"\(.error.type) \(.error.code)"' "$TMP/c.sse")"

# A drain that runs out of time: the streams end with an error event.
start_server cut -m "$STORIES" --floor 1 --capacity 1 --step-delay 30 --drain-timeout 0.5
CPID=$PID
stream_bg "$URL" '{"model":"stories260K","messages":[{"role":"user","content":"Hi"}],"max_tokens":1500,"stream":true,"ignore_eos":true}' "$TMP/d.sse"
check_true "d streams" wait_until 20 has_content "$TMP/d.sse"
stop_server "$CPID"
check "cut drain: exit status" "0" "$?"
check_true "d ended" wait_until 10 test -s "$TMP/d.sse.code"
check "d: error event" "server_error" "$(sse_events "$TMP/d.sse" | jq -r '.error.type // empty')"
check "d: no [DONE]" "no" "$(grep -q '\[DONE\]' "$TMP/d.sse" && echo yes || echo no)"

# SIGINT, nothing running.
start_server idle -m "$STORIES" --floor 1 --capacity 1
IPID=$PID
kill -INT "$IPID"
check_true "SIGINT exits" wait_until 20 bash -c "! kill -0 $IPID 2>/dev/null"
wait "$IPID"
check "SIGINT exit status" "0" "$?"

finish test_server_drain
