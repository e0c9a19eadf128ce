"""Serves the single-page app of this directory on a loopback port, with everything it loads
from its own origin and a Content-Security-Policy that allows nothing else but calls to
jwt-auth:

    npm ci
    python3 serve.py --authority http://127.0.0.1:8080 --client-id CLIENT_ID --port 5173

The client is registered as a public client on the loopback redirect URI (any port matches):

    jwt-auth clients add spa --public --redirect-uri http://127.0.0.1/ \\
        --post-logout-redirect-uri http://127.0.0.1/ --first-party
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = {
    "/": (HERE / "public" / "index.html", "text/html; charset=utf-8"),
    "/app.js": (HERE / "public" / "app.js", "text/javascript; charset=utf-8"),
    "/style.css": (HERE / "public" / "style.css", "text/css; charset=utf-8"),
    "/oidc-client-ts.min.js": (
        HERE / "node_modules" / "oidc-client-ts" / "dist" / "browser" / "oidc-client-ts.min.js",
        "text/javascript; charset=utf-8",
    ),
}


class Handler(BaseHTTPRequestHandler):
    def __init__(self, *args, authority: str, client_id: str, **kwargs):
        self.authority = authority
        self.client_id = client_id
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (the method's name is http.server's)
        path = self.path.split("?", 1)[0]
        if path == "/config.json":
            body = json.dumps({"authority": self.authority, "client_id": self.client_id}).encode()
            media = "application/json"
        elif path in FILES:
            file, media = FILES[path]
            body = file.read_bytes()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # Scripts, styles and data from this origin only; calls to jwt-auth and to this origin.
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; "
            f"connect-src 'self' {self.authority}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'",
        )
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        pass


def serve(authority: str, client_id: str, port: int) -> ThreadingHTTPServer:
    """The server, bound to 127.0.0.1:`port` (0: any free port), not yet serving."""
    handler = partial(Handler, authority=authority.rstrip("/"), client_id=client_id)
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authority", required=True, help="jwt-auth's issuer (PUBLIC_URL)")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--port", type=int, default=5173)
    arguments = parser.parse_args()
    server = serve(arguments.authority, arguments.client_id, arguments.port)
    print(f"http://127.0.0.1:{server.server_address[1]}/")
    server.serve_forever()
