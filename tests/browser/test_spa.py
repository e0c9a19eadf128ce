"""A single-page app with oidc-client-ts (examples/spa) in headless Chromium, against a real
`jwt-auth serve`: served from its own loopback port, it signs a user in through the server's
pages as a public client (the code grant with PKCE), calls /api/me across origins, refreshes
silently with its refresh token, and signs out (its tokens revoked, then end-session). The page
loads nothing from another origin: it only calls jwt-auth."""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from server import PASSWORD, Server

SPA_DIR = Path(__file__).resolve().parents[2] / "examples" / "spa"
sys.path.insert(0, str(SPA_DIR))
import serve as spa_server  # noqa: E402 (examples/spa/serve.py, found through the path above)

EMAIL = "spa-user@example.com"


def admin_token(server: Server) -> str:
    status, body = server.post("/auth/login", {"username": "admin@example.com", "password": PASSWORD})
    assert status == 200, body
    return body["access_token"]


def add_spa(server: Server, first_party: bool) -> str:
    request = urllib.request.Request(
        f"{server.url}/api/admin/clients",
        data=json.dumps({
            "name": f"spa-{'first' if first_party else 'third'}-party",
            "public": True,
            "first_party": first_party,
            "redirect_uris": ["http://127.0.0.1/"],
            "post_logout_redirect_uris": ["http://127.0.0.1/"],
        }).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin_token(server)}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
        return json.load(answer)["client_id"]


def serve_spa(server: Server, client_id: str):
    """examples/spa/serve.py on a free loopback port, in a thread; its URL and the server."""
    httpd = spa_server.serve(server.url, client_id, 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}", httpd


def wait_text(browser, element_id: str, contains: str, seconds: float = 15) -> str:
    def found(b):
        text = b.find_element(By.ID, element_id).text
        error = b.find_element(By.ID, "error").text if b.find_elements(By.ID, "error") else ""
        assert not error, f"the app failed: {error}"
        return text if contains in text else False
    # The app navigates away and back (sign-in, sign-out): an element may go stale mid-read.
    waiting = WebDriverWait(browser, seconds,
                            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    return waiting.until(found)


def sign_in_on_the_pages(browser, server: Server) -> None:
    WebDriverWait(browser, 15).until(lambda b: b.current_url.startswith(f"{server.url}/auth/authorize"))
    form = browser.find_element(By.TAG_NAME, "form")
    form.find_element(By.NAME, "username").send_keys(EMAIL)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[value=sign_in]").click()


def test_a_single_page_app_signs_in_calls_the_api_refreshes_and_signs_out(server, browser):
    status, body = server.post("/auth/register", {"email": EMAIL, "password": PASSWORD})
    assert status == 201, body
    client_id = add_spa(server, first_party=False)
    origin, httpd = serve_spa(server, client_id)
    try:
        browser.get(f"{origin}/")
        wait_text(browser, "status", "Signed out")

        # The sign-in page, then the consent page (a third-party app), then back with a code.
        browser.find_element(By.ID, "sign-in").click()
        sign_in_on_the_pages(browser, server)
        WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "button[value=allow]"))
        assert client_id in browser.page_source or "spa-third-party" in browser.page_source
        browser.find_element(By.CSS_SELECTOR, "button[value=allow]").click()
        wait_text(browser, "status", f"Signed in as {EMAIL}")
        assert urlsplit(browser.current_url).query == "", "the code left the address bar"

        # /api/me across origins, with the access token.
        browser.find_element(By.ID, "call-me").click()
        me = json.loads(wait_text(browser, "me", EMAIL))
        assert me["email"] == EMAIL
        stored = tokens(browser)
        assert stored["token_type"].lower() == "bearer" and stored["refresh_token"]

        # A silent refresh: a new pair from the refresh token, and the API still answers.
        browser.find_element(By.ID, "refresh").click()
        wait_text(browser, "status", "(refreshed)")
        refreshed = tokens(browser)
        assert refreshed["refresh_token"] != stored["refresh_token"], "rotated"
        assert refreshed["access_token"] != stored["access_token"]
        browser.execute_script("document.getElementById('me').textContent = ''")
        browser.find_element(By.ID, "call-me").click()
        assert json.loads(wait_text(browser, "me", EMAIL))["email"] == EMAIL

        # Sign out: the tokens are revoked, the browser's sign-in session ends, and the app is
        # back, signed out.
        browser.find_element(By.ID, "sign-out").click()
        wait_text(browser, "status", "Signed out")
        assert browser.current_url.startswith(origin)
        assert me_status(server, refreshed["access_token"]) == 401, "revoked at sign-out"
        assert me_status(server, stored["access_token"]) == 401

        # Signing in again shows the sign-in page: the browser's session ended too.
        browser.find_element(By.ID, "sign-in").click()
        sign_in_on_the_pages(browser, server)
        wait_text(browser, "status", f"Signed in as {EMAIL}")

        # Everything the app's pages loaded came from its own origin; it only called jwt-auth.
        made = requests_made(browser)
        loaded_from_elsewhere = [
            (kind, url) for kind, url, document in made
            if document.startswith(origin) and kind not in ("Document", "Fetch", "XHR", "Preflight")
            and not url.startswith(origin)
        ]
        assert loaded_from_elsewhere == []
        calls = {urlsplit(url).netloc for kind, url, document in made
                 if document.startswith(origin) and kind in ("Fetch", "XHR")}
        assert calls <= {urlsplit(origin).netloc, urlsplit(server.url).netloc}, calls
    finally:
        httpd.shutdown()


def requests_made(browser) -> list[tuple[str, str, str]]:
    """Every request Chromium sent since the browser started (the log is read once): its
    type, URL and the URL of the page that made it."""
    requests_made_so_far = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            params = message["params"]
            requests_made_so_far.append(
                (params.get("type", ""), params["request"]["url"], params.get("documentURL", "")))
    return requests_made_so_far


def tokens(browser) -> dict:
    """The user oidc-client-ts keeps in sessionStorage."""
    stored = browser.execute_script(
        "return Object.keys(sessionStorage).filter(k => k.startsWith('oidc.user:'))"
        ".map(k => sessionStorage.getItem(k))")
    assert len(stored) == 1, stored
    return json.loads(stored[0])


def me_status(server: Server, token: str) -> int:
    request = urllib.request.Request(f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
