#!/usr/bin/env bash
# `mtasts serve` hosting N domains against Debian's nginx serving the same policy file with the
# same certificate, both driven by wrk over HTTPS, in the same run.
#
#   bench/serve-vs-nginx.sh [N]        (default N=1000 hosted domains; run as root)
#
# Environment: DURATION (10 s per measurement), THREADS (2), CONNECTIONS (64), KEEP=1 keeps
# the work directory, MTASTS_BIN (another mtasts binary).
#
# Steps: a private CA (openssl) issues one certificate per domain d0000.bench.test …; every
# domain is added with `mtasts domain add --mx …` and its certificate stored with `mtasts
# domain cert`, into a fresh SQLite database; `mtasts serve` serves them all on 127.0.0.1:8443.
# nginx serves d0000's policy file (the same bytes, the same certificate and key) on
# 127.0.0.1:9443 with a config tuned as one would for static files (workers = cores,
# keepalive, sendfile, access log off, TLS 1.2 and 1.3). wrk (OpenSSL) asks for
# https://mta-sts.d0000.bench.test/.well-known/mta-sts.txt; the name resolves to 127.0.0.1
# through /etc/hosts inside a private mount namespace (unshare -m), so SNI and Host are the
# real ones and the machine's /etc/hosts is untouched. Two loads: keep-alive, and a new TLS
# connection per request (`Connection: close`). Both servers, wrk and this script share the
# machine's cores; the servers run one at a time.
#
# Memory per hosted domain: the RSS of `mtasts serve` with N domains minus its RSS with one,
# divided by N - 1 (both after a load, so the TLS and HTTP buffers are counted in both).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-${N:-1000}}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
MTASTS=${MTASTS_BIN:-$MTASTS}
need_root
ensure_package wrk wrk
ensure_package nginx nginx-light
command -v openssl >/dev/null || die "openssl is needed"
command -v unshare >/dev/null || die "unshare (util-linux) is needed"

WORK=$(mktemp -d /tmp/serve-bench.XXXXXX)
cleanup() {
  [ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

[ -n "${MTASTS_BIN:-}" ] || (cd "$ROOT" && cargo build --release --quiet -p mtasts --bin mtasts)

log "machine: $(machine)"
log "issuing $N certificates (openssl, P-256)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=mtasts bench CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
mkdir -p "$WORK/certs"
for i in $(seq 0 $((N - 1))); do
  d=$(printf 'd%04d.bench.test' "$i")
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=mta-sts.$d" \
    -keyout "$WORK/certs/$d.key" -out "$WORK/certs/$d.csr" 2>/dev/null
  printf 'subjectAltName=DNS:mta-sts.%s\n' "$d" > "$WORK/certs/$d.ext"
  openssl x509 -req -in "$WORK/certs/$d.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 30 -extfile "$WORK/certs/$d.ext" -out "$WORK/certs/$d.pem" 2>/dev/null
  cat "$WORK/ca.pem" >> "$WORK/certs/$d.pem"
done

# add_domains DB COUNT: hosts the first COUNT domains in DB.
add_domains() {
  local db=$1 count=$2 i d
  for i in $(seq 0 $((count - 1))); do
    d=$(printf 'd%04d.bench.test' "$i")
    MTASTS_SERVE_DB=$db "$MTASTS" domain add "$d" --mx "mx1.$d,mx2.$d" >/dev/null
    MTASTS_SERVE_DB=$db "$MTASTS" domain cert "$d" --chain "$WORK/certs/$d.pem" \
      --key "$WORK/certs/$d.key" >/dev/null
  done
}
log "adding $N domains with mtasts domain add / cert"
t0=$SECONDS
add_domains "sqlite://$WORK/serve.db" "$N"
log "added in $((SECONDS - t0)) s"
add_domains "sqlite://$WORK/one.db" 1

D0=d0000.bench.test
HOST=mta-sts.$D0
MTASTS_SERVE_DB="sqlite://$WORK/serve.db" "$MTASTS" domain show "$D0" --no-dns --json \
  | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["domain"]["policy_text"])' \
  > "$WORK/mta-sts.txt"
mkdir -p "$WORK/www/.well-known" && cp "$WORK/mta-sts.txt" "$WORK/www/.well-known/mta-sts.txt"
# nginx workers run as www-data: the document root must be readable by them.
chmod 755 "$WORK" && chmod -R a+rX "$WORK/www"

cat > "$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  types { text/plain txt; }
  ssl_session_cache shared:SSL:10m;
  server {
    listen 127.0.0.1:9443 ssl;
    server_name $HOST;
    ssl_certificate $WORK/certs/$D0.pem;
    ssl_certificate_key $WORK/certs/$D0.key;
    # nginx 1.22 offers only TLS 1.2 by default (1.3 joined the default in 1.23.4): ask for
    # both, as mtasts serve offers, so that both sides do the same handshake.
    ssl_protocols TLSv1.2 TLSv1.3;
    root $WORK/www;
    location = /.well-known/mta-sts.txt { default_type text/plain; }
  }
}
EOF
# The same with nginx's own default protocols (TLS 1.2 only in 1.22), for reference: a lighter
# handshake than TLS 1.3, so not the same work as mtasts serve's.
grep -v 'ssl_protocols' "$WORK/nginx.conf" > "$WORK/nginx-tls12.conf"
printf '127.0.0.1 localhost\n127.0.0.1 %s\n' "$HOST" > "$WORK/hosts"

# load PORT [HEADER]: wrk's requests/s against https://HOST:PORT/.well-known/mta-sts.txt.
load() {
  local port=$1; shift
  unshare -m -- bash -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' _ "$WORK/hosts" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$@" \
    "https://$HOST:$port/.well-known/mta-sts.txt" > "$WORK/wrk.out" 2>&1 || true
  local errors
  errors=$(grep -E 'Non-2xx|Socket errors' "$WORK/wrk.out" | tr '\n' ' ' || true)
  [ -z "$errors" ] || log "wrk: $errors"
  awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out"
}

rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

start_serve() {
  MTASTS_SERVE_DB=$1 "$MTASTS" serve --listen-https 127.0.0.1:8443 --listen-http off \
    --max-connections 65536 > "$WORK/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/8443) 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$WORK/serve.log" >&2
  die "mtasts serve did not start"
}
stop_serve() { kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=; }

# The same bytes from both, before measuring.
start_serve "sqlite://$WORK/serve.db"
nginx -c "$WORK/nginx.conf"
sleep 0.5
fetch() {
  unshare -m -- bash -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' _ "$WORK/hosts" \
    curl -sS --cacert "$WORK/ca.pem" "https://$HOST:$1/.well-known/mta-sts.txt"
}
cmp <(fetch 8443) <(fetch 9443) || die "mtasts serve and nginx do not serve the same bytes"
fetch 8443 | cmp - "$WORK/mta-sts.txt" || die "the served policy differs from the stored one"
log "both serve the same $(wc -c < "$WORK/mta-sts.txt") bytes with the same certificate"
kill "$(cat "$WORK/nginx.pid")"; sleep 0.5

log "mtasts serve, $N domains: keep-alive"
serve_ka=$(load 8443)
log "mtasts serve, $N domains: a new TLS connection per request"
serve_new=$(load 8443 -H "Connection: close")
rss_n=$(rss_kib "$SERVE_PID")
stop_serve

nginx -c "$WORK/nginx.conf"; sleep 0.5
log "nginx: keep-alive"
nginx_ka=$(load 9443)
log "nginx: a new TLS connection per request"
nginx_new=$(load 9443 -H "Connection: close")
kill "$(cat "$WORK/nginx.pid")"; sleep 0.5
nginx -c "$WORK/nginx-tls12.conf"; sleep 0.5
log "nginx with its default protocols (TLS 1.2 only): a new TLS connection per request"
nginx12_new=$(load 9443 -H "Connection: close")
kill "$(cat "$WORK/nginx.pid")"; sleep 0.5

start_serve "sqlite://$WORK/one.db"
load 8443 > /dev/null
load 8443 -H "Connection: close" > /dev/null
rss_1=$(rss_kib "$SERVE_PID")
stop_serve

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
per_domain=$(awk -v n="$rss_n" -v o="$rss_1" -v c="$N" 'BEGIN { printf "%.1f", (n - o) / (c - 1) }')
printf '\n%-34s %14s %14s %8s\n' "requests/s ($THREADS threads, $CONNECTIONS conns)" "mtasts serve" "nginx" "ratio"
printf '%-34s %14s %14s %7sx\n' "HTTPS keep-alive" "$serve_ka" "$nginx_ka" "$(ratio "$serve_ka" "$nginx_ka")"
printf '%-34s %14s %14s %7sx\n' "new TLS connection per request" "$serve_new" "$nginx_new" "$(ratio "$serve_new" "$nginx_new")"
printf '%-34s %14s %14s %7sx\n' "  (nginx default: TLS 1.2 only)" "$serve_new" "$nginx12_new" "$(ratio "$serve_new" "$nginx12_new")"
printf '\nmtasts serve RSS: %s MiB with %s domains, %s MiB with 1: %s KiB per hosted domain\n' \
  "$(mib "$rss_n")" "$N" "$(mib "$rss_1")" "$per_domain"
