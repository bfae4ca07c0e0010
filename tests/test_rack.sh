#!/usr/bin/env bash
# test_rack.sh — a rack on loopback: three `rackllm serve` of capacity 2
# (the pool holds C = 6) behind Debian's HAProxy, configured by
# deploy/rackllm-haproxy. Checked: the shipped configs (haproxy -c, the
# systemd unit); the agent's lines; 1.5 x C streams -> exactly C served,
# the rest 429 from the pool, no backend above its capacity; kill -9 of a
# backend mid-stream (its streams end with a visible error, the others
# complete, new sessions go to the live ones, it rejoins on restart);
# SIGTERM (agent says drain, nothing new reaches it, its stream finishes,
# exit 0); SIGSTOP (it leaves the pool, the pool keeps serving); a soft
# reload of HAProxy under load (established streams finish).
# Every wait polls a condition with a deadline.
set -u
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/rack_lib.sh"

command -v haproxy >/dev/null || { echo "FAIL: haproxy is not installed (scripts/deps.sh)" >&2; exit 1; }

# ---- the shipped files ----
check "example rack config is valid" "0" "$("$ROOT/deploy/rackllm-haproxy" "$ROOT/deploy/rack.example.conf" -o "$TMP/ex.cfg" && haproxy -c -q -f "$TMP/ex.cfg"; echo $?)"
check "example, round robin, is valid" "0" "$("$ROOT/deploy/rackllm-haproxy" "$ROOT/deploy/rack.example.conf" --routing roundrobin | haproxy -c -q -f /dev/stdin; echo $?)"
"$BIN" plan --hardware epyc-9654 --json >"$TMP/plan.json"
"$ROOT/deploy/rackllm-haproxy" "$ROOT/deploy/rack.example.conf" --plan "$TMP/plan.json" -o "$TMP/plan.cfg"
check "config from the plan: servers x partitions" \
  "$(( $(grep -c '^server ' "$ROOT/deploy/rack.example.conf") * $(jq .strategies[0].partitions "$TMP/plan.json") ))" \
  "$(grep -c '^    server .* maxconn '"$(jq .strategies[0].batch "$TMP/plan.json")"' agent-port ' "$TMP/plan.cfg")"
check "config from the plan is valid" "0" "$(haproxy -c -q -f "$TMP/plan.cfg"; echo $?)"
printf 'bind 127.0.0.1:1\nserver a 10.0.0.1\n' >"$TMP/bad.conf"
check "no capacity: refused" "2" "$("$ROOT/deploy/rackllm-haproxy" "$TMP/bad.conf" -o "$TMP/bad.cfg" 2>/dev/null; echo $?)"
check "no half-written file" "no" "$([ -e "$TMP/bad.cfg" ] && echo yes || echo no)"
mkdir -p "$TMP/unit"
sed "s#/usr/local/bin/rackllm#$(realpath "$BIN")#" "$ROOT/deploy/rackllm@.service" >"$TMP/unit/rackllm@.service"
check "systemd unit verifies" "0 " \
  "$(cd "$TMP/unit" && timeout 60 systemd-analyze verify ./rackllm@0-1.service >"$TMP/unit.log" 2>&1; echo "$? $(cat "$TMP/unit.log")")"

# ---- three backends, the pool ----
for i in 0 1 2; do start_backend "$i" -m "$STORIES" --floor 1 --capacity 2 --step-delay 40; done
check "agent, idle" "up ready 2% maxconn:2" "$(agent_says 0)"
rack_conf 2
start_haproxy

# 1.5 x C = 9 streams at once: 6 served whole, 3 answered 429 by the pool.
for k in $(seq 1 9); do pool_stream "$k" 120 "$TMP/o$k"; done
check_true "9 streams over" wait_until 120 all_over $(for k in $(seq 1 9); do echo "$TMP/o$k"; done)
served=0 full=0 whole=0
for k in $(seq 1 9); do
  c=$(cat "$TMP/o$k.code")
  [ "$c" = 200 ] && served=$((served + 1))
  [ "$c" = 200 ] && done_ok "$TMP/o$k" && whole=$((whole + 1))
  if [ "$c" = 429 ]; then
    full=$((full + 1))
    check "429 $k: rate_limit_exceeded" "rate_limit_exceeded" "$(jq -r .error.code "$TMP/o$k")"
    check_true "429 $k: Retry-After" grep -qi '^retry-after: [1-9]' "$TMP/o$k.h"
  fi
done
check "1.5 x C: served" "6" "$served"
check "1.5 x C: served to the end" "6" "$whole"
check "1.5 x C: 429 from the pool" "3" "$full"
for i in 0 1 2; do
  check "b$i never above its capacity" "2" "$(metric "$(burl $i)" rackllm_active_sessions_peak)"
done

# kill -9 one backend while its streams run.
for k in $(seq 1 6); do pool_stream "$k" 150 "$TMP/k$k"; done
all_running() { local i; for i in 0 1 2; do health_is "$(burl $i)" .active_sessions 2 || return 1; done; }
check_true "6 streams running, 2 per backend" wait_until 60 all_running
check "agent, full" "up ready 1% maxconn:2" "$(agent_says 1)"
streaming() { local k; for k in $(seq 1 6); do has_content "$TMP/k$k" || return 1; done; }
check_true "every stream has tokens" wait_until 60 streaming
kill -KILL "$(bpid 1)"
# its two streams end at once (the others run ~6 s more): no hang
two_over() { [ "$(for k in $(seq 1 6); do stream_over "$TMP/k$k" && echo x; done | wc -l)" -ge 2 ]; }
check_true "kill -9: its streams end within 5 s" wait_until 5 two_over
check_true "every stream over" wait_until 120 all_over $(for k in $(seq 1 6); do echo "$TMP/k$k"; done)
ok=0 cut=0
for k in $(seq 1 6); do
  if done_ok "$TMP/k$k" && [ "$(cat "$TMP/k$k.rc")" = 0 ]; then ok=$((ok + 1)); else cut=$((cut + 1)); fi
done
check "kill -9: the others' streams complete" "4" "$ok"
check "kill -9: its streams end with an error" "2" "$cut"
check_true "kill -9: b1 leaves the pool" wait_until 10 srv_is b1 DOWN
before=$(($(metric "$(burl 0)" rackllm_admitted_total) + $(metric "$(burl 2)" rackllm_admitted_total)))
for k in 1 2 3 4; do pool_stream "n$k" 5 "$TMP/n$k"; done
check_true "new sessions over" wait_until 60 all_over "$TMP/n1" "$TMP/n2" "$TMP/n3" "$TMP/n4"
check "new sessions served" "200 200 200 200" "$(codes "$TMP/n1" "$TMP/n2" "$TMP/n3" "$TMP/n4")"
check "new sessions on the live backends" "$((before + 4))" \
  "$(($(metric "$(burl 0)" rackllm_admitted_total) + $(metric "$(burl 2)" rackllm_admitted_total)))"
start_backend 1 -m "$STORIES" --floor 1 --capacity 2 --step-delay 40
check_true "restarted b1 rejoins" wait_until 30 srv_is b1 UP
for k in $(seq 1 6); do pool_stream "$k" 60 "$TMP/r$k"; done
check_true "6 more over" wait_until 120 all_over $(for k in $(seq 1 6); do echo "$TMP/r$k"; done)
check "the pool holds C again" "200 200 200 200 200 200" "$(codes "$TMP/r1" "$TMP/r2" "$TMP/r3" "$TMP/r4" "$TMP/r5" "$TMP/r6")"
check "b1 takes its share" "2" "$(metric "$(burl 1)" rackllm_admitted_total)"

# SIGTERM: drain.
pool_stream t 150 "$TMP/t"
busy() { local i; for i in 0 1 2; do health_is "$(burl $i)" .active_sessions 1 && { echo "$i"; return; }; done; return 1; }
check_true "one stream running" wait_until 60 quiet busy
d=$(busy)
adm=$(metric "$(burl "$d")" rackllm_admitted_total)
check_true "it streams" wait_until 60 has_content "$TMP/t"
kill -TERM "$(bpid "$d")"
check_true "agent says drain" wait_until 10 agent_is "$d" "drain maxconn:1"
out_of_pool() { case $(srv_field "$1" status) in DRAIN | DOWN | MAINT*) return 0 ;; esac; return 1; }
check_true "HAProxy takes b$d out" wait_until 10 out_of_pool "b$d"
for k in 1 2 3; do pool_stream "d$k" 5 "$TMP/d$k"; done
check_true "new sessions over" wait_until 60 all_over "$TMP/d1" "$TMP/d2" "$TMP/d3"
check "new sessions served elsewhere" "200 200 200" "$(codes "$TMP/d1" "$TMP/d2" "$TMP/d3")"
check_true "drained backend exits" wait_until 60 bash -c "! kill -0 $(bpid "$d") 2>/dev/null"
wait "$(bpid "$d")"
check "drained backend exit status" "0" "$?"
check_true "its stream finished whole" wait_until 10 done_ok "$TMP/t"
check_true "nothing new reached it" grep -q "stopped ($adm sessions served" "$TMP/b$d.err"
start_backend "$d" -m "$STORIES" --floor 1 --capacity 2 --step-delay 40
check_true "b$d back" wait_until 30 srv_is "b$d" UP

# SIGSTOP: a stuck backend leaves the pool; the pool keeps serving.
kill -STOP "$(bpid 0)"
check_true "stopped b0 leaves the pool" wait_until 15 srv_is b0 DOWN
for k in 1 2 3 4; do pool_stream "s$k" 5 "$TMP/s$k"; done
check_true "sessions over" wait_until 60 all_over "$TMP/s1" "$TMP/s2" "$TMP/s3" "$TMP/s4"
check "the pool keeps serving" "200 200 200 200" "$(codes "$TMP/s1" "$TMP/s2" "$TMP/s3" "$TMP/s4")"
kill -CONT "$(bpid 0)"
check_true "b0 back" wait_until 30 srv_is b0 UP

# A soft reload of HAProxy under load.
for k in $(seq 1 4); do pool_stream "$k" 120 "$TMP/h$k"; done
streaming4() { local k; for k in 1 2 3 4; do has_content "$TMP/h$k" || return 1; done; }
check_true "4 streams running" wait_until 60 streaming4
first=$(children "$HPID" | head -n 1)
check_true "HAProxy has a worker" test -n "$first"
kill -USR2 "$HPID"
new_worker() { children "$HPID" | grep -qv "^$first\$"; }
check_true "reload: a new worker" wait_until 30 new_worker
pool_stream after 5 "$TMP/after"
check_true "reload: established streams over" wait_until 120 all_over "$TMP"/h{1,2,3,4} "$TMP/after"
check "reload: established streams finish" "4" "$(for k in 1 2 3 4; do done_ok "$TMP/h$k" && echo x; done | wc -l)"
check "reload: new sessions served" "200" "$(cat "$TMP/after.code")"

finish test_rack
