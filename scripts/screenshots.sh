#!/usr/bin/env bash
# Saves screenshots of the server's pages into docs/screenshots/ (or the directory given),
# made by headless Chromium against a real `jwt-auth serve` on 127.0.0.1 with a fresh SQLite
# database: tests/browser/screenshots.py lists them. Uses the browser tests' setup
# (tests/browser/test.sh: Chromium, chromedriver, the pinned virtualenv).
#
#   scripts/screenshots.sh                 # docs/screenshots/*.png
#   scripts/screenshots.sh /tmp/shots
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mkdir -p "${1:-docs/screenshots}" && cd "${1:-docs/screenshots}" && pwd)"
# test.sh prepares everything, then runs its python on the script instead of pytest.
BROWSER_SCRIPT=screenshots.py exec tests/browser/test.sh "$out"
