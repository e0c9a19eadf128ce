"""The authlib web app (web_app.py) against a real `jwt-auth serve`: a confidential client signs
a user in through the issuer's own pages (the test plays the browser), authlib checks the ID
token, and the app's session names the user; a tampered state is refused."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import os
import tempfile
from pathlib import Path

import httpx
import pytest
from authlib.integrations.base_client.errors import MismatchingStateError
from fastapi.testclient import TestClient

from test_resource_server import PASSWORD, Issuer
from web_app import create_app

REDIRECT_URI = "http://127.0.0.1/callback"
EMAIL = "bob@example.com"


@pytest.fixture(scope="module")
def web():
    binary = os.environ.get("JWT_AUTH_BIN") or shutil.which("jwt-auth")
    assert binary, "set JWT_AUTH_BIN to the jwt-auth binary"
    workdir = Path(tempfile.mkdtemp(prefix="jwt-auth-web-"))
    issuer = Issuer(binary, workdir)
    client = json.loads(issuer.command("clients", "add", "web", "--redirect-uri", REDIRECT_URI,
                                       "--json"))
    httpx.post(f"{issuer.url}/auth/register",
               json={"email": EMAIL, "password": PASSWORD}).raise_for_status()
    app = create_app(issuer.url, client["client_id"], client["client_secret"], REDIRECT_URI,
                     secrets.token_hex(32))
    yield issuer, TestClient(app)
    issuer.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def issuer_pages(authorize_url: str) -> str:
    """Signs in, and allows the app if asked, on the issuer's pages; the redirect back."""
    with httpx.Client(follow_redirects=False) as browser:
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.text).group(1)
        # The __Host- cookies are Secure: httpx keeps them for https only, so they go by hand.
        cookies = {c.name: c.value for c in browser.cookies.jar}
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        form = {"csrf": csrf, "action": "sign_in", "username": EMAIL, "password": PASSWORD}
        consent = browser.post(authorize_url, data=form, headers={"cookie": cookie})
        if consent.status_code == 302:  # allowed before
            return consent.headers["location"]
        assert consent.status_code == 200 and 'value="allow"' in consent.text, consent.text
        for set_cookie in consent.headers.get_list("set-cookie"):
            name, _, rest = set_cookie.partition("=")
            cookies[name] = rest.split(";", 1)[0]
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        done = browser.post(authorize_url, data={"csrf": csrf, "action": "allow"},
                            headers={"cookie": cookie})
        assert done.status_code == 302, done.text
        return done.headers["location"]


def test_a_confidential_web_app_signs_a_user_in_with_authlib(web):
    issuer, app = web
    start = app.get("/login", follow_redirects=False)
    assert start.status_code in (302, 307), start.text
    authorize_url = start.headers["location"]
    assert authorize_url.startswith(f"{issuer.url}/auth/authorize?")
    assert "code_challenge_method=S256" in authorize_url and "nonce=" in authorize_url
    back = issuer_pages(authorize_url)
    assert back.startswith(f"{REDIRECT_URI}?code=")
    query = back.split("?", 1)[1]
    done = app.get(f"/callback?{query}", follow_redirects=False)
    assert done.status_code in (302, 307), done.text
    user = app.get("/").json()["user"]
    assert user["email"] == EMAIL
    # The same redirect again: authlib has used up its state (one sign-in per state).
    with pytest.raises(MismatchingStateError):
        app.get(f"/callback?{query}")


def test_a_tampered_state_is_refused(web):
    issuer, app = web
    authorize_url = app.get("/login", follow_redirects=False).headers["location"]
    back = issuer_pages(authorize_url)
    tampered = re.sub(r"state=[^&]*", "state=forged", back.split("?", 1)[1])
    with pytest.raises(MismatchingStateError):
        app.get(f"/callback?{tampered}")
    # The control: the untampered redirect signs the user in.
    assert app.get(f"/callback?{back.split('?', 1)[1]}", follow_redirects=False).status_code in (302, 307)
