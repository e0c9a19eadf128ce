#!/usr/bin/env bash
# Real relying-party libraries against a real `jwt-auth serve` (see server.js): openid-client
# in Node, as a confidential web client and as a native app on a loopback port (RFC 8252), and
# an API gateway that checks access tokens with jose from the issuer's discovery document; and
# oauth4webapi binding a public client's tokens with DPoP (RFC 9449), server nonces required,
# and using them at both example resource servers (the Rust one and the FastAPI one).
# Installs the pinned packages from package-lock.json (npm ci), builds the binaries unless
# JWT_AUTH_BIN and RESOURCE_SERVER_BIN name them, makes the FastAPI example's virtualenv
# (${XDG_CACHE_HOME:-~/.cache}/jwt-auth/fastapi-venv, reused while its requirements.txt is
# unchanged; FASTAPI_PYTHON), then runs `node --test`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$repo/scripts/python-env.sh"
jwt_auth_bin "$repo"
resource_server_bin "$repo"
fastapi_python "$repo"
cd "$here"
npm ci --no-audit --no-fund --silent
exec node --test "$@"
