#!/usr/bin/env bash
# The report store at scale: N TLS-RPT report e-mails (default 1 000 000) ingested by
# `mtasts report ingest` into one store, in rounds of R messages (default 100 000) so the mail
# on disk never exceeds one round; then the store's size and the latency of the queries the
# CLI, the API and the dashboard run over it.
#
#   bench/store-million.sh [N [R]]            (default store: a new SQLite file)
#   DB=postgres://postgres@127.0.0.1:5432/test bench/store-million.sh   (PostgreSQL; the
#                                             database's tlsrpt_* tables are dropped first)
#
# The messages are bench/gen_reports.py's (the same generator as ingest-vs-parsedmarc.sh: the
# repository's samples with varied report ids, dates over 300 days, 500 policy domains). Each
# round prints its ingest rate and the peak RSS; nothing leaves the machine.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-1000000}
R=${2:-100000}
ensure_gnu_time

log "building mtasts (release)"
(cd "$ROOT" && cargo build --release --quiet -p mtasts --bin mtasts)

WORK=$(mktemp -d /tmp/mtasts-bench-store.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
if [ -n "${DB:-}" ]; then
  case "$DB" in
    postgres://*|postgresql://*)
      log "dropping the tlsrpt_* tables of $DB"
      psql -q "$DB" -c 'DROP TABLE IF EXISTS tlsrpt_failure_days, tlsrpt_domain_days, tlsrpt_failures, tlsrpt_policies, tlsrpt_receipts, tlsrpt_reports CASCADE' \
        -c "DELETE FROM _sqlx_migrations WHERE description LIKE 'reports%'" 2>/dev/null || true ;;
    *) die "DB must be a postgres:// URL (the default is a new SQLite file)" ;;
  esac
else
  DB="sqlite://$WORK/reports.db"
fi

done_n=0
seed=1
while [ "$done_n" -lt "$N" ]; do
  n=$((N - done_n < R ? N - done_n : R))
  rm -rf "$WORK/mail"
  python3 "$BENCH/gen_reports.py" "$n" "$WORK/mail" "$seed" "$done_n"
  /usr/bin/time -f '%e %M' -o "$WORK/round.time" "$MTASTS" report ingest --dkim off --db "$DB" "$WORK/mail" \
    >/dev/null 2>"$WORK/round.err" || die "ingest failed: $(tail -n 3 "$WORK/round.err")"
  read -r wall rss < <(tail -n 1 "$WORK/round.time")
  done_n=$((done_n + n))
  seed=$((seed + 1))
  printf 'round: %s messages in %s s (%s/s), peak RSS %s MiB; %s stored so far\n' "$n" "$wall" \
    "$(awk -v n="$n" -v s="$wall" 'BEGIN { printf "%.0f", n / s }')" \
    "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$done_n"
done
rm -rf "$WORK/mail"

STORED=$(($("$MTASTS" report list --db "$DB" --limit 100000000 --format csv | wc -l) - 1))
[ "$STORED" = "$N" ] || die "the store holds $STORED reports, not $N"

# latency LABEL CMD...: wall time of CMD (output discarded), best of 3 (the first run reads
# the store from disk into the page cache; all three are printed).
latency() {
  local label=$1; shift
  local times=()
  for _ in 1 2 3; do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')")
  done
  printf '%-52s %s s  (runs: %s)\n' "$label" \
    "$(printf '%s\n' "${times[@]}" | sort -n | head -n 1)" "${times[*]}"
}

case "$DB" in
  sqlite://*)
    SIZE=$(du -cb "$WORK"/reports.db* | tail -n 1 | cut -f 1)
    printf 'store: %s reports in %s MiB on disk (%s bytes/report, SQLite with its WAL)\n' "$N" \
      "$(awk -v b="$SIZE" 'BEGIN { printf "%.1f", b / 1048576 }')" "$((SIZE / N))" ;;
  *)
    SIZE=$(psql -At "$DB" -c "SELECT SUM(pg_total_relation_size(c)) FROM unnest(ARRAY['tlsrpt_reports','tlsrpt_receipts','tlsrpt_policies','tlsrpt_failures','tlsrpt_domain_days','tlsrpt_failure_days']::regclass[]) c")
    printf 'store: %s reports in %s MiB (%s bytes/report, PostgreSQL tables and indexes)\n' "$N" \
      "$(awk -v b="$SIZE" 'BEGIN { printf "%.1f", b / 1048576 }')" "$((SIZE / N))" ;;
esac
latency "report summary, every domain, all days (JSON)" \
  "$MTASTS" report summary --db "$DB" --days 100000 --format json
latency "report summary --domain d042.example, all days" \
  "$MTASTS" report summary --db "$DB" --domain d042.example --days 100000 --format json
latency "report list --limit 50" "$MTASTS" report list --db "$DB" --limit 50 --format json
latency "report show (one report by id)" "$MTASTS" report show --db "$DB" "$((N / 2))"
