"""The FastAPI resource server against a real `jwt-auth serve` (EdDSA, SQLite) on 127.0.0.1:
valid tokens in, missing and bad ones out with the issuer's errors, roles enforced, a logout
at the issuer refused here within a second, a rotated key picked up without a restart, and,
with the issuer stopped, valid tokens still in and revoked ones still out."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert process.poll() is None, f"{url} exited"
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} was not ready in {seconds} s")


class Issuer:
    def __init__(self, binary: str, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"sqlite://{workdir / 'jwt-auth.db'}",
            "DATA_DIR": str(workdir),
            "JWT_ALGORITHM": "EdDSA",
            "PUBLIC_URL": self.url,
            "ADMIN_EMAIL": "admin@example.com",
            "ADMIN_PASSWORD": PASSWORD,
            "LOGIN_RATE_LIMIT": "0",
            "LOGIN_FAILURE_BACKOFF": "0",
        }
        self.binary, self.workdir = binary, workdir
        self.process = subprocess.Popen(
            [binary, "serve"],
            env={**self.env, "BIND_ADDRESS": f"127.0.0.1:{self.port}"},
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(self.url, self.process)

    def command(self, *args: str) -> str:
        done = subprocess.run(
            [self.binary, *args], env=self.env, cwd=self.workdir, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def login(self, email: str) -> dict:
        reply = httpx.post(f"{self.url}/auth/login", json={"username": email, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        return reply.json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def servers():
    binary = os.environ.get("JWT_AUTH_BIN") or shutil.which("jwt-auth")
    assert binary, "set JWT_AUTH_BIN to the jwt-auth binary"
    workdir = Path(tempfile.mkdtemp(prefix="jwt-auth-fastapi-"))
    issuer = Issuer(binary, workdir)
    client = json.loads(issuer.command("clients", "add", "stocks-api", "--json"))
    port = free_port()
    resource = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--log-level", "warning"],
        cwd=HERE,
        env={
            **os.environ,
            "JWT_AUTH_URL": issuer.url,
            "CLIENT_ID": client["client_id"],
            "CLIENT_SECRET": client["client_secret"],
        },
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, resource)
    httpx.post(
        f"{issuer.url}/auth/register",
        json={"email": "alice@example.com", "password": PASSWORD},
    ).raise_for_status()
    yield issuer, url
    resource.terminate()
    resource.wait(timeout=30)
    if issuer.process.poll() is None:
        issuer.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def stock(url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/stocks/acme", headers=headers)


def refused_within(url: str, token: str, seconds: float) -> float:
    started = time.monotonic()
    while True:
        reply = stock(url, token)
        if reply.status_code == 401:
            assert reply.json()["error"] == "token_revoked"
            return time.monotonic() - started
        assert reply.status_code == 200, reply.text
        assert time.monotonic() - started < seconds, f"still accepted after {seconds} s"
        time.sleep(0.01)


def test_valid_tokens_in_missing_and_bad_ones_out(servers):
    issuer, url = servers
    alice = issuer.login("alice@example.com")
    ok = stock(url, alice["access_token"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["symbol"] == "ACME"

    missing = stock(url, None)
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing_token"
    assert missing.headers["www-authenticate"] == 'Bearer realm="jwt-auth"'
    head, payload, signature = alice["access_token"].split(".")
    for bad in ["garbage", f"{head}.{payload}.{signature[:-4]}AAAA", alice["refresh_token"]]:
        reply = stock(url, bad)
        assert reply.status_code == 401, reply.text
        assert reply.json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in reply.headers["www-authenticate"]


def test_the_admin_route_needs_the_role(servers):
    issuer, url = servers
    alice = issuer.login("alice@example.com")["access_token"]
    admin = issuer.login("admin@example.com")["access_token"]
    refresh = lambda token: httpx.post(
        f"{url}/admin/stocks/refresh", headers={"Authorization": f"Bearer {token}"}
    )
    assert refresh(admin).status_code == 200
    denied = refresh(alice)
    assert denied.status_code == 403
    assert denied.json()["error"] == "insufficient_role"


def test_a_logout_at_the_issuer_is_refused_here_within_a_second(servers):
    issuer, url = servers
    lags = []
    for _ in range(20):
        pair = issuer.login("alice@example.com")
        assert stock(url, pair["access_token"]).status_code == 200
        out = httpx.post(
            f"{issuer.url}/auth/logout",
            headers={"Authorization": f"Bearer {pair['access_token']}"},
        )
        assert out.status_code == 204
        lags.append(refused_within(url, pair["access_token"], 1.0))
    lags.sort()
    print(f"\nlogout to refusal over {len(lags)} logouts: p50 {lags[len(lags) // 2] * 1000:.1f} ms,"
          f" max {lags[-1] * 1000:.1f} ms")


def test_a_rotated_key_verifies_without_a_restart(servers):
    issuer, url = servers
    before = issuer.login("alice@example.com")["access_token"]
    kid = lambda token: json.loads(
        __import__("base64").urlsafe_b64decode(token.split(".")[0] + "==")
    )["kid"]
    issuer.command("keys", "rotate")
    deadline = time.time() + 15
    while True:
        after = issuer.login("alice@example.com")["access_token"]
        if kid(after) != kid(before):
            break
        assert time.time() < deadline, "the issuer never signed with the new key"
        time.sleep(0.5)
    # The new kid makes the resource server fetch the JWK set again, once its refetch
    # cooldown (2 s) allows: until then the token is refused as signed by an unknown key.
    deadline = time.time() + 5
    while (reply := stock(url, after)).status_code != 200:
        assert reply.json()["error"] == "invalid_token", reply.text
        assert time.time() < deadline, reply.text
        time.sleep(0.2)
    assert stock(url, before).status_code == 200, "the old key still verifies"


def test_with_the_issuer_stopped_valid_tokens_verify_and_revoked_ones_stay_out(servers):
    issuer, url = servers
    kept = issuer.login("alice@example.com")["access_token"]
    ended = issuer.login("alice@example.com")["access_token"]
    httpx.post(f"{issuer.url}/auth/logout", headers={"Authorization": f"Bearer {ended}"})
    refused_within(url, ended, 1.0)
    issuer.stop()
    assert stock(url, kept).status_code == 200
    refused = stock(url, ended)
    assert refused.status_code == 401
    assert refused.json()["error"] == "token_revoked"
