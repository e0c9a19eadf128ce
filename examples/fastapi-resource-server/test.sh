#!/usr/bin/env bash
# Runs the FastAPI example's tests against a real `jwt-auth serve`: builds the binary (unless
# JWT_AUTH_BIN names one), installs the pinned requirements into a virtualenv outside the clone
# (${XDG_CACHE_HOME:-~/.cache}/jwt-auth/fastapi-venv, reused while requirements.txt is
# unchanged), then runs pytest. Needs Python 3.11 or later.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$repo/scripts/python-env.sh"
jwt_auth_bin "$repo"
python_venv fastapi-venv "$here/requirements.txt"
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
