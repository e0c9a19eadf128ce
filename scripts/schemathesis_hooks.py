"""schemathesis hooks of scripts/schemathesis.sh, which passes the accounts in the environment.

One thing the fuzzer must not do, and nothing else:

- Lock out the account it runs as. Every operation is called with the administrator's bearer
  token; logging out would end that session, and an administrator's action on the
  administrator's own account (revoking its sessions, disabling it, taking its role away)
  would shut it out. So `/auth/logout` and `/auth/logout-all` run with a fresh session of
  another user each time, and the administrators' actions aimed at a protected account land
  on a spare user instead. (Hence an auth provider here rather than `--header`, whose value
  would override any per-call token.)

No generated case is skipped: the document states every bound the server applies, in the
units JSON Schema counts (characters).
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
