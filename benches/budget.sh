#!/usr/bin/env bash
# Runs the criterion benches (benches/benches/jwt.rs), then the budget check (src/main.rs) on
# the results this run wrote. Exits non-zero when a median is over budget or a result is missing.
#
#   benches/budget.sh            # 1 s warm-up, 3 s measurement per bench
#   benches/budget.sh --quick    # short runs for CI, well under a minute after the build
set -euo pipefail

# criterion runs with the package directory as its working directory: make the target dir
# absolute so that it and cargo agree on where the results go.
if [ -n "${CARGO_TARGET_DIR:-}" ] && [ "${CARGO_TARGET_DIR#/}" = "$CARGO_TARGET_DIR" ]; then
  export CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
fi
cd "$(dirname "$0")/.."

criterion_args=(--noplot)
case "${1:-}" in
  "") ;;
  --quick) criterion_args+=(--warm-up-time 0.2 --measurement-time 0.5 --sample-size 20 --nresamples 10000) ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

stamp="$(mktemp)"
trap 'rm -f "$stamp"' EXIT

cargo bench -p jwt-auth-benches --bench jwt --locked -- "${criterion_args[@]}"
cargo run -p jwt-auth-benches --bin budget --profile bench --locked --quiet -- --newer-than "$stamp"
