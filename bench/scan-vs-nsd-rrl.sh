#!/usr/bin/env bash
# `mtasts scan --no-smtp` with its default flags, 20 times in a row, against Debian's nsd with
# its default response rate limiting (RRL: rrl-ratelimit 200, rrl-slip 2) serving a generated
# world in one zone. Target: no scan over 3 s.
#
#   bench/scan-vs-nsd-rrl.sh [N] [RUNS]     (default 400 domains, 20 runs; needs /usr/sbin/nsd)
#
# Environment: SEED (1); MTASTS_NSD_RRL_RATELIMIT=0 turns RRL off (for comparison); KEEP=1.
# The world (`testworld --nsd`) serves HTTPS and SMTP itself and its DNS data from nsd.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-400}
RUNS=${2:-20}
SEED=${SEED:-1}
LIMIT=3.0

[ -x /usr/sbin/nsd ] || die "nsd is not installed (apt-get install nsd)"
ensure_gnu_time
build_release

WORK=$(mktemp -d /tmp/mtasts-nsd-bench.XXXXXX)
cleanup() {
  stop_world
  if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cp "$MTASTS" "$WORK/mtasts-bin"

log "starting a world of $N generated domains (seed $SEED), DNS from nsd"
start_world "$WORK" --generated "$N" --seed "$SEED" --nsd

SLOW=0
TIMES=()
for i in $(seq 1 "$RUNS"); do
  rm -f "$WORK/scan.db"
  timed "$WORK/run" "$WORK/mtasts-bin" scan "$WORK/domains.txt" --db "sqlite://$WORK/scan.db" \
    --format none --progress none --no-smtp 2>"$WORK/run.log" \
    || { tail -n 20 "$WORK/run.log" >&2; die "mtasts scan failed"; }
  t=$(wall_of "$WORK/run")
  TIMES+=("$t")
  if awk -v t="$t" -v l="$LIMIT" 'BEGIN { exit !(t > l) }'; then SLOW=$((SLOW + 1)); fi
done

cat <<EOF

machine:  $(machine); load average after the runs: $(loadavg)
world:    $N generated domains, seed $SEED, DNS: nsd $(/usr/sbin/nsd -v 2>&1 | head -n 1 | sed 's/NSD version //'), rrl-ratelimit ${MTASTS_NSD_RRL_RATELIMIT:-200}
mtasts:   scan --no-smtp, default flags, $RUNS runs: ${TIMES[*]} (seconds)
over ${LIMIT} s: $SLOW of $RUNS
EOF
[ "$SLOW" = 0 ] || die "$SLOW scans took over $LIMIT s"
