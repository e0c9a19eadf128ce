"""schemathesis hooks of scripts/schemathesis.sh, which passes the accounts in the environment.

One thing the fuzzer must not do, and one thing it cannot do by itself.

- Lock out the account it runs as. Every operation is called with the administrator's bearer
  token; logging out would end that session, and an administrator's action on the
  administrator's own account (revoking its sessions, disabling it, taking its role away)
  would shut it out. So `/auth/logout` and `/auth/logout-all` run with a fresh session of
  another user each time, and the administrators' actions aimed at a protected account land
  on a spare user instead. (Hence an auth provider here rather than `--header`, whose value
  would override any per-call token.)

- `/auth/userinfo` answers only a token granted `openid`, which only the authorization code
  grant gives. So the administrator signs in once through the server's own pages, as a
  browser would (a first-party public client, PKCE), and that token goes to `/auth/userinfo`.

No generated case is skipped: the document states every bound the server applies, in the
units JSON Schema counts (characters).
"""

import base64
import hashlib
import json
import os
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request

import schemathesis

BASE_URL = os.environ["JWT_AUTH_BASE_URL"]
PASSWORD = os.environ["JWT_AUTH_PASSWORD"]
ADMIN_TOKEN = os.environ["JWT_AUTH_ADMIN_TOKEN"]
ADMIN_EMAIL = os.environ["JWT_AUTH_ADMIN_EMAIL"]
# Logs in for every call of the logout endpoints.
SESSION_USER = os.environ["JWT_AUTH_SESSION_USER"]
# Takes the administrators' actions meant for a protected account.
SPARE_USER = os.environ["JWT_AUTH_SPARE_USER"]

LOGOUT_PATHS = {"/auth/logout", "/auth/logout-all"}
ADMIN_ACTIONS = {("PATCH", "/api/admin/users/{id}"), ("POST", "/api/admin/users/{id}/revoke")}


def _call(method, path, body=None, token=None):
    request = urllib.request.Request(f"{BASE_URL}{path}", method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _login(email):
    return _call("POST", "/auth/login", {"username": email, "password": PASSWORD})["access_token"]


def _user_id(email):
    return _call("GET", "/api/me", token=_login(email))["id"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_BROWSER = urllib.request.build_opener(_NoRedirect)


def _page(path, cookies, form=None):
    """A browser's request: the page's status, headers and text; the cookies it sets are kept
    in `cookies` (they are `Secure`, which urllib's cookie jar would not send over http)."""
    request = urllib.request.Request(f"{BASE_URL}{path}")
    if cookies:
        request.add_header("Cookie", "; ".join(f"{n}={v}" for n, v in cookies.items()))
    if form is not None:
        request.data = urllib.parse.urlencode(form).encode()
    try:
        response = _BROWSER.open(request, timeout=30)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";")[0].partition("=")
            cookies[name] = value
        return response.status, response.headers, response.read().decode()


def _openid_token():
    """The administrator's access token granted `openid` (and `email`), through the
    authorization code grant with PKCE on the server's pages."""
    redirect_uri = "http://127.0.0.1/callback"
    client = _call(
        "POST",
        "/api/admin/clients",
        {
            "name": "userinfo of the OpenAPI run",
            "redirect_uris": [redirect_uri],
            "public": True,
            "first_party": True,
        },
        token=ADMIN_TOKEN,
    )
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    query = "/auth/authorize?" + urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "openid email",
            "state": secrets.token_urlsafe(16),
        }
    )
    cookies = {}
    status, _, page = _page(query, cookies)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    if status != 200 or csrf is None:
        raise RuntimeError(f"the sign-in page: {status} {page[:500]}")
    form = {"csrf": csrf.group(1), "action": "sign_in", "username": ADMIN_EMAIL, "password": PASSWORD}
    status, headers, page = _page(query, cookies, form)
    location = headers.get("Location") or ""
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("code")
    if status != 302 or not code:
        raise RuntimeError(f"the sign-in: {status} {location} {page[:500]}")
    exchange = {
        "grant_type": "authorization_code",
        "code": code[0],
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": client["client_id"],
    }
    request = urllib.request.Request(f"{BASE_URL}/auth/token", data=urllib.parse.urlencode(exchange).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        granted = json.load(response)
    if "openid" not in granted.get("scope", "").split():
        raise RuntimeError(f"the token was not granted openid: {granted.get('scope')!r}")
    return granted["access_token"]


OPENID_TOKEN = _openid_token()

PROTECTED_IDS = {
    _call("GET", "/api/me", token=ADMIN_TOKEN)["id"],
    _user_id(SESSION_USER),
}
SPARE_ID = _user_id(SPARE_USER)


@schemathesis.auth(refresh_interval=None)
class BearerToken:
    """The administrator's token; for the logout endpoints, a new session of another user; for
    `/auth/userinfo`, the administrator's token granted `openid`."""

    def get(self, case, context):
        if case.operation.path in LOGOUT_PATHS:
            return _login(SESSION_USER)
        if case.operation.path == "/auth/userinfo":
            return OPENID_TOKEN
        return ADMIN_TOKEN

    def set(self, case, token, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = (case.operation.method.upper(), case.operation.path)
    parameters = case.path_parameters or {}
    if operation in ADMIN_ACTIONS and parameters.get("id") in PROTECTED_IDS:
        parameters["id"] = SPARE_ID
