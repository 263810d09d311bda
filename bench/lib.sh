# Shared by the bench/ scripts (sourced, not run). Needs bash, root (the world binds ports 53,
# 443 and 25 on its own 127.A.B.0/24), cargo, python3.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  if [ -d /work/target ] && [ -w /work/target ]; then
    export CARGO_TARGET_DIR=/work/target
  else
    export CARGO_TARGET_DIR="$ROOT/target"
  fi
fi
MTASTS="$CARGO_TARGET_DIR/release/mtasts"
TESTWORLD="$CARGO_TARGET_DIR/release/testworld"

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "run as root: the world serves DNS, HTTPS and SMTP on ports 53, 443 and 25 of 127.A.B.x"
}

# GNU time, for peak RSS (%M) of one process tree.
ensure_gnu_time() {
  if ! /usr/bin/time --version 2>&1 | grep -q GNU; then
    log "installing GNU time (Debian package 'time')"
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
  fi
}

# ensure_package PROGRAM PACKAGE: installs Debian's PACKAGE when PROGRAM is not on PATH or in
# /usr/sbin (the peers a benchmark runs: nginx, wrk, pebble, nsd).
ensure_package() {
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ]; then
    log "installing $2 (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$2" >/dev/null \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }
  fi
}

build_release() {
  log "building mtasts and testworld (release)"
  (cd "$ROOT" && cargo build --release --quiet -p mtasts -p mtasts-testkit --bin mtasts --bin testworld)
}

# start_world DIR ARGS...: runs testworld with ARGS, writing DIR/domains.txt, DIR/world.env,
# DIR/manifest.tsv; waits for "ready" and sources the env file. The world's standard input is
# a pipe held by this shell, so the world stops when the script ends however it ends.
start_world() {
  local dir=$1; shift
  coproc WORLD { exec "$TESTWORLD" "$@" --domains-out "$dir/domains.txt" \
    --env-out "$dir/world.env" --manifest-out "$dir/manifest.tsv" 2>"$dir/world.log"; }
  WORLD_PID=$WORLD_PID
  local line=""
  if ! read -r -t 900 line <&"${WORLD[0]}" || [ "$line" != ready ]; then
    cat "$dir/world.log" >&2
    die "the test world did not start"
  fi
  # shellcheck disable=SC1091
  source "$dir/world.env"
  log "$(tail -n 1 "$dir/world.log")"
}

stop_world() {
  if [ -n "${WORLD_PID:-}" ] && kill -0 "$WORLD_PID" 2>/dev/null; then
    kill -TERM "$WORLD_PID" 2>/dev/null || true
    wait "$WORLD_PID" 2>/dev/null || true
  fi
  WORLD_PID=
}

# timed OUT_PREFIX CMD...: runs CMD under GNU time; writes OUT_PREFIX.time (wall seconds,
# peak RSS KiB, user and system CPU seconds) and returns CMD's status.
TIME_FORMAT='%e %M %U %S'
timed() {
  local out=$1; shift
  /usr/bin/time -f "$TIME_FORMAT" -o "$out.time" "$@"
}

wall_of() { tail -n 1 "$1.time" | cut -d' ' -f1; }
rss_kib_of() { tail -n 1 "$1.time" | cut -d' ' -f2; }
cpu_of() { tail -n 1 "$1.time" | awk '{ printf "%.1f", $3 + $4 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }'; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

machine() {
  local cpu
  cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
  printf '%s CPU(s) (nproc), %s, %s MiB RAM, %s\n' "$(nproc)" "${cpu:-unknown CPU}" \
    "$(awk '/MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)" "$(uname -sr)"
}
