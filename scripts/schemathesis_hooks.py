"""schemathesis hooks of scripts/schemathesis.sh, which passes the accounts in the environment.

Two things the fuzzer must not do, and nothing else:

- Lock out the account it runs as. Every operation is called with the administrator's bearer
  token; logging out would end that session, and an administrator's action on the
  administrator's own account (revoking its sessions, disabling it, taking its role away)
  would shut it out. So `/auth/logout` and `/auth/logout-all` run with a fresh session of
  another user each time, and the administrators' actions aimed at a protected account land
  on a spare user instead. (Hence an auth provider here rather than `--header`, whose value
  would override any per-call token.)
- Judge a bound the document cannot state. JSON Schema measures strings in characters; the
  server measures passwords, emails and role names in UTF-8 bytes, as the contract says (and
  the document's descriptions too). A string that is inside a bound by one measure and
  outside it by the other (`"éééé"` is 4 characters and 8 bytes) says nothing about the
  document, so such cases are not generated.
"""

import json
import os
import urllib.request

import schemathesis

BASE_URL = os.environ["JWT_AUTH_BASE_URL"]
PASSWORD = os.environ["JWT_AUTH_PASSWORD"]
ADMIN_TOKEN = os.environ["JWT_AUTH_ADMIN_TOKEN"]
# Logs in for every call of the logout endpoints.
SESSION_USER = os.environ["JWT_AUTH_SESSION_USER"]
# Takes the administrators' actions meant for a protected account.
SPARE_USER = os.environ["JWT_AUTH_SPARE_USER"]

LOGOUT_PATHS = {"/auth/logout", "/auth/logout-all"}
ADMIN_ACTIONS = {("PATCH", "/api/admin/users/{id}"), ("POST", "/api/admin/users/{id}/revoke")}

# The byte bounds of string fields, (operation) -> {field: (least, most)}; the document states
# the same numbers as character counts (`minLength`, `maxLength`).
BYTE_BOUNDS = {
    ("POST", "/auth/register"): {"password": (8, 1024), "email": (0, 254)},
    ("POST", "/auth/login"): {"password": (0, 1024)},
    ("POST", "/auth/token"): {"password": (0, 1024)},
}
ROLE_BYTES = (1, 64)


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


PROTECTED_IDS = {
    _call("GET", "/api/me", token=ADMIN_TOKEN)["id"],
    _user_id(SESSION_USER),
}
SPARE_ID = _user_id(SPARE_USER)


def _bounds_disagree(value, bounds):
    if not isinstance(value, str):
        return False
    least, most = bounds
    characters = len(value)
    octets = len(value.encode("utf-8", "surrogatepass"))
    return (least <= characters <= most) != (least <= octets <= most)


@schemathesis.hook
def filter_case(context, case):
    body = case.body if isinstance(case.body, dict) else {}
    operation = (case.operation.method.upper(), case.operation.path)
    for field, bounds in BYTE_BOUNDS.get(operation, {}).items():
        if _bounds_disagree(body.get(field), bounds):
            return False
    if operation == ("PATCH", "/api/admin/users/{id}") and isinstance(body.get("roles"), list):
        if any(_bounds_disagree(role, ROLE_BYTES) for role in body["roles"]):
            return False
    return True


@schemathesis.auth(refresh_interval=None)
class BearerToken:
    """The administrator's token; for the logout endpoints, a new session of another user."""

    def get(self, case, context):
        if case.operation.path in LOGOUT_PATHS:
            return _login(SESSION_USER)
        return ADMIN_TOKEN

    def set(self, case, token, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = (case.operation.method.upper(), case.operation.path)
    parameters = case.path_parameters or {}
    if operation in ADMIN_ACTIONS and parameters.get("id") in PROTECTED_IDS:
        parameters["id"] = SPARE_ID
