#!/usr/bin/env bash
# test_server_web.sh — rackllm serve's web pages in a real browser: headless
# Chromium (Debian's `chromium`, scripts/deps.sh) driven by
# tests/web/web_test.mjs through puppeteer-core, installed from
# tests/web/package-lock.json by `npm ci` (in the build directory, once per
# lock file). The script checks the chat, the dashboard under load, a 429,
# /plan and the console, and saves screenshots to $RACKLLM_BUILD/web/
# (docs/web-chat.png and docs/web-dashboard.png are copies). Here, with
# curl: the pages' headers (Content-Security-Policy), the API key guarding
# the pages' data, /plan's charts calibrated by --plan-bench, and --no-web. (/plan's screenshot is saved too.)
set -u
. "$(dirname "$0")/server_lib.sh"
src=$(cd "$(dirname "$0")/web" && pwd)
out=${RACKLLM_BUILD:-$TMP}/web
node_dir=$out/node
mkdir -p "$node_dir"
cp "$src/package.json" "$src/package-lock.json" "$src/web_test.mjs" "$node_dir/"
stamp=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$node_dir/.installed" 2>/dev/null)" != "$stamp" ]; then
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) || { echo "FAIL: npm ci" >&2; exit 1; }
  echo "$stamp" >"$node_dir/.installed"
fi
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "FAIL: no $CHROMIUM (scripts/deps.sh installs Debian's chromium)" >&2; exit 1; }

KEY=web-test-key
start_server web -m "$STORIES" --floor 5 --capacity 2 --queue 0 --step-delay 50 --api-key "$KEY" \
  --plan-bench tests/data/bench-sample.json

# ---- headers and the key, with curl ----
hdr() { curl -s -o /dev/null -D - "$1" | tr -d '\r' | sed -n "s/^$2: //Ip"; }
csp=$(hdr "$URL/" Content-Security-Policy)
check_true "CSP on /" grep -q "default-src 'none'; script-src 'self'" <<<"$csp"
check "CSP on a script" "$csp" "$(hdr "$URL/web/chat.js" Content-Security-Policy)"
check "page type" "text/html; charset=utf-8" "$(hdr "$URL/dashboard" Content-Type)"
check "script type" "text/javascript; charset=utf-8" "$(hdr "$URL/web/dashboard.js" Content-Type)"
check "no such asset" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/web/nothing.js")"
check "no path out of web/" "404" "$(curl -s -o /dev/null -w '%{http_code}' --path-as-is "$URL/web/../CMakeLists.txt")"
check "stats need the key" "401" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/stats")"
check "charts need the key" "401" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/plan/matrix.svg")"
check "stats with the key" "2" "$(curl -s -H "Authorization: Bearer $KEY" "$URL/v1/stats" | jq -r .capacity.now)"
check "stats: memory and prefill as /health has them" "true true true" \
  "$(curl -s -H "Authorization: Bearer $KEY" "$URL/v1/stats" | jq -r '[.memory.budget_bytes > 0, .memory.weights_bytes > 0, (.prefill | has("backlog_tokens"))] | map(tostring) | join(" ")')"
check "a chart, while drawn" "503 1" "$(curl -s -o /dev/null -D - -w '%{http_code}' -H "Authorization: Bearer $KEY" \
  "$URL/v1/plan/this.svg" | tr -d '\r' | awk -F': ' 'tolower($1) == "retry-after" { ra = $2 } /^[0-9]+$/ { c = $0 } END { print c, ra }')"
check "another origin" "403" "$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: http://evil.example" -H "Authorization: Bearer $KEY" "$URL/v1/stats")"
check "the pages' own origin" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: ${URL}" -H "Authorization: Bearer $KEY" "$URL/v1/stats")"
check "pages POST" "405" "$(curl -s -o /dev/null -w '%{http_code}' -d x "$URL/dashboard")"

# ---- the browser ----
RACKLLM_URL=$URL RACKLLM_KEY=$KEY RACKLLM_SHOTS=$out CHROMIUM=$CHROMIUM timeout 300 node "$node_dir/web_test.mjs"
check "browser checks" "0" "$?"
check_true "chat screenshot" test -s "$out/web-chat.png"
check_true "dashboard screenshot" test -s "$out/web-dashboard.png"
# /plan's charts, calibrated with --plan-bench: this machine's row in the matrix
chart() { [ "$(curl -s -o "$TMP/$1.svg" -w '%{http_code}' -H "Authorization: Bearer $KEY" "$URL/v1/plan/$1.svg")" = 200 ]; }
check_true "this machine's chart" wait_until 60 chart this
check_true "the matrix chart" wait_until 60 chart matrix
check_true "this machine's chart calibrated" grep -q "calibrated by the bench JSON" "$TMP/this.svg"
check_true "the matrix has this machine" grep -q ">this \\[measured here\\], class 0" "$TMP/matrix.svg"
check_true "charts are SVG" xmllint --noout "$TMP/this.svg" "$TMP/matrix.svg"
stop_server "$PID"
check "server exit" "0" "$?"

# ---- --no-web: no pages, the API as before ----
start_server noweb -m "$STORIES" --floor 5 --capacity 1 --no-web
check "no-web /" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")"
check "no-web /dashboard" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/dashboard")"
check "no-web asset" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/web/chat.js")"
check "no-web charts" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/plan/matrix.svg")"
check "no-web stats" "1" "$(curl -s "$URL/v1/stats" | jq -r .capacity.now)"
check "no-web health" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
stop_server "$PID"
check "no-web exit" "0" "$?"
finish test_server_web
