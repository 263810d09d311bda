#!/usr/bin/env bash
# `mtasts resolver` against postfix-mta-sts-resolver 1.5 (PyPI) on the same generated loopback
# world, driven by the same closed-loop socketmap load, in the same run.
#
#   bench/resolver-vs-pmsr.sh [N]        (default N=400 keys; run as root)
#
# Environment: DURATION (10 s) and WARMUP (2 s) per measurement; CONNECTIONS ("1 8");
# COLD_N (10000: cold-cache time for that many distinct domains, 0 to skip); PMSR_COLD_CAP
# (600 s: pmsr's cold run is stopped there); RSS_POLICIES (100000: RSS of mtasts resolver
# with that many cached policies, 0 to skip); SEED (1); KEEP=1 keeps the work directory;
# MTASTS_BIN (another mtasts binary to measure, e.g. an older build).
#
# Steps: one world of max(N, COLD_N) generated domains on the standard ports; both daemons
# with their default persistent cache (pmsr: `cache: {type: sqlite}`; mtasts: its default
# SQLite cache, memory in front); one pass over the N keys warms both caches and records each
# answer (`socketmap-load --print`); the answers are compared key by key
# (bench/compare_answers.py); then each daemon is measured at each connection count. Then the
# cold-cache time for COLD_N distinct domains (fresh daemons, empty caches, 8 connections,
# every key once), and the RSS of `mtasts resolver` after caching RSS_POLICIES policies
# (a second world big enough to hold that many domains with a fetchable policy).
#
# pmsr resolves through the system resolver (aiodns reads /etc/resolv.conf; aiohttp uses
# getaddrinfo) and verifies with the system CA store, so, as checkdmarc in
# scan-vs-checkdmarc.sh, it runs in a private mount namespace (unshare -m) whose
# /etc/resolv.conf names only the world's DNS server, with SSL_CERT_FILE set to the world's CA.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-${N:-400}}
SEED=${SEED:-1}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-"1 8"}
COLD_N=${COLD_N:-10000}
PMSR_COLD_CAP=${PMSR_COLD_CAP:-600}
RSS_POLICIES=${RSS_POLICIES:-100000}
VENV="$BENCH/.venv-pmsr"
LOAD="$CARGO_TARGET_DIR/release/socketmap-load"
MTASTS=${MTASTS_BIN:-$MTASTS}

need_root
command -v unshare >/dev/null || die "unshare (util-linux) is needed"
command -v jq >/dev/null || die "jq is needed"

if [ ! -x "$VENV/bin/mta-sts-daemon" ]; then
  log "installing postfix-mta-sts-resolver 1.5 into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    'postfix-mta-sts-resolver[sqlite]>=1.5,<1.6'
fi
PMSR_VERSION=$("$VENV/bin/pip" show postfix-mta-sts-resolver 2>/dev/null | sed -n 's/^Version: //p')
case "$PMSR_VERSION" in 1.5.*) ;; *) die "postfix-mta-sts-resolver $PMSR_VERSION is not 1.5.x" ;; esac

log "building mtasts, testworld and socketmap-load (release)"
(cd "$ROOT" && cargo build --release --quiet -p mtasts -p mtasts-testkit \
  --bin mtasts --bin testworld --bin socketmap-load)

WORK=$(mktemp -d /tmp/mtasts-bench-resolver.XXXXXX)
DAEMONS=()
cleanup() {
  for pid in "${DAEMONS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  stop_world
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  local port=$1 pid=$2 i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_mtasts NAME PORT DB: runs `mtasts resolver` in the background; sets DAEMON_PID.
start_mtasts() {
  local name=$1 port=$2 db=$3
  MTASTS_RESOLVER_CMD=("$MTASTS" resolver --listen "127.0.0.1:$port" --http off
    --cache "sqlite://$db" --dns-server "$MTASTS_DNS_SERVER" --trust-roots "$MTASTS_TRUST_ROOTS")
  env -u MTASTS_HTTPS_PORT -u MTASTS_SMTP_PORT "${MTASTS_RESOLVER_CMD[@]}" \
    2>"$WORK/$name.log" &
  DAEMON_PID=$!
  DAEMONS+=("$DAEMON_PID")
  wait_port "$port" "$DAEMON_PID" || { tail -n 20 "$WORK/$name.log" >&2; die "$name did not start"; }
}

# start_pmsr NAME PORT DB: runs pmsr's mta-sts-daemon in the background; sets DAEMON_PID.
start_pmsr() {
  local name=$1 port=$2 db=$3
  cat >"$WORK/$name.yml" <<EOF
host: 127.0.0.1
port: $port
reuse_port: true
shutdown_timeout: 5
cache:
  type: sqlite
  options:
    filename: "$db"
default_zone:
  strict_testing: false
  timeout: 4
EOF
  PMSR_CMD=("$VENV/bin/mta-sts-daemon" -c "$WORK/$name.yml")
  # shellcheck disable=SC2016
  SSL_CERT_FILE="$MTASTS_TRUST_ROOTS" REQUESTS_CA_BUNDLE="$MTASTS_TRUST_ROOTS" \
    unshare -m -- bash -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' _ \
    "$WORK/resolv.conf" "${PMSR_CMD[@]}" 2>"$WORK/$name.log" &
  DAEMON_PID=$!
  DAEMONS+=("$DAEMON_PID")
  wait_port "$port" "$DAEMON_PID" || { tail -n 20 "$WORK/$name.log" >&2; die "$name did not start"; }
}

stop_daemon() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# measure NAME PID PORT CONNS: one closed-loop measurement; appends a row to $WORK/rows.tsv.
measure() {
  local name=$1 pid=$2 port=$3 conns=$4 before after out
  before=$(cpu_ticks "$pid")
  out=$("$LOAD" --addr "127.0.0.1:$port" --keys "$KEYS" --connections "$conns" \
    --duration "$DURATION" --warmup "$WARMUP" 2>>"$WORK/load.log")
  after=$(cpu_ticks "$pid")
  log "$name, $conns connection(s): $out"
  local cpu
  cpu=$(awk -v a="$after" -v b="$before" -v hz="$(getconf CLK_TCK)" -v s="$(jq .seconds <<<"$out")" \
    -v w="$WARMUP" 'BEGIN { printf "%.0f", 100 * (a - b) / hz / (s + w) }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$conns" "$(jq .rps <<<"$out")" \
    "$(jq .p50_us <<<"$out")" "$(jq .p99_us <<<"$out")" "$(jq .errors <<<"$out")" \
    "$cpu" "$(jq -c .replies <<<"$out")" >>"$WORK/rows.tsv"
}

# --- the world -----------------------------------------------------------------------------
WORLD_N=$(( N > COLD_N ? N : COLD_N ))
log "starting a world of $WORLD_N generated domains (seed $SEED), standard ports"
start_world "$WORK" --generated "$WORLD_N" --seed "$SEED" --standard-ports
printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$TESTWORLD_DNS_IP" >"$WORK/resolv.conf"
KEYS="$WORK/keys.txt"
head -n "$N" "$WORK/domains.txt" >"$KEYS"
NO_POLICY=$(head -n "$N" "$WORK/manifest.tsv" | awk -F'\t' '$2 == "no-mta-sts"' | wc -l)
log "keys: the first $N domains, $NO_POLICY of them ($(rate $((100 * NO_POLICY)) "$N") %) without MTA-STS"

# --- warm both caches, compare the answers -------------------------------------------------
M_PORT=$(free_port)
start_mtasts mtasts "$M_PORT" "$WORK/mtasts.db"
M_PID=$DAEMON_PID
log "mtasts: ${MTASTS_RESOLVER_CMD[*]}"
P_PORT=$(free_port)
start_pmsr pmsr "$P_PORT" "$WORK/pmsr.db"
P_PID=$DAEMON_PID
log "pmsr $PMSR_VERSION: ${PMSR_CMD[*]} (sqlite cache, in unshare -m)"

log "warming both caches (one pass over the $N keys, 8 connections)"
"$LOAD" --addr "127.0.0.1:$M_PORT" --keys "$KEYS" --connections 8 --print \
  >"$WORK/mtasts.answers" 2>>"$WORK/load.log"
"$LOAD" --addr "127.0.0.1:$P_PORT" --keys "$KEYS" --connections 8 --print \
  >"$WORK/pmsr.answers" 2>>"$WORK/load.log"
# The answers compared are the second pass's, from the warm caches.
"$LOAD" --addr "127.0.0.1:$M_PORT" --keys "$KEYS" --connections 8 --print \
  >"$WORK/mtasts.answers" 2>>"$WORK/load.log"
"$LOAD" --addr "127.0.0.1:$P_PORT" --keys "$KEYS" --connections 8 --print \
  >"$WORK/pmsr.answers" 2>>"$WORK/load.log"
SECURE_P=$(grep -c $'\tOK secure match=' "$WORK/pmsr.answers" || true)
SECURE_M=$(grep -c $'\tOK secure match=' "$WORK/mtasts.answers" || true)
GOOD=$(head -n "$N" "$WORK/manifest.tsv" | awk -F'\t' '$2 == "good-enforce"' | wc -l)
log "OK secure answers: mtasts $SECURE_M, pmsr $SECURE_P (good-enforce domains: $GOOD)"
[ "$SECURE_P" -ge "$GOOD" ] || die "pmsr answered OK secure for $SECURE_P keys, fewer than the $GOOD good-enforce domains: it does not fetch policies"
[ "$SECURE_M" -ge "$GOOD" ] || die "mtasts answered OK secure for $SECURE_M keys, fewer than the $GOOD good-enforce domains"
COMPARED=0
python3 "$BENCH/compare_answers.py" "$WORK/manifest.tsv" "$WORK/mtasts.answers" \
  "$WORK/pmsr.answers" >"$WORK/compare.txt" || COMPARED=$?
cat "$WORK/compare.txt"

# --- closed-loop measurements --------------------------------------------------------------
: >"$WORK/rows.tsv"
for c in $CONNECTIONS; do
  measure pmsr "$P_PID" "$P_PORT" "$c"
  measure mtasts "$M_PID" "$M_PORT" "$c"
done
M_RSS=$(status_kib "$M_PID" VmHWM); P_RSS=$(status_kib "$P_PID" VmHWM)
stop_daemon "$M_PID"; stop_daemon "$P_PID"
LOAD_AFTER=$(loadavg)

# --- cold cache: COLD_N distinct domains, each once, 8 connections --------------------------
COLD_LINES=()
if [ "$COLD_N" -gt 0 ]; then
  head -n "$COLD_N" "$WORK/domains.txt" >"$WORK/cold.txt"
  start_mtasts mtasts-cold "$(free_port)" "$WORK/mtasts-cold.db"
  port=$(sed -n 's/.*--listen 127.0.0.1:\([0-9]*\).*/\1/p' <<<"${MTASTS_RESOLVER_CMD[*]}")
  log "cold: mtasts, $COLD_N domains"
  out=$("$LOAD" --addr "127.0.0.1:$port" --keys "$WORK/cold.txt" --connections 8 --once 2>>"$WORK/load.log")
  COLD_LINES+=("mtasts  $(jq .seconds <<<"$out") s for $COLD_N domains ($(jq .rps <<<"$out") domains/s, errors $(jq .errors <<<"$out"), replies $(jq -c .replies <<<"$out"), peak RSS $(mib "$(status_kib "$DAEMON_PID" VmHWM)") MiB)")
  log "cold: ${COLD_LINES[-1]}"
  stop_daemon "$DAEMON_PID"

  port=$(free_port)
  start_pmsr pmsr-cold "$port" "$WORK/pmsr-cold.db"
  log "cold: pmsr, $COLD_N domains (capped at $PMSR_COLD_CAP s)"
  if out=$(timeout "$PMSR_COLD_CAP" "$LOAD" --addr "127.0.0.1:$port" --keys "$WORK/cold.txt" \
    --connections 8 --once 2>>"$WORK/load.log"); then
    COLD_LINES+=("pmsr    $(jq .seconds <<<"$out") s for $COLD_N domains ($(jq .rps <<<"$out") domains/s, errors $(jq .errors <<<"$out"), replies $(jq -c .replies <<<"$out"), peak RSS $(mib "$(status_kib "$DAEMON_PID" VmHWM)") MiB)")
  else
    COLD_LINES+=("pmsr    did not finish $COLD_N domains within $PMSR_COLD_CAP s")
  fi
  log "cold: ${COLD_LINES[-1]}"
  stop_daemon "$DAEMON_PID"
fi
stop_world

# --- RSS with RSS_POLICIES cached policies -------------------------------------------------
RSS_LINE=""
if [ "$RSS_POLICIES" -gt 0 ]; then
  # About 56 % of generated domains have a fetchable policy (good, testing, none, and the
  # four MX breakages); build a world big enough for RSS_POLICIES of them.
  RSS_N=$(( RSS_POLICIES * 180 / 100 ))
  mkdir -p "$WORK/rss"
  log "starting a world of $RSS_N generated domains for the RSS measurement"
  start_world "$WORK/rss" --generated "$RSS_N" --seed "$SEED" --standard-ports
  awk -F'\t' -v max="$RSS_POLICIES" \
    '$2 ~ /^(good-enforce|good-testing|mode-none|broken:mx-)/ && n < max { print $1; n++ }' \
    "$WORK/rss/manifest.tsv" >"$WORK/rss/keys.txt"
  HAVE=$(wc -l <"$WORK/rss/keys.txt")
  port=$(free_port)
  start_mtasts mtasts-rss "$port" "$WORK/rss/mtasts.db"
  R_PID=$DAEMON_PID
  R_BASE=$(status_kib "$R_PID" VmRSS)
  log "RSS: caching $HAVE policies in mtasts resolver (64 connections, every key once)"
  out=$("$LOAD" --addr "127.0.0.1:$port" --keys "$WORK/rss/keys.txt" --connections 64 --once 2>>"$WORK/load.log")
  log "RSS: $out"
  R_RSS=$(status_kib "$R_PID" VmRSS); R_HWM=$(status_kib "$R_PID" VmHWM)
  CACHED=$(env -u MTASTS_HTTPS_PORT -u MTASTS_SMTP_PORT "$MTASTS" resolver dump \
    --cache "sqlite://$WORK/rss/mtasts.db" | jq -c 'select(.policy != null)' | wc -l)
  # A second pass: every answer from the cache, to see that the figure is steady.
  out2=$("$LOAD" --addr "127.0.0.1:$port" --keys "$WORK/rss/keys.txt" --connections 8 --once 2>>"$WORK/load.log")
  R_RSS2=$(status_kib "$R_PID" VmRSS)
  stop_daemon "$R_PID"
  stop_world
  RSS_LINE="mtasts resolver with $CACHED cached policies (of $HAVE keys asked; world of $RSS_N domains): VmRSS $(mib "$R_RSS") MiB (at start $(mib "$R_BASE") MiB), peak (VmHWM) $(mib "$R_HWM") MiB; after a second all-hit pass VmRSS $(mib "$R_RSS2") MiB. First pass (cold, 64 connections) $(jq .seconds <<<"$out") s = $(jq .rps <<<"$out") domains/s, replies $(jq -c .replies <<<"$out"); second pass (8 connections, all hits) $(jq .rps <<<"$out2") requests/s, p99 $(jq .p99_us <<<"$out2") us"
fi

# --- results -------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }
field() { awk -F'\t' -v d="$1" -v c="$2" -v f="$3" '$1 == d && $2 == c { print $f }' "$WORK/rows.tsv"; }
echo
echo "machine:  $(machine); load average after the measurements: $LOAD_AFTER"
echo "world:    $WORLD_N generated domains, seed $SEED, $TESTWORLD_BLOCK.0/24, standard ports; keys: the first $N ($NO_POLICY without MTA-STS)"
echo "pmsr:     postfix-mta-sts-resolver $PMSR_VERSION, cache sqlite (Python $(python3 -c 'import sys; print(sys.version.split()[0])'))"
echo "mtasts:   mtasts resolver, cache sqlite:// (memory in front)"
echo "load:     socketmap-load, closed loop, ${WARMUP} s warm-up then ${DURATION} s per row"
echo
printf '| daemon | connections | requests/s | p50 | p99 | errors | daemon CPU | replies |\n|---|---|---|---|---|---|---|---|\n'
while IFS=$'\t' read -r d c rps p50 p99 err cpu replies; do
  printf '| %s | %s | %s | %s µs | %s µs | %s | %s %% | %s |\n' "$d" "$c" "$rps" "$p50" "$p99" "$err" "$cpu" "$replies"
done <"$WORK/rows.tsv"
echo
for c in $CONNECTIONS; do
  echo "ratio at $c connection(s): requests/s $(ratio "$(field mtasts "$c" 3)" "$(field pmsr "$c" 3)")x, p99 pmsr/mtasts $(ratio "$(field pmsr "$c" 5)" "$(field mtasts "$c" 5)")x (targets at 8: >= 10x, mtasts p99 <= 500 µs)"
done
echo "peak RSS during the measurements: mtasts $(mib "$M_RSS") MiB, pmsr $(mib "$P_RSS") MiB"
for l in "${COLD_LINES[@]}"; do echo "cold:     $l"; done
[ -z "$RSS_LINE" ] || echo "rss:      $RSS_LINE"
if [ "$COMPARED" != 0 ]; then
  die "some answers differ for reasons not explained (see UNEXPLAINED above)"
fi
