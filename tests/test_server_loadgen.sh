#!/usr/bin/env bash
# test_server_loadgen.sh — `rackllm loadgen` against `rackllm serve`: at
# twice the capacity (no queue) half the sessions are turned away with 429
# and retry; what loadgen counts from the client's side (completed, 429s,
# tokens) is what the server counted; every completed answer is whole; and
# loadgen refuses anything but loopback.
set -u
. "$(dirname "$0")/server_lib.sh"

start_server lg -m "$STORIES" --floor 1 --capacity 2 --queue 0 --step-delay 20
timeout 60 "$BIN" loadgen --url "$URL" --sessions 4 --duration 2 --max-tokens 10 --prompt-len 8 --json >"$TMP/lg.json"
check "loadgen exit" "0" "$?"
check "valid JSON" "true" "$(jq -r 'has("requests")' "$TMP/lg.json")"
completed=$(jq -r .requests.completed "$TMP/lg.json")
rejected=$(jq -r .requests.rejected_429 "$TMP/lg.json")
check "some completed" "yes" "$([ "$completed" -ge 2 ] && echo yes)"
check "some turned away" "yes" "$([ "$rejected" -ge 2 ] && echo yes)"
check "no errors, none cut" "0 0" "$(jq -r '"\(.requests.errors) \(.requests.cut)"' "$TMP/lg.json")"
check "whole answers" "$((completed * 10))" "$(jq -r .tokens "$TMP/lg.json")"
check "speeds measured" "true" "$(jq -r '.session_tps.min > 0 and .session_tps.p50 >= .session_tps.min and .ttft_s.p99 >= .ttft_s.p50 and .itl_s.p50 > 0' "$TMP/lg.json")"
check "server's 200s" "$completed" "$(metric "$URL" 'rackllm_requests_total{endpoint="chat_completions",code="200"}')"
check "server's 429s" "$rejected" "$(metric "$URL" 'rackllm_requests_total{endpoint="chat_completions",code="429"}')"
check "server's tokens" "$(jq -r .tokens "$TMP/lg.json")" "$(metric "$URL" rackllm_completion_tokens_total)"
check "never above capacity" "2" "$(health "$URL" .active_sessions_peak)"
"$BIN" loadgen --url "$URL" --sessions 1 --duration 1 --max-tokens 2 >"$TMP/lg.txt"
check "table" "yes" "$(grep -q '^per-session tok/s:' "$TMP/lg.txt" && grep -q '^requests: .* completed' "$TMP/lg.txt" && echo yes)"

for url in http://10.1.2.3:8080 http://192.168.0.1 http://example.com https://127.0.0.1:1 http://127.0.0.1.evil.com http://[::2]:80; do
  "$BIN" loadgen --url "$url" --sessions 1 --duration 1 2>/dev/null
  check "refuses $url" "2" "$?"
done
"$BIN" loadgen --url "$URL" --sessions 0 --duration 1 2>/dev/null
check "sessions 0" "2" "$?"
"$BIN" loadgen --url "$URL" --sessions 2 2>/dev/null
check "no duration" "2" "$?"
"$BIN" loadgen --help >/dev/null
check "--help" "0" "$?"
finish test_server_loadgen
