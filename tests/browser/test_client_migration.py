"""The client code of docs/migrating-clients.md marked *tested*, taken from the page as it is
and run against a real `jwt-auth serve`: the Python `requests` client, the browser `fetch`
client in Chromium, and the FastAPI service with FastAPI's test client."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from server import PASSWORD, Server, chromium

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrating-clients.md"


def snippet(name: str) -> str:
    """The fenced block right after `<!-- tested: NAME -->` in the page."""
    text = PAGE.read_text()
    found = re.search(r"<!-- tested: " + re.escape(name) + r" -->\n```\w+\n(.*?)\n```", text, re.S)
    assert found, f"no tested block {name} in {PAGE}"
    return found.group(1)


def module(name: str, code: str) -> types.ModuleType:
    loaded = types.ModuleType(name)
    exec(compile(code, f"{PAGE.name}:{name}", "exec"), loaded.__dict__)
    sys.modules[name] = loaded
    return loaded


@pytest.fixture(scope="module")
def server():
    # EdDSA: the FastAPI service verifies with the published public keys.
    running = Server(env={"JWT_ALGORITHM": "EdDSA"})
    yield running
    running.stop()


def register(server: Server, email: str) -> None:
    status, body = server.post("/auth/register", {"email": email, "password": PASSWORD})
    assert status == 201, body


def test_the_python_client_refreshes_once_and_stops_at_logout(server):
    import requests

    client_code = module("python_client", snippet("python-client"))
    register(server, "py@example.com")
    client = client_code.JwtAuthClient(server.url, "py@example.com", PASSWORD)
    assert client.get(f"{server.url}/api/me").json()["email"] == "py@example.com"

    # An access token the server refuses: the client refreshes, and the new pair works.
    first_refresh = client.refresh
    client.access = "expired.or.otherwise.refused"
    answer = client.get(f"{server.url}/api/me")
    assert answer.status_code == 200, answer.text
    assert client.refresh != first_refresh, "a new pair was stored"

    # After logout the session is over: the access token is refused as revoked (no refresh
    # is tried for that), and a refresh is refused, which the client raises.
    client.logout()
    answer = client.get(f"{server.url}/api/me")
    assert (answer.status_code, answer.json()["error"]) == (401, "token_revoked")
    client.access = "expired.or.otherwise.refused"
    with pytest.raises(requests.HTTPError):
        client.get(f"{server.url}/api/me")


def test_the_browser_client_keeps_its_tokens_out_of_script_reach(server):
    register(server, "web@example.com")
    browser = chromium()
    try:
        # Any page of the server's origin: the client calls it with relative URLs.
        browser.get(f"{server.url}/health")
        result = browser.execute_async_script(snippet("browser-client") + """
        const done = arguments[arguments.length - 1];
        (async () => {
          const out = {};
          await login("web@example.com", "%s");
          out.me = (await (await api("/api/me")).json()).email;
          out.cookieVisible = document.cookie.includes("refresh_token");
          out.stored = localStorage.length + sessionStorage.length;
          accessToken = "refused.by.the.server";
          const again = await api("/api/me");
          out.afterRefresh = again.status;
          await logout();
          try { await refresh(); out.refreshAfterLogout = "worked"; }
          catch (e) { out.refreshAfterLogout = String(e); }
          done(out);
        })().catch((e) => done({ error: String(e) }));
        """ % PASSWORD)
    finally:
        browser.quit()
    assert "error" not in result, result
    assert result["me"] == "web@example.com"
    assert result["cookieVisible"] is False, "the refresh cookie is HttpOnly"
    assert result["stored"] == 0, "nothing in web storage"
    assert result["afterRefresh"] == 200, result
    # Logout cleared the cookie: the refresh has no token to present (400).
    assert result["refreshAfterLogout"].startswith("Error: session over: 400"), result


def test_the_fastapi_service_verifies_the_servers_tokens(server, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("JWT_AUTH_URL", server.url)
    service = module("fastapi_service", snippet("fastapi-service"))
    register(server, "api@example.com")
    status, pair = server.post("/auth/login", {"username": "api@example.com", "password": PASSWORD})
    assert status == 200, pair
    me = server.json("/openapi.json")  # the server is up; the service fetches its keys itself
    assert me["openapi"].startswith("3.")

    with TestClient(service.app) as client:
        answer = client.get("/orders", headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["roles"] == ["user"]
        # Refused: no token, a token whose signature is not the server's, a refresh token.
        assert client.get("/orders").status_code == 401
        head, body, _ = pair["access_token"].split(".")
        forged = f"{head}.{body}.{'A' * 86}"
        assert client.get("/orders", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        refresh = pair["refresh_token"]
        assert client.get("/orders", headers={"Authorization": f"Bearer {refresh}"}).status_code == 401
        # The security scheme points at the server's token endpoint.
        scheme = client.get("/openapi.json").json()["components"]["securitySchemes"]["OAuth2PasswordBearer"]
        assert scheme["flows"]["password"]["tokenUrl"] == f"{server.url}/auth/token"
