#!/usr/bin/env bash
# The main job (`make run`). Grows with the project: see README.
set -euo pipefail
bin=${1:-build/rackllm}
echo "main job: not wired yet" >&2
"$bin" --help
