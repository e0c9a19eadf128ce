#!/usr/bin/env bash
# Test coverage of the workspace, per crate: every nextest test (both backends under CI=1), and,
# on a nightly toolchain, the doctests and branch coverage too. Prints one line per crate and
# fails when jwt-core is under 95% of its lines (the threshold of docs/security.md).
#
#   scripts/coverage.sh            # the per-crate table
#   scripts/coverage.sh --html     # and an HTML report, whose path it prints
#
# Needs cargo-llvm-cov (installed if missing) and llvm-cov/llvm-profdata of the compiler's LLVM
# version: rustup's llvm-tools component, or Debian's llvm-<major> package (installed if
# apt-get can). Without them it prints SKIPPED and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jwt-auth/target}"
MIN_CORE_LINES=95
html=false
[ "${1:-}" = "--html" ] && html=true

# Nightly adds branch coverage and the doctests (both unstable in rustc and rustdoc).
toolchain=stable
# Asked of rustup's list first: `cargo +nightly` may try to download a missing toolchain.
if rustup toolchain list 2>/dev/null | grep -q '^nightly' &&
  RUSTUP_AUTO_INSTALL=0 cargo +nightly --version >/dev/null 2>&1; then
  toolchain=nightly
fi
extra=()
[ "$toolchain" = nightly ] && extra=(--branch)

major="$(rustc "+$toolchain" -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
if [ -z "${LLVM_COV:-}" ] && ! rustup "+$toolchain" component list --installed 2>/dev/null | grep -q '^llvm-tools'; then
  dir="/usr/lib/llvm-$major/bin"
  if [ ! -x "$dir/llvm-cov" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$major" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$major" >/dev/null 2>&1; } || true
  fi
  if [ ! -x "$dir/llvm-cov" ]; then
    echo "SKIPPED: coverage needs llvm-cov and llvm-profdata of LLVM $major" \
      "(rustup component add llvm-tools, or Debian's llvm-$major)"
    exit 0
  fi
  export LLVM_COV="$dir/llvm-cov" LLVM_PROFDATA="$dir/llvm-profdata"
fi
command -v cargo-llvm-cov >/dev/null 2>&1 || cargo install cargo-llvm-cov --locked

echo "coverage on $toolchain (LLVM $major)${extra:+, with branches and the doctests}"
cargo "+$toolchain" llvm-cov clean --workspace >/dev/null 2>&1 || true
cargo "+$toolchain" llvm-cov nextest --workspace --locked --no-report --no-fail-fast "${extra[@]}"
if [ "$toolchain" = nightly ]; then
  # The doctests run in a second pass; the report below merges both.
  cargo "+$toolchain" llvm-cov test --workspace --locked --doc --no-report "${extra[@]}"
  extra+=(--doctests)
fi

summary="$CARGO_TARGET_DIR/llvm-cov-summary.json"
cargo "+$toolchain" llvm-cov report --json --summary-only --output-path "$summary" "${extra[@]}"
if $html; then
  cargo "+$toolchain" llvm-cov report --html "${extra[@]}"
  echo "HTML report: $CARGO_TARGET_DIR/llvm-cov/html/index.html"
fi

python3 - "$summary" "$MIN_CORE_LINES" "$PWD" <<'EOF'
"""Sums llvm-cov's per-file summary into one line per crate of the workspace."""
import json, sys

summary, minimum, root = sys.argv[1], float(sys.argv[2]), sys.argv[3].rstrip("/") + "/"
files = json.load(open(summary))["data"][0]["files"]
kinds = ("lines", "functions", "regions", "branches")
crates = {}
for f in files:
    path = f["filename"].removeprefix(root)
    parts = path.split("/")
    if parts[0] in ("crates", "examples") and len(parts) > 2:
        crate = "/".join(parts[:2])
    elif parts[0] == "benches":
        crate = "benches"
    else:
        continue
    sums = crates.setdefault(crate, {k: [0, 0] for k in kinds})
    for k in kinds:
        part = f["summary"].get(k, {"count": 0, "covered": 0})
        sums[k][0] += part["covered"]
        sums[k][1] += part["count"]

def pct(covered, count):
    return f"{100 * covered / count:6.2f}%" if count else "      -"

print(f"\n{'crate':34} {'lines':>20} {'functions':>9} {'regions':>9} {'branches':>9}")
for crate, sums in sorted(crates.items()):
    lines = sums["lines"]
    print(f"{crate:34} {pct(*lines)} of {lines[1]:6} lines "
          + " ".join(f"{pct(*sums[k]):>9}" for k in kinds[1:]))
core = crates.get("crates/jwt-core", {"lines": [0, 0]})["lines"]
core_pct = 100 * core[0] / core[1] if core[1] else 0
if core_pct < minimum:
    sys.exit(f"jwt-core covers {core_pct:.2f}% of its lines, under the {minimum:.0f}% threshold")
print(f"jwt-core: {core_pct:.2f}% of lines (threshold {minimum:.0f}%)")
EOF
