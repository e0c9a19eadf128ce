"""Checks a running server's RFC 8414 metadata with authlib's strict validation.

    check-metadata.py BASE_URL PUBLIC_URL

BASE_URL is where the server listens; PUBLIC_URL the `PUBLIC_URL` it was started with, which
every published URL and the issuer must start with. Exits non-zero on any problem.
"""

import json
import sys
import urllib.request

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata


def main() -> int:
    base, public = sys.argv[1], sys.argv[2]
    url = f"{base}/.well-known/oauth-authorization-server"
    with urllib.request.urlopen(url, timeout=10) as response:
        metadata = AuthorizationServerMetadata(json.load(response))
    problems = []
    try:
        metadata.validate()
    except ValueError as error:
        problems.append(f"authlib: {error}")
    if metadata.get("issuer") != public:
        problems.append(f"issuer is {metadata.get('issuer')!r}, not {public!r}")
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint", "jwks_uri"):
        if not str(metadata.get(name, "")).startswith(f"{public}/"):
            problems.append(f"{name} is {metadata.get(name)!r}, not under {public}")
    for problem in problems:
        print(f"RFC 8414 metadata: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"RFC 8414 metadata: valid (authlib), issuer {metadata['issuer']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
