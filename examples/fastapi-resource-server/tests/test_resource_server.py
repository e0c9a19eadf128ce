"""The FastAPI resource server against a real `jwt-auth serve` (EdDSA, SQLite) on 127.0.0.1:
valid tokens in, missing and bad ones out with the issuer's errors, roles enforced, DPoP-bound
tokens taken only with a valid proof of their key (each refusal beside its positive control),
a logout at the issuer refused here within a second, a rotated key picked up without a restart,
and, with the issuer stopped, valid tokens still in and revoked ones still out."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

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


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DpopKey:
    """A client's DPoP key (EC P-256), signing a proof for each request (RFC 9449 §4)."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        # RFC 7638: the required members, sorted, no whitespace; the `cnf.jkt` of its tokens.
        members = {name: self.jwk[name] for name in ("crv", "kty", "x", "y")}
        canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
        self.jkt = b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method: str, url: str, token: str | None = None, header=None, **claims) -> str:
        """A proof of `method` `url` now, presenting `token` if any; `header` and `claims`
        override the proof's own."""
        body = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if token is not None:
            body["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode({**body, **claims}, self.private, algorithm="ES256", headers=headers)


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

    def login(self, email: str, dpop: DpopKey | None = None) -> dict:
        """A token pair; bound to `dpop`'s key when given (the login carries a proof of it)."""
        headers = {"DPoP": dpop.proof("POST", f"{self.url}/auth/login")} if dpop else {}
        reply = httpx.post(
            f"{self.url}/auth/login",
            json={"username": email, "password": PASSWORD},
            headers=headers,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["token_type"] == ("DPoP" if dpop else "Bearer"), reply.text
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


# DPoP: a token bound to a key is taken only as `Authorization: DPoP` with a proof of that key.


@pytest.fixture(scope="module")
def bound(servers):
    """Alice's DPoP key and an access token bound to it."""
    issuer, _ = servers
    key = DpopKey()
    token = issuer.login("alice@example.com", dpop=key)["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["cnf"] == {"jkt": key.jkt}
    return key, token


def stock_as(url: str, scheme: str, token: str, proofs: str | list[str] | None = None):
    """`GET /stocks/acme` with `scheme` `token` and a `DPoP` header for each proof."""
    proofs = [proofs] if isinstance(proofs, str) else proofs or []
    headers = [("Authorization", f"{scheme} {token}")] + [("DPoP", proof) for proof in proofs]
    return httpx.get(f"{url}/stocks/acme", headers=headers)


def assert_dpop_refused(reply: httpx.Response, code: str, reason: str) -> None:
    """A 401 with body `code` whose message says `reason`, and RFC 9449's challenge."""
    assert reply.status_code == 401, reply.text
    assert reply.json()["error"] == code, reply.text
    assert reason in reply.json()["message"], reply.text
    challenge = reply.headers["www-authenticate"]
    error = "invalid_dpop_proof" if code == "invalid_dpop_proof" else "invalid_token"
    assert challenge.startswith(f'DPoP realm="jwt-auth", error="{error}", error_description="')
    assert challenge.endswith('", algs="ES256 EdDSA RS256"'), challenge


def test_a_bound_token_is_taken_with_a_valid_proof_of_its_key(servers, bound):
    issuer, url = servers
    key, token = bound
    ok = stock_as(url, "DPoP", token, key.proof("GET", f"{url}/stocks/acme", token))
    assert ok.status_code == 200, ok.text
    assert ok.json()["symbol"] == "ACME"
    # `htu` as the client wrote it: compared after normalisation, without the query.
    loose = key.proof("GET", f"HTTP://127.0.0.1:{url.rsplit(':', 1)[1]}/stocks/acme?q=1", token)
    assert stock_as(url, "dpop", token, loose).status_code == 200
    # The admin route, a POST, with a bound admin token.
    admin_key = DpopKey()
    admin = issuer.login("admin@example.com", dpop=admin_key)["access_token"]
    refresh = lambda proof: httpx.post(
        f"{url}/admin/stocks/refresh", headers={"Authorization": f"DPoP {admin}", "DPoP": proof}
    )
    assert refresh(admin_key.proof("POST", f"{url}/admin/stocks/refresh", admin)).status_code == 200
    assert_dpop_refused(
        refresh(admin_key.proof("GET", f"{url}/admin/stocks/refresh", admin)),
        "invalid_dpop_proof",
        "`htm`",
    )


# Each: the proof(s) sent with the bound token, from (its key, another key, the token, the
# URL), and what the refusal must say.
PROOF_REFUSALS = {
    "no proof": (lambda k, o, t, u: None, "the request has no DPoP proof"),
    "another key's proof": (lambda k, o, t, u: o.proof("GET", u, t), "not the key the access"),
    "two proofs": (
        lambda k, o, t, u: [k.proof("GET", u, t), k.proof("GET", u, t)],
        "more than one DPoP header",
    ),
    "wrong htm": (lambda k, o, t, u: k.proof("POST", u, t), "`htm` is not"),
    "wrong htu path": (lambda k, o, t, u: k.proof("GET", u + "x", t), "`htu` is not"),
    "wrong htu host": (
        lambda k, o, t, u: k.proof("GET", u.replace("127.0.0.1", "localhost"), t),
        "`htu` is not",
    ),
    "wrong ath": (lambda k, o, t, u: k.proof("GET", u, t + "x"), "`ath` is not"),
    "no ath": (lambda k, o, t, u: k.proof("GET", u), "`ath` is missing"),
    "stale iat": (lambda k, o, t, u: k.proof("GET", u, t, iat=int(time.time()) - 120), "too old"),
    "future iat": (
        lambda k, o, t, u: k.proof("GET", u, t, iat=int(time.time()) + 120),
        "in the future",
    ),
    "no jti": (lambda k, o, t, u: k.proof("GET", u, t, jti=None), "`jti` is missing"),
    "typ JWT": (lambda k, o, t, u: k.proof("GET", u, t, header={"typ": "JWT"}), "`typ`"),
    "a jku header": (
        lambda k, o, t, u: k.proof("GET", u, t, header={"jku": "https://keys.example/jwks"}),
        "`jku`",
    ),
    "a private jwk": (
        lambda k, o, t, u: k.proof(
            "GET", u, t, header={"jwk": jwt.algorithms.ECAlgorithm.to_jwk(k.private, as_dict=True)}
        ),
        "private key",
    ),
    # The token's key in the header, another key's signature.
    "signed by another key": (
        lambda k, o, t, u: o.proof("GET", u, t, header={"jwk": k.jwk}),
        "signature is invalid",
    ),
    "HS256": (
        lambda k, o, t, u: jwt.encode(
            {"jti": "x", "htm": "GET", "htu": u, "iat": int(time.time())},
            "a shared secret of thirty-two bytes",
            algorithm="HS256",
            headers={"typ": "dpop+jwt", "jwk": k.jwk},
        ),
        "algorithm is not accepted",
    ),
    "garbage": (lambda k, o, t, u: "not.a.proof", "malformed"),
}


@pytest.mark.parametrize("case", PROOF_REFUSALS)
def test_a_bound_token_is_refused_without_a_valid_proof_of_its_key(servers, bound, case):
    _, url = servers
    key, token = bound
    make, reason = PROOF_REFUSALS[case]
    proofs = make(key, DpopKey(), token, f"{url}/stocks/acme")
    assert_dpop_refused(stock_as(url, "DPoP", token, proofs), "invalid_dpop_proof", reason)
    # The positive control: the same token with a valid proof.
    ok = stock_as(url, "DPoP", token, key.proof("GET", f"{url}/stocks/acme", token))
    assert ok.status_code == 200, ok.text


def test_a_proof_is_taken_once(servers, bound):
    _, url = servers
    key, token = bound
    proof = key.proof("GET", f"{url}/stocks/acme", token)
    assert stock_as(url, "DPoP", token, proof).status_code == 200
    assert_dpop_refused(stock_as(url, "DPoP", token, proof), "invalid_dpop_proof", "used already")
    fresh = key.proof("GET", f"{url}/stocks/acme", token)
    assert stock_as(url, "DPoP", token, fresh).status_code == 200


def test_a_bound_token_is_refused_as_a_bearer_token(servers, bound):
    _, url = servers
    key, token = bound
    # No downgrade, with or without a proof.
    for proof in [None, key.proof("GET", f"{url}/stocks/acme", token)]:
        refused = stock_as(url, "Bearer", token, proof)
        assert_dpop_refused(refused, "invalid_token", "token is bound to a key")


def test_an_unbound_token_is_taken_as_bearer_only(servers):
    issuer, url = servers
    token = issuer.login("alice@example.com")["access_token"]
    assert stock_as(url, "Bearer", token).status_code == 200
    proof = DpopKey().proof("GET", f"{url}/stocks/acme", token)
    refused = stock_as(url, "DPoP", token, proof)
    assert_dpop_refused(refused, "invalid_token", "token is not bound to a key")
    # A token refused for itself, presented as DPoP: the DPoP challenge too.
    assert_dpop_refused(stock_as(url, "DPoP", "garbage", proof), "invalid_token", "malformed")


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
