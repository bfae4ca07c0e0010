#!/usr/bin/env bash
# test_server_api.sh — every endpoint of `rackllm serve` with curl, on
# stories260K (no chat template: the default applies): response shapes
# (OpenAI's), streaming and whole answers that agree with each other and
# with `rackllm run`, sampling fields, stop strings, usage, and every error
# class (400 naming the field, 401, 404, 405, 413 and a chunked body past
# the limit closed, 429 with Retry-After);
# then promtool accepts /metrics and its counts add up.
set -u
. "$(dirname "$0")/server_lib.sh"
J='Content-Type: application/json'

start_server api -m "$STORIES" --floor 1 --capacity 2 --queue 0 --ctx 256 --max-body 8192 --prefill-chunk 32
A=$URL
APID=$PID
check "default template announced" "yes" "$(grep -q 'no chat template; chat uses the default template (chatml)' "$TMP/api.err" && echo yes)"

# ---- GET endpoints ----
curl -s "$A/health" >"$TMP/h.json"
check "health status" "ok" "$(jq -r .status "$TMP/h.json")"
check "health capacity" "2" "$(jq -r .capacity "$TMP/h.json")"
check "health free" "2" "$(jq -r .free_sessions "$TMP/h.json")"
check "health active" "0" "$(jq -r .active_sessions "$TMP/h.json")"
check "health queue" "0 0" "$(jq -r '"\(.queue_length) \(.queue_limit)"' "$TMP/h.json")"
check "health floor" "1" "$(jq -r .floor_tokens_per_second "$TMP/h.json")"
check "health tok/s" "number" "$(jq -r '.tokens_per_second.min | type' "$TMP/h.json")"
curl -s "$A/v1/models" >"$TMP/m.json"
check "models" "list model stories260K" "$(jq -r '"\(.object) \(.data[0].object) \(.data[0].id)"' "$TMP/m.json")"
check "model" "stories260K" "$(curl -s "$A/v1/models/stories260K" | jq -r .id)"
check "model 404" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$A/v1/models/other")"

# ---- text completion = rackllm run, whole and streamed ----
want=$("$BIN" run -m "$STORIES" -p "Once upon a time" -n 24 --temp 0 -c 256 -t 1 2>/dev/null)
req='{"model":"stories260K","prompt":"Once upon a time","max_tokens":24,"temperature":0}'
curl -s "$A/v1/completions" -H "$J" -d "$req" >"$TMP/c.json"
check "completion object" "text_completion" "$(jq -r .object "$TMP/c.json")"
check "completion text = rackllm run" "$want" "$(jq -r '.choices[0].text' "$TMP/c.json")"
check "completion finish" "length" "$(jq -r '.choices[0].finish_reason' "$TMP/c.json")"
check "completion usage" "5 24 29" "$(jq -r '.usage | "\(.prompt_tokens) \(.completion_tokens) \(.total_tokens)"' "$TMP/c.json")"
check "completion id" "yes" "$(jq -r .id "$TMP/c.json" | grep -q '^cmpl-' && echo yes)"
curl -sN "$A/v1/completions" -H "$J" -d "${req%\}},\"stream\":true}" >"$TMP/c.sse"
check "stream ends with [DONE]" "data: [DONE]" "$(grep '^data:' "$TMP/c.sse" | tail -n 1)"
check "streamed completion text" "$want" "$(sse_events "$TMP/c.sse" | jq -j '.choices[0].text')"
check "streamed completion finish" "length" "$(sse_events "$TMP/c.sse" | jq -r '.choices[0].finish_reason // empty')"
check "stream objects" "text_completion" "$(sse_events "$TMP/c.sse" | jq -r .object | sort -u)"

# ---- chat, whole and streamed ----
chat='{"model":"stories260K","messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"Tell me about a cat."}],"max_tokens":16,"temperature":0}'
curl -s "$A/v1/chat/completions" -H "$J" -d "$chat" >"$TMP/chat.json"
check "chat object" "chat.completion" "$(jq -r .object "$TMP/chat.json")"
check "chat role" "assistant" "$(jq -r '.choices[0].message.role' "$TMP/chat.json")"
check "chat finish" "length" "$(jq -r '.choices[0].finish_reason' "$TMP/chat.json")"
check "chat usage" "16" "$(jq -r '.usage.completion_tokens' "$TMP/chat.json")"
check "chat usage total" "true" "$(jq -r '.usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens and .usage.prompt_tokens > 10' "$TMP/chat.json")"
content=$(jq -r '.choices[0].message.content' "$TMP/chat.json")
check "chat content" "yes" "$([ -n "$content" ] && echo yes)"
check "chat greedy repeats" "$content" "$(curl -s "$A/v1/chat/completions" -H "$J" -d "$chat" | jq -r '.choices[0].message.content')"
# the prefix cache: the repeat above started from the first one's state (the same text all
# the same); a third says so in usage, as OpenAI's cached_tokens
curl -s "$A/v1/chat/completions" -H "$J" -d "$chat" >"$TMP/chat3.json"
check "prefix cache: same answer" "$content" "$(jq -r '.choices[0].message.content' "$TMP/chat3.json")"
check "prefix cache: all but the last prompt token reused" "true" \
    "$(jq -r '.usage.prompt_tokens_details.cached_tokens == .usage.prompt_tokens - 1' "$TMP/chat3.json")"
check "prefix cache: the first chat reused at most BOS" "true" \
    "$(jq -r '.usage.prompt_tokens_details.cached_tokens <= 1' "$TMP/chat.json")"
check "prefix cache in /health" "true" "$(health "$A" '.prefix_cache.hits >= 2 and .prefix_cache.bytes > 0')"
check "prefix cache in /metrics" "yes" \
    "$(curl -s "$A/metrics" | grep -q '^rackllm_prefix_cache_reused_tokens_total [1-9]' && echo yes)"
curl -sN "$A/v1/chat/completions" -H "$J" -d "${chat%\}},\"stream\":true,\"stream_options\":{\"include_usage\":true}}" >"$TMP/chat.sse"
sse_events "$TMP/chat.sse" >"$TMP/chat.ev"
check "stream: [DONE] last" "data: [DONE]" "$(grep '^data:' "$TMP/chat.sse" | tail -n 1)"
check "stream: first chunk has the role" "assistant" "$(head -n 1 "$TMP/chat.ev" | jq -r '.choices[0].delta.role')"
check "stream: chunk objects" "chat.completion.chunk" "$(jq -r .object "$TMP/chat.ev" | sort -u)"
check "stream: one id" "1" "$(jq -r .id "$TMP/chat.ev" | sort -u | wc -l)"
check "stream: content = whole answer" "$content" "$(jq -j '.choices[0].delta.content // empty' "$TMP/chat.ev")"
check "stream: finish" "length" "$(jq -r '.choices[0].finish_reason // empty' "$TMP/chat.ev")"
check "stream: usage chunk" "0 16" "$(tail -n 1 "$TMP/chat.ev" | jq -r '"\(.choices | length) \(.usage.completion_tokens)"')"
check "stream: usage null before" "true" "$(head -n 1 "$TMP/chat.ev" | jq -r 'has("usage") and .usage == null')"
check "stream: content type" "yes" "$(curl -sN -o /dev/null -D - "$A/v1/chat/completions" -H "$J" -d "${chat%\}},\"stream\":true}" | grep -qi '^content-type: text/event-stream' && echo yes)"

# ---- sampling fields ----
s1='{"model":"stories260K","prompt":"Lily","max_completion_tokens":20,"temperature":1.0,"top_k":0,"top_p":1,"min_p":0,"seed":42}'
a=$(curl -s "$A/v1/completions" -H "$J" -d "$s1" | jq -r '.choices[0].text')
b=$(curl -s "$A/v1/completions" -H "$J" -d "$s1" | jq -r '.choices[0].text')
check "same seed, same text" "$a" "$b"
check "max_completion_tokens" "20" "$(curl -s "$A/v1/completions" -H "$J" -d "$s1" | jq -r .usage.completion_tokens)"
pen='{"model":"stories260K","prompt":"Lily","max_tokens":30,"temperature":0,"presence_penalty":2,"frequency_penalty":2}'
check "penalties accepted" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$A/v1/completions" -H "$J" -d "$pen")"
check "penalties change greedy text" "yes" "$([ "$(curl -s "$A/v1/completions" -H "$J" -d "$pen" | jq -r '.choices[0].text')" != \
  "$(curl -s "$A/v1/completions" -H "$J" -d "${pen/\"presence_penalty\":2,\"frequency_penalty\":2/\"seed\":1}" | jq -r '.choices[0].text')" ] && echo yes)"

# ---- stop strings: the text ends just before the first occurrence ----
full=$(jq -r '.choices[0].text' "$TMP/c.json")
stop=${full:12:4}
prefix=${full%%"$stop"*}
curl -s "$A/v1/completions" -H "$J" -d "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0,\"stop\":[\"zzzz\",$(jq -Rn --arg s "$stop" '$s')]}" >"$TMP/stop.json"
check "stop: text" "$prefix" "$(jq -r '.choices[0].text' "$TMP/stop.json")"
check "stop: finish" "stop" "$(jq -r '.choices[0].finish_reason' "$TMP/stop.json")"
curl -s "$A/v1/completions" -H "$J" -d "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0,\"stop\":$(jq -Rn --arg s "$stop" '$s'),\"stream\":true}" >"$TMP/stop.sse"
check "stop: streamed text" "$prefix" "$(sse_events "$TMP/stop.sse" | jq -j '.choices[0].text')"

# ---- errors: 400 naming the field ----
err400() { # err400 NAME ENDPOINT BODY PARAM
  local code
  code=$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$A$2" -H "$J" --data-binary "$3")
  check "$1: status" "400" "$code"
  check "$1: error object" "invalid_request_error $4" "$(jq -r '"\(.error.type) \(.error.param)"' "$TMP/e.json" 2>/dev/null)"
  check "$1: message" "yes" "$(jq -r .error.message "$TMP/e.json" 2>/dev/null | grep -q . && echo yes)"
}
C=/v1/chat/completions
M='"model":"stories260K"'
U='"messages":[{"role":"user","content":"hi"}]'
err400 "bad JSON" $C '{"model": "stories260K", "messages": [' null
err400 "not an object" $C '[1,2]' null
err400 "empty body" $C '' null
err400 "no model" $C "{$U}" model
code=$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$A$C" -H "$J" -d "{\"model\":\"gpt-9\",$U}")
check "unknown model: 404 model_not_found" "404 invalid_request_error model model_not_found" \
  "$code $(jq -r '"\(.error.type) \(.error.param) \(.error.code)"' "$TMP/e.json")"
err400 "no messages" $C "{$M}" messages
err400 "messages not array" $C "{$M,\"messages\":\"hi\"}" messages
err400 "no message" $C "{$M,\"messages\":[]}" messages
err400 "bad role" $C "{$M,\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}" 'messages[0].role'
err400 "bad content" $C "{$M,\"messages\":[{\"role\":\"user\",\"content\":5}]}" 'messages[0].content'
err400 "image part" $C "{$M,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}" 'messages[0].content'
err400 "temperature type" $C "{$M,$U,\"temperature\":\"hot\"}" temperature
err400 "temperature range" $C "{$M,$U,\"temperature\":5}" temperature
err400 "top_p" $C "{$M,$U,\"top_p\":1.5}" top_p
err400 "top_k" $C "{$M,$U,\"top_k\":-1}" top_k
err400 "min_p" $C "{$M,$U,\"min_p\":2}" min_p
err400 "presence_penalty" $C "{$M,$U,\"presence_penalty\":3}" presence_penalty
err400 "frequency_penalty" $C "{$M,$U,\"frequency_penalty\":true}" frequency_penalty
err400 "max_tokens zero" $C "{$M,$U,\"max_tokens\":0}" max_tokens
err400 "max_tokens fraction" $C "{$M,$U,\"max_tokens\":1.5}" max_tokens
err400 "max_completion_tokens" $C "{$M,$U,\"max_completion_tokens\":\"9\"}" max_completion_tokens
err400 "seed" $C "{$M,$U,\"seed\":0.5}" seed
err400 "stream" $C "{$M,$U,\"stream\":1}" stream
err400 "stream_options" $C "{$M,$U,\"stream\":true,\"stream_options\":{\"include_usage\":1}}" stream_options.include_usage
err400 "stop type" $C "{$M,$U,\"stop\":5}" stop
err400 "too many stops" $C "{$M,$U,\"stop\":[$(printf '"s%d",' $(seq 20) | sed 's/,$//')]}" stop
err400 "n" $C "{$M,$U,\"n\":2}" n
err400 "logit_bias" $C "{$M,$U,\"logit_bias\":{\"5\":10}}" logit_bias
err400 "tools" $C "{$M,$U,\"tools\":[{\"type\":\"function\"}]}" tools
err400 "no prompt" /v1/completions "{$M}" prompt
err400 "prompt type" /v1/completions "{$M,\"prompt\":[1,2]}" prompt
long=$(printf 'the cat sat on the mat and ate a big fish %.0s' $(seq 40))
err400 "prompt too long" /v1/completions "{$M,\"prompt\":\"$long\"}" prompt
check "too long code" "context_length_exceeded" "$(jq -r .error.code "$TMP/e.json")"
err400 "chat too long" $C "{$M,\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}" messages

# ---- API parity (issue 15): names, max_tokens limits, penalties, logprobs, overflow ----
start_server par -m "$STORIES" --floor 1 --capacity 2 --queue 0 --ctx 256 --served-model-name 'tiny, tiny-alias' \
  --max-tokens-default 7 --max-tokens-max 50 --context-overflow drop-oldest
P=$URL
check "served names listed" "tiny tiny-alias" "$(curl -s "$P/v1/models" | jq -r '[.data[].id] | join(" ")')"
check "an alias's model object" "200 tiny-alias" "$(curl -s -o "$TMP/m.json" -w '%{http_code}' "$P/v1/models/tiny-alias"; echo " $(jq -r .id "$TMP/m.json")")"
curl -s "$P/v1/completions" -H "$J" -d '{"model":"tiny-alias","prompt":"Once upon a time","temperature":0}' >"$TMP/p.json"
check "an alias is served, the first name reported" "tiny" "$(jq -r .model "$TMP/p.json")"
check "no max_tokens: the server's default" "7 length" "$(jq -r '"\(.usage.completion_tokens) \(.choices[0].finish_reason)"' "$TMP/p.json")"
code=$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$P/v1/chat/completions" -H "$J" -d "{\"model\":\"stories260K\",$U}")
check "the file's name is not served under other names: 404" "404 invalid_request_error model model_not_found" \
  "$code $(jq -r '"\(.error.type) \(.error.param) \(.error.code)"' "$TMP/e.json")"
check "404 message" "The model 'stories260K' does not exist; this server serves 'tiny'" "$(jq -r .error.message "$TMP/e.json")"
for f in max_tokens max_completion_tokens; do
  code=$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$P/v1/chat/completions" -H "$J" -d "{\"model\":\"tiny\",$U,\"$f\":51}")
  check "$f above the cap: 400 naming it and the cap" "400 $f yes" \
    "$code $(jq -r .error.param "$TMP/e.json") $(jq -r .error.message "$TMP/e.json" | grep -q 'at most 50' && echo yes)"
done
check "max_tokens at the cap" "50" "$(curl -s "$P/v1/completions" -H "$J" -d '{"model":"tiny","prompt":"Lily","max_tokens":50,"ignore_eos":true}' | jq -r .usage.completion_tokens)"
code=$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$P/v1/embeddings" -H "$J" -d '{"model":"tiny","input":"a cat"}')
check "embeddings: 404 saying so" "404 not_found yes" \
  "$code $(jq -r .error.code "$TMP/e.json") $(jq -r .error.message "$TMP/e.json" | grep -q 'does not serve embeddings' && echo yes)"

# repetition_penalty (llama.cpp's), over repeat_last_n tokens
rp='{"model":"tiny","prompt":"Lily","max_tokens":40,"temperature":0}'
plain=$(curl -s "$P/v1/completions" -H "$J" -d "$rp" | jq -r '.choices[0].text')
pen=$(curl -s "$P/v1/completions" -H "$J" -d "${rp%\}},\"repetition_penalty\":1.8}" | jq -r '.choices[0].text')
check "repetition_penalty changes greedy text" "yes" "$([ -n "$pen" ] && [ "$pen" != "$plain" ] && echo yes)"
check "repetition_penalty 1 is off" "$plain" "$(curl -s "$P/v1/completions" -H "$J" -d "${rp%\}},\"repetition_penalty\":1}" | jq -r '.choices[0].text')"
check "repeat_last_n 0 turns it off" "$plain" \
  "$(curl -s "$P/v1/completions" -H "$J" -d "${rp%\}},\"repetition_penalty\":1.8,\"repeat_last_n\":0}" | jq -r '.choices[0].text')"
A0=$A; A=$P; M0=$M; M='"model":"tiny"'
err400 "repetition_penalty 0" $C "{$M,$U,\"repetition_penalty\":0}" repetition_penalty
err400 "repetition_penalty above 2" $C "{$M,$U,\"repetition_penalty\":2.5}" repetition_penalty
err400 "repeat_last_n" $C "{$M,$U,\"repeat_last_n\":-2}" repeat_last_n
err400 "top_logprobs above 20" $C "{$M,$U,\"logprobs\":true,\"top_logprobs\":21}" top_logprobs
err400 "top_logprobs without logprobs" $C "{$M,$U,\"top_logprobs\":2}" top_logprobs
err400 "chat logprobs not a bool" $C "{$M,$U,\"logprobs\":3}" logprobs
err400 "completions logprobs above 5" /v1/completions "{$M,\"prompt\":\"a\",\"logprobs\":6}" logprobs
err400 "top_logprobs on completions" /v1/completions "{$M,\"prompt\":\"a\",\"top_logprobs\":2}" top_logprobs
A=$A0; M=$M0

# logprobs: chat, whole and streamed; the model's distribution, greedy takes the top one
lc='{"model":"tiny","messages":[{"role":"user","content":"Tell me about a cat."}],"max_tokens":12,"temperature":0,"logprobs":true,"top_logprobs":3}'
curl -s "$P/v1/chat/completions" -H "$J" -d "$lc" >"$TMP/lp.json"
check "chat logprobs: one per token" "12" "$(jq -r '.choices[0].logprobs.content | length' "$TMP/lp.json")"
check "chat logprobs: tokens spell the content" "$(jq -r '.choices[0].message.content' "$TMP/lp.json")" \
  "$(jq -j '.choices[0].logprobs.content[].token' "$TMP/lp.json")"
check "chat logprobs: bytes are the token's" "true" \
  "$(jq -r '[.choices[0].logprobs.content[] | (.bytes | implode) == .token] | all' "$TMP/lp.json")"
check "chat logprobs: all <= 0, three alternatives, sorted" "true" \
  "$(jq -r '[.choices[0].logprobs.content[] | .logprob <= 0 and (.top_logprobs | length) == 3 and
      ([.top_logprobs[].logprob] | . == (sort | reverse)) and all(.top_logprobs[]; .logprob <= 0)] | all' "$TMP/lp.json")"
check "chat logprobs: greedy = the top one, same logprob" "true" \
  "$(jq -r '[.choices[0].logprobs.content[] | .token == .top_logprobs[0].token and .logprob == .top_logprobs[0].logprob] | all' "$TMP/lp.json")"
curl -sN "$P/v1/chat/completions" -H "$J" -d "${lc%\}},\"stream\":true}" >"$TMP/lp.sse"
check "chat logprobs streamed = whole" "$(jq -c '.choices[0].logprobs.content' "$TMP/lp.json")" \
  "$(sse_events "$TMP/lp.sse" | jq -c '.choices[0].logprobs.content // empty | .[]' | jq -sc .)"
check "chat logprobs off: null" "null" "$(curl -s "$P/v1/chat/completions" -H "$J" -d "${lc/\"logprobs\":true,\"top_logprobs\":3/\"logprobs\":false}" | jq -c '.choices[0].logprobs')"
# sampled (temperature 1): the chosen token's logprob is the model's, found among the alternatives when there
lcs=${lc/\"temperature\":0/\"temperature\":1.5,\"seed\":7}
curl -s "$P/v1/chat/completions" -H "$J" -d "${lcs/\"top_logprobs\":3/\"top_logprobs\":20}" >"$TMP/lps.json"
check "sampled: the chosen token's logprob = its entry in top_logprobs" "true" \
  "$(jq -r '[.choices[0].logprobs.content[] | . as $e | .top_logprobs[] | select(.token == $e.token) | .logprob == $e.logprob] | all and length > 6' "$TMP/lps.json")"
check "sampled: logprobs of the model, not of the temperature" "true" \
  "$(jq -r --slurpfile g "$TMP/lp.json" '.choices[0].logprobs.content[0].top_logprobs[:3] == $g[0].choices[0].logprobs.content[0].top_logprobs' "$TMP/lps.json")"

# logprobs: completions, whole and streamed
lt='{"model":"tiny","prompt":"Once upon a time","max_tokens":10,"temperature":0,"logprobs":2}'
curl -s "$P/v1/completions" -H "$J" -d "$lt" >"$TMP/lt.json"
check "completion logprobs: tokens spell the text" "$(jq -r '.choices[0].text' "$TMP/lt.json")" "$(jq -j '.choices[0].logprobs.tokens[]' "$TMP/lt.json")"
check "completion logprobs: shapes" "10 10 10 10" \
  "$(jq -r '.choices[0].logprobs | "\(.tokens | length) \(.token_logprobs | length) \(.top_logprobs | length) \(.text_offset | length)"' "$TMP/lt.json")"
check "completion logprobs: text_offset from the prompt's start" "true" \
  "$(jq -r '.choices[0].logprobs as $l | [range(1; 10) | $l.text_offset[.] == $l.text_offset[. - 1] + ($l.tokens[. - 1] | utf8bytelength)] | all and $l.text_offset[0] == 16' "$TMP/lt.json")"
check "completion logprobs: greedy = the top one" "true" \
  "$(jq -r '.choices[0].logprobs as $l | [range(10) | ($l.top_logprobs[.] | to_entries | max_by(.value)) as $t | $t.key == $l.tokens[.] and $t.value == $l.token_logprobs[.] and $t.value <= 0] | all' "$TMP/lt.json")"
curl -sN "$P/v1/completions" -H "$J" -d "${lt%\}},\"stream\":true}" >"$TMP/lt.sse"
check "completion logprobs streamed = whole" "$(jq -c '.choices[0].logprobs | [.tokens, .token_logprobs, .text_offset]' "$TMP/lt.json")" \
  "$(sse_events "$TMP/lt.sse" | jq -c '.choices[0].logprobs // empty' | jq -sc '[map(.tokens[]), map(.token_logprobs[]), map(.text_offset[])]')"

# a chat longer than the context: refused (the default) or cut by its oldest turns (--context-overflow drop-oldest)
start_server ref -m "$STORIES" --floor 1 --capacity 1 --queue 0 --ctx 256 --context-overflow refuse
R=$URL
python3 - "$TMP" <<'PY'
import json, sys
turns = [[{"role": "user", "content": "Turn %d: tell me about the little dog and the big red ball." % i},
          {"role": "assistant", "content": "The dog ran after the ball and the children laughed %d." % i}] for i in range(8)]
for k in range(9):
    m = [{"role": "system", "content": "You tell stories."}] + sum(turns[k:], []) + [{"role": "user", "content": "And then?"}]
    json.dump({"messages": m, "max_tokens": 16, "temperature": 0}, open("%s/over%d.json" % (sys.argv[1], k), "w"))
PY
over() { jq -c --arg m "$2" '. + {model: $m}' "$TMP/over$1.json"; }
code=$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$R/v1/chat/completions" -H "$J" -d "$(over 0 stories260K)")
check "overflow refused: 400 context_length_exceeded naming the context" "400 context_length_exceeded messages yes" \
  "$code $(jq -r '"\(.error.code) \(.error.param)"' "$TMP/e.json") $(jq -r .error.message "$TMP/e.json" | grep -q 'context holds 256' && echo yes)"
k=1 # the fewest turns to drop: the first k whose prompt + max_tokens fits (asked of the refusing server)
while [ $k -lt 9 ]; do
  n=$(curl -s "$R/v1/chat/completions" -H "$J" -d "$(over $k stories260K)" | jq -r '.usage.prompt_tokens // 999')
  [ $((n + 16)) -le 256 ] && break
  k=$((k + 1))
done
check "overflow: some turns must go, not all" "yes" "$([ $k -gt 1 ] && [ $k -lt 8 ] && echo yes)"
curl -s "$P/v1/chat/completions" -H "$J" -d "$(over 0 tiny)" >"$TMP/drop.json"
check "drop-oldest: answered from the chat without its oldest turns" "$n $(curl -s "$R/v1/chat/completions" -H "$J" -d "$(over $k stories260K)" | jq -c '.choices[0].message.content')" \
  "$(jq -r .usage.prompt_tokens "$TMP/drop.json") $(jq -c '.choices[0].message.content' "$TMP/drop.json")"

# docs/server.md's table of request fields names every field api.c reads
root=$(cd "$(dirname "$0")/.." && pwd)
table=$(sed -n '/^### Request fields/,/^### /p' "$root/docs/server.md")
read_fields=$( (grep -oE '(field|get_number|get_int|get_bool|cJSON_GetObjectItemCaseSensitive)\([a-z]+, "[a-z_]+"' "$root/src/serve/http/api.c"
  grep -oE 'const (NAMES|OTHER)\[\] = \{[^}]*\}' "$root/src/serve/http/api.c" | grep -oE '"[a-z_]+"') | grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
missing=$(for f in $read_fields; do grep -qF "\`$f\`" <<<"$table" || echo "$f"; done)
check "api.c reads fields" "yes" "$([ "$(wc -w <<<"$read_fields")" -gt 30 ] && echo yes)"
check "every field api.c reads is in docs/server.md's table" "" "$missing"

# ---- 404, 405, 413 ----
check "404" "404 invalid_request_error" "$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$A/v2/nothing"; jq -r ' " \(.error.type)"' "$TMP/e.json")"
check "405" "405" "$(curl -s -o /dev/null -D "$TMP/h405" -w '%{http_code}' "$A/v1/chat/completions")"
check "405 Allow" "yes" "$(grep -qi '^allow: POST' "$TMP/h405" && echo yes)"
check "405 on health" "405" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$A/health")"
head -c 20000 /dev/zero | tr '\0' 'a' | sed 's/^/{"model":"stories260K","prompt":"/; s/$/"}/' >"$TMP/big.json"
check "413" "413" "$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$A/v1/completions" -H "$J" --data-binary "@$TMP/big.json")"
check "413 error object" "request_too_large" "$(jq -r .error.code "$TMP/e.json")"
# a chunked body says its size only as it comes: past the limit the connection closes at once
check "chunked upload past the limit: closed" "000" "$(curl -s -o /dev/null -w '%{http_code}' "$A/v1/completions" -H "$J" -H 'Transfer-Encoding: chunked' --data-binary "@$TMP/big.json")"
check "closed, counted" "1" "$(metric "$A" 'rackllm_connections_closed_total{reason="body_too_large"}')"
check "still serving after errors" "ok" "$(health "$A" .status)"

# ---- 429: the capacity is taken and there is no queue ----
start_server busy -m "$STORIES" --floor 1 --capacity 1 --queue 0 --step-delay 20
B=$URL
stream_bg "$B" '{"model":"stories260K","messages":[{"role":"user","content":"hi"}],"max_tokens":2000,"stream":true,"ignore_eos":true}' "$TMP/long.sse"
LONG=$BGPID
check_true "long stream started" wait_until 30 has_content "$TMP/long.sse"
code=$(curl -s -o "$TMP/e.json" -D "$TMP/h429" -w '%{http_code}' "$B/v1/chat/completions" -H "$J" -d "{$M,$U}")
check "429" "429" "$code"
check "429 error object" "rate_limit_error rate_limit_exceeded" "$(jq -r '"\(.error.type) \(.error.code)"' "$TMP/e.json")"
check "429 Retry-After" "yes" "$(grep -Eqi '^retry-after: [1-9][0-9]*' "$TMP/h429" && echo yes)"
check "429 counted" "1" "$(metric "$B" 'rackllm_rejections_total{reason="queue_full"}')"
kill "$LONG"
check_true "slot freed after the client left" wait_until 10 health_is "$B" .active_sessions 0

# ---- 401 with --api-key; /health and /metrics stay open ----
start_server key -m "$STORIES" --floor 1 --capacity 1 --api-key s3cret
K=$URL
check "401 without key" "401" "$(curl -s -o "$TMP/e.json" -w '%{http_code}' "$K/v1/models")"
check "401 error object" "invalid_request_error invalid_api_key" "$(jq -r '"\(.error.type) \(.error.code)"' "$TMP/e.json")"
check "401 wrong key" "401" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$K/v1/models")"
check "401 on chat" "401" "$(curl -s -o /dev/null -w '%{http_code}' "$K/v1/chat/completions" -H "$J" -d "{$M,$U}")"
check "right key" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cret' "$K/v1/models")"
check "right key chat" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cret' "$K/v1/chat/completions" -H "$J" -d "{$M,$U,\"max_tokens\":2}")"
check "health without key" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$K/health")"
check "metrics without key" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$K/metrics")"

# ---- a chat template by name ----
start_server tmpl -m "$STORIES" --floor 1 --capacity 1 --chat-template llama2
check "named template" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/chat/completions" -H "$J" -d "{$M,$U,\"max_tokens\":2}")"
check "no default-template note" "no" "$(grep -q 'default template' "$TMP/tmpl.err" && echo yes || echo no)"
"$BIN" serve -m "$STORIES" --chat-template nonsense 2>/dev/null
check "unknown template exit" "2" "$?"

# ---- /metrics: promtool accepts it, and it counted what happened ----
curl -s "$A/metrics" >"$TMP/metrics.txt"
check_true "promtool check metrics" promtool check metrics <"$TMP/metrics.txt"
check "requests 413 counted" "1" "$(metric "$A" 'rackllm_requests_total{endpoint="completions",code="413"}')"
check "requests 404 counted" "1" "$(metric "$A" 'rackllm_requests_total{endpoint="other",code="404"}')"
n200=$(metric "$A" 'rackllm_requests_total{endpoint="chat_completions",code="200"}')
check "chat 200 counted" "5" "$n200"
adm=$(metric "$A" rackllm_admitted_total)
ttft=$(metric "$A" rackllm_time_to_first_token_seconds_count)
check "every admitted session got a first token" "$adm" "$ttft"
check "ttft +Inf bucket = count" "$ttft" "$(metric "$A" 'rackllm_time_to_first_token_seconds_bucket{le="+Inf"}')"
check "finished = admitted" "$adm" "$(curl -s "$A/metrics" | awk '/^rackllm_sessions_finished_total/ { s += $2 } END { print s }')"
check "tokens out counted" "yes" "$([ "$(metric "$A" rackllm_completion_tokens_total)" -gt 200 ] && echo yes)"

# ---- bad flags ----
"$BIN" serve --help >/dev/null
check "--help" "0" "$?"
"$BIN" serve 2>/dev/null
check "no model" "2" "$?"
"$BIN" serve -m "$STORIES" --floor zero 2>/dev/null
check "bad number" "2" "$?"
"$BIN" serve -m "$STORIES" --ctx-cost 0 2>/dev/null
check "bad --ctx-cost (0)" "2" "$?"
"$BIN" serve -m "$STORIES" --ctx-cost 2us 2>/dev/null
check "bad --ctx-cost (unit)" "2" "$?"
"$BIN" serve -m "$STORIES" --port 0 --host 10.999.0.1 2>/dev/null
check "bad host" "2" "$?"
"$BIN" serve -m "$STORIES" --port 0 --capacity 1 --context-overflow truncate 2>"$TMP/flag.err"
check "bad --context-overflow" "2 yes" "$? $(grep -q 'refuse or drop-oldest' "$TMP/flag.err" && echo yes)"
"$BIN" serve -m "$STORIES" --port 0 --capacity 1 --max-tokens-default 60 --max-tokens-max 50 2>"$TMP/flag.err"
check "--max-tokens-default above --max-tokens-max" "2 yes" "$? $(grep -q 'above --max-tokens-max' "$TMP/flag.err" && echo yes)"
"$BIN" serve -m "$STORIES" --name a --served-model-name b 2>/dev/null
check "--name with --served-model-name" "2" "$?"
"$BIN" serve -m "$STORIES" --port 0 --capacity 1 --served-model-name 'a,,b' 2>/dev/null
check "an empty served name" "2" "$?"

stop_server "$APID"
check "exit 0 on SIGTERM" "0" "$?"
finish test_server_api
