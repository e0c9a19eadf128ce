"""oauth4webapi running in headless Chromium, binding a single-page app's tokens with DPoP
(RFC 9449), against a real `jwt-auth serve` that requires server nonces and both example
resource servers (the Rust one and the FastAPI one, each letting the page's origin call it
with CORS_ORIGINS).

The page (dpop/index.html and dpop/app.js, served here from its own loopback port, with the
oauth4webapi that tests/oidc-clients/package-lock.json pins: the same library and version as
the Node tests there) makes a non-extractable ES256 key pair with WebCrypto, sends the browser
to the server's authorization endpoint, and once back with the code (this test signs in on the
server's page) exchanges it with a proof, calls /api/me, refreshes with the same key, calls
/api/me again and then each resource server. It writes what each step answered into #result,
never a token; this test checks every step, each refusal beside its positive control."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from server import ADMIN_EMAIL, PASSWORD, Server, free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PAGE_DIR = HERE / "dpop"
OAUTH4WEBAPI = REPO / "tests" / "oidc-clients" / "node_modules" / "oauth4webapi" / "build" / "index.js"
FASTAPI_DIR = REPO / "examples" / "fastapi-resource-server"
EMAIL = "dpop-user@example.com"
# The audience of the issuer's own API and of the resource servers: the page asks for it
# (RFC 8707 `resource`), so one token serves /api/me and both resource servers.
AUDIENCE = "https://api.example.test"


class Page(BaseHTTPRequestHandler):
    """The page, its script, oauth4webapi and /config.json; a CSP that lets it call only the
    issuer and the resource servers."""

    def __init__(self, *args, config: dict, **kwargs):
        self.config = config
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (the method's name is http.server's)
        files = {
            "/": (PAGE_DIR / "index.html", "text/html; charset=utf-8"),
            "/app.js": (PAGE_DIR / "app.js", "text/javascript; charset=utf-8"),
            "/oauth4webapi.js": (OAUTH4WEBAPI, "text/javascript; charset=utf-8"),
        }
        path = self.path.split("?", 1)[0]
        if path == "/config.json":
            body, media = json.dumps(self.config).encode(), "application/json"
        elif path in files:
            file, media = files[path]
            body = file.read_bytes()
        else:
            self.send_error(404)
            return
        others = " ".join([self.config["issuer"], *self.config["resource_servers"].values()])
        self.send_response(200)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'none'; script-src 'self'; connect-src 'self' {others}; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        )
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        pass


def wait_ready(url: str, process: subprocess.Popen, name: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        assert process.poll() is None, f"{name} exited"
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as answer:
                if answer.status == 200:  # the issuer's keys and revocations are loaded
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{name} was not ready in 60 s")


def start_resource_server(name: str, server: Server, origin: str) -> tuple[str, subprocess.Popen]:
    """The example `name` ("rust" or "fastapi") on a free port, following `server` with a
    service client of its own, letting `origin` call it."""
    status, feed = server.post("/api/admin/clients", {"name": f"stocks-api-{name}"},
                               token=admin_token(server))
    assert status == 201, feed
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "JWT_AUTH_URL": server.url,
        "JWT_AUDIENCE": AUDIENCE,
        "CLIENT_ID": feed["client_id"],
        "CLIENT_SECRET": feed["client_secret"],
        "PUBLIC_URL": url,
        "CORS_ORIGINS": origin,
    }
    if name == "rust":
        command = [os.environ["RESOURCE_SERVER_BIN"]]
        env["BIND_ADDRESS"] = f"127.0.0.1:{port}"
    else:
        command = [os.environ["FASTAPI_PYTHON"], "-m", "uvicorn", "app:app", "--host", "127.0.0.1",
                   "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, cwd=FASTAPI_DIR if name == "fastapi" else None,
                               stdout=subprocess.DEVNULL)
    try:
        wait_ready(url, process, name)
    except BaseException:
        process.terminate()
        raise
    return url, process


def admin_token(server: Server) -> str:
    status, body = server.post("/auth/login", {"username": ADMIN_EMAIL, "password": PASSWORD})
    assert status == 200, body
    return body["access_token"]


@pytest.fixture(scope="module")
def server():
    # Nonces required; EdDSA: the resource servers verify with the keys the issuer publishes.
    running = Server(env={"DPOP_NONCE": "true", "JWT_ALGORITHM": "EdDSA", "JWT_AUDIENCE": AUDIENCE})
    yield running
    running.stop()


@pytest.fixture()
def page(server):
    """The page on a free loopback port, its client registered, the resource servers running;
    its URL and theirs."""
    status, body = server.post("/auth/register", {"email": EMAIL, "password": PASSWORD})
    assert status == 201, body
    # A public app whose token requests must carry a proof; its redirect URI's origin is the
    # one the issuer lets call its token endpoint and /api/me (any loopback port matches).
    status, client = server.post("/api/admin/clients", {
        "name": "dpop-spa",
        "public": True,
        "first_party": True,
        "require_dpop": True,
        "redirect_uris": ["http://127.0.0.1/"],
    }, token=admin_token(server))
    assert status == 201, client
    config = {"issuer": server.url, "client_id": client["client_id"], "audience": AUDIENCE,
              "resource_servers": {}}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Page, config=config))
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    processes = []
    try:
        for name in ("rust", "fastapi"):
            url, process = start_resource_server(name, server, origin)
            processes.append(process)
            config["resource_servers"][name] = url
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield origin, config["resource_servers"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def test_oauth4webapi_in_the_browser_binds_its_tokens_and_uses_them_everywhere(server, page, browser):
    page, resource_servers = page
    browser.get(f"{page}/")
    # The page sends the browser to the server's sign-in page; first-party: no consent page.
    WebDriverWait(browser, 15).until(lambda b: b.current_url.startswith(f"{server.url}/auth/authorize"))
    assert f"resource={AUDIENCE.replace(':', '%3A').replace('/', '%2F')}" in browser.current_url
    form = browser.find_element(By.TAG_NAME, "form")
    form.find_element(By.NAME, "username").send_keys(EMAIL)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[value=sign_in]").click()

    def finished(b):
        error = b.find_element(By.ID, "error").text
        assert not error, f"the page failed: {error}"
        return b.find_element(By.ID, "result").text or False

    result = json.loads(WebDriverWait(browser, 60).until(finished))
    assert browser.current_url == f"{page}/", "the code left the address bar"

    # WebCrypto's key, its private half out of the page's reach; the server takes its algorithm.
    assert result["key"] == {"algorithm": "ECDSA P-256", "private_key_extractable": False}
    assert "ES256" in result["dpop_signing_alg_values_supported"]

    # The code exchanged with a proof: the server first asked for its nonce, then bound the pair.
    assert result["token"] == {"token_type": "dpop", "nonce_asked": True, "refresh_token": True}

    # /api/me with the bound token and a proof; the same token as a bearer token is refused.
    assert result["me"]["status"] == 200 and result["me"]["email"] == EMAIL, result["me"]
    assert result["me_as_bearer"] == {"status": 401, "scheme": "dpop", "error": "invalid_token"}

    # A refresh with another key is refused; with the same key, a new bound pair, and /api/me.
    assert result["refresh_with_another_key"] == {"status": 400, "error": "invalid_dpop_proof"}
    assert result["refresh"] == {"token_type": "dpop", "new_access_token": True, "new_refresh_token": True}
    assert result["me_after_refresh"]["status"] == 200, result["me_after_refresh"]
    assert result["me_after_refresh"]["email"] == EMAIL

    # Each resource server, across origins: both tokens with a proof of the key; the refreshed
    # one refused as a bearer token and with another key's proof, then taken again with the key.
    assert set(result["resource_servers"]) == set(resource_servers) == {"rust", "fastapi"}
    for name, calls in result["resource_servers"].items():
        taken = {"status": 200, "symbol": "ACME", "nonce_asked": False}
        assert calls["with_proof"] == taken, (name, calls)
        assert calls["refreshed_with_proof"] == taken, (name, calls)
        assert calls["as_bearer"] == {"status": 401, "scheme": "dpop", "error": "invalid_token"}, (name, calls)
        assert calls["with_another_key"] == {"status": 401, "scheme": "dpop", "error": "invalid_dpop_proof"}, (
            name, calls)
        assert calls["with_proof_again"] == taken, (name, calls)

    # The page loaded its files from its own origin and called only the issuer and the two
    # resource servers (its CSP allows no more; this says it did call each of them).
    called = {urlsplit(url).netloc for url in requested(browser, page)}
    expected = {urlsplit(url).netloc for url in [page, server.url, *resource_servers.values()]}
    assert called == expected, called


def requested(browser, page: str) -> list[str]:
    """The URLs of the requests the page's documents sent (Chromium's network log)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            params = message["params"]
            if params.get("documentURL", "").startswith(page):
                urls.append(params["request"]["url"])
    return urls
