#!/usr/bin/env bash
# Holds a fresh `jwt-auth serve` to its own OpenAPI document: schemathesis runs every phase
# (examples, coverage, fuzzing, stateful) with every check against /openapi.json, as the
# administrator; then authlib validates the RFC 8414 metadata strictly. Exits non-zero on any
# failure. The server runs on 127.0.0.1 with a temporary SQLite database and data directory,
# and is stopped whatever happens.
#
#   scripts/schemathesis.sh                     # a full run: 100 examples per operation
#   scripts/schemathesis.sh --max-examples 25   # CI's bounded run
#   scripts/schemathesis.sh --profile dev       # a debug build instead of a release build
#   scripts/schemathesis.sh --seed N            # the generation seed, to replay a run
#
# schemathesis and authlib are pinned and installed into a virtualenv outside the clone
# (${XDG_CACHE_HOME:-~/.cache}/jwt-auth/schemathesis-venv), reused while the pins match.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

pins=(schemathesis==4.32.5 authlib==1.9.10)
public_url="https://auth.example.com"

max_examples=100
profile=release
seed=()
usage() { echo "usage: $0 [--max-examples N] [--profile release|dev] [--seed N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --max-examples) [ $# -ge 2 ] || usage; max_examples="$2"; shift 2 ;;
    --profile) [ $# -ge 2 ] || usage; profile="$2"; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; seed=(--seed "$2"); shift 2 ;;
    *) usage ;;
  esac
done

# The virtualenv, made again when the pins change.
venv="${XDG_CACHE_HOME:-$HOME/.cache}/jwt-auth/schemathesis-venv"
if [ "$(cat "$venv/pins" 2>/dev/null)" != "${pins[*]}" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's own python3 needs python3-venv for ensurepip.
    rm -rf "$venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" >"$venv/pins"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jwt-auth/target}"
cargo build --locked --profile "$profile" -p jwt-auth-api --bin jwt-auth
case "$profile" in
  dev) bin="$CARGO_TARGET_DIR/debug/jwt-auth" ;;
  *) bin="$CARGO_TARGET_DIR/$profile/jwt-auth" ;;
esac

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
admin_email="admin@example.com"
password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"

# A clean environment, so that no setting of the caller's leaks in. The login throttles are
# off (LOGIN_RATE_LIMIT=0, LOGIN_FAILURE_BACKOFF=0): the fuzzer logs in thousands of times from
# one address, and 429s would hide every other answer. PUBLIC_URL makes the metadata checkable
# by strict RFC 8414 validation (without it the issuer is `jwt-auth`, which that refuses).
env -i PATH="$PATH" HOME="$HOME" RUST_LOG=warn NO_COLOR=1 \
  DATA_DIR="$work" DATABASE_URL="sqlite://$work/jwt-auth.db" BIND_ADDRESS="127.0.0.1:$port" \
  ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$password" \
  LOGIN_RATE_LIMIT=0 LOGIN_FAILURE_BACKOFF=0 COOKIE_SECURE=false PUBLIC_URL="$public_url" \
  "$bin" serve >"$work/server.log" 2>&1 &
server=$!

for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$base/ready" 2>/dev/null && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "the server exited:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS -o /dev/null "$base/ready"

post_json() { curl -fsS -H 'content-type: application/json' -d "$2" "$base$1"; }
# Two ordinary users besides the administrator: one whose sessions the logout endpoints end,
# one that the administrators' actions may disable (scripts/schemathesis_hooks.py).
session_user="session@example.com"
spare_user="spare@example.com"
for email in "$session_user" "$spare_user"; do
  post_json /auth/register "{\"email\": \"$email\", \"password\": \"$password\"}" >/dev/null
done
admin_token="$(post_json /auth/login "{\"username\": \"$admin_email\", \"password\": \"$password\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
export JWT_AUTH_BASE_URL="$base" JWT_AUTH_PASSWORD="$password" JWT_AUTH_ADMIN_TOKEN="$admin_token" \
  JWT_AUTH_ADMIN_EMAIL="$admin_email" \
  JWT_AUTH_SESSION_USER="$session_user" JWT_AUTH_SPARE_USER="$spare_user" \
  SCHEMATHESIS_HOOKS="$repo/scripts/schemathesis_hooks.py"

status=0
"$venv/bin/python" scripts/check-metadata.py "$base" "$public_url" || status=1

# From the temporary directory, so that schemathesis's own files stay out of the clone.
(
  cd "$work"
  "$venv/bin/st" --config-file "$repo/scripts/schemathesis.toml" run "$base/openapi.json" \
    --phases examples,coverage,fuzzing,stateful --checks all \
    --max-examples "$max_examples" "${seed[@]}" \
    --request-timeout 10 --generation-database none --no-color
) || status=1

if [ "$status" -ne 0 ]; then
  echo "the server's log (warnings and errors):" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit "$status"
