#!/usr/bin/env bash
# test_chat_oracle.sh — rackllm's chat-template interpreter against Python's
# jinja2 (Debian python3-jinja2, configured as transformers configures it):
# every template of tests/data/templates/ (real models' templates, where each
# came from in its README, and constructs.jinja) with every message set, byte
# for byte; any difference fails (tests/jinja_oracle.py says which and how).
set -euo pipefail
bin="${RACKLLM_BUILD:-build}/test_jinja"
[ -x "$bin" ] || { echo "test_chat_oracle: $bin is not built" >&2; exit 1; }
python3 -c 'import jinja2' || { echo "test_chat_oracle: python3-jinja2 is missing (scripts/deps.sh)" >&2; exit 1; }
# strftime_now formats the same fixed instant on both sides, in UTC.
TZ=UTC python3 tests/jinja_oracle.py "$bin" tests/data/templates
