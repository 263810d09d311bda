#!/usr/bin/env bash
# Time for `mtasts serve` to get certificates for N hosted domains from Debian's pebble (the
# ACME test CA), HTTP-01, from an empty start.
#
#   bench/acme-pebble.sh [N] [CONCURRENCY...]    (default N=1000, concurrency 4; as root)
#
# Environment: KEEP=1 keeps the work directory, MTASTS_BIN (another mtasts binary).
#
# Steps: Debian's nsd answers `*.bench.test. A 127.0.0.1` on a loopback port (rate limiting
# off: this measures ordering, not DNS politeness); pebble (its listener certificate made
# here with openssl; PEBBLE_VA_NOSLEEP=1, nonces never rejected) resolves through it and
# validates HTTP-01 on the port `mtasts serve --listen-http` listens on. N domains are hosted
# with `mtasts domain add --mx` into a fresh SQLite database; `mtasts serve --acme-directory
# … --acme-concurrency C` starts, and the clock runs until its metrics say N certificates are
# served. Each concurrency gets its own database and pebble (a fresh CA, no authorisation
# reuse). Nothing leaves loopback.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-1000}
shift || true
LEVELS=("${@:-4}")
MTASTS=${MTASTS_BIN:-$MTASTS}
need_root
ensure_package pebble pebble
ensure_package nsd nsd
command -v openssl >/dev/null || die "openssl is needed"
command -v curl >/dev/null || die "curl is needed"

WORK=$(mktemp -d /tmp/acme-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK" || true; fi
}
trap cleanup EXIT

[ -n "${MTASTS_BIN:-}" ] || (cd "$ROOT" && cargo build --release --quiet -p mtasts --bin mtasts)
log "machine: $(machine)"

DNS_PORT=25353 ACME_PORT=24000 MGMT_PORT=25000 HTTP_PORT=28080 HTTPS_PORT=28443 METRICS_PORT=29090

# nsd: one wildcard zone.
cat > "$WORK/bench.zone" <<EOF
\$ORIGIN bench.test.
\$TTL 300
@ IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300
@ IN NS ns.bench.test.
ns IN A 127.0.0.1
* IN A 127.0.0.1
EOF
cat > "$WORK/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1
    port: $DNS_PORT
    username: ""
    chroot: ""
    zonesdir: "$WORK"
    pidfile: "$WORK/nsd.pid"
    database: ""
    zonelistfile: "$WORK/zone.list"
    xfrdfile: "$WORK/xfrd.state"
    xfrdir: "$WORK"
    logfile: "$WORK/nsd.log"
    server-count: 1
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "bench.test"
    zonefile: "$WORK/bench.zone"
EOF
/usr/sbin/nsd -d -c "$WORK/nsd.conf" 2>>"$WORK/nsd.log" &
PIDS+=($!)

# pebble's own HTTPS certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=pebble bench CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$WORK/pebble.key" -out "$WORK/pebble.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$WORK/pebble.ext"
openssl x509 -req -in "$WORK/pebble.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 30 -extfile "$WORK/pebble.ext" -out "$WORK/pebble.pem" 2>/dev/null
cat > "$WORK/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$ACME_PORT", "managementListenAddress": "127.0.0.1:$MGMT_PORT",
 "certificate": "$WORK/pebble.pem", "privateKey": "$WORK/pebble.key",
 "httpPort": $HTTP_PORT, "tlsPort": $HTTPS_PORT, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF

wait_port() {
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  die "nothing listens on port $1"
}

log "hosting $N domains (mtasts domain add)"
make_db() {
  local db=$1 i
  for i in $(seq 0 $((N - 1))); do
    MTASTS_SERVE_DB=$db "$MTASTS" domain add "$(printf 'd%04d.bench.test' "$i")" \
      --mx "mx1.$(printf 'd%04d.bench.test' "$i")" >/dev/null
  done
}

printf '\n%-12s %10s %12s %14s\n' "concurrency" "seconds" "certs/s" "peak RSS MiB" > "$WORK/results"
for C in "${LEVELS[@]}"; do
  db="sqlite://$WORK/serve-$C.db"
  make_db "$db"
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config "$WORK/pebble.json" -dnsserver "127.0.0.1:$DNS_PORT" > "$WORK/pebble-$C.log" 2>&1 &
  pebble_pid=$!
  PIDS+=("$pebble_pid")
  wait_port "$ACME_PORT"
  log "mtasts serve --acme-concurrency $C: ordering $N certificates"
  start=$(date +%s.%N)
  MTASTS_SERVE_DB=$db "$MTASTS" serve --listen-https "127.0.0.1:$HTTPS_PORT" \
    --listen-http "127.0.0.1:$HTTP_PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --acme-directory "https://127.0.0.1:$ACME_PORT/dir" --acme-ca "$WORK/ca.pem" \
    --acme-concurrency "$C" --acme-every 3600 --service-address 127.0.0.1 \
    --dns-server "127.0.0.1:$DNS_PORT" --monitor-every 0 --reload 1 > "$WORK/serve-$C.log" 2>&1 &
  serve_pid=$!
  PIDS+=("$serve_pid")
  wait_port "$METRICS_PORT"
  peak=0 last=-1 since=$SECONDS
  while :; do
    served=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '/^mtasts_serve_certificates / { print int($2) }')
    if [ "${served:-0}" != "$last" ]; then last=${served:-0}; since=$SECONDS; fi
    if [ $((SECONDS - since)) -gt 150 ]; then
      tail -20 "$WORK/serve-$C.log" >&2
      die "no new certificate for 150 s (at $last of $N)"
    fi
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$serve_pid/status")
    [ "$rss" -gt "$peak" ] && peak=$rss
    [ "${served:-0}" -ge "$N" ] && break
    kill -0 "$serve_pid" 2>/dev/null || { tail -20 "$WORK/serve-$C.log" >&2; die "mtasts serve exited"; }
    sleep 0.2
  done
  end=$(date +%s.%N)
  failed=$(grep -c "no certificate" "$WORK/serve-$C.log" || true)
  [ "$failed" = 0 ] || log "$failed failed attempts (see $WORK/serve-$C.log)"
  awk -v c="$C" -v s="$start" -v e="$end" -v n="$N" -v p="$peak" \
    'BEGIN { printf "%-12s %10.1f %12.1f %14.1f\n", c, e - s, n / (e - s), p / 1024 }' >> "$WORK/results"
  kill "$serve_pid" "$pebble_pid"; wait "$serve_pid" "$pebble_pid" 2>/dev/null || true
done
printf '\n%s certificates for %s policy hosts from pebble (HTTP-01), from an empty start:' "$N" "$N"
cat "$WORK/results"
