# cli_lib.sh — what the command-line tests that check expressions share
# (tests/test_cli_bench.sh, tests/test_cli_plan.sh): the binary and the
# shared data, a scratch folder removed on exit, and the checks:
#   check 'EXPR' [WHY]   counts a check; fails (and says so) if EXPR is false
#   ok / fail MESSAGE    count a check that passed / failed
#   jget FILE 'JS'       prints a JavaScript expression over the JSON j (node)
#   report NAME          the summary line; its status is the test's
# Sourced, not run.

bin=${RACKLLM_BIN:-build/rackllm}
shared=${RACKLLM_SHARED:-../shared}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
checks=0

ok() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else fail "$1${2:+ ($2)}"; fi; }
jget() { node -e "const j = JSON.parse(require('fs').readFileSync('$1', 'utf8')); console.log($2)"; }
report() {
  echo "$1: $((checks - fails)) of $checks checks passed"
  [ $fails -eq 0 ]
}
