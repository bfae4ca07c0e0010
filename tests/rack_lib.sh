# rack_lib.sh — a rack on loopback for the rack tests and bench: backends
# (`rackllm serve --agent-port`), HAProxy configured by
# deploy/rackllm-haproxy (the file operators get), its statistics as CSV,
# and the agent's line. Sourced after server_lib.sh (wait_until, PIDS, TMP).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BACKENDS=() # "name pid port agent_port" per backend, by index

# start_backend I [serve options...]: backend bI on free ports (or, when it
# ran before, the ports it had: a restart), waits for its "listening" line.
# $LAUNCH, if set, prefixes the command (the bench: "taskset -c N").
start_backend() {
  local i=$1 port=0 aport=0
  shift
  if [ -n "${BACKENDS[$i]:-}" ]; then read -r _ _ port aport <<<"${BACKENDS[$i]}"; fi
  ${LAUNCH:-} "$BIN" serve --port "$port" --agent-port "$aport" --threads 1 --queue 0 --full-status 503 "$@" \
    >"$TMP/b$i.out" 2>>"$TMP/b$i.err" &
  local pid=$!
  PIDS+=("$pid")
  if ! wait_until 60 grep -qs "listening on http://" "$TMP/b$i.out"; then
    echo "FAIL: backend b$i did not start" >&2
    cat "$TMP/b$i.err" >&2
    exit 1
  fi
  port=$(sed -n 's/^rackllm serve: listening on http:.*:\([0-9]*\)$/\1/p' "$TMP/b$i.out")
  aport=$(sed -n 's/^rackllm serve: agent check on .*:\([0-9]*\)$/\1/p' "$TMP/b$i.out")
  BACKENDS[$i]="b$i $pid $port $aport"
}
bpid() { local x; read -r _ x _ _ <<<"${BACKENDS[$1]}"; echo "$x"; }
burl() { local x; read -r _ _ x _ <<<"${BACKENDS[$1]}"; echo "http://127.0.0.1:$x"; }
bagent() { local x; read -r _ _ _ x <<<"${BACKENDS[$1]}"; echo "$x"; }

# agent_says I: the line backend I's agent answers (empty if none).
agent_says() { timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(bagent "$1") && cat <&3" 2>/dev/null; }
agent_is() { [ "$(agent_says "$1")" = "$2" ]; }

# free_port: a loopback port nobody listens on now.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# rack_conf CAPACITY [ROUTING]: the rack config of the backends started
# (backend i's capacity: ${CAPS[i]} if set, else CAPACITY).
rack_conf() {
  RACK_CAP=$1 RACK_ROUTING=${2:-agent}
  POOL_PORT=$(free_port)
  STATS_PORT=$(free_port)
  {
    echo "bind 127.0.0.1:$POOL_PORT"
    echo "stats 127.0.0.1:$STATS_PORT"
    echo "routing ${2:-agent}"
    echo "check_inter 300ms"
    local i
    for i in "${!BACKENDS[@]}"; do
      read -r name _ port aport <<<"${BACKENDS[$i]}"
      echo "instance $name 127.0.0.1 $port $aport ${CAPS[$i]:-$1}"
    done
  } >"$TMP/rack.conf"
  POOL="http://127.0.0.1:$POOL_PORT"
  STATS="http://127.0.0.1:$STATS_PORT/stats;csv"
}

# start_haproxy: HAProxy (master-worker, foreground) on the rack config;
# HPID is the master (SIGUSR2: soft reload). Waits until every backend is
# UP in its statistics. A port taken between rack_conf's look and HAProxy's
# bind: new ports, up to three times.
start_haproxy() {
  local try
  for try in 1 2 3; do
    "$ROOT/deploy/rackllm-haproxy" "$TMP/rack.conf" -o "$TMP/haproxy.cfg"
    haproxy -W -f "$TMP/haproxy.cfg" >"$TMP/haproxy.out" 2>&1 &
    HPID=$!
    PIDS+=("$HPID")
    if wait_until 30 pool_up_or_dead && kill -0 "$HPID" 2>/dev/null; then
      wait_until 30 pool_up && return 0
      break
    fi
    grep -q "cannot bind" "$TMP/haproxy.out" || break
    rack_conf "$RACK_CAP" "$RACK_ROUTING"
  done
  echo "FAIL: HAProxy does not see every backend UP" >&2
  cat "$TMP/haproxy.out" >&2
  exit 1
}
pool_up() { local i; for i in "${!BACKENDS[@]}"; do srv_is "b$i" UP || return 1; done; }
pool_up_or_dead() { pool_up || ! kill -0 "$HPID" 2>/dev/null; }

# srv_field NAME FIELD: a field of server NAME in HAProxy's CSV statistics
# (status: UP, DOWN, DRAIN, "UP 1/2" ...; weight; scur ...).
srv_field() {
  curl -s --max-time 5 "$STATS" | awk -F, -v s="$1" -v f="$2" '
    NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == "rackllm" && $2 == s { print $col[f] }'
}
srv_is() { [ "$(srv_field "$1" status)" = "$2" ]; }

# pool_stream N MAX_TOKENS OUT: a streamed chat request through the pool in
# the background: SSE in OUT, headers in OUT.h, status in OUT.code, curl's
# exit status in OUT.rc (written last: the request is over).
pool_stream() {
  local req="{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"Story $1\"}],\"max_tokens\":$2,\"stream\":true,\"ignore_eos\":true}"
  (
    curl -sN --max-time 120 -D "$3.h" -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' \
      -d "$req" "$POOL/v1/chat/completions" >"$3.code"
    echo $? >"$3.rc"
  ) &
  PIDS+=("$!")
}
stream_over() { [ -s "$1.rc" ]; }
all_over() { local f; for f in "$@"; do stream_over "$f" || return 1; done; }
done_ok() { grep -q '^data: \[DONE\]' "$1" 2>/dev/null; }
# codes OUT...: the status codes of pool_stream requests, space-separated.
codes() { local f; for f; do cat "$f.code"; echo; done | xargs; }
quiet() { "$@" >/dev/null; }
# children PID: the processes PID started (HAProxy's master: its workers).
children() { cat /proc/"$1"/task/*/children 2>/dev/null | xargs -n 1; }
