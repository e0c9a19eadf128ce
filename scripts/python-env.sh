# Sourced by the scripts that run tests against a real `jwt-auth serve`
# (examples/fastapi-resource-server/test.sh, tests/browser/test.sh, tests/oidc-clients/test.sh).
#
#   jwt_auth_bin REPO             builds the debug binary unless JWT_AUTH_BIN names one, and
#                                 exports JWT_AUTH_BIN
#   resource_server_bin REPO      the same for the Rust example resource server
#                                 (examples/resource-server): RESOURCE_SERVER_BIN
#   fastapi_python REPO           unless FASTAPI_PYTHON names one, the FastAPI example's
#                                 virtualenv (fastapi-venv, below); exports FASTAPI_PYTHON, its
#                                 python
#   python_venv NAME REQUIREMENTS a virtualenv in ${XDG_CACHE_HOME:-~/.cache}/jwt-auth/NAME with
#                                 the pinned REQUIREMENTS, made again when they change; sets
#                                 $venv to it. Needs Python 3.11 or later.

jwt_auth_bin() {
  if [ -z "${JWT_AUTH_BIN:-}" ]; then
    (cd "$1" && cargo build --locked --quiet -p jwt-auth-api --bin jwt-auth)
    export JWT_AUTH_BIN="${CARGO_TARGET_DIR:-$1/target}/debug/jwt-auth"
  fi
}

resource_server_bin() {
  if [ -z "${RESOURCE_SERVER_BIN:-}" ]; then
    (cd "$1" && cargo build --locked --quiet -p resource-server)
    export RESOURCE_SERVER_BIN="${CARGO_TARGET_DIR:-$1/target}/debug/resource-server"
  fi
}

fastapi_python() {
  if [ -z "${FASTAPI_PYTHON:-}" ]; then
    python_venv fastapi-venv "$1/examples/fastapi-resource-server/requirements.txt"
    export FASTAPI_PYTHON="$venv/bin/python"
  fi
}

python_venv() {
  local python stamp
  python="$(command -v python3.11 || command -v python3)"
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/jwt-auth/$1"
  stamp="$venv/requirements.txt"
  if ! cmp -s "$2" "$stamp" 2>/dev/null; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
      # Debian's own python3 needs python3-venv for ensurepip.
      rm -rf "$venv"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$python" -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$2"
    cp "$2" "$stamp"
  fi
}
