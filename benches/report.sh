#!/usr/bin/env bash
# Writes docs/performance.md (and its SVG plots under docs/performance/) from a fresh
# measurement on this machine: release builds of `jwt-auth serve` and of the bare Actix-web
# reference, driven by wrk on 127.0.0.1 (see benches/src/bin/report.rs for what is measured).
# PostgreSQL is measured too when REPORT_POSTGRES_URL names a database the run may fill
# (for example postgres://postgres@127.0.0.1/jwt_auth_report after `createdb`).
#
#   benches/report.sh                    # 8 s per measurement, about 4 minutes per backend
#   DURATION=20s benches/report.sh
#
# Bounded (fixed durations, 127.0.0.1 only); needs wrk (apt-get install wrk). Not run by CI.
# Run it on a quiet machine: the report prints the load average it started with.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
  ulimit -n 10100 2>/dev/null || { echo "raise the open-file limit above 10,000 (ulimit -n)" >&2; exit 2; }
fi
cargo build --release --locked --quiet -p jwt-auth-api --bin jwt-auth
cargo build --release --locked --quiet -p jwt-auth-benches --bin bare_verify --bin report
bin_dir="${CARGO_TARGET_DIR:-target}/release"
"$bin_dir/report" --bin-dir "$bin_dir" --out docs --duration "${DURATION:-8s}"
