#!/usr/bin/env bash
# `mtasts reporter collect` against sys4's tlsrpt-collectd (PyPI tlsrpt-reporter 0.6) on the
# same libtlsrpt datagram stream, in the same run.
#
#   bench/collector-vs-tlsrpt-collectd.sh [N]     (default N=200000 datagrams for mtasts)
#   N_PEER=50000 BURST=100000 DOMAINS=2000 FAIL_PERCENT=10 bench/collector-vs-tlsrpt-collectd.sh
#   QLEN=4096 bench/collector-vs-tlsrpt-collectd.sh   (net.unix.max_dgram_qlen for the run)
#
# The datagrams come from crates/testkit's `tlsrpt-emit` (deterministic, seed 1): DOMAINS
# policy domains, one sts policy each, FAIL_PERCENT % of them failed with one failure detail,
# in libtlsrpt's exact byte layout (what Postfix ≥ 3.10 sends). The emitter builds them all in
# memory, then sends them as fast as the socket takes them.
#
# Round 1, throughput: each collector is started on a fresh socket and a fresh SQLite database
# (its own default store); the emitter sends with blocking send_to, so a full receive queue
# makes it wait and nothing is lost; the clock runs from the first send until the collector's
# database holds all N (polled with sqlite3: sum(cntrtotal) of tlsrpt-collectd's finalresults,
# sum(successes+failures) of mtasts's outbound_sessions; each datagram is one session). That
# includes each one's commit policy as shipped: tlsrpt-collectd commits every 1000 datagrams
# and after 5 s without any, mtasts every --flush-every (default 1 s). tlsrpt-collectd gets
# a smaller N (N_PEER) as it is much slower; the figures are per second, so the ratio is fair.
# Then the counts are checked: sessions, failed sessions and failure-detail counts stored
# against what was sent, and after SIGTERM.
#
# Round 2, burst: fresh processes; BURST datagrams sent non-blocking, as libtlsrpt does (a
# full queue, EAGAIN, drops the datagram: the MTA never waits for the collector). Reports how
# many the kernel accepted and how many each collector stored. The socket queue is bounded by
# net.unix.max_dgram_qlen datagrams (and the receive buffer, net.core.rmem_max caps what a
# collector may ask for), printed first: what is lost is what the collector did not read in
# time.
#
# Peak RSS is the collector's VmHWM just before SIGTERM; CPU is its user+system time. Needs
# python3, cargo and sqlite3 (installed from Debian when missing, which needs root). Nothing
# touches the network. On a machine with few cores the emitter competes with the collector:
# compare the two in the same run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-${N:-200000}}
N_PEER=${N_PEER:-50000}
BURST=${BURST:-100000}
DOMAINS=${DOMAINS:-2000}
FAIL_PERCENT=${FAIL_PERCENT:-10}
STABLE=${STABLE:-8}   # seconds without a change that count as "all stored" (> the peer's 5 s)
VENV="$BENCH/.venv-tlsrpt"
EMIT="$CARGO_TARGET_DIR/release/tlsrpt-emit"

ensure_package sqlite3 sqlite3

if [ ! -x "$VENV/bin/tlsrpt-collectd" ]; then
  log "installing tlsrpt-reporter 0.6 into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'tlsrpt-reporter>=0.6,<0.7'
fi
PEER_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("tlsrpt-reporter"))')
case "$PEER_VERSION" in 0.6.*) ;; *) die "tlsrpt-reporter $PEER_VERSION is not 0.6.x" ;; esac

log "building mtasts and tlsrpt-emit (release)"
(cd "$ROOT" && cargo build --release --quiet -p mtasts -p mtasts-testkit --bin mtasts --bin tlsrpt-emit)
"$MTASTS" reporter --help >/dev/null || die "this mtasts has no 'reporter' command"

WORK=$(mktemp -d /tmp/mtasts-bench-collect.XXXXXX)
CPID=
cleanup() {
  if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
    kill -TERM "$CPID" 2>/dev/null || true
    wait "$CPID" 2>/dev/null || true
  fi
  [ -z "${OLD_QLEN:-}" ] || sysctl -q -w net.unix.max_dgram_qlen="$OLD_QLEN"
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
json_field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; }
TICKS=$(getconf CLK_TCK)

# sql KIND DIR QUERY_PEER QUERY_OURS: one number from the collector's database (0 before it
# has the table).
sql() {
  local q=$3
  [ "$1" = ours ] && q=$4
  sqlite3 -cmd '.timeout 5000' "$2/c.sqlite" "$q" 2>/dev/null || echo 0
}
sessions() {
  sql "$1" "$2" 'select coalesce(sum(cntrtotal),0) from finalresults' \
    'select coalesce(sum(successes+failures),0) from outbound_sessions'
}
failed_sessions() {
  sql "$1" "$2" 'select coalesce(sum(cntrfailure),0) from finalresults' \
    'select coalesce(sum(failures),0) from outbound_sessions'
}
detail_count() {
  sql "$1" "$2" 'select coalesce(sum(cntr),0) from failures' \
    'select coalesce(sum(sessions),0) from outbound_failures'
}
groups() {
  sql "$1" "$2" 'select count(*) from finalresults' 'select count(*) from outbound_sessions'
}

# start_collector KIND DIR: a fresh collector on DIR/c.sock and DIR/c.sqlite; sets CPID.
start_collector() {
  local kind=$1 dir=$2
  mkdir -p "$dir"
  if [ "$kind" = peer ]; then
    "$VENV/bin/tlsrpt-collectd" --storage "sqlite://$dir/c.sqlite" --socketname "$dir/c.sock" \
      --dump_path_for_invalid_datagram "$dir/bad.dat" --log_level warn 2>"$dir/collector.err" &
  else
    "$MTASTS" reporter collect --socket "$dir/c.sock" --db "sqlite://$dir/c.sqlite" \
      2>"$dir/collector.err" &
  fi
  CPID=$!
  local _
  for _ in $(seq 200); do
    [ -S "$dir/c.sock" ] && return 0
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$dir/collector.err" >&2
  die "$kind collector did not create its socket (log above)"
}

# stop_collector DIR: records peak RSS (KiB) and CPU seconds, then SIGTERM and waits.
stop_collector() {
  local dir=$1
  kill -0 "$CPID" 2>/dev/null || { cat "$dir/collector.err" >&2; die "the collector died"; }
  R_RSS=$(awk '/^VmHWM:/ { print $2 }' "/proc/$CPID/status")
  R_CPU=$(awk -v t="$TICKS" '{ printf "%.1f", ($14 + $15) / t }' "/proc/$CPID/stat")
  kill -TERM "$CPID"
  R_EXIT=0
  wait "$CPID" || R_EXIT=$?
  CPID=
}

# round KIND NAME COUNT [--nonblocking]: one collector, one emitter run. Sets R_* figures.
round() {
  local kind=$1 dir=$WORK/$2 count=$3; shift 3
  start_collector "$kind" "$dir"
  local out
  out=$("$EMIT" "$dir/c.sock" "$count" --domains "$DOMAINS" --fail-percent "$FAIL_PERCENT" --seed 1 "$@")
  printf '%s\n' "$out" >"$dir/emit.json"
  R_SENT=$(json_field sent "$out")
  R_LOST=$(json_field lost "$out")
  R_FAILED_SENT=$(json_field failures "$out")
  R_EMIT_RATE=$(json_field per_second "$out")
  local started last_change n=-1 c t
  started=$(json_field started_at "$out")
  last_change=$(now)
  # Until all are stored, or nothing changed for STABLE seconds.
  while :; do
    c=$(sessions "$kind" "$dir")
    t=$(now)
    if [ "$c" != "$n" ]; then n=$c; last_change=$t; fi
    [ "$n" -ge "$R_SENT" ] && break
    awk -v a="$last_change" -v b="$t" -v s="$STABLE" 'BEGIN { exit !(b - a >= s) }' && break
    sleep 0.05
  done
  R_STORED=$n
  R_SECONDS=$(awk -v a="$started" -v b="$last_change" 'BEGIN { printf "%.2f", b - a }')
  R_RATE=$(rate "$n" "$R_SECONDS")
  stop_collector "$dir"
  R_FINAL=$(sessions "$kind" "$dir")
  R_FAILED=$(failed_sessions "$kind" "$dir")
  R_DETAILS=$(detail_count "$kind" "$dir")
  R_GROUPS=$(groups "$kind" "$dir")
  R_LOG=$(tail -n 1 "$dir/collector.err")
}

# QLEN=N: run with net.unix.max_dgram_qlen=N (the kernel's queue of a unix datagram socket,
# taken when the collector creates its socket; both collectors alike), restored afterwards.
if [ -n "${QLEN:-}" ]; then
  OLD_QLEN=$(sysctl -n net.unix.max_dgram_qlen)
  sysctl -q -w net.unix.max_dgram_qlen="$QLEN"
fi
log "$(machine); load $(loadavg)"
printf 'net.unix.max_dgram_qlen = %s   net.core.rmem_max = %s   net.core.rmem_default = %s\n' \
  "$(sysctl -n net.unix.max_dgram_qlen)" "$(sysctl -n net.core.rmem_max)" "$(sysctl -n net.core.rmem_default)"
printf '%s datagrams (mtasts) / %s (tlsrpt-collectd), %s policy domains, %s %% failed with a failure detail\n' \
  "$N" "$N_PEER" "$DOMAINS" "$FAIL_PERCENT"

# round 1: blocking sends, everything must be stored.
for kind in peer ours; do
  if [ "$kind" = peer ]; then count=$N_PEER; name="tlsrpt-collectd $PEER_VERSION"; else count=$N; name="mtasts reporter collect"; fi
  log "$name: $count datagrams, blocking"
  round "$kind" "$kind-throughput" "$count"
  for v in SENT EMIT_RATE STORED SECONDS RATE RSS CPU FINAL FAILED FAILED_SENT DETAILS GROUPS EXIT; do
    r=R_$v
    printf -v "${kind}_$v" '%s' "${!r}"
  done
  printf '%-30s %8s sent, %8s stored in %6s s: %9s datagrams/s stored (emitter: %s/s), peak RSS %s MiB, CPU %s s\n' \
    "$name:" "$R_SENT" "$R_STORED" "$R_SECONDS" "$R_RATE" "$R_EMIT_RATE" "$(mib "$R_RSS")" "$R_CPU"
  printf '%-30s after SIGTERM (exit %s): %s sessions (%s failed, %s sent failed), %s failure details, %s groups\n' \
    "" "$R_EXIT" "$R_FINAL" "$R_FAILED" "$R_FAILED_SENT" "$R_DETAILS" "$R_GROUPS"
  [ -z "$R_LOG" ] || printf '%-30s last log line: %s\n' "" "$R_LOG"
  [ "$R_FINAL" = "$R_SENT" ] || log "WARNING: $name stored $R_FINAL of $R_SENT (see $WORK/$kind-throughput, KEEP=1 keeps it)"
  if [ "$R_FAILED" != "$R_FAILED_SENT" ] || [ "$R_DETAILS" != "$R_FAILED_SENT" ]; then
    log "WARNING: $name: $R_FAILED failed sessions and $R_DETAILS failure details stored, $R_FAILED_SENT sent"
  fi
done

# round 2: a non-blocking burst, like libtlsrpt.
for kind in peer ours; do
  if [ "$kind" = peer ]; then name="tlsrpt-collectd $PEER_VERSION"; else name="mtasts reporter collect"; fi
  log "$name: burst of $BURST datagrams, non-blocking"
  round "$kind" "$kind-burst" "$BURST" --nonblocking
  printf -v "${kind}_BURST_SENT" '%s' "$R_SENT"
  printf -v "${kind}_BURST_LOST" '%s' "$R_LOST"
  printf -v "${kind}_BURST_KEPT" '%s' "$R_FINAL"
  printf -v "${kind}_BURST_RSS" '%s' "$R_RSS"
  printf '%-30s burst of %s: %s accepted by the socket (%s EAGAIN, lost by the sender) in %s s at %s/s, %s stored\n' \
    "$name:" "$BURST" "$R_SENT" "$R_LOST" "$(json_field seconds "$(cat "$WORK/$kind-burst/emit.json")")" \
    "$R_EMIT_RATE" "$R_FINAL"
done

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }'; }
# shellcheck disable=SC2154 # set with printf -v above
{
  echo
  printf '%-28s %16s %16s %8s\n' "" "tlsrpt-collectd" "mtasts" "ratio"
  printf '%-28s %16s %16s %7sx\n' "datagrams/s, until stored" "$peer_RATE" "$ours_RATE" \
    "$(awk -v a="$ours_RATE" -v b="$peer_RATE" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')"
  printf '%-28s %16s %16s %7sx\n' "datagrams/s, socket drained" "$peer_EMIT_RATE" "$ours_EMIT_RATE" \
    "$(awk -v a="$ours_EMIT_RATE" -v b="$peer_EMIT_RATE" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')"
  printf '%-28s %16s %16s\n' "CPU µs per datagram" \
    "$(awk -v c="$peer_CPU" -v n="$peer_SENT" 'BEGIN { printf "%.1f", 1e6 * c / n }')" \
    "$(awk -v c="$ours_CPU" -v n="$ours_SENT" 'BEGIN { printf "%.1f", 1e6 * c / n }')"
  printf '%-28s %16s %16s\n' "peak RSS MiB" "$(mib "$peer_RSS")" "$(mib "$ours_RSS")"
  printf '%-28s %16s %16s\n' "stored / sent" "$peer_FINAL/$peer_SENT" "$ours_FINAL/$ours_SENT"
  printf '%-28s %16s %16s\n' "burst: accepted / $BURST" "$peer_BURST_SENT" "$ours_BURST_SENT"
  printf '%-28s %16s %16s\n' "burst: stored / accepted" "$peer_BURST_KEPT/$peer_BURST_SENT" "$ours_BURST_KEPT/$ours_BURST_SENT"
  printf '%-28s %15s%% %15s%%\n' "burst: kept of $BURST" "$(pct "$peer_BURST_KEPT" "$BURST")" "$(pct "$ours_BURST_KEPT" "$BURST")"
  printf '%-28s %16s %16s\n' "burst: peak RSS MiB" "$(mib "$peer_BURST_RSS")" "$(mib "$ours_BURST_RSS")"
}
log "load after: $(loadavg)"
