#!/usr/bin/env bash
# test_cli_flags.sh — every command reads its flags the same way and reports
# a mistake in the same one line, "rackllm COMMAND: what is wrong", with exit
# status 2 (src/cli/flags.h): an unknown flag, a flag without its value, a
# value out of range or not a number, a stray argument; and --help / -h
# print the command's usage on stdout with exit status 0.
. "$(dirname "$0")/cli_lib.sh"

# expect_bad COMMAND TEXT ARGS...: exit 2, one stderr line "rackllm COMMAND: ...TEXT..."
expect_bad() {
  local cmd=$1 text=$2 rc=0; shift 2
  "$bin" "$cmd" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  check "[ $rc -eq 2 ]" "$cmd $*: exit $rc, expected 2"
  check '[ "$(wc -l <"$tmp/err")" -eq 1 ]' "$cmd $*: not one line: $(cat "$tmp/err")"
  check 'grep -q "^rackllm $cmd: " "$tmp/err"' "$cmd $*: no 'rackllm $cmd: ' prefix: $(cat "$tmp/err")"
  check 'grep -qF -- "$text" "$tmp/err"' "$cmd $*: '$text' not in: $(cat "$tmp/err")"
}

for cmd in info tokenize run synth quantize bench serve loadgen plan; do
  expect_bad "$cmd" "unknown option '--no-such-flag' (see rackllm $cmd --help)" --no-such-flag
  "$bin" "$cmd" --help >"$tmp/help" 2>"$tmp/err"
  check '[ $? -eq 0 ] && grep -q "^usage: rackllm $cmd" "$tmp/help" && [ ! -s "$tmp/err" ]' "$cmd --help"
  "$bin" "$cmd" -h >"$tmp/help2"
  check 'cmp -s "$tmp/help" "$tmp/help2"' "$cmd -h is --help"
done

expect_bad bench "option '--threads' needs a value" --shape llama3.2-1b --threads
expect_bad bench "--threads '0': expected a whole number from 1 to 1024" --shape llama3.2-1b -t 0
expect_bad run "--top-p '1.5': expected a number from 0 to 1" -m x.gguf -p hi --top-p 1.5
expect_bad serve "--port 'http': expected a whole number from 0 to 65535" -m x.gguf --port http
expect_bad loadgen "--duration '1e9': expected a number from 0.1 to 86400" --url http://127.0.0.1:1 --sessions 1 --duration 1e9
expect_bad plan "--pue '0.5': expected a number from 1 to 10" --hardware epyc-9654 --pue 0.5
expect_bad synth "--seed '-3': expected a whole number from 0" --shape llama3.2-1b -o x.gguf --seed -3
expect_bad quantize "--threads '2x': expected a whole number from 1 to 1024" -t 2x a.gguf b.gguf Q8_0
expect_bad tokenize "one TEXT argument only" -m x.gguf one two
expect_bad info "expected one FILE" a.gguf b.gguf
expect_bad plan "unexpected argument 'extra'" --hardware epyc-9654 extra

report test_cli_flags
