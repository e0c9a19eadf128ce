#!/usr/bin/env bash
# Load run against a real `jwt-auth serve` on 127.0.0.1: many concurrent authenticated
# requests to GET /api/me, beside two references measured on the same machine in the same run:
# bare Actix-web's GET /verify (benches/src/bin/bare_verify.rs: jsonwebtoken's decode of the
# same HS256 token, a small JSON reply) and the server's own GET /health (the HTTP stack
# alone). Needs wrk (apt-get install wrk).
#
#   benches/load.sh                      # 1,000 connections, 10 s per endpoint (3 endpoints)
#   CONNECTIONS=2000 DURATION=20s benches/load.sh
#   DATABASE_URL=postgres://root@127.0.0.1/test benches/load.sh
#
# Bounded: fixed duration, 127.0.0.1 only. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS="${CONNECTIONS:-1000}"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
PORT="${PORT:-18080}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNECTIONS + 100)) ]; then
  ulimit -n $((CONNECTIONS + 100)) 2>/dev/null || {
    echo "raise the open-file limit above $CONNECTIONS (ulimit -n)" >&2
    exit 2
  }
fi

cargo build --release -p jwt-auth-api --bin jwt-auth --locked --quiet
cargo build --release -p jwt-auth-benches --bin bare_verify --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/jwt-auth"
bare_bin="${CARGO_TARGET_DIR:-target}/release/bare_verify"
BARE_PORT="${BARE_PORT:-$((PORT + 1))}"

work="$(mktemp -d)"
server=""
bare=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$bare" ] && kill "$bare" 2>/dev/null && wait "$bare" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# One HS256 secret for both, so the reference checks the very token /api/me gets.
export JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
export DATA_DIR="$work" LOGIN_RATE_LIMIT=0 RUST_LOG=warn
export DATABASE_URL="${DATABASE_URL:-sqlite://$work/jwt-auth.db}"
# PostgreSQL keeps the signing keys in the database, encrypted under this key.
export KEY_ENCRYPTION_KEY="${KEY_ENCRYPTION_KEY:-$(head -c 32 /dev/urandom | base64)}"
BIND_ADDRESS="127.0.0.1:$PORT" "$bin" serve >"$work/server.log" 2>&1 &
server=$!
BIND_ADDRESS="127.0.0.1:$BARE_PORT" "$bare_bin" >"$work/bare.log" 2>&1 &
bare=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fsS "$base/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$BARE_PORT/verify" && break
  kill -0 "$bare" 2>/dev/null || { cat "$work/bare.log" >&2; exit 1; }
  sleep 0.1
done

email="load-$(date +%s%N)@example.com"
curl -fsS -X POST "$base/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"load-test-password\"}" >/dev/null
token="$(curl -fsS -X POST "$base/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$email\",\"password\":\"load-test-password\"}" |
  sed -E 's/.*"access_token":"([^"]+)".*/\1/')"

run() {
  local name="$1"; shift
  echo "== $name: $CONNECTIONS connections, $THREADS threads, $DURATION"
  wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" | tee "$work/$name.txt"
}
run verify -H "Authorization: Bearer $token" "http://127.0.0.1:$BARE_PORT/verify"
run health "$base/health"
run me -H "Authorization: Bearer $token" "$base/api/me"

rps() { awk '/^Requests\/sec/ {print $2}' "$work/$1.txt"; }
errors() { awk '/Non-2xx|Socket errors/ {print}' "$work/$1.txt"; }
ratio() { awk -v a="$(rps "$1")" -v b="$(rps "$2")" 'BEGIN {printf "%.2f", a / b}'; }
p99() { awk '$1 == "99%" {print $2}' "$work/$1.txt"; }
echo
echo "bare GET /verify  $(rps verify) requests/s  p99 $(p99 verify)"
echo "GET /health       $(rps health) requests/s  p99 $(p99 health)"
echo "GET /api/me       $(rps me) requests/s  p99 $(p99 me)  ($(ratio me verify)x bare /verify, $(ratio me health)x /health)"
if [ -n "$(errors me)$(errors health)$(errors verify)" ]; then
  errors verify; errors health; errors me
  echo "errors during the run" >&2
  exit 1
fi
