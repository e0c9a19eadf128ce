#!/usr/bin/env bash
# Runs the browser tests (headless Chromium driven by Debian's chromedriver) against a real
# `jwt-auth serve`: installs chromium and chromium-driver with apt if they are missing,
# builds the binary (unless JWT_AUTH_BIN names one), installs the pinned requirements into a
# virtualenv outside the clone (${XDG_CACHE_HOME:-~/.cache}/jwt-auth/browser-venv), then runs
# pytest (extra arguments go to it), or with BROWSER_SCRIPT set, that script of this directory
# (scripts/screenshots.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium and chromedriver are needed" >&2
    exit 2
  fi
fi
if [ -z "${JWT_AUTH_BIN:-}" ]; then
  (cd "$repo" && cargo build --locked --quiet -p jwt-auth-api --bin jwt-auth)
  export JWT_AUTH_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/jwt-auth"
fi
python="$(command -v python3.11 || command -v python3)"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/jwt-auth/browser-venv"
stamp="$venv/requirements.txt"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
cd "$here"
if [ -n "${BROWSER_SCRIPT:-}" ]; then
  exec "$venv/bin/python" "$BROWSER_SCRIPT" "$@"
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
