#!/usr/bin/env bash
# `mtasts report ingest` against parsedmarc 11 on the same TLS-RPT report e-mails, in the
# same run.
#
#   bench/ingest-vs-parsedmarc.sh [N]        (default N=10000 messages; run as root)
#
# The messages are generated from the repository's samples (bench/gen_reports.py: varied
# report ids, dates and counts; RFC 8460 §5.3 MIME with a gzip attachment). parsedmarc reads
# the directory with --offline (no DNS, no geolocation) and writes its JSON; mtasts stores
# every report into a new SQLite database (the default store) with --dkim off (parsedmarc
# does not check DKIM). Both run in a network namespace without network (unshare -n), so
# nothing leaves the machine. Prints messages/s of each, the ratio, peak RSS, and checks that
# each really handled every message (reports in parsedmarc's JSON, rows in the store). Then
# the peak RSS of mtasts on a gzip bomb (1 GiB of zeros in a 1 MiB attachment), the store's
# size and the latency of `report summary` over the N stored reports.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-${N:-10000}}
VENV="$BENCH/.venv-parsedmarc"

need_root
ensure_gnu_time
command -v unshare >/dev/null || die "unshare (util-linux) is needed"

if [ ! -x "$VENV/bin/parsedmarc" ]; then
  log "installing parsedmarc 11 into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'parsedmarc>=11,<12'
fi
PD_VERSION=$("$VENV/bin/parsedmarc" --version)
case "$PD_VERSION" in 11.*) ;; *) die "parsedmarc $PD_VERSION is not 11.x" ;; esac

log "building mtasts (release)"
(cd "$ROOT" && cargo build --release --quiet -p mtasts --bin mtasts)

WORK=$(mktemp -d /tmp/mtasts-bench-ingest.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
log "generating $N report e-mails in $WORK/mail"
python3 "$BENCH/gen_reports.py" "$N" "$WORK/mail" 1

# timed NAME CMD...: runs CMD under GNU time without network; sets ${NAME}_WALL and ${NAME}_RSS.
timed() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$WORK/$name.time" unshare -n "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || true
  read -r wall rss < <(tail -n 1 "$WORK/$name.time")
  printf -v "${name}_WALL" '%s' "$wall"
  printf -v "${name}_RSS" '%s' "$rss"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rate() { awk -v n="$N" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }

log "parsedmarc $PD_VERSION"
timed PD "$VENV/bin/parsedmarc" --offline -s -o "$WORK/pd" "$WORK/mail"
PD_REPORTS=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/pd/smtp_tls.json")

log "mtasts report ingest"
timed MT "$MTASTS" report ingest --dkim off --db "sqlite://$WORK/reports.db" "$WORK/mail"
MT_REPORTS=$(($("$MTASTS" report list --db "sqlite://$WORK/reports.db" --limit 100000000 --format csv | wc -l) - 1))

[ "$PD_REPORTS" = "$N" ] || die "parsedmarc output $PD_REPORTS reports of $N (see $WORK/PD.err)"
[ "$MT_REPORTS" = "$N" ] || die "mtasts stored $MT_REPORTS reports of $N (see $WORK/MT.err)"

RATIO=$(awk -v a="$PD_WALL" -v b="$MT_WALL" 'BEGIN { printf "%.1f", a / b }')
printf 'parsedmarc %s:  %s s  %s messages/s  peak RSS %s MiB  (%s reports in its JSON)\n' \
  "$PD_VERSION" "$PD_WALL" "$(rate "$PD_WALL")" "$(mib "$PD_RSS")" "$PD_REPORTS"
printf 'mtasts ingest:     %s s  %s messages/s  peak RSS %s MiB  (%s reports stored, SQLite)  ratio %sx\n' \
  "$MT_WALL" "$(rate "$MT_WALL")" "$(mib "$MT_RSS")" "$MT_REPORTS" "$RATIO"

# A gzip bomb: refused (exit 65), memory bounded by the decompression cap.
python3 - "$WORK/bomb.eml" <<'PY'
import base64, gzip, io, sys
raw = io.BytesIO()
with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as g:
    chunk = b"\0" * (1 << 20)
    for _ in range(1024):
        g.write(chunk)
body = base64.encodebytes(raw.getvalue()).decode()
open(sys.argv[1], "w").write(
    "From: r@reporter.example\r\nTLS-Report-Domain: d.example\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type="tlsrpt"; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + body + "\r\n--b--\r\n")
PY
/usr/bin/time -f '%e %M' -o "$WORK/bomb.time" unshare -n "$MTASTS" report ingest --dkim off \
  --db "sqlite://$WORK/bomb.db" "$WORK/bomb.eml" 2>"$WORK/bomb.err" && die "the gzip bomb was accepted"
read -r BOMB_WALL BOMB_RSS < <(tail -n 1 "$WORK/bomb.time")
printf 'gzip bomb (%s KiB mail, 1 GiB inflated): refused in %s s, peak RSS %s MiB: %s\n' \
  "$(($(stat -c %s "$WORK/bomb.eml") / 1024))" "$BOMB_WALL" "$(mib "$BOMB_RSS")" "$(tail -n 1 "$WORK/bomb.err")"

SIZE=$(stat -c %s "$WORK/reports.db")
START=$(date +%s.%N)
"$MTASTS" report summary --db "sqlite://$WORK/reports.db" --days 100000 --format json >/dev/null
END=$(date +%s.%N)
printf 'store: %s reports in %s MiB (%s bytes/report); report summary over them: %s s\n' \
  "$N" "$(awk -v b="$SIZE" 'BEGIN { printf "%.1f", b / 1048576 }')" "$((SIZE / N))" \
  "$(awk -v a="$START" -v b="$END" 'BEGIN { printf "%.2f", b - a }')"
