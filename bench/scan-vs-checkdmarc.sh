#!/usr/bin/env bash
# `mtasts scan` against checkdmarc 6 on the same generated loopback world, in the same run.
#
#   bench/scan-vs-checkdmarc.sh [N]        (default N=1000 domains; run as root)
#
# mtasts runs twice on the same world: with its DEFAULT flags (no --concurrency, no
# --dns-rate), and tuned (--concurrency CONCURRENCY --dns-rate DNS_RATE). Environment: SEED
# (1), CONCURRENCY (256) and DNS_RATE (20000) for the tuned run; KEEP=1 keeps the work
# directory. Prints domains/s of each run, both ratios to checkdmarc, the peak RSS of each,
# and checks from every output that the work was really done (policies fetched, STARTTLS).
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

# The binary, copied: the shared target directory may be rebuilt from another worktree
# while this runs.
cp "$MTASTS" "$WORK/mtasts-bin"
MTASTS="$WORK/mtasts-bin"

# --- mtasts scan, default flags, then tuned ---------------------------------------------------
run_mtasts() { # NAME EXTRA-ARGS...
  local name=$1; shift
  local cmd=("$MTASTS" scan "$DOMAINS" --db "sqlite://$WORK/$name.db" --format jsonl
    --output "$WORK/$name.jsonl" --progress none "$@"
    --dns-server "$MTASTS_DNS_SERVER" --trust-roots "$MTASTS_TRUST_ROOTS")
  log "mtasts ($name): ${cmd[*]}"
  timed "$WORK/$name" env -u MTASTS_HTTPS_PORT -u MTASTS_SMTP_PORT "${cmd[@]}" \
    2>"$WORK/$name.log" || { tail -n 20 "$WORK/$name.log" >&2; die "mtasts scan ($name) failed"; }
}
run_mtasts mtasts-default
run_mtasts mtasts-tuned --concurrency "$CONCURRENCY" --dns-rate "$DNS_RATE"

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
log "checking that every run did the work"
VERIFIED=0
for name in mtasts-default mtasts-tuned; do
  echo "== $name vs checkdmarc"
  python3 "$BENCH/count.py" "$WORK/manifest.tsv" "$WORK/$name.jsonl" "$WORK/checkdmarc.json" \
    >"$WORK/counts-$name.txt" || VERIFIED=$?
  cat "$WORK/counts-$name.txt"
done

C_WALL=$(wall_of "$WORK/checkdmarc"); C_RSS=$(rss_kib_of "$WORK/checkdmarc")
C_RATE=$(rate "$N" "$C_WALL")
line_of() { # NAME LABEL
  local wall rss r ratio probes
  wall=$(wall_of "$WORK/$1"); rss=$(rss_kib_of "$WORK/$1"); r=$(rate "$N" "$wall")
  ratio=$(awk -v m="$r" -v c="$C_RATE" 'BEGIN { printf "%.1f", (c > 0 ? m / c : 0) }')
  probes=$(sed -n 's/.* \([0-9]*\) MX probes run.*/\1/p' "$WORK/$1.log")
  printf '%-19s %s s  %s domains/s  peak RSS %s MiB  CPU %s s  ratio %sx  (%s, SMTP on, %s MX probes)\n' \
    "$1:" "$wall" "$r" "$(mib "$rss")" "$(cpu_of "$WORK/$1")" "$ratio" "$2" "${probes:-?}"
}

cat <<EOF

machine:            $(machine); load average after the runs: $(loadavg)
world:              $N generated domains, seed $SEED, $TESTWORLD_BLOCK.0/24, standard ports
$(line_of mtasts-default "default flags")
$(line_of mtasts-tuned "--concurrency $CONCURRENCY --dns-rate $DNS_RATE")
checkdmarc:         $C_WALL s  $C_RATE domains/s  peak RSS $(mib "$C_RSS") MiB  CPU $(cpu_of "$WORK/checkdmarc") s  ($CHECKDMARC_VERSION, --check-mx-tls)
ratios: mtasts domains/s / checkdmarc domains/s; targets: default flags >= 25x, tuned >= 10x
EOF
if [ "$VERIFIED" != 0 ]; then
  die "the outputs do not show the expected work (see the FAIL lines above); the ratios are not valid"
fi
