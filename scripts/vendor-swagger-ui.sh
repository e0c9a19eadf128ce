#!/usr/bin/env bash
# Vendors the API reference renderer that `GET /docs` serves: the npm package
# swagger-ui-dist, pinned below, fetched from the npm registry (npm checks the tarball against
# the registry's integrity hash), and its two files the page needs copied into
# crates/api/assets/swagger-ui/ with the package's licence. The binary embeds them
# (include_bytes!): nothing is downloaded at build time or at run time.
#
#   scripts/vendor-swagger-ui.sh            # the pinned version again (a no-op if unchanged)
#   scripts/vendor-swagger-ui.sh 5.36.0     # update: then change VERSION below, run the tests,
#                                           # and commit the assets with SOURCE
#
# SOURCE records the version, the tarball's integrity and each file's SHA-256; a test
# (docs_ui::tests) checks the embedded files against it.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${1:-5.35.0}"
out=crates/api/assets/swagger-ui
files=(swagger-ui-bundle.js swagger-ui.css LICENSE)

command -v npm >/dev/null || { echo "npm is needed (apt-get install npm)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --json "swagger-ui-dist@${VERSION}" > pack.json)
tarball="$tmp/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["filename"])' "$tmp/pack.json")"
integrity="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$tmp/pack.json")"
tar -xzf "$tarball" -C "$tmp"

mkdir -p "$out"
{
  echo "package: swagger-ui-dist"
  echo "version: ${VERSION}"
  echo "integrity: ${integrity}"
  echo "from: https://registry.npmjs.org/swagger-ui-dist/-/swagger-ui-dist-${VERSION}.tgz"
  echo "files (sha256):"
} > "$out/SOURCE"
for file in "${files[@]}"; do
  cp "$tmp/package/$file" "$out/$file"
  echo "  $(sha256sum "$out/$file" | cut -d' ' -f1)  $file" >> "$out/SOURCE"
done
echo "vendored swagger-ui-dist ${VERSION} into ${out}:"
cat "$out/SOURCE"
