#!/usr/bin/env bash
# Writes the measured section of docs/scale-out.md (between its markers) from a fresh
# measurement on this machine: release builds of `jwt-auth serve` on one PostgreSQL database
# and `nats-server` processes of the run's own, all on 127.0.0.1 (benches/src/bin/scale/).
#
#   SCALE_POSTGRES_URL=postgres://postgres@127.0.0.1/jwt_auth_scale benches/scale.sh
#
# The database is dropped and created afresh at the start (its name must contain `scale`;
# the user needs the right to create databases). Bounded (fixed counts, 127.0.0.1 only);
# needs nats-server (apt-get install nats-server) and curl. Not run by CI. Run it on a quiet
# machine: the section names the load average it started with. `--out FILE` writes elsewhere;
# `--quick` is a smoke run of small counts (its figures are not worth keeping); `--regions-only`
# runs the regions' lag and faults alone and writes nothing. With BENCH_LOG_DIR=DIR set, every
# process of the run (servers, nats-server) writes its output to DIR/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nats-server >/dev/null || { echo "nats-server is not installed (apt-get install nats-server)" >&2; exit 2; }
: "${SCALE_POSTGRES_URL:?set SCALE_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1/jwt_auth_scale}"
cargo build --release --locked --quiet -p jwt-auth-api --bin jwt-auth
cargo build --release --locked --quiet -p jwt-auth-benches --bin scale
cargo build --release --locked --quiet -p resource-server
"${CARGO_TARGET_DIR:-target}/release/scale" "$@"
