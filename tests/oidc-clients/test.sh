#!/usr/bin/env bash
# Real relying-party libraries against a real `jwt-auth serve` (see server.js): openid-client
# in Node, as a confidential web client and as a native app on a loopback port (RFC 8252), and
# an API gateway that checks access tokens with jose from the issuer's discovery document; and
# oauth4webapi binding a public client's tokens with DPoP (RFC 9449), server nonces required.
# Installs the pinned packages from package-lock.json (npm ci), builds the binary unless
# JWT_AUTH_BIN names one, then runs `node --test`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$repo/scripts/python-env.sh"
jwt_auth_bin "$repo"
cd "$here"
npm ci --no-audit --no-fund --silent
exec node --test "$@"
