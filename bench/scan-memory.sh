#!/usr/bin/env bash
# Peak RSS and rate of `mtasts scan` over a big generated world (SMTP probing on).
#
#   bench/scan-memory.sh [N]        (default N=100000 domains; run as root)
#
# Environment: SEED (1), CONCURRENCY (256), DNS_RATE (20000), FORMAT (jsonl: per-domain rows
# to a file; or none), KEEP=1 keeps the work directory. The world runs in its own process
# (testworld), so only mtasts is measured. Target: peak RSS < 200 MB.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-${N:-100000}}
SEED=${SEED:-1}
CONCURRENCY=${CONCURRENCY:-256}
DNS_RATE=${DNS_RATE:-20000}
FORMAT=${FORMAT:-jsonl}

need_root
ensure_gnu_time
build_release

WORK=$(mktemp -d /tmp/mtasts-bench-mem.XXXXXX)
cleanup() {
  stop_world
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log "starting a world of $N generated domains (seed $SEED), standard ports"
start_world "$WORK" --generated "$N" --seed "$SEED" --standard-ports

CMD=("$MTASTS" scan "$WORK/domains.txt" --db "sqlite://$WORK/scan.db" --format "$FORMAT"
  --output "$WORK/mtasts.out" --progress log --concurrency "$CONCURRENCY" --dns-rate "$DNS_RATE"
  --dns-server "$MTASTS_DNS_SERVER" --trust-roots "$MTASTS_TRUST_ROOTS")
log "mtasts: ${CMD[*]}"
timed "$WORK/mtasts" env -u MTASTS_HTTPS_PORT -u MTASTS_SMTP_PORT "${CMD[@]}" \
  2>"$WORK/mtasts.log" || { tail -n 20 "$WORK/mtasts.log" >&2; die "mtasts scan failed"; }

VERIFIED=0
if [ "$FORMAT" = jsonl ]; then
  python3 "$BENCH/count.py" "$WORK/manifest.tsv" "$WORK/mtasts.out" - >"$WORK/counts.txt" || VERIFIED=$?
  cat "$WORK/counts.txt"
fi
stop_world

WALL=$(wall_of "$WORK/mtasts"); RSS=$(rss_kib_of "$WORK/mtasts")
PROBES=$(sed -n 's/.* \([0-9]*\) MX probes run.*/\1/p' "$WORK/mtasts.log")
RSS_MB=$(awk -v k="$RSS" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }')
VERDICT=$(awk -v k="$RSS" 'BEGIN { print (k * 1024 < 200e6 ? "under" : "OVER") }')
cat <<EOF2

machine: $(machine); load average after the run: $(loadavg)
world:   $N generated domains, seed $SEED ($(grep -o 'built in [^,]*' "$WORK/world.log" | head -n 1); world $(grep -o 'peak RSS [0-9]* MiB' "$WORK/world.log" | tail -n 1))
mtasts:  $WALL s  $(rate "$N" "$WALL") domains/s  CPU $(cpu_of "$WORK/mtasts") s  peak RSS $(mib "$RSS") MiB = $RSS_MB MB ($VERDICT the 200 MB target)
         concurrency $CONCURRENCY, dns-rate $DNS_RATE, SMTP on (${PROBES:-?} MX probes), --format $FORMAT
EOF2
[ "$VERIFIED" = 0 ] || die "the output does not show the expected work (see FAIL above)"
