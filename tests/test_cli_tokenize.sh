#!/usr/bin/env bash
# test_cli_tokenize.sh — `rackllm tokenize` end to end: the built binary
# ($RACKLLM_BIN) on the shared models must print, with --ids, exactly the
# prompt_tokens llama.cpp recorded in ../shared/golden/generate, for every
# prompt that is plain text on one line; the text may come from the
# argument, a file or standard input; flags and errors behave.
set -u
BIN=${RACKLLM_BIN:?RACKLLM_BIN is not set (run through ctest)}
SHARED=${RACKLLM_SHARED:-../shared}
fails=0
checks=0

check() { # check NAME EXPECTED ACTUAL
  checks=$((checks + 1))
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1" >&2
    echo "  expected: $2" >&2
    echo "  got:      $3" >&2
    fails=$((fails + 1))
  fi
}

# The golden prompt_tokens of the line whose prompt is exactly $2, as
# rackllm prints them: [1, 403, 407].
golden_ids() { # golden_ids JSONL PROMPT
  grep -F "\"prompt\":\"$2\"," "$1" | head -n 1 | grep -o '"prompt_tokens":\[[0-9,]*\]' |
    sed -e 's/.*\[//' -e 's/\]//' -e 's/,/, /g' -e 's/^/[/' -e 's/$/]/'
}

compare_prompts() { # compare_prompts MODEL-STEM PROMPTS-FILE
  local model="$SHARED/models/$1.gguf" jsonl="$SHARED/golden/generate/$1.jsonl" n=0
  while IFS= read -r prompt; do
    case "$prompt" in *\\* | *\"*) continue ;; esac # escaped in JSON: covered by test_tokenizer
    want=$(golden_ids "$jsonl" "$prompt")
    check "$1: golden line for '$prompt'" "1" "$([ -n "$want" ] && echo 1)"
    got=$("$BIN" tokenize -m "$model" --ids "$prompt")
    check "$1: '$prompt'" "$want" "$got"
    n=$((n + 1))
  done <"$SHARED/golden/generate/$2"
  check "$1: prompts compared" "yes" "$([ "$n" -ge 3 ] && echo yes)"
}

compare_prompts stories260K prompts.txt
compare_prompts synth-l3-q8_0 prompts-l3.txt

stories="$SHARED/models/stories260K.gguf"
l3="$SHARED/models/synth-l3-q8_0.gguf"

# The same text from a file and from standard input.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
printf 'Once upon a time' >"$tmp"
check "-f FILE" "[1, 403, 407, 261, 378]" "$("$BIN" tokenize -m "$stories" --ids -f "$tmp")"
check "stdin" "[1, 403, 407, 261, 378]" "$(printf 'Once upon a time' | "$BIN" tokenize -m "$stories" --ids -)"
check "--no-bos" "[403, 407, 261, 378]" "$("$BIN" tokenize -m "$stories" --ids --no-bos 'Once upon a time')"

# The default listing: id and piece, one per line.
check "listing" "$(printf '     1  %s\n   403  %s' "'<s>'" "' Once'")" "$("$BIN" tokenize -m "$stories" 'Once')"
check "listing escapes" "   271  '\\n\\n'" "$("$BIN" tokenize -m "$l3" --no-bos "$(printf '\n\nx')" | head -n 1)"

# Special tokens only with --special.
check "--special" "[128000, 128009]" "$("$BIN" tokenize -m "$l3" --ids --special '<|eot_id|>')"
plain=$("$BIN" tokenize -m "$l3" --ids '<|eot_id|>')
check "no --special" "no" "$(echo "$plain" | grep -q 128009 && echo yes || echo no)"

# Help and errors.
"$BIN" tokenize --help >/dev/null
check "--help exit" 0 $?
"$BIN" tokenize -m "$stories" 2>/dev/null
check "no text exit" 2 $?
"$BIN" tokenize 'text' 2>/dev/null
check "no model exit" 2 $?
err=$("$BIN" tokenize -m /nonexistent.gguf text 2>&1)
check "missing model exit" 2 $?
check "missing model message" "rackllm tokenize: /nonexistent.gguf: No such file or directory" "$err"
"$BIN" tokenize -m "$stories" --bogus text 2>/dev/null
check "bad flag exit" 2 $?

if [ "$fails" -ne 0 ]; then
  echo "test_cli_tokenize: $fails of $checks checks failed" >&2
  exit 1
fi
echo "test_cli_tokenize: all $checks checks passed"
