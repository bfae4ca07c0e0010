#!/usr/bin/env bash
# test_server_load.sh — admission under load, end to end with curl: with
# capacity C = 2 and a queue of 1, 2C = 4 streaming sessions: two decode,
# one waits, one gets 429 at once; at no point do more than C run; a client
# that disconnects frees its slot (seen in /health) and the queued one takes
# it; nothing hangs or is lost, and /metrics counts every request. Then the
# queue timeout (429 after --queue-timeout), the floor: sessions slower
# than --floor make the server lower its capacity, and context: admission
# counts the context each request may reach; --ttft-limit refuses at once.
#
# The server's --step-delay makes sessions last long enough to be watched
# (a slower machine, simulated); every wait is a poll with a deadline.
set -u
. "$(dirname "$0")/server_lib.sh"

LONG='{"model":"stories260K","messages":[{"role":"user","content":"Tell a story."}],"max_tokens":1500,"stream":true,"ignore_eos":true}'
SHORT='{"model":"stories260K","messages":[{"role":"user","content":"Hi"}],"max_tokens":10,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}'

# watch URL FILE: records /health's active_sessions every 20 ms (in the
# background, PID in WATCH) — an observer, not a synchronisation.
watch() {
  (while :; do curl -s --max-time 5 "$1/health" | jq -r .active_sessions >>"$2"; sleep 0.02; done) &
  WATCH=$!
  PIDS+=("$WATCH")
}

start_server load -m "$STORIES" --floor 1 --capacity 2 --queue 1 --step-delay 40 --prefill-chunk 32
S=$URL
watch "$S" "$TMP/active.log"
stream_bg "$S" "$LONG" "$TMP/s1.sse"
P1=$BGPID
check_true "s1 admitted" wait_until 20 health_is "$S" .active_sessions 1
stream_bg "$S" "$LONG" "$TMP/s2.sse"
P2=$BGPID
check_true "s2 admitted" wait_until 20 health_is "$S" .active_sessions 2
stream_bg "$S" "$SHORT" "$TMP/s3.sse"
P3=$BGPID
check_true "s3 queued" wait_until 20 health_is "$S" .queue_length 1
check "s3 has no answer yet" "" "$(cat "$TMP/s3.sse" 2>/dev/null)"
stream_bg "$S" "$SHORT" "$TMP/s4.sse"
P4=$BGPID
check_true "s4 answered" wait_until 20 test -s "$TMP/s4.sse.code"
check "s4: 429" "429" "$(cat "$TMP/s4.sse.code")"
check "s4: error object" "rate_limit_error" "$(jq -r .error.type "$TMP/s4.sse")"
curl -s "$S/health" >"$TMP/h.json"
check "health under load" "2 0 1" "$(jq -r '"\(.active_sessions) \(.free_sessions) \(.queue_length)"' "$TMP/h.json")"
check_true "s1 streams" wait_until 20 has_content "$TMP/s1.sse"
check_true "s2 streams" wait_until 20 has_content "$TMP/s2.sse"

# s1's client leaves: its slot goes to s3 (queue empties) at once
kill "$P1"
t0=$(date +%s%N)
check_true "s1's slot freed, s3 admitted" wait_until 10 health_is "$S" .queue_length 0
dt=$((($(date +%s%N) - t0) / 1000000))
check "freed within 2 s (${dt} ms)" "yes" "$([ "$dt" -lt 2000 ] && echo yes)"
check_true "s3 completes" wait_until 30 test -s "$TMP/s3.sse.code"
check "s3: 200" "200" "$(cat "$TMP/s3.sse.code")"
check "s3: [DONE]" "data: [DONE]" "$(grep '^data:' "$TMP/s3.sse" | tail -n 1)"
check "s3: 10 tokens" "10" "$(sse_events "$TMP/s3.sse" | jq -r '.usage.completion_tokens // empty')"
check "s3: finish" "length" "$(sse_events "$TMP/s3.sse" | jq -r '.choices[0].finish_reason // empty')"

# s2's client leaves too: nothing runs
kill "$P2"
check_true "all slots free" wait_until 10 health_is "$S" .active_sessions 0
kill "$WATCH"
check "watched" "yes" "$([ "$(grep -c . "$TMP/active.log")" -gt 10 ] && echo yes)"
check "never above capacity (watched)" "2" "$(sort -n "$TMP/active.log" | tail -n 1)"
check "peak = capacity" "2" "$(health "$S" .active_sessions_peak)"

# /metrics counts every request and every session
check_true "cancellations counted" wait_until 10 metric_is "$S" 'rackllm_sessions_finished_total{reason="cancelled"}' 2
check "chat 200s" "3" "$(metric "$S" 'rackllm_requests_total{endpoint="chat_completions",code="200"}')"
check "chat 429s" "1" "$(metric "$S" 'rackllm_requests_total{endpoint="chat_completions",code="429"}')"
check "admitted" "3" "$(metric "$S" rackllm_admitted_total)"
check "rejected: queue full" "1" "$(metric "$S" 'rackllm_rejections_total{reason="queue_full"}')"
check "finished: length" "1" "$(metric "$S" 'rackllm_sessions_finished_total{reason="length"}')"
check "ttft count" "3" "$(metric "$S" rackllm_time_to_first_token_seconds_count)"
check "active gauge" "0" "$(metric "$S" rackllm_active_sessions)"
check "queue gauge" "0" "$(metric "$S" rackllm_queue_length)"
check "capacity gauge" "2" "$(metric "$S" rackllm_capacity_sessions)"
curl -s "$S/metrics" >"$TMP/metrics.txt"
check_true "promtool check metrics" promtool check metrics <"$TMP/metrics.txt"
check "no client left waiting" "" "$(for p in "$P3" "$P4"; do kill -0 "$p" 2>/dev/null && echo "$p"; done)"

# ---- queue timeout: 429 after --queue-timeout ----
start_server qt -m "$STORIES" --floor 1 --capacity 1 --queue 1 --queue-timeout 1 --step-delay 40
Q=$URL
stream_bg "$Q" "$LONG" "$TMP/q1.sse"
Q1=$BGPID
check_true "q1 admitted" wait_until 20 health_is "$Q" .active_sessions 1
stream_bg "$Q" "$SHORT" "$TMP/q2.sse"
check_true "q2 queued" wait_until 10 health_is "$Q" .queue_length 1
check_true "q2 answered" wait_until 10 test -s "$TMP/q2.sse.code"
check "q2: 429 after the timeout" "429 queue_timeout" "$(cat "$TMP/q2.sse.code") $(jq -r .error.code "$TMP/q2.sse")"
check "timeout counted" "1" "$(metric "$Q" 'rackllm_rejections_total{reason="queue_timeout"}')"
check "queue empty" "0" "$(health "$Q" .queue_length)"
kill "$Q1"

# ---- the floor: sessions below it lower the capacity ----
# 30 ms per step gives < 34 tok/s: a floor of 50 is out of reach, so with
# three sessions running capacity drops to two (then one as they end).
start_server floor -m "$STORIES" --capacity 3 --queue 0 --floor 50 --step-delay 30
F=$URL
for i in 1 2 3; do stream_bg "$F" "$LONG" "$TMP/f$i.sse"; done
check_true "three running" wait_until 20 health_is "$F" .active_sessions 3
check_true "capacity lowered below the floor" wait_until 20 health_is "$F" .capacity 2
check "measured below the floor" "true" "$(health "$F" '.tokens_per_second.min > 0 and .tokens_per_second.min < 50')"
check "lowering counted" "yes" "$([ "$(metric "$F" rackllm_capacity_lowered_total)" -ge 1 ] && echo yes)"
check "a new session is turned away" "429" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$SHORT" "$F/v1/chat/completions")"
check "calibrated figure kept" "3" "$(health "$F" .capacity_calibrated)"

# ---- context: admission reserves the context a request may reach ----
# Capacity 5 given, floor 1: the period is 1/1.1 s, and the steps measured at
# 1 and 5 sessions (about 25 ms with the delay) leave about 0.88 s of it to
# context. At 2.7 ms per token a request without max_tokens reserves the
# whole context, 256, less the ~25 tokens the measured steps held: 0.62 s.
# One runs; a second such (1.25 s) is turned away although the count has
# room, the context named; a short one (its prompt + 10 tokens: about 0.66 s
# with the first) fits.
start_server ctx -m "$STORIES" --floor 1 --capacity 5 --queue 0 --ctx 256 --ctx-cost 2700 --step-delay 20
C=$URL
NOMAX='{"model":"stories260K","messages":[{"role":"user","content":"Tell a story."}],"stream":true,"ignore_eos":true}'
stream_bg "$C" "$NOMAX" "$TMP/c1.sse"
C1=$BGPID
check_true "c1 admitted" wait_until 20 health_is "$C" .active_sessions 1
check "c1 reserves the whole context" "256 0.0027" \
  "$(health "$C" .context_reserved_tokens) $(health "$C" .context_cost_seconds_per_token)"
check "the reservation in /metrics" "256" "$(metric "$C" rackllm_context_reserved_tokens)"
code=$(curl -s -o "$TMP/c2.json" -w '%{http_code}' -H 'Content-Type: application/json' -d "${NOMAX/,\"stream\":true/}" "$C/v1/chat/completions")
check "c2: 429, by context" "429 rate_limit_exceeded yes" \
  "$code $(jq -r .error.code "$TMP/c2.json") $(jq -r .error.message "$TMP/c2.json" | grep -q 'reserve all the context' && echo yes)"
stream_bg "$C" "$SHORT" "$TMP/c3.sse"
check_true "c3 answered" wait_until 30 test -s "$TMP/c3.sse.code"
check "c3: a short request fits beside c1" "200 10" \
  "$(cat "$TMP/c3.sse.code") $(sse_events "$TMP/c3.sse" | jq -r '.usage.completion_tokens // empty')"
kill "$C1"
check_true "c1's reservation returned" wait_until 20 health_is "$C" .context_reserved_tokens 0

# --max-tokens-default: a request without max_tokens reserves its prompt + the default, not
# the whole context (step-delay 20: its 100 tokens take 2 s or more, time to look)
start_server dflt -m "$STORIES" --floor 1 --capacity 2 --queue 0 --ctx 256 --max-tokens-default 100 --step-delay 20
D=$URL
np=$(curl -s -H 'Content-Type: application/json' -d "${NOMAX/,\"stream\":true/,\"max_tokens\":1}" "$D/v1/chat/completions" | jq -r .usage.prompt_tokens)
stream_bg "$D" "${NOMAX/\"stream\":true/\"stream\":true,\"stream_options\":{\"include_usage\":true\}}" "$TMP/d1.sse"
check_true "d1 admitted" wait_until 20 health_is "$D" .active_sessions 1
check "d1 reserves its prompt + the default" "$((np + 100))" "$(health "$D" .context_reserved_tokens)"
check_true "d1 answered" wait_until 30 test -s "$TMP/d1.sse.code"
check "d1 ends at the default" "100 length" \
  "$(sse_events "$TMP/d1.sse" | jq -r '.usage.completion_tokens // empty') $(sse_events "$TMP/d1.sse" | jq -r '.choices[0].finish_reason // empty')"

# ---- slow and stalled clients ----
start_server slow -m "$STORIES" --floor 1 --capacity 1 --queue 0 --timeout 1 --step-delay 10
W=$URL
port=${W##*:}
# a request that stops half way through its body is cut after --timeout
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"mo' >&3
t0=$SECONDS
timeout 20 cat <&3 >/dev/null
check "stalled upload cut by the timeout" "yes" "$([ $((SECONDS - t0)) -le 10 ] && echo yes)"
exec 3<&-
# a client that never reads its stream does not keep the slot: generation
# runs to its end and frees it
exec 4<>"/dev/tcp/127.0.0.1/$port"
body='{"model":"stories260K","messages":[{"role":"user","content":"Hi"}],"max_tokens":40,"stream":true,"ignore_eos":true}'
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body" >&4
check_true "the silent reader was admitted" wait_until 10 metric_is "$W" rackllm_admitted_total 1
check_true "its slot frees without it reading" wait_until 20 health_is "$W" .active_sessions 0
check "it ran whole" "40" "$(metric "$W" rackllm_completion_tokens_total)"
check "the server takes the next" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "${body/true,\"ignore_eos\":true/false}" "$W/v1/chat/completions")"
exec 4<&-

# ---- --ttft-limit: refused at once when others would make the first token late ----
# A given chunk of 16 at a floor of 1 prices a prompt token at 2 periods /
# 16 = 0.125 s and takes prompts to go in at half that speed (4 tok/s)
# until measured: a chat prompt of a few tokens expects > 0.5 s. Alone it
# is admitted all the same (nobody else makes it wait); behind a running
# session, queued, it is refused.
start_server ttft -m "$STORIES" --floor 1 --capacity 1 --queue 2 --prefill-chunk 16 --ttft-limit 0.5 --step-delay 20
T=$URL
check "health: the limit" "0.5 0" "$(health "$T" .prefill.ttft_limit_seconds) $(health "$T" .prefill.backlog_tokens)"
stream_bg "$T" "$LONG" "$TMP/t0.sse"
T0=$BGPID
check_true "alone, it is admitted" wait_until 20 health_is "$T" .active_sessions 1
printf '%s' "$SHORT" >"$TMP/t1.req"
code=$(curl -s -D "$TMP/t1.head" -o "$TMP/t1.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "@$TMP/t1.req" "$T/v1/chat/completions")
check "behind it: 429 at once" "429 ttft_limit_exceeded yes" \
  "$code $(jq -r .error.code "$TMP/t1.json") $(jq -r .error.message "$TMP/t1.json" | grep -q 'limit of 0.5 s' && echo yes)"
check_true "with Retry-After" grep -qi '^Retry-After: [1-9]' "$TMP/t1.head"
check "counted as ttft_limit" "1" "$(metric "$T" 'rackllm_rejections_total{reason="ttft_limit"}')"
check "not queued" "1 0" "$(health "$T" .active_sessions) $(health "$T" .queue_length)"
kill "$T0"

# ---- two partitions over HTTP ----
start_server parts -m "$STORIES" --floor 1 --capacity 2 --queue 0 --partitions 2 --threads 2
check "two partitions" "2" "$(health "$URL" .partitions)"
stream_bg "$URL" "$SHORT" "$TMP/p1.sse"
stream_bg "$URL" "$SHORT" "$TMP/p2.sse"
check_true "both answered" wait_until 30 bash -c "test -s '$TMP/p1.sse.code' && test -s '$TMP/p2.sse.code'"
check "both whole" "200 200 10 10" "$(cat "$TMP/p1.sse.code") $(cat "$TMP/p2.sse.code") $(sse_events "$TMP/p1.sse" | jq -r '.usage.completion_tokens // empty') $(sse_events "$TMP/p2.sse" | jq -r '.usage.completion_tokens // empty')"

finish test_server_load
