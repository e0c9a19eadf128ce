#!/usr/bin/env bash
# Runs the FastAPI example's tests against a real `jwt-auth serve`: builds the binary (unless
# JWT_AUTH_BIN names one), installs the pinned requirements into a virtualenv outside the clone
# (${XDG_CACHE_HOME:-~/.cache}/jwt-auth/fastapi-venv, reused while requirements.txt is
# unchanged), then runs pytest. Needs Python 3.11 or later.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ -z "${JWT_AUTH_BIN:-}" ]; then
  (cd "$repo" && cargo build --locked --quiet -p jwt-auth-api --bin jwt-auth)
  export JWT_AUTH_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/jwt-auth"
fi
python="$(command -v python3.11 || command -v python3)"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/jwt-auth/fastapi-venv"
stamp="$venv/requirements.txt"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
