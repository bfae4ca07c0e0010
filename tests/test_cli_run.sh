#!/usr/bin/env bash
# test_cli_run.sh — `rackllm run` end to end on the real TinyStories model:
# greedy output must be exactly the text of llama.cpp's greedy tokens (the
# golden file's piece_hex, up to the first near-tie or end of text); the same
# seed must give the same text and another seed other text; --chat answers
# each line on stdin; bad input exits 2 with one clear line.
set -u
BIN=${RACKLLM_BIN:?RACKLLM_BIN is not set (run through ctest)}
SHARED=${RACKLLM_SHARED:-../shared}
MODEL="$SHARED/models/stories260K.gguf"
GOLDEN="$SHARED/golden/generate/stories260K.jsonl"
fails=0
checks=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # check NAME EXPECTED ACTUAL
  checks=$((checks + 1))
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1" >&2
    echo "  expected: $2" >&2
    echo "  got:      $3" >&2
    fails=$((fails + 1))
  fi
}

# The expected greedy text of golden line $1 (1-based) as hex, and its step
# count: the steps before the first margin < 0.02 or the end token (id 2).
expected_hex() {
  sed -n "${1}p" "$GOLDEN" | grep -o '"token":[0-9]*,"piece_hex":"[0-9a-f]*","margin":[0-9.e-]*' |
    awk -F'[:,"]+' '{ tok=$3; hex=$5; margin=$7; if (margin < 0.02 || tok == 2) exit; printf "%s", hex; n++ }
                    END { printf " %d\n", n }'
}

for line in 1 2 3; do
  prompt=$(sed -n "${line}p" "$GOLDEN" | sed -e 's/^{"prompt":"//' -e 's/","add_bos".*//')
  read -r want steps < <(expected_hex "$line")
  got=$("$BIN" run -m "$MODEL" -p "$prompt" -n "$steps" --temp 0 -t 1 2>/dev/null | od -An -tx1 | tr -d ' \n')
  check "greedy text for '$prompt' ($steps tokens)" "$want" "$got"
done

a=$("$BIN" run -m "$MODEL" -p "Once upon a time" -n 40 --seed 7 2>/dev/null)
b=$("$BIN" run -m "$MODEL" -p "Once upon a time" -n 40 --seed 7 2>/dev/null)
c=$("$BIN" run -m "$MODEL" -p "Once upon a time" -n 40 --seed 8 2>/dev/null)
check "same seed, same text" "$a" "$b"
check "other seed, other text" "differ" "$([ "$a" != "$c" ] && echo differ)"
check "sampled text is not empty" "yes" "$([ -n "$a" ] && echo yes)"

# speeds on stderr, text alone on stdout
"$BIN" run -m "$MODEL" -p "Once upon a time" -n 5 --temp 0 >"$tmp/out" 2>"$tmp/err"
check "speeds on stderr" "yes" "$(grep -q 'generation: .* tok/s' "$tmp/err" && echo yes)"
check "no speeds on stdout" "no" "$(grep -q 'tok/s' "$tmp/out" && echo yes || echo no)"

# stop strings: the text ends before the stop string, which is not printed
full=$("$BIN" run -m "$MODEL" -p "Once upon a time" -n 30 --temp 0 2>/dev/null)
cut=$("$BIN" run -m "$MODEL" -p "Once upon a time" -n 30 --temp 0 --stop "little" 2>/dev/null)
check "stop string cuts the text" "${full%%little*}" "$cut"

# chat: two user lines, two answers (the default template, as text)
printf 'Hello\nTell me a story\n' | "$BIN" run -m "$MODEL" --chat -n 8 --temp 0 >"$tmp/chat" 2>"$tmp/chat.err"
check "chat exits 0" "0" "$?"
check "chat answers each turn" "2" "$(grep -c '' "$tmp/chat")"

# errors: exit 2, one line naming the problem
"$BIN" run -m "$tmp/missing.gguf" -p hi >/dev/null 2>"$tmp/e1"
check "missing model exits 2" "2" "$?"
check "missing model names the file" "yes" "$(grep -q 'missing.gguf' "$tmp/e1" && echo yes)"
printf 'GGUF\x03\x00\x00\x00' >"$tmp/bad.gguf"
"$BIN" run -m "$tmp/bad.gguf" -p hi >/dev/null 2>"$tmp/e2"
check "truncated model exits 2" "2" "$?"
check "one error line" "1" "$(grep -c '' "$tmp/e2")"
long=$(printf 'word %.0s' $(seq 1 400))
"$BIN" run -m "$MODEL" -p "$long" -c 64 -n 4 >/dev/null 2>"$tmp/e3"
check "prompt beyond the context exits 2" "2" "$?"
check "context error says so" "yes" "$(grep -q 'context' "$tmp/e3" && echo yes)"
"$BIN" run -m "$MODEL" -p hi --temp -1 >/dev/null 2>&1
check "negative temperature exits 2" "2" "$?"
"$BIN" run --help >"$tmp/help"
check "--help exits 0" "0" "$?"
check "--help lists --top-p" "yes" "$(grep -q -- '--top-p' "$tmp/help" && echo yes)"

if [ "$fails" -ne 0 ]; then
  echo "test_cli_run: $fails of $checks checks failed" >&2
  exit 1
fi
echo "test_cli_run: all $checks checks passed"
