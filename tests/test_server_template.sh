#!/usr/bin/env bash
# test_server_template.sh — `rackllm serve` renders chats with the model's
# own tokenizer.chat_template: the prompt it tokenizes is what Python's
# jinja2 renders from the same GGUF (BOS once), a template it cannot render
# stops the start with an error naming the construct, and --chat-template
# picks a built-in for that same file.
set -u
. "$(dirname "$0")/server_lib.sh"
J='Content-Type: application/json'
MODEL="$SHARED/models/synth-l3-q8_0.gguf"
MSGS='[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there, caf\u00e9!"}]'

start_server own -m "$MODEL" --floor 1 --capacity 1 --queue 0 --ctx 256 --prefill-chunk 32
check "own template announced" "yes" "$(grep -q "the model's own chat template" "$TMP/own.err" && echo yes)"
python3 tests/gguf_template.py render "$MODEL" "$MSGS" >"$TMP/expected.txt"
want=$("$BIN" tokenize -m "$MODEL" --special --ids -f "$TMP/expected.txt" | jq length)
got=$(curl -s "$URL/v1/chat/completions" -H "$J" \
  -d "{\"model\": \"synth-l3-q8_0\", \"max_tokens\": 1, \"messages\": $MSGS}" | jq .usage.prompt_tokens)
check "prompt tokens = jinja2's rendering, tokenized with one BOS" "$want" "$got"
check_true "a real prompt" [ "${want:-0}" -gt 10 ]
stop_server "$PID" >/dev/null

# The same file with a filter the interpreter lacks: no start, a clear error.
python3 tests/gguf_template.py patch "$MODEL" "$TMP/bad.gguf" "| trim" "| wrap"
"$BIN" serve -m "$TMP/bad.gguf" --port 0 --threads 1 --floor 1 --capacity 1 >"$TMP/bad.out" 2>"$TMP/bad.err"
check "bad template: exit 2" "2" "$?"
check "bad template: names the filter" "yes" "$(grep -q "unsupported filter 'wrap'" "$TMP/bad.err" && echo yes)"
check "bad template: names the way out" "yes" "$(grep -q -- "--chat-template NAME" "$TMP/bad.err" && echo yes)"
check "bad template: never listens" "" "$(cat "$TMP/bad.out")"

start_server builtin -m "$TMP/bad.gguf" --chat-template llama3 --floor 1 --capacity 1 --queue 0 --ctx 256
check "built-in by name" "yes" "$(grep -q "llama3 chat template" "$TMP/builtin.err" && echo yes)"
got=$(curl -s "$URL/v1/chat/completions" -H "$J" \
  -d "{\"model\": \"bad\", \"max_tokens\": 1, \"messages\": $MSGS}" | jq .usage.prompt_tokens)
check "built-in llama3 renders as jinja2 does here" "$want" "$got"
stop_server "$PID" >/dev/null
finish test_server_template
