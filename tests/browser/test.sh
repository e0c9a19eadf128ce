#!/usr/bin/env bash
# Runs the browser tests (headless Chromium driven by Debian's chromedriver) against a real
# `jwt-auth serve`: installs chromium and chromium-driver with apt if they are missing,
# builds the binaries (unless JWT_AUTH_BIN and RESOURCE_SERVER_BIN name them: jwt-auth and the
# Rust example resource server), installs the pinned requirements into a virtualenv outside the
# clone (${XDG_CACHE_HOME:-~/.cache}/jwt-auth/browser-venv), the FastAPI example's into its own
# (fastapi-venv, as examples/fastapi-resource-server/test.sh does), the single-page app's npm
# packages (examples/spa/node_modules) and oauth4webapi for test_dpop.py's page
# (tests/oidc-clients/node_modules: the version the Node tests run), then runs
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
resource_server_bin "$repo"
fastapi_python "$repo"
python_venv browser-venv "$here/requirements.txt"
# The single-page app's oidc-client-ts, pinned by examples/spa/package-lock.json, and
# oauth4webapi, pinned by tests/oidc-clients/package-lock.json.
(cd "$repo/examples/spa" && npm ci --no-audit --no-fund --silent)
(cd "$repo/tests/oidc-clients" && npm ci --no-audit --no-fund --silent)
cd "$here"
if [ -n "${BROWSER_SCRIPT:-}" ]; then
  exec "$venv/bin/python" "$BROWSER_SCRIPT" "$@"
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
