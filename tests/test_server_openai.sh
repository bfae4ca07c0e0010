#!/usr/bin/env bash
# test_server_openai.sh — the official `openai` npm client against
# `rackllm serve`: tests/node/openai_client.mjs, with the client installed
# from tests/node/package-lock.json by `npm ci` (in the build directory,
# once per lock file: the source tree stays clean).
set -u
. "$(dirname "$0")/server_lib.sh"
src=$(cd "$(dirname "$0")/node" && pwd)
node_dir=${RACKLLM_BUILD:-$TMP}/node-client
mkdir -p "$node_dir"
cp "$src/package.json" "$src/package-lock.json" "$src/openai_client.mjs" "$node_dir/"
stamp=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$node_dir/.installed" 2>/dev/null)" != "$stamp" ]; then
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) || { echo "FAIL: npm ci" >&2; exit 1; }
  echo "$stamp" >"$node_dir/.installed"
fi

start_server openai -m "$STORIES" --floor 1 --capacity 1 --queue 0 --step-delay 10 --max-tokens-max 1500
RACKLLM_URL=$URL timeout 120 node "$node_dir/openai_client.mjs"
check "openai client" "0" "$?"
stop_server "$PID"
check "server exit" "0" "$?"
finish test_server_openai
