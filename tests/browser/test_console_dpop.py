"""The operator console binds its tokens with DPoP (RFC 9449), in headless Chromium against a
real `jwt-auth serve`, with and without `DPOP_NONCE`: the administrator signs in, sees the
users, and a reload stays signed in through the refresh cookie, every request carrying a fresh
proof of one key (and the server's nonce when it asks for one). The access token and the refresh
token copied out of the page, as someone reading the browser's network traffic would, are
refused without the page's key: without a proof, with a proof of another key, as a bearer
token, with the page's own proof replayed; each refusal beside a request of the same shape
that works. The key the page keeps in IndexedDB cannot be exported, and sign-out forgets it. A
page that cannot keep a key (no secure context) falls back to bearer tokens and says so."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from server import ADMIN_EMAIL, PASSWORD, Server, chromium, free_port

KEK = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture(scope="module", params=[False, True], ids=["without-nonces", "with-nonces"])
def server(request):
    # Keys in the database, so that keys can be rotated; with DPOP_NONCE or without.
    env = {"KEY_ENCRYPTION_KEY": KEK}
    if request.param:
        env["DPOP_NONCE"] = "true"
    running = Server(env=env)
    running.nonces = request.param
    yield running
    running.stop()


# ---- JOSE in Python ---------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(token: str, index: int) -> dict:
    """The JSON of a compact JWS's header (0) or payload (1), unverified."""
    text = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def thumbprint(jwk: dict) -> str:
    """The RFC 7638 SHA-256 thumbprint of an EC public key: a bound token's `cnf.jkt`."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    return b64(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def token_hash(token: str) -> str:
    """A proof's `ath` for `token`."""
    return b64(hashlib.sha256(token.encode()).digest())


class DpopKey:
    """A key of this test's own (P-256), signing proofs with PyJWT."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256",
                    "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big"))}

    def proof(self, method: str, url: str, token: str | None = None, nonce: str | None = None) -> str:
        claims = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url.split("?")[0],
                  "iat": int(time.time())}
        if token:
            claims["ath"] = token_hash(token)
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self.jwk})


def asks_for_nonce(answer: requests.Response) -> bool:
    if answer.status_code == 401:
        return 'error="use_dpop_nonce"' in answer.headers.get("WWW-Authenticate", "")
    return answer.status_code == 400 and answer.json().get("error") == "use_dpop_nonce"


class Caller:
    """Calls the server as a script would: with proofs of `key` if it has one, taking the
    server's nonce and sending once more when asked, as the console does."""

    def __init__(self, server: Server, key: DpopKey | None = None):
        self.server, self.key, self.nonce = server, key, None

    def send(self, method: str, path: str, token: str | None = None, scheme: str = "DPoP",
             body: dict | None = None) -> requests.Response:
        url = f"{self.server.url}{path}"
        for attempt in (1, 2):
            headers = {}
            if token:
                headers["Authorization"] = f"{scheme} {token}"
            if self.key:
                headers["DPoP"] = self.key.proof(method, url, token, self.nonce)
            answer = requests.request(method, url, headers=headers, json=body, timeout=10)
            if answer.headers.get("DPoP-Nonce"):
                self.nonce = answer.headers["DPoP-Nonce"]
                if attempt == 1 and self.key and asks_for_nonce(answer):
                    continue
            return answer

    def login(self, cookie: bool = False) -> dict:
        answer = self.send("POST", "/auth/login" + ("?cookie=true" if cookie else ""),
                           body={"username": ADMIN_EMAIL, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return answer.json()


def assert_dpop_refused(answer: requests.Response, code: str, challenge_error: str) -> None:
    """A 401 with RFC 9449's challenge naming `challenge_error`, and the body `code`."""
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == code, answer.text
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP realm="jwt-auth", '), challenge
    assert f'error="{challenge_error}"' in challenge, challenge


# ---- The page's traffic -----------------------------------------------------------------------


class Traffic:
    """The requests the page made, read from Chromium's performance log (as anyone with the
    browser's developer tools, or an extension watching its network, sees them): method, URL,
    request headers, and the status and headers of the answer (Set-Cookie included)."""

    def __init__(self, url: str):
        self.url = url
        self.requests: list[dict] = []
        self._by_id: dict[str, dict] = {}
        self._raw: dict[str, dict] = {}

    def read(self, browser) -> "Traffic":
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message.get("method"), message.get("params", {})
            request_id = params.get("requestId")
            if method == "Network.requestWillBeSent":
                sent = params["request"]
                exchange = {"method": sent["method"], "url": sent["url"], "status": None,
                            "headers": {k.lower(): v for k, v in sent["headers"].items()}, "answer": {}}
                self._by_id[request_id] = exchange
                self.requests.append(exchange)
            elif method == "Network.responseReceived" and request_id in self._by_id:
                answer = params["response"]
                self._by_id[request_id]["status"] = answer["status"]
                self._by_id[request_id]["answer"].update({k.lower(): v for k, v in answer["headers"].items()})
            elif method == "Network.responseReceivedExtraInfo":
                self._raw[request_id] = {k.lower(): v for k, v in params["headers"].items()}
        for request_id, raw in self._raw.items():
            if request_id in self._by_id:
                self._by_id[request_id]["answer"].update(raw)
        return self

    def to(self, method: str, path: str) -> list[dict]:
        """The answered requests of `method` to `path` (any query), in order."""
        return [r for r in self.requests if r["method"] == method and r["status"] is not None
                and r["url"].startswith(self.url + "/") and urlsplit(r["url"]).path == path]

    def mark(self, browser) -> int:
        """How many requests the page made so far: `wait(since=...)` looks at those after."""
        return len(self.read(browser).requests)

    def wait(self, browser, method: str, path: str, status: int = 200, since: int = 0,
             seconds: float = 15) -> dict:
        """The last request of `method` to `path` (after the first `since` requests) answered
        with `status`, once there is one."""
        deadline = time.time() + seconds
        while True:
            later = self.read(browser).requests[since:]
            found = [r for r in self.to(method, path) if r["status"] == status and any(r is x for x in later)]
            if found:
                return found[-1]
            assert time.time() < deadline, f"no {method} {path} answered {status}: {self.to(method, path)}"
            time.sleep(0.2)


def wait(browser, css: str, seconds: float = 15):
    return WebDriverWait(browser, seconds).until(ready.visibility_of_element_located((By.CSS_SELECTOR, css)))


def until(browser, condition, seconds: float = 15):
    return WebDriverWait(browser, seconds, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def emails(browser) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll('#user-rows tr')].map((row) => row.cells[0].textContent)")


def sign_in(browser, url: str) -> None:
    browser.get(f"{url}/console")
    form = wait(browser, "#signin-form")
    form.find_element(By.NAME, "username").send_keys(ADMIN_EMAIL)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, "#users")
    until(browser, lambda b: ADMIN_EMAIL in emails(b))


def check_proof(server: Server, exchange: dict, token: str | None = None) -> tuple[dict, dict]:
    """Checks the DPoP proof `exchange` was sent with, for its request (and `token`); its
    header and claims."""
    proof = exchange["headers"]["dpop"]
    header, claims = part(proof, 0), part(proof, 1)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256", header
    assert set(header["jwk"]) == {"kty", "crv", "x", "y"}, "the public key's members alone"
    assert (header["jwk"]["kty"], header["jwk"]["crv"]) == ("EC", "P-256")
    assert claims["htm"] == exchange["method"]
    assert claims["htu"] == server.url + urlsplit(exchange["url"]).path, "no query, no fragment"
    assert abs(claims["iat"] - time.time()) < 60
    assert len(claims["jti"]) >= 16
    assert claims.get("ath") == (token_hash(token) if token else None)
    assert ("nonce" in claims) == server.nonces, claims
    return header, claims


def refresh_cookie(exchange: dict) -> str:
    """The refresh token an answer set in the HttpOnly cookie (the page's script cannot read it;
    the network log shows it)."""
    for line in exchange["answer"].get("set-cookie", "").split("\n"):
        name, _, rest = line.partition("=")
        if name.strip() == "refresh_token" and rest.split(";")[0]:
            return rest.split(";")[0]
    raise AssertionError(f"no refresh cookie in {exchange['answer']}")


def no_severe_errors(browser) -> None:
    # Answers the console expects (the refresh before anyone signed in, a nonce asked for)
    # are logged as network errors.
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert severe == [], severe


# ---- The tests --------------------------------------------------------------------------------


def test_the_console_binds_its_tokens_and_a_reload_refreshes_with_its_key(server, browser):
    traffic = Traffic(server.url)
    sign_in(browser, server.url)

    # The sign-in carried a proof and got a pair bound to its key.
    login = traffic.wait(browser, "POST", "/auth/login")
    header, _ = check_proof(server, login)
    jkt = thumbprint(header["jwk"])
    users = traffic.wait(browser, "GET", "/api/users")
    scheme, token = users["headers"]["authorization"].split(" ", 1)
    assert scheme == "DPoP"
    assert part(token, 0)["typ"] == "at+jwt"
    assert part(token, 1)["cnf"] == {"jkt": jkt}
    for call in traffic.to("GET", "/api/me") + traffic.to("GET", "/api/users"):
        assert call["headers"]["authorization"] == f"DPoP {token}"
        assert thumbprint(check_proof(server, call, token)[0]["jwk"]) == jkt
    jtis = [part(r["headers"]["dpop"], 1)["jti"] for r in traffic.requests if "dpop" in r["headers"]]
    assert len(jtis) == len(set(jtis)) >= 3, "a fresh proof each time"
    if server.nonces:
        # The first proof had no nonce: the server said which, and the console sent it again.
        first = [r for r in traffic.requests if "dpop" in r["headers"]][0]
        assert "nonce" not in part(first["headers"]["dpop"], 1)
        assert first["status"] == 400 and first["answer"].get("dpop-nonce"), first
    else:
        assert not any(r["answer"].get("dpop-nonce") for r in traffic.requests)

    # A reload stays signed in: the refresh cookie is refreshed with a proof of the same key,
    # kept in IndexedDB across the reload.
    reloaded = traffic.mark(browser)
    browser.refresh()
    wait(browser, "#users")
    until(browser, lambda b: ADMIN_EMAIL in emails(b))
    assert browser.find_element(By.ID, "whoami").text == ADMIN_EMAIL
    refreshed = traffic.wait(browser, "POST", "/auth/refresh", since=reloaded)
    assert thumbprint(check_proof(server, refreshed)[0]["jwk"]) == jkt
    users = traffic.wait(browser, "GET", "/api/users", since=reloaded)
    token = users["headers"]["authorization"].split(" ", 1)[1]
    assert part(token, 1)["cnf"] == {"jkt": jkt}

    # With nonces, a nonce the server no longer takes (two rotations of the signing key, from
    # which nonces derive) is answered with use_dpop_nonce at the API; the console sends its
    # request again with the new one. Without nonces the same rotations change nothing.
    admin = Caller(server).login()["access_token"]
    for _ in range(2):
        answer = Caller(server).send("POST", "/api/admin/keys/rotate?now=true", admin, "Bearer")
        assert answer.status_code == 200, answer.text
    rotated = traffic.mark(browser)
    browser.find_element(By.CSS_SELECTOR, 'nav a[data-view="keys"]').click()
    until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#key-rows tr")) >= 3)
    traffic.wait(browser, "GET", "/api/admin/keys", since=rotated)
    keys = [r for r in traffic.requests[rotated:] if r in traffic.to("GET", "/api/admin/keys")]
    if server.nonces:
        assert [r["status"] for r in keys] == [401, 200], keys
        assert 'error="use_dpop_nonce"' in keys[0]["answer"]["www-authenticate"]
        assert part(keys[1]["headers"]["dpop"], 1)["nonce"] == keys[0]["answer"]["dpop-nonce"]
    else:
        assert [r["status"] for r in keys] == [200], keys
    for call in keys:
        check_proof(server, call, token)

    # Sign-out presents the token with a proof of its key; the session ends.
    browser.find_element(By.ID, "signout").click()
    wait(browser, "#signin")
    logout = traffic.wait(browser, "POST", "/auth/logout", 204)
    assert logout["headers"]["authorization"] == f"DPoP {token}"
    check_proof(server, logout, token)
    admin_id = Caller(server).send("GET", "/api/me", admin, "Bearer").json()["id"]
    sessions = Caller(server).send("GET", f"/api/admin/users/{admin_id}/sessions", admin, "Bearer").json()
    console_session = part(token, 1)["sid"]
    assert console_session not in [s["id"] for s in sessions["sessions"]]
    assert console_session in [s["id"] for s in sessions["revoked"]]
    browser.refresh()
    wait(browser, "#signin")

    # No token in web storage, nothing from another host, no script error.
    assert browser.execute_script("return localStorage.length + sessionStorage.length") == 0
    assert "refresh_token" not in browser.execute_script("return document.cookie")
    others = [r["url"] for r in traffic.read(browser).requests
              if not r["url"].startswith(server.url + "/") and not r["url"].startswith("data:")]
    assert others == []
    no_severe_errors(browser)


def test_tokens_copied_out_of_the_console_are_refused_without_its_key(server, browser):
    traffic = Traffic(server.url)
    sign_in(browser, server.url)
    users = traffic.wait(browser, "GET", "/api/users")
    login = traffic.wait(browser, "POST", "/auth/login")
    # What someone reading the page's traffic has: the access token, the refresh token of the
    # cookie, and proofs already used.
    stolen = users["headers"]["authorization"].split(" ", 1)[1]
    stolen_refresh = refresh_cookie(login)
    used_proof = users["headers"]["dpop"]
    assert part(stolen, 1)["cnf"]["jkt"] == thumbprint(part(used_proof, 0)["jwk"])
    assert part(stolen_refresh, 1)["cnf"] == part(stolen, 1)["cnf"], "the refresh token is bound too"

    # The controls: a session of this test's own, bound to its own key, and an unbound one.
    thief_key = DpopKey()
    thief = Caller(server, thief_key)
    own_pair = thief.login()
    assert own_pair["token_type"] == "DPoP"
    own = own_pair["access_token"]
    assert part(own, 1)["cnf"] == {"jkt": thumbprint(thief_key.jwk)}
    unbound = Caller(server).login()
    assert unbound["token_type"] == "Bearer" and "cnf" not in part(unbound["access_token"], 1)
    no_key = Caller(server)

    # 1. As DPoP without a proof: refused. The same request shape with a token and a proof of
    #    the same key works.
    assert_dpop_refused(no_key.send("GET", "/api/users", stolen), "invalid_dpop_proof", "invalid_dpop_proof")
    assert thief.send("GET", "/api/users", own).status_code == 200

    # 2. With a well-formed proof of another key (the right htm, htu, ath and nonce): refused;
    #    that key's proof with its own token: 200 (just above, and again here).
    assert_dpop_refused(thief.send("GET", "/api/users", stolen), "invalid_dpop_proof", "invalid_dpop_proof")
    assert thief.send("GET", "/api/me", own).status_code == 200

    # 3. As a bearer token: refused with the DPoP challenge, no downgrade; an unbound token as a
    #    bearer token works.
    assert_dpop_refused(no_key.send("GET", "/api/users", stolen, "Bearer"), "invalid_token", "invalid_token")
    assert no_key.send("GET", "/api/users", unbound["access_token"], "Bearer").status_code == 200

    # 4. With the proof the page sent, replayed to its URL: refused (its jti is used); the page's
    #    own request with it had worked.
    replayed = requests.get(users["url"], headers={"Authorization": f"DPoP {stolen}", "DPoP": used_proof}, timeout=10)
    assert_dpop_refused(replayed, "invalid_dpop_proof", "invalid_dpop_proof")
    assert users["status"] == 200

    # 5. Signing the console out with it, without the key: refused; its holder's logout works
    #    (below, the thief's own session).
    assert_dpop_refused(thief.send("POST", "/auth/logout", stolen), "invalid_dpop_proof", "invalid_dpop_proof")

    # 6. The refresh token of the cookie, without a proof or with another key's: 400, and
    #    nothing changes; this test's own bound refresh token with its own proof: 200.
    for caller in (no_key, thief):
        answer = caller.send("POST", "/auth/refresh", body={"refresh_token": stolen_refresh})
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_dpop_proof", answer.text
    answer = thief.send("POST", "/auth/refresh", body={"refresh_token": own_pair["refresh_token"]})
    assert answer.status_code == 200 and answer.json()["token_type"] == "DPoP", answer.text
    own = answer.json()["access_token"]

    # The console was not disturbed: its session lives, through a reload too.
    browser.find_element(By.CSS_SELECTOR, 'nav a[data-view="events"]').click()
    until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#event-rows tr"))
    reloaded = traffic.mark(browser)
    browser.refresh()
    wait(browser, "#events")
    until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#event-rows tr"))
    assert browser.find_element(By.ID, "whoami").text == ADMIN_EMAIL
    traffic.wait(browser, "POST", "/auth/refresh", since=reloaded)
    assert thief.send("POST", "/auth/logout", own).status_code == 204
    assert_dpop_refused(thief.send("GET", "/api/me", own), "token_revoked", "invalid_token")
    no_severe_errors(browser)


KEY_IN_INDEXEDDB = """
const done = arguments[arguments.length - 1];
const opening = indexedDB.open("jwt-auth-console");
opening.onerror = () => done({ error: String(opening.error) });
opening.onsuccess = () => {
  const db = opening.result;
  if (!db.objectStoreNames.contains("dpop")) { db.close(); done({ stored: false }); return; }
  const get = db.transaction("dpop").objectStore("dpop").get("key");
  get.onerror = () => { db.close(); done({ error: String(get.error) }); };
  get.onsuccess = async () => {
    db.close();
    const pair = get.result;
    if (!pair) { done({ stored: false }); return; }
    const found = {
      stored: true,
      type: pair.privateKey.type,
      extractable: pair.privateKey.extractable,
      algorithm: pair.privateKey.algorithm,
      usages: pair.privateKey.usages,
    };
    for (const format of ["jwk", "pkcs8"]) {
      found[format] = await crypto.subtle.exportKey(format, pair.privateKey)
        .then(() => "exported", (error) => error.name);
    }
    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
    found.publicJwk = { kty, crv, x, y };
    // The control: a key made extractable by the same browser exports.
    const other = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
    found.controlJwk = await crypto.subtle.exportKey("jwk", other.privateKey)
      .then((jwk) => typeof jwk.d === "string" ? "exported" : "no d", (error) => error.name);
    done(found);
  };
};
"""


def test_the_key_in_indexeddb_cannot_be_exported_and_sign_out_forgets_it(server, browser):
    traffic = Traffic(server.url)
    sign_in(browser, server.url)
    token = traffic.wait(browser, "GET", "/api/users")["headers"]["authorization"].split(" ", 1)[1]
    browser.set_script_timeout(15)
    found = browser.execute_async_script(KEY_IN_INDEXEDDB)
    assert found["stored"], found
    assert found["type"] == "private" and found["extractable"] is False, found
    assert found["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}, found
    assert found["usages"] == ["sign"], found
    assert found["jwk"] == "InvalidAccessError" and found["pkcs8"] == "InvalidAccessError", found
    assert found["controlJwk"] == "exported", found
    # It is the key the console's token is bound to.
    assert part(token, 1)["cnf"] == {"jkt": thumbprint(found["publicJwk"])}

    browser.find_element(By.ID, "signout").click()
    wait(browser, "#signin")
    traffic.wait(browser, "POST", "/auth/logout", 204)
    assert browser.execute_async_script(KEY_IN_INDEXEDDB) == {"stored": False}
    # A new sign-in makes a new key.
    sign_in(browser, server.url)
    again = browser.execute_async_script(KEY_IN_INDEXEDDB)
    assert again["stored"] and again["extractable"] is False
    assert again["publicJwk"] != found["publicJwk"]
    no_severe_errors(browser)


def test_a_page_that_cannot_keep_a_key_gets_bearer_tokens_and_says_so(server):
    # The server reached by a name that is not loopback, over plain HTTP: no secure context,
    # so no WebCrypto. (`--host-resolver-rules` points the name at the server.)
    name = f"console-{free_port()}.test"
    browser = chromium(arguments=(f"--host-resolver-rules=MAP {name} 127.0.0.1",))
    try:
        url = f"http://{name}:{server.port}"
        browser.get(f"{url}/console")
        note = wait(browser, "#bearer-note")
        assert "bearer tokens" in note.text
        assert browser.execute_script("return window.isSecureContext") is False
        sign_in(browser, url)
        traffic = Traffic(url)
        users = traffic.wait(browser, "GET", "/api/users")
        assert users["headers"]["authorization"].startswith("Bearer ")
        assert "dpop" not in users["headers"]
        assert "cnf" not in part(users["headers"]["authorization"].split(" ", 1)[1], 1)
        browser.refresh()
        wait(browser, "#users")
        browser.find_element(By.ID, "signout").click()
        wait(browser, "#signin")
        assert browser.execute_script("return localStorage.length + sessionStorage.length") == 0
    finally:
        browser.quit()
