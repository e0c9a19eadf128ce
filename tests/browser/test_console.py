"""The operator console (`GET /console`) in headless Chromium against a real `jwt-auth serve`:
an administrator signs in, finds a user, revokes one of their sessions, disables them,
rotates a key and reads the matching security events; adds clients (a secret shown once) and
removes one; each result is checked through the API as well. A user who is not an administrator is refused with a clear message. The page
loads nothing from another host and keeps no token in web storage."""

from __future__ import annotations

import json
import urllib.request

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from server import ADMIN_EMAIL, PASSWORD, Server, chromium, requested_urls

KEK = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture(scope="module")
def server():
    # Keys in the database, so that the console can rotate and revoke them.
    running = Server(env={"KEY_ENCRYPTION_KEY": KEK})
    yield running
    running.stop()


@pytest.fixture()
def browser():
    driver = chromium(1280, 1000)
    yield driver
    driver.quit()


def call(server: Server, method: str, path: str, token: str | None = None, body=None):
    """The API, as a script would call it: the status and the JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.url}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None


def login(server: Server, email: str, password: str = PASSWORD) -> dict:
    status, pair = call(server, "POST", "/auth/login", body={"username": email, "password": password})
    assert status == 200, pair
    return pair


def wait(browser, css: str, seconds: float = 15):
    return WebDriverWait(browser, seconds).until(ready.visibility_of_element_located((By.CSS_SELECTOR, css)))


def until(browser, condition, seconds: float = 10):
    """Waits for `condition`, reading again an element the page redrew meanwhile."""
    return WebDriverWait(browser, seconds, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def kinds(browser) -> list[str]:
    """The kinds of the events listed, read in one go (the table is redrawn as it loads)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#event-rows tr')].map((row) => row.dataset.kind)")


def confirm(browser, expected_words: str) -> None:
    """Accepts the console's confirmation, which must name what the action does."""
    dialog = wait(browser, "dialog#confirm[open]")
    assert expected_words in dialog.find_element(By.ID, "confirm-text").text
    dialog.find_element(By.ID, "confirm-ok").click()


def sign_in(browser, server: Server, email: str, password: str = PASSWORD) -> None:
    browser.get(f"{server.url}/console")
    form = wait(browser, "#signin-form")
    form.find_element(By.NAME, "username").send_keys(email)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_an_administrators_journey(server, browser):
    # Someone to look after: a user with two sessions.
    status, user = call(server, "POST", "/auth/register", body={"email": "mallory@example.com", "password": PASSWORD})
    assert status == 201, user
    kept = login(server, "mallory@example.com")
    stolen = login(server, "mallory@example.com")
    stolen_sid = json.loads(__import__("base64").urlsafe_b64decode(stolen["access_token"].split(".")[1] + "==="))["sid"]

    # 1. Sign in as the administrator.
    sign_in(browser, server, ADMIN_EMAIL)
    wait(browser, "#users")
    assert browser.find_element(By.ID, "whoami").text == ADMIN_EMAIL

    # 2. Find the user by email.
    search = browser.find_element(By.CSS_SELECTOR, "#user-search input[name=email]")
    search.send_keys("MALLORY")
    search.submit()
    until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#user-rows tr")) == 1)
    row = browser.find_element(By.CSS_SELECTOR, "#user-rows tr")
    assert row.find_elements(By.TAG_NAME, "td")[0].text == "mallory@example.com"
    row.click()
    wait(browser, "#user")
    until(browser, lambda b: b.find_element(By.ID, "user-email").text == "mallory@example.com")
    until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#session-rows tr")) == 2)

    # 3. Revoke one session: its token is refused, the other session's is not.
    browser.find_element(By.CSS_SELECTOR, f'#session-rows tr[data-session="{stolen_sid}"] button.revoke-session').click()
    confirm(browser, "Its tokens are refused")
    until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#session-rows tr")) == 1)
    assert browser.find_elements(By.CSS_SELECTOR, f'#revoked-rows tr[data-session="{stolen_sid}"]')
    assert call(server, "GET", "/api/me", stolen["access_token"])[0] == 401
    assert call(server, "GET", "/api/me", kept["access_token"])[0] == 200

    # 4. Disable the user: their last session ends and they cannot log in.
    browser.find_element(By.ID, "toggle-disabled").click()
    confirm(browser, "Every session ends now")
    until(browser, lambda b: b.find_element(By.ID, "user-status").text == "disabled")
    assert call(server, "GET", "/api/me", kept["access_token"])[0] == 401
    status, _ = call(server, "POST", "/auth/login", body={"username": "mallory@example.com", "password": PASSWORD})
    assert status == 401

    # 5. Rotate the signing key (at once), then revoke the old one.
    browser.find_element(By.CSS_SELECTOR, 'nav a[data-view="keys"]').click()
    wait(browser, "#keys")
    until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#key-rows tr"))
    before = [r.get_attribute("data-kid") for r in browser.find_elements(By.CSS_SELECTOR, "#key-rows tr")]
    browser.find_element(By.ID, "rotate-now").click()
    confirm(browser, "signs at once")
    until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#key-rows tr")) == len(before) + 1)
    admin = login(server, ADMIN_EMAIL)
    status, listed = call(server, "GET", "/api/admin/keys", admin["access_token"])
    assert status == 200, listed
    active = [k["kid"] for k in listed["keys"] if k["state"] == "active"]
    assert len(active) == 1 and active[0] not in before
    old = before[-1]
    browser.find_element(By.CSS_SELECTOR, f'#key-rows tr[data-kid="{old}"] button.revoke-key').click()
    confirm(browser, "Every token it signed is refused")
    until(browser, 
        lambda b: b.find_element(By.CSS_SELECTOR, f'#key-rows tr[data-kid="{old}"] td:nth-child(3)').text == "revoked")
    status, listed = call(server, "GET", "/api/admin/keys", admin["access_token"])
    assert {k["kid"]: k["state"] for k in listed["keys"]}[old] == "revoked"

    # 6. Read the matching security events, filtered by user, then by kind.
    browser.find_element(By.CSS_SELECTOR, 'nav a[data-view="events"]').click()
    wait(browser, "#events")
    browser.find_element(By.ID, "event-user").send_keys(user["id"])
    browser.find_element(By.CSS_SELECTOR, "#event-filter button[type=submit]").click()
    until(browser, lambda b: {"admin_revoke", "user_updated"} <= set(kinds(b)))
    status, trail = call(server, "GET", f"/api/admin/events?user={user['id']}", admin["access_token"])
    assert kinds(browser) == [e["kind"] for e in trail["events"]]
    browser.find_element(By.ID, "event-user").clear()
    Select(browser.find_element(By.ID, "event-kind")).select_by_visible_text("key_revoked")
    browser.find_element(By.CSS_SELECTOR, "#event-filter button[type=submit]").click()
    until(browser, lambda b: kinds(b) == ["key_revoked"])
    assert old in browser.find_element(By.CSS_SELECTOR, "#event-rows tr td:last-child").text

    # The page kept its tokens out of script reach and loaded nothing from another host.
    stored = browser.execute_script("return localStorage.length + sessionStorage.length")
    assert stored == 0
    assert "refresh_token" not in browser.execute_script("return document.cookie")
    others = [u for u in requested_urls(browser) if not u.startswith(server.url + "/") and not u.startswith("data:")]
    assert others == []
    # No script error and no policy violation. (Answers the console expects, such as the 400
    # of the refresh it tries before anyone signed in, are logged as network errors.)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert severe == [], severe


def client_names(browser) -> list[str]:
    """The names of the clients listed, read in one go (the table is redrawn as it loads)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#client-rows tr')].map((row) => row.cells[0].textContent)")


def add_client(browser, name: str, redirect_uris: str = "", public: bool = False) -> None:
    browser.find_element(By.ID, "client-name").send_keys(name)
    if redirect_uris:
        browser.find_element(By.ID, "client-redirect-uris").send_keys(redirect_uris)
    if public:
        browser.find_element(By.ID, "client-public").click()
    browser.find_element(By.CSS_SELECTOR, "#client-form button[type=submit]").click()


def test_clients_are_added_with_their_secret_shown_once_and_removed(server, browser):
    sign_in(browser, server, ADMIN_EMAIL)
    wait(browser, "#users")
    browser.find_element(By.CSS_SELECTOR, 'nav a[data-view="clients"]').click()
    wait(browser, "#clients")
    until(browser, lambda b: b.find_element(By.ID, "client-none").is_displayed())

    # A confidential service client: its secret shown once, which gets it a token.
    add_client(browser, "nightly export")
    secret = wait(browser, "#client-secret-value").text
    assert secret.startswith("jas_"), secret
    until(browser, lambda b: client_names(b) == ["nightly export"])
    row = browser.find_element(By.CSS_SELECTOR, "#client-rows tr")
    client_id = row.get_attribute("data-client")
    assert row.find_elements(By.TAG_NAME, "td")[2].text == "confidential"
    basic = __import__("base64").b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(f"{server.url}/auth/token", data=b"grant_type=client_credentials",
                                     headers={"Authorization": f"Basic {basic}"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        token = json.loads(answer.read())["access_token"]
    browser.find_element(By.ID, "client-secret-done").click()
    until(browser, lambda b: not b.find_element(By.ID, "client-secret").is_displayed())
    assert secret not in browser.find_element(By.TAG_NAME, "body").text, "shown once"

    # A bad redirect URI is refused with the server's words, and nothing is added; its control.
    add_client(browser, "photos", "http://photos.example.com/cb", public=True)
    error = wait(browser, "#notice.error")
    assert "loopback" in error.text, error.text
    assert client_names(browser) == ["nightly export"]
    browser.find_element(By.ID, "client-redirect-uris").clear()
    browser.find_element(By.ID, "client-redirect-uris").send_keys("com.example.photos:/cb\nhttp://127.0.0.1/cb")
    browser.find_element(By.CSS_SELECTOR, "#client-form button[type=submit]").click()
    until(browser, lambda b: client_names(b) == ["nightly export", "photos"])
    assert "has no secret" in wait(browser, "#notice").text
    photos = browser.find_elements(By.CSS_SELECTOR, "#client-rows tr")[1].find_elements(By.TAG_NAME, "td")
    assert photos[2].text == "public"
    assert photos[4].text.split("\n") == ["com.example.photos:/cb", "http://127.0.0.1/cb"]

    # Remove the first: asked first, then its token is refused.
    assert call(server, "GET", "/api/me", token)[0] == 404, "a client's token names no user"
    browser.find_element(By.CSS_SELECTOR, f'#client-rows tr[data-client="{client_id}"] button.remove-client').click()
    confirm(browser, "are refused everywhere within a second")
    until(browser, lambda b: client_names(b) == ["photos"])
    status, refused = call(server, "GET", "/api/me", token)
    assert (status, refused["error"]) == (401, "token_revoked"), refused
    admin = login(server, ADMIN_EMAIL)
    status, listed = call(server, "GET", "/api/admin/clients", admin["access_token"])
    assert [c["name"] for c in listed["clients"]] == ["photos"], listed
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert severe == [], severe


def test_a_reload_keeps_the_session_and_sign_out_ends_it(server, browser):
    sign_in(browser, server, ADMIN_EMAIL)
    wait(browser, "#users")
    browser.refresh()
    wait(browser, "#users")
    assert browser.find_element(By.ID, "whoami").text == ADMIN_EMAIL
    browser.find_element(By.ID, "signout").click()
    wait(browser, "#signin")
    browser.refresh()
    wait(browser, "#signin")


def test_a_user_who_is_not_an_administrator_is_refused_clearly(server, browser):
    status, _ = call(server, "POST", "/auth/register", body={"email": "eve@example.com", "password": PASSWORD})
    assert status == 201
    sign_in(browser, server, "eve@example.com")
    error = wait(browser, "#signin-error")
    assert "eve@example.com is not an administrator" in error.text
    assert browser.find_element(By.ID, "nav").is_displayed() is False
    # The session the sign-in made is over: a reload does not get in either.
    browser.refresh()
    wait(browser, "#signin")
    # And a wrong password says so.
    sign_in(browser, server, ADMIN_EMAIL, "not the password")
    error = wait(browser, "#signin-error")
    assert "invalid email or password" in error.text
