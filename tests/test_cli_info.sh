#!/usr/bin/env bash
# test_cli_info.sh — `rackllm info` end to end: on broken files it must exit 2
# with exactly one stderr line "rackllm info: FILE: offset N: cause" and print
# nothing on stdout; on real files it must describe the model correctly (the
# expected numbers are worked out from the models' published shapes in the
# comments, not taken from rackllm), in text and as valid JSON (checked with
# node, which scripts/deps.sh installs).
set -euo pipefail
bin=${RACKLLM_BIN:?set RACKLLM_BIN to the rackllm binary}
shared=${RACKLLM_SHARED:-../shared}
stories="$shared/models/stories260K.gguf"
l3="$shared/models/synth-l3-q8_0.gguf"
spm="$shared/golden/tokenizer/ggml-vocab-llama-spm.gguf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0; checks=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check() { checks=$((checks + 1)); }

# expect_bad FILE OFFSET CAUSE: exit 2, one stderr line naming file and offset
# (OFFSET "" when it is not worked out here: any offset then).
expect_bad() {
  local file=$1 offset=$2 cause=$3 rc=0
  check
  "$bin" info "$file" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "$file: exit $rc, expected 2"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$file: stderr is not one line: $(cat "$tmp/err")"
  grep -qE "^rackllm info: .*: offset [0-9]+: " "$tmp/err" || fail "$file: no 'offset N:' in: $(cat "$tmp/err")"
  grep -qF "rackllm info: $file: offset $offset" "$tmp/err" || fail "$file: file or offset $offset not named: $(cat "$tmp/err")"
  grep -qF "$cause" "$tmp/err" || fail "$file: '$cause' not in: $(cat "$tmp/err")"
  [ ! -s "$tmp/out" ] || fail "$file: printed on stdout despite the error"
}

# expect_exit CODE STDERR-SUBSTRING ARGS...: a usage error or missing file.
expect_exit() {
  local want=$1 text=$2 rc=0; shift 2
  check
  "$bin" info "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "info $*: exit $rc, expected $want"
  grep -qF -- "$text" "$tmp/err" || fail "info $*: '$text' not in stderr: $(cat "$tmp/err")"
}

# patch FILE OFFSET PRINTF-BYTES: overwrite bytes in place.
# shellcheck disable=SC2059  # the bytes are given as a printf format (octal escapes)
patch() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# ---- broken files ----
cp "$stories" "$tmp/magic.gguf"; chmod u+w "$tmp/magic.gguf"; patch "$tmp/magic.gguf" 0 'GGML'
expect_bad "$tmp/magic.gguf" 0 "not a GGUF file"
cp "$stories" "$tmp/v1.gguf"; chmod u+w "$tmp/v1.gguf"; patch "$tmp/v1.gguf" 4 '\001\000\000\000'
expect_bad "$tmp/v1.gguf" 4 "unsupported GGUF version 1"
cp "$stories" "$tmp/kvcount.gguf"; chmod u+w "$tmp/kvcount.gguf"; patch "$tmp/kvcount.gguf" 16 '\377\377\377\377\377\377\377\177'
expect_bad "$tmp/kvcount.gguf" 16 "metadata count 9223372036854775807 cannot fit"
head -c 3000 "$stories" >"$tmp/cut3000.gguf"
expect_bad "$tmp/cut3000.gguf" "" "(in metadata 'tokenizer.ggml.tokens')"
head -c 14176 "$stories" >"$tmp/nodata.gguf"  # the header of stories260K ends at 14176
expect_bad "$tmp/nodata.gguf" "" "extends past the end of the file"
: >"$tmp/empty.gguf"
expect_bad "$tmp/empty.gguf" 0 "file is empty"
expect_exit 2 "No such file" "$tmp/missing.gguf"
expect_exit 2 "not a regular file" "$tmp"
mkfifo "$tmp/fifo.gguf"  # must be refused at once, not wait for a writer
check; rc=0; timeout 20 "$bin" info "$tmp/fifo.gguf" 2>"$tmp/err" || rc=$?
if [ "$rc" -ne 2 ] || ! grep -qF "not a regular file" "$tmp/err"; then fail "fifo: exit $rc, $(cat "$tmp/err")"; fi

# ---- usage ----
expect_exit 2 "rackllm info: expected one FILE" # no file
expect_exit 2 "rackllm info: --ctx '0': expected a whole number" "$stories" --ctx 0
expect_exit 2 "rackllm info: --ctx '12x': expected a whole number" "$stories" --ctx 12x
expect_exit 2 "--kv-type must be f16, f32 or q8_0" "$stories" --kv-type q4_0
check
"$bin" info --help >"$tmp/help" || fail "--help exit status $?"
grep -q -- "--kv-type" "$tmp/help" || fail "--help does not list --kv-type"

# ---- real files: text ----
# stories260K: dim 64, ffn 172, 5 layers, 8 heads, 4 KV heads (head size 8),
# vocab 512, separate output. Parameters: embeddings 2 x 64x512 = 65536,
# output norm 64, per layer q 64x64 + k,v 2 x 64x32 + o 64x64 + 3 x 64x172 +
# 2 norms x 64 = 45440, x 5 = 227200: 292800 in all (F32: 1171200 bytes).
# KV cache f16 at its context 2048: 2 (K,V) x 5 layers x 4 heads x 8 x 2 B x
# 2048 = 1310720 bytes.
check
"$bin" info "$stories" >"$tmp/stories.txt" || fail "info stories260K: exit $?"
for want in "architecture      llama" "layers            5" "attention heads   8 (4 KV heads, head size 8)" \
            "feed-forward      172" "vocabulary        512" "parameters        292800" \
            "tokenizer         SentencePiece (llama), 512 tokens, bos 1, eos 2" "size class        0" \
            "context 2048: the model's context length" "blk.4.ffn_down.weight            f32      172 x 64" \
            "separate output.weight" "file size         1185376 bytes" \
            "tokenizer.ggml.tokens                    array    [\"<unk>\", \"<s>\", \"</s>\""; do
  check; grep -qF -- "$want" "$tmp/stories.txt" || fail "info stories260K: '$want' missing"
done

# ---- real files: JSON ----
json_check() { # FILE ARGS... -- JS expression over d that must be true
  local file=$1; shift
  local args=() ; while [ "$1" != "--" ]; do args+=("$1"); shift; done; shift
  check
  "$bin" info --json "${args[@]}" "$file" >"$tmp/out.json" || { fail "info --json $file: exit $?"; return; }
  node -e '
    const fs = require("fs");
    const d = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const ok = eval(process.argv[2]);
    if (!ok) { console.error("false: " + process.argv[2]); process.exit(1); }
  ' "$tmp/out.json" "$1" || fail "info --json ${args[*]} $file: $1"
}
json_check "$stories" -- 'd.architecture === "llama" && d.supported && d.parameters === 292800 && d.size_class === 0'
json_check "$stories" -- 'd.hyper_parameters.n_layer === 5 && d.hyper_parameters.n_head_kv === 4 && d.hyper_parameters.n_ctx_train === 2048'
json_check "$stories" -- 'd.ram.ctx === 2048 && d.ram.kv_type === "f16" && d.ram.kv_cache_bytes === 1310720 && d.ram.weights_bytes === 1171200'
json_check "$stories" -- 'd.tensors.length === 48 && d.tensors[0].name === "token_embd.weight" && d.tensors[0].shape.join() === "64,512" && d.tensors[0].bytes === 131072'
json_check "$stories" -- 'd.tokenizer.model === "llama" && d.tokenizer.n_tokens === 512 && d.tokenizer.bos_token_id === 1 && d.tokenizer.eos_token_id === 2'
json_check "$stories" -- 'd.metadata["tokenizer.ggml.tokens"].length === 512 && d.metadata["tokenizer.ggml.tokens"].head[1] === "<s>" && d.metadata["llama.block_count"] === 5'
# f32 KV at 100 positions: 2 x 5 x 4 x 8 x 4 B x 100 = 128000; q8_0 at 64: 34/32 B per element
json_check "$stories" --ctx 100 --kv-type f32 -- 'd.ram.ctx === 100 && d.ram.ctx_source === "--ctx" && d.ram.kv_cache_bytes === 128000'
json_check "$stories" --ctx 64 --kv-type q8_0 -- 'd.ram.kv_cache_bytes === 2 * 5 * 4 * 8 * 64 * 34 / 32'
# synth-l3: 2 layers, 2 KV heads of 16, context 131072 capped at 4096; tied
# embeddings; Llama-3 tokenizer of 128256 tokens, bos 128000.
json_check "$l3" -- 'd.ram.ctx === 4096 && /capped at 4096/.test(d.ram.ctx_source) && d.ram.kv_cache_bytes === 2 * 2 * 2 * 16 * 2 * 4096'
json_check "$l3" -- 'd.hyper_parameters.tied_embeddings && d.hyper_parameters.rope_scaling === "llama3" && d.tokenizer.model === "gpt2" && d.tokenizer.n_tokens === 128256 && d.tokenizer.bos_token_id === 128000'
# vocabulary-only Llama 2 file: no tensors; parameters are those of Llama 2 7B's
# shape with this vocabulary (6738415616 with 32000 tokens, tied: minus 131072000)
json_check "$spm" -- 'd.n_tensors === 0 && d.parameters_implied_by_shape && d.parameters === 6738415616 - 131072000 && d.size_class === 1'

# every shared model and vocabulary describes itself, in text and JSON
for f in "$shared"/models/*.gguf "$shared"/golden/tokenizer/*.gguf; do
  check
  "$bin" info "$f" >/dev/null || fail "info $f: exit $?"
  json_check "$f" -- 'typeof d.file_size === "number" && d.file_size > 0 && Array.isArray(d.tensors)'
done

# ---- a valid GGUF of another architecture ----
{
  printf 'GGUF\003\000\000\000'                 # magic, version 3
  printf '\000\000\000\000\000\000\000\000'     # no tensors
  printf '\001\000\000\000\000\000\000\000'     # one metadata pair
  printf '\024\000\000\000\000\000\000\000general.architecture'  # key (20 bytes)
  printf '\010\000\000\000\004\000\000\000\000\000\000\000gpt2'  # string "gpt2"
} >"$tmp/gpt2.gguf"
check
"$bin" info "$tmp/gpt2.gguf" >"$tmp/gpt2.txt" || fail "info gpt2: exit $?"
grep -qF "architecture      gpt2 (unsupported: architecture 'gpt2' is not supported" "$tmp/gpt2.txt" ||
  fail "gpt2 file: architecture not reported as unsupported: $(head -5 "$tmp/gpt2.txt")"
grep -qF "metadata (1 keys)" "$tmp/gpt2.txt" || fail "gpt2 file: metadata not listed"
json_check "$tmp/gpt2.gguf" -- 'd.architecture === "gpt2" && d.supported === false && /not supported/.test(d.unsupported_reason) && d.n_tensors === 0'

# names from the file cannot drive the terminal: ESC and newline are escaped
{
  printf 'GGUF\003\000\000\000\000\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000'
  printf '\024\000\000\000\000\000\000\000general.architecture'
  printf '\010\000\000\000\010\000\000\000\000\000\000\000x\033[31m\ny'  # "x ESC [31m LF y"
} >"$tmp/escape.gguf"
check
"$bin" info "$tmp/escape.gguf" >"$tmp/escape.txt" || fail "info escape.gguf: exit $?"
grep -qF 'architecture      x\x1b[31m\ny (unsupported' "$tmp/escape.txt" || fail "escape.gguf: $(head -4 "$tmp/escape.txt")"
if grep -q $'\033' "$tmp/escape.txt"; then fail "escape.gguf: a raw ESC reached the output"; fi
json_check "$tmp/escape.gguf" -- 'd.architecture === "x\u001b[31m\ny"'

if [ "$failures" -ne 0 ]; then echo "test_cli_info: $failures of $checks checks failed" >&2; exit 1; fi
echo "test_cli_info: all $checks checks passed"
