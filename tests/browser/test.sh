#!/usr/bin/env bash
# Runs the browser tests (headless Chromium driven by Debian's chromedriver) against a real
# `jwt-auth serve`: installs chromium and chromium-driver with apt if they are missing,
# builds the binary (unless JWT_AUTH_BIN names one), installs the pinned requirements into a
# virtualenv outside the clone (${XDG_CACHE_HOME:-~/.cache}/jwt-auth/browser-venv) and the
# single-page app's npm packages (examples/spa/node_modules), then runs
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
. "$repo/scripts/python-env.sh"
jwt_auth_bin "$repo"
python_venv browser-venv "$here/requirements.txt"
# The single-page app's oidc-client-ts, pinned by examples/spa/package-lock.json.
(cd "$repo/examples/spa" && npm ci --no-audit --no-fund --silent)
cd "$here"
if [ -n "${BROWSER_SCRIPT:-}" ]; then
  exec "$venv/bin/python" "$BROWSER_SCRIPT" "$@"
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
