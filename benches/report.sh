#!/usr/bin/env bash
# Writes docs/performance.md (and its SVG plots under docs/performance/) from a fresh
# measurement on this machine: release builds of `jwt-auth serve` and of the bare Actix-web
# reference, driven on 127.0.0.1 by wrk, a small tokio + reqwest driver and the goose user
# flow (benches/src/bin/flow.rs). Per backend, with 100,000 users in the database (seeded
# first; the time it took is reported):
#   - GET /api/me beside bare GET /verify at 100, 1,000 and 10,000 connections;
#   - logins/s against the argon2 ceiling, and /api/me p99 during a wrong-password flood;
#   - refreshes/s and p99: 32 clients, each chaining the refresh tokens it gets back;
#   - the goose flow: FLOW_USERS users (10,000) started at FLOW_RATE a second (45), each once
#     through login, five /api/me, one refresh and logout: mean, p99 and failures per request;
#   - on PostgreSQL, the revocation lag between two instances over 200 logouts (p50, p99, max);
#   - peak RSS and threads of the server, and bare /verify's peak RSS after 10,000 connections;
#   - last, DPoP-bound GET /api/me with ES256 and with EdDSA proofs beside bearer GET /api/me,
#     in one run of wrk each at 100 and 1,000 connections (proofs signed beforehand, each sent
#     once; the server without DPOP_NONCE).
# See benches/src/bin/report/ for the details. PostgreSQL is measured too when
# REPORT_POSTGRES_URL names a database the run owns: it is dropped and created afresh at the
# start, from the server's `postgres` database (the user needs the right to create databases),
# so its name must contain `report` (for example postgres://postgres@127.0.0.1/jwt_auth_report).
#
#   benches/report.sh                    # about 6 minutes per backend (8 s per measurement)
#   DURATION=20s benches/report.sh
#   DURATION=2s FLOW_USERS=200 benches/report.sh --out /tmp/report-smoke   # half a minute
#
# The DPoP section alone (about 2 minutes per backend; it rewrites only that section of
# docs/performance.md, between its markers, and builds only jwt-auth and the report):
#
#   REPORT_POSTGRES_URL=postgres://postgres@127.0.0.1/jwt_auth_dpop_report benches/report.sh --only dpop
#
# Bounded (fixed durations and user counts, 127.0.0.1 only); needs wrk (apt-get install wrk)
# and curl. Not run by CI. Run it on a quiet machine: the report prints the load average it
# started with. Extra arguments go to the report (--out DIR writes elsewhere than docs/).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
  ulimit -n 10100 2>/dev/null || { echo "raise the open-file limit above 10,000 (ulimit -n)" >&2; exit 2; }
fi
only=""
previous=""
for arg in "$@"; do
  [ "$previous" = --only ] && only="$arg"
  previous="$arg"
done
cargo build --release --locked --quiet -p jwt-auth-api --bin jwt-auth
if [ -n "$only" ]; then
  cargo build --release --locked --quiet -p jwt-auth-benches --bin report
else
  cargo build --release --locked --quiet -p jwt-auth-benches --bin bare_verify --bin report --bin flow
  cargo build --release --locked --quiet -p resource-server
fi
bin_dir="${CARGO_TARGET_DIR:-target}/release"
"$bin_dir/report" --bin-dir "$bin_dir" --out docs --duration "${DURATION:-8s}" \
  --flow-users "${FLOW_USERS:-10000}" --flow-rate "${FLOW_RATE:-45}" "$@"
