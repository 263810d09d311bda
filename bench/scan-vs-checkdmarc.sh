#!/usr/bin/env bash
# `mtasts scan` against checkdmarc 6 on the same generated loopback world, in the same run.
#
#   bench/scan-vs-checkdmarc.sh [N]        (default N=1000 domains; run as root)
#
# Environment: SEED (1), CONCURRENCY (256), DNS_RATE (20000) for mtasts scan; KEEP=1 keeps
# the work directory. Prints domains/s of each tool, the ratio, and the peak RSS of each, and
# checks from both outputs that the work was really done (policies fetched, STARTTLS done).
#
# checkdmarc cannot be told other ports, and it resolves the policy host (requests) and the
# MX hosts (smtplib) through the system resolver, not through its --nameserver. So the world
# runs on the standard ports (DNS 127.A.B.253:53, HTTPS :443, SMTP :25 of its own 127.A.B.x
# addresses) and checkdmarc runs in a private mount namespace (unshare -m) in which
# /etc/resolv.conf names only the world's DNS server. Nothing outside that process changes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-${N:-1000}}
SEED=${SEED:-1}
CONCURRENCY=${CONCURRENCY:-256}
DNS_RATE=${DNS_RATE:-20000}
VENV="$BENCH/.venv"

need_root
ensure_gnu_time
command -v unshare >/dev/null || die "unshare (util-linux) is needed"

if [ ! -x "$VENV/bin/checkdmarc" ]; then
  log "installing checkdmarc 6 into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'checkdmarc>=6,<7'
fi
CHECKDMARC_VERSION=$("$VENV/bin/checkdmarc" --version)
case "$CHECKDMARC_VERSION" in 6.*) ;; *) die "checkdmarc $CHECKDMARC_VERSION is not 6.x" ;; esac

build_release

WORK=$(mktemp -d /tmp/mtasts-bench.XXXXXX)
cleanup() {
  stop_world
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log "starting a world of $N generated domains (seed $SEED), standard ports"
start_world "$WORK" --generated "$N" --seed "$SEED" --standard-ports
DOMAINS="$WORK/domains.txt"
[ "$(wc -l <"$DOMAINS")" -eq "$N" ] || die "domain list has $(wc -l <"$DOMAINS") lines, expected $N"

# --- mtasts scan ---------------------------------------------------------------------------
MTASTS_CMD=("$MTASTS" scan "$DOMAINS" --db "sqlite://$WORK/scan.db" --format jsonl
  --output "$WORK/mtasts.jsonl" --progress none --concurrency "$CONCURRENCY" --dns-rate "$DNS_RATE"
  --dns-server "$MTASTS_DNS_SERVER" --trust-roots "$MTASTS_TRUST_ROOTS")
log "mtasts: ${MTASTS_CMD[*]}"
timed "$WORK/mtasts" env -u MTASTS_HTTPS_PORT -u MTASTS_SMTP_PORT "${MTASTS_CMD[@]}" \
  2>"$WORK/mtasts.log" || { tail -n 20 "$WORK/mtasts.log" >&2; die "mtasts scan failed"; }

# --- checkdmarc ----------------------------------------------------------------------------
printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$TESTWORLD_DNS_IP" >"$WORK/resolv.conf"
CHECKDMARC_CMD=("$VENV/bin/checkdmarc" "$DOMAINS" --nameserver "$TESTWORLD_DNS_IP"
  --check-mx-tls --output "$WORK/checkdmarc.json")
log "checkdmarc $CHECKDMARC_VERSION: ${CHECKDMARC_CMD[*]}"
export REQUESTS_CA_BUNDLE SSL_CERT_FILE
# shellcheck disable=SC2016
unshare -m -- bash -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' _ \
  "$WORK/resolv.conf" /usr/bin/time -f "$TIME_FORMAT" -o "$WORK/checkdmarc.time" \
  "${CHECKDMARC_CMD[@]}" 2>"$WORK/checkdmarc.log" \
  || { tail -n 20 "$WORK/checkdmarc.log" >&2; die "checkdmarc failed"; }

# --- results -------------------------------------------------------------------------------
log "checking that both did the work"
VERIFIED=0
python3 "$BENCH/count.py" "$WORK/manifest.tsv" "$WORK/mtasts.jsonl" "$WORK/checkdmarc.json" \
  >"$WORK/counts.txt" || VERIFIED=$?
cat "$WORK/counts.txt"

M_WALL=$(wall_of "$WORK/mtasts"); M_RSS=$(rss_kib_of "$WORK/mtasts")
C_WALL=$(wall_of "$WORK/checkdmarc"); C_RSS=$(rss_kib_of "$WORK/checkdmarc")
M_RATE=$(rate "$N" "$M_WALL"); C_RATE=$(rate "$N" "$C_WALL")
RATIO=$(awk -v m="$M_RATE" -v c="$C_RATE" 'BEGIN { printf "%.1f", (c > 0 ? m / c : 0) }')
PROBES=$(sed -n 's/.* \([0-9]*\) MX probes run.*/\1/p' "$WORK/mtasts.log")

cat <<EOF

machine:    $(machine); load average after the run: $(loadavg)
world:      $N generated domains, seed $SEED, $TESTWORLD_BLOCK.0/24, standard ports
mtasts:     $(wall_of "$WORK/mtasts") s  $M_RATE domains/s  peak RSS $(mib "$M_RSS") MiB  CPU $(cpu_of "$WORK/mtasts") s  (concurrency $CONCURRENCY, dns-rate $DNS_RATE, SMTP on, ${PROBES:-?} MX probes)
checkdmarc: $(wall_of "$WORK/checkdmarc") s  $C_RATE domains/s  peak RSS $(mib "$C_RSS") MiB  CPU $(cpu_of "$WORK/checkdmarc") s  ($CHECKDMARC_VERSION, --check-mx-tls)
ratio:      ${RATIO}x (mtasts domains/s / checkdmarc domains/s; target >= 10x)
EOF
if [ "$VERIFIED" != 0 ]; then
  die "the outputs do not show the expected work (see the FAIL lines above); the ratio is not valid"
fi
