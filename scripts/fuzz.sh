#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that take outside input (fuzz/README.md): builds
# every target once with cargo-fuzz on nightly (release, debug assertions, AddressSanitizer),
# writes the generated seed corpus, then runs the targets one after another, each for SECONDS
# on one core, and prints one line per target: executions, executions per second, coverage
# (libFuzzer's `cov:` and `ft:`), corpus size and crashes. Exits non-zero if any target
# crashed, leaving the reproducer in fuzz/artifacts/<target>/ and the run's log in
# fuzz/logs/<target>.log.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      default: 60 s each, every target
#
# FUZZ_TOOLCHAIN picks the nightly (default `nightly`); without it installed, the script says
# SKIPPED and exits 0, so CI passes on machines with stable alone. FUZZ_TARGET_DIR is the
# build directory (default ~/.cache/jwt-auth/fuzz-target): never the workspace's own, which
# the sanitizer flags would rebuild from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2; }
seconds=60
if [ $# -gt 0 ]; then
  case "$1" in
    -h|--help) usage ;;
    *[!0-9]*|'') ;;
    *) seconds="$1"; shift ;;
  esac
fi
[ "$seconds" -gt 0 ] || usage

toolchain="${FUZZ_TOOLCHAIN:-nightly}"
# Asked of rustup's list first: `cargo +TOOLCHAIN` may try to download a missing toolchain.
if ! command -v rustup >/dev/null 2>&1 \
  || ! rustup toolchain list 2>/dev/null | grep -q "^${toolchain}" \
  || ! RUSTUP_AUTO_INSTALL=0 cargo "+${toolchain}" --version >/dev/null 2>&1; then
  echo "SKIPPED: fuzzing needs a nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/jwt-auth/fuzz-target}"
mkdir -p "$CARGO_TARGET_DIR"
# The same options for the build and every run: `cargo fuzz run` rebuilds on any difference.
build_flags=(--debug-assertions)
fuzz=(cargo "+${toolchain}" fuzz)

all_targets="$("${fuzz[@]}" list)"
if [ $# -gt 0 ]; then
  for target in "$@"; do
    grep -qx -- "$target" <<<"$all_targets" || { echo "unknown target: $target" >&2; exit 2; }
  done
  targets=("$@")
else
  mapfile -t targets <<<"$all_targets"
fi

echo "==> building ${#targets[@]} fuzz targets and the seed generator (cargo +${toolchain} fuzz build)"
started=$SECONDS
"${fuzz[@]}" build "${build_flags[@]}"
echo "    built in $((SECONDS - started)) s"

host="$(rustc "+${toolchain}" -vV | sed -n 's/^host: //p')"
echo "==> generating seeds into fuzz/corpus/"
"$CARGO_TARGET_DIR/$host/release/seeds" fuzz/corpus

echo "==> fuzzing each target for ${seconds} s"
mkdir -p fuzz/logs
passed=0
failed=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/artifacts/$target" "fuzz/corpus/$target"
  log="fuzz/logs/$target.log"
  marker="$(mktemp)"
  status=0
  # One job, one worker (libFuzzer's default): the machine's cores are shared.
  "${fuzz[@]}" run "${build_flags[@]}" "$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=30 >"$log" 2>&1 || status=$?
  found="$(find "fuzz/artifacts/$target" -type f -newer "$marker" \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \))"
  rm -f "$marker"
  crashes="$(grep -c . <<<"$found" || true)"
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
  execs="$(stat number_of_executed_units)"
  rate="$(stat average_exec_per_sec)"
  last="$(grep -E ' cov: [0-9]+' "$log" | tail -n1 || true)"
  cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")"
  ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
  corpus="$(find "fuzz/corpus/$target" -type f | wc -l)"
  printf '%-13s %5s s  execs %9s  exec/s %6s  cov %5s  ft %6s  corpus %5s  crashes %s\n' \
    "$target" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes"
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=$((failed + 1))
    echo "    FAILED (exit $status); the end of $log:"
    tail -n 40 "$log" | sed 's/^/    | /'
    if [ -n "$found" ]; then
      sed 's/^/    reproducer: /' <<<"$found"
    fi
  else
    passed=$((passed + 1))
  fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
