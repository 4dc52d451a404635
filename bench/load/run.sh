#!/usr/bin/env bash
# bench/load/run.sh BUILD_DIR [SECONDS] [CONNECTIONS] [WRK_THREADS] [REQUESTS]
#
# Load on a real herdd (issue 17): CONNECTIONS concurrent clients (default
# 64) for SECONDS (default 60), mixing annotation uploads, listings,
# annotation answers and metrics scrapes (bench/load/mix.lua), then a count
# check: every acknowledged upload line and answer must be stored.
#
# Setup, all through the public API: herdd with an auth file on a temp data
# dir; a run on a tiny random base model (load_base_model) whose collect
# stage asks for REQUESTS comparisons (default 24000, more than 64
# connections answer in 60 s on two cores); two herd-workers
# generate them, so REQUESTS annotation requests are pending; the run is
# paused (no stage moves on during the load) and the workers stopped (they
# would hold server threads with their long polls and share the CPUs).
#
# Prints wrk's latency distribution, then a summary: requests/s, p50/p99,
# 5xx count, and PASS/FAIL of the count check. Exit 0 on PASS, 1 on FAIL, 2
# when it cannot run (no wrk, binaries not built). HERD_LOAD_KEEP=1 keeps
# the temp dir (herdd.log, the data dir); HERD_LOAD_HERDD_ARGS adds herdd
# flags; HERD_LINES sets the lines per upload (10). bench/load/README.md
# says how to read the figures.
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
secs=${2:-60}
conns=${3:-64}
wthreads=${4:-2}
nreq=${5:-24000}
here=$(cd "$(dirname "$0")" && pwd)

for b in daemon/herdd workers/herd-worker bench/load/load_base_model; do
  if [[ ! -x "$build/$b" ]]; then
    echo "load: $build/$b is missing (cmake --build $build --target herdd herd-worker load_base_model)" >&2
    exit 2
  fi
done
for tool in wrk curl python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "load: '$tool' not found (deploy/install-deps.sh installs it)" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-load.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ "${HERD_LOAD_KEEP:-0}" == 1 ]]; then echo "load: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# --- herdd with tokens ----------------------------------------------------------
token() { head -c 24 /dev/urandom | base64 | tr -d '=+/'; }
admin_token=$(token)
worker_token=$(token)
printf '%s\n' "$worker_token" >"$tmp/worker.token"
for who in admin worker; do
  t=admin_token; [[ $who == worker ]] && t=worker_token
  printf '{"name": "%s", "role": "%s", "token_sha256": "%s"}\n' "$who" "$who" \
    "$(printf %s "${!t}" | sha256sum | cut -d' ' -f1)" >>"$tmp/auth.jsonl"
done

# HERD_LOAD_HERDD_ARGS: extra herdd flags (e.g. "--http-threads 8").
# shellcheck disable=SC2086
"$build/daemon/herdd" --data-dir "$tmp/data" --listen 127.0.0.1:0 --auth-file "$tmp/auth.jsonl" \
  --log-level warn ${HERD_LOAD_HERDD_ARGS:-} 2>>"$tmp/herdd.log" &
herdd_pid=$!
pids+=("$herdd_pid")
for _ in $(seq 200); do [[ -s "$tmp/data/herdd.addr" ]] && break; sleep 0.05; done
[[ -s "$tmp/data/herdd.addr" ]] || { echo "load: herdd did not start:" >&2; cat "$tmp/herdd.log" >&2; exit 1; }
url="http://$(cat "$tmp/data/herdd.addr")"

api() {  # api METHOD PATH [BODY-FILE]: the body on stdout; fails on a non-2xx answer
  local args=(-sS --fail-with-body -X "$1" -H "Authorization: Bearer $admin_token" "$url$2")
  [[ $# -ge 3 ]] && args+=(--data-binary "@$3" -H "Content-Type: application/json")
  curl "${args[@]}"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- a run with REQUESTS pending annotation requests --------------------------------
"$build/bench/load/load_base_model" "$tmp/base" 7
python3 - "$tmp/prompts.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(300):
        a, b = i % 10, (i // 10) % 10
        f.write(json.dumps({"id": f"q{i}", "prompt": f"What is {a}+{b}?", "split": "eval" if i % 10 == 9 else "train"}) + "\n")
EOF
cat >"$tmp/run.json" <<EOF
{"name": "load", "base_checkpoint": "$tmp/base", "rounds": 1,
 "annotation": {"comparisons_per_round": $nreq, "min_answers": $nreq, "max_new_tokens": 8, "temperature": 1.0},
 "rejection_sampling": {"prompts_per_task": 1000}}
EOF
run=$(api POST /v1/runs "$tmp/run.json" | json 'd["run"]["id"]')
api POST "/v1/runs/$run/prompts" "$tmp/prompts.jsonl" >/dev/null
api POST "/v1/runs/$run:start" >/dev/null
t0=$(date +%s.%N)
for i in 1 2; do
  "$build/workers/herd-worker" --daemon "$url" --token-file "$tmp/worker.token" --name "load-$i" \
    --log-level warn 2>>"$tmp/worker-$i.log" &
  pids+=("$!")
done
# The collect stage's generate tasks: "succeeded total" (GET /v1/runs/{run}
# shows tasks_done only once a stage moves on).
collect_state() {
  api GET "/v1/tasks?run=$run" |
    json '" ".join(str(x) for x in (sum(t["state"] == "succeeded" for t in d["tasks"] if t["stage"] == "collect"), sum(t["stage"] == "collect" for t in d["tasks"])))'
}
while :; do
  read -r done_ total < <(collect_state || echo "0 0")
  [[ "$total" -gt 0 && "$done_" == "$total" ]] && break
  if (($(date +%s) - ${t0%.*} > 600)); then echo "load: generation did not finish in 600 s" >&2; exit 1; fi
  sleep 0.5
done
api POST "/v1/runs/$run:pause" >/dev/null
for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
pids=("$herdd_pid")

: >"$tmp/ids.txt"
page=""
while :; do
  body=$(api GET "/v1/runs/$run/annotation-requests?state=pending&page_size=1000${page:+&page_token=$page}")
  printf '%s' "$body" | json '"\n".join(q["id"] for q in d["annotation_requests"])' >>"$tmp/ids.txt"
  page=$(printf '%s' "$body" | json 'd.get("next_page_token", "")')
  [[ -z "$page" ]] && break
done
sed -i '/^$/d' "$tmp/ids.txt"
pending=$(wc -l <"$tmp/ids.txt")
printf 'load: run %s has %d pending annotation requests (generated in %.1f s); herdd %s, pid %d\n' \
  "$run" "$pending" "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {print a - b}')" "$url" "$herdd_pid"
before_stored=$(api GET "/v1/runs/$run/export/annotations" | wc -l)
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$herdd_pid/status"; }
rss_before=$(rss)

# --- the load ------------------------------------------------------------------------
echo "load: wrk -t$wthreads -c$conns -d${secs}s --latency --timeout 10s -s mix.lua $url"
HERD_RUN=$run HERD_TOKEN=$admin_token HERD_IDS=$tmp/ids.txt HERD_THREADS=$wthreads HERD_SUMMARY=$tmp/summary.txt \
  HERD_LINES=${HERD_LINES:-10} \
  wrk -t"$wthreads" -c"$conns" -d"${secs}s" --latency --timeout 10s -s "$here/mix.lua" "$url" | tee "$tmp/wrk.txt"
rss_after=$(rss)

# --- the count check ---------------------------------------------------------------
# wrk stops at the deadline with a request in flight on most connections:
# herdd finishes those after wrk has gone, and wrk never counts them. Wait
# until the store is quiet, then every acknowledged line and answer must be
# stored, and at most the unacknowledged ones in flight besides.
get() { sed -n "s/^$1=//p" "$tmp/summary.txt"; }
stored_now() { api GET "/v1/runs/$run/export/annotations" | wc -l; }
prev=-1; now=$(stored_now)
while ((now != prev)); do sleep 1; prev=$now; now=$(stored_now); done
api GET "/v1/runs/$run/export/annotations" >"$tmp/export.jsonl"
stored_uploads=$(grep -c '"id":"load-t' "$tmp/export.jsonl" || true)
stored_answers=$(grep -c '"id":"req:' "$tmp/export.jsonl" || true)
stored_total=$(wc -l <"$tmp/export.jsonl")
answered_state=0
page=""
while :; do
  body=$(api GET "/v1/runs/$run/annotation-requests?state=answered&page_size=1000${page:+&page_token=$page}")
  answered_state=$((answered_state + $(printf '%s' "$body" | json 'len(d["annotation_requests"])')))
  page=$(printf '%s' "$body" | json 'd.get("next_page_token", "")')
  [[ -z "$page" ]] && break
done
metrics=$(curl -sS -H "Authorization: Bearer $admin_token" "$url/metrics")
metric() { awk -v m="$1" '$1 == m {n = $2} END {print n + 0}' <<<"$metrics"; }
m_accepted=$(metric 'herd_annotations_total{result="accepted"}')
m_answered=$(metric 'herd_annotations_total{result="answered"}')
m_5xx=$(awk '/^herd_http_requests_total\{/ && /code="5/ {n += $2} END {print n + 0}' <<<"$metrics")

lines=${HERD_LINES:-10}
lines_ok=$(get lines_ok); answer_ok=$(get answer_ok); s5xx=$(get status_5xx); s4xx=$(get status_4xx)
upload_unacked=$(($(get upload_sent) - $(get upload_ok)))
answer_unacked=$(($(get answer_sent) - answer_ok))
errors=$(($(get errors_connect) + $(get errors_read) + $(get errors_write) + $(get errors_timeout)))
verdict=PASS
why=()
((lines_ok > 0 && answer_ok > 0)) || { verdict=FAIL; why+=("no upload or no answer was acknowledged"); }
((s5xx == 0 && m_5xx == 0)) || { verdict=FAIL; why+=("5xx answers: wrk $s5xx, herdd metrics $m_5xx"); }
((s4xx == 0)) || { verdict=FAIL; why+=("4xx answers: $s4xx"); }
((stored_uploads >= lines_ok)) || { verdict=FAIL; why+=("upload lines acknowledged but not stored: $((lines_ok - stored_uploads))"); }
((stored_answers >= answer_ok)) || { verdict=FAIL; why+=("answers acknowledged but not stored: $((answer_ok - stored_answers))"); }
((stored_uploads <= lines_ok + upload_unacked * lines)) || { verdict=FAIL; why+=("more upload lines stored than sent"); }
((stored_answers <= answer_ok + answer_unacked)) || { verdict=FAIL; why+=("more answers stored than sent"); }
((stored_uploads == m_accepted && stored_answers == m_answered)) || { verdict=FAIL; why+=("herd_annotations_total disagrees with the store"); }
((answered_state == stored_answers)) || { verdict=FAIL; why+=("answered requests $answered_state != stored answers $stored_answers"); }
((stored_total == before_stored + stored_uploads + stored_answers)) || { verdict=FAIL; why+=("unexpected stored records"); }
((errors == 0)) || why+=("(wrk saw $errors socket errors)")

cat <<EOF

== load: $conns connections, $wthreads wrk threads, ${secs} s against herdd ${HERD_LOAD_HERDD_ARGS:-(default flags)}; $(nproc) CPUs shared by herdd and wrk
  requests          $(get requests) in $(get duration_s) s = $(get rps) req/s
  latency           p50 $(get p50_ms) ms, p90 $(get p90_ms) ms, p99 $(get p99_ms) ms, max $(get max_ms) ms
  by kind (2xx)     uploads $(get upload_ok) ($lines_ok lines), answers $answer_ok, run listings $(get runs_ok), request listings $(get requests_ok), metrics $(get metrics_ok)
  status            5xx $s5xx, 4xx $s4xx, unclassified $(get unclassified); socket errors $errors (timeouts $(get errors_timeout))
$(sed -n 's/^sample_\(status_[45]xx\)=/  first \1      /p' "$tmp/summary.txt" | grep . || echo "  first error       none")
  answer ids        $pending pending, $(get answer_sent) sent; $(get answers_exhausted) answer slots found none left (sent as listings)
  herdd RSS         $rss_before before, $rss_after after
  count check       upload lines: acknowledged $lines_ok, stored $stored_uploads, herd_annotations_total{accepted} $m_accepted; in flight at the cutoff $upload_unacked upload(s)
                    answers: acknowledged $answer_ok, stored $stored_answers, requests answered $answered_state, herd_annotations_total{answered} $m_answered; in flight at the cutoff $answer_unacked
                    duplicates reported $(get lines_dup)
  $verdict ${why[*]:-}
EOF
[[ $verdict == PASS ]]
