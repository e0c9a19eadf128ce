#!/usr/bin/env bash
# Writes docs/edge-report.md from a fresh measurement on this machine: the release
# `jwt-auth serve` on 127.0.0.1 (SQLite), a legitimate GET /api/me load (32 connections,
# closed loop) and a fresh-connection probe beside each attack at the network edge: slowloris,
# bodies that never finish, 100,000 header fields, 1 MiB header lines, Content-Length with
# Transfer-Encoding, slowloris after one complete request, 20,000 idle keep-alive connections,
# and a server held past its open-files limit. See benches/src/bin/edge/ for the details.
#
#   benches/edge.sh                     # about 3 minutes (10 s per attack)
#   DURATION=3 benches/edge.sh --out /tmp/edge-report.md
#
# Bounded (fixed durations and connection counts, 127.0.0.1 only). Not run by CI. Extra
# arguments go to the report (--out FILE writes elsewhere).
#
# Open files: the server inherits this shell's limit, which is where it stops accepting
# connections if that is below actix-web's 25,600 a worker; the report says which limit it
# met. Raised here to 65,536 where the hard limit allows (`ulimit -n 65536` as root), else to
# the hard limit. The 20,000 attacking connections are held by two helper processes of
# 10,000 each, so the client side needs 10,500 a process.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 65536 ]; then
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10500 ]; then
  echo "the open-files limit is $(ulimit -n); raise it above 10,500 (ulimit -n)" >&2
  exit 2
fi
cargo build --release --locked --quiet -p jwt-auth-api --bin jwt-auth
cargo build --release --locked --quiet -p jwt-auth-benches --bin edge
bin_dir="${CARGO_TARGET_DIR:-target}/release"
EDGE_COMMAND="benches/edge.sh${*:+ $*}${DURATION:+ (DURATION=$DURATION)}" \
  "$bin_dir/edge" --bin-dir "$bin_dir" --out docs/edge-report.md --duration "${DURATION:-10}" "$@"
