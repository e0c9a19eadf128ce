"""A FastAPI resource server that accepts jwt-auth's access tokens without asking jwt-auth per
request, and still honours a logout at once.

- Keys: the issuer's JWK set, found through its RFC 8414 metadata, fetched and cached by PyJWT's
  ``PyJWKClient`` (a token naming an unknown ``kid`` fetches the set again, at most once per
  cooldown). The algorithm comes from the key, never from the token's header.
- Revocations: a thread follows ``GET /auth/revocations`` as Server-Sent Events, with a service
  client's own token (client credentials, renewed before it expires), resuming with
  ``Last-Event-ID`` and falling back to polling the JSON form; ``session``, ``user``, ``all``
  and ``key`` events go into an in-memory set that every request checks.
- Errors: the issuer's JSON bodies and RFC 6750 challenges.

Settings (environment): ``JWT_AUTH_URL`` (the issuer, e.g. https://auth.example.com: its
``PUBLIC_URL``), ``JWT_AUDIENCE`` (default ``api``), ``CLIENT_ID`` and ``CLIENT_SECRET`` (from
``jwt-auth clients add``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time

import httpx
import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger("resource-server")

ISSUER = os.environ["JWT_AUTH_URL"].rstrip("/")
AUDIENCE = os.environ.get("JWT_AUDIENCE", "api")
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ["CLIENT_SECRET"]
# The issuer's clock leeway is at most 30 s; ours is as small as the contract's tokens allow.
LEEWAY = 5


class Refused(Exception):
    """A request the resource server refuses, as the issuer would."""

    def __init__(self, status: int, code: str, message: str, token_presented: bool = True):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.token_presented = token_presented


class Revocations:
    """Revoked sessions, cut-offs and keys, as the issuer's feed says; pruned as they lapse."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[str, int] = {}
        self.users: dict[str, int] = {}
        self.everyone: int | None = None
        self.keys: dict[str, int] = {}

    def apply(self, event: dict) -> None:
        kind = event.get("kind")
        with self.lock:
            if kind == "session":
                self.sessions[event["sid"]] = event["expires_at"]
            elif kind == "user":
                before = self.users.get(event["sub"], 0)
                self.users[event["sub"]] = max(before, event["not_before"])
            elif kind == "all":
                self.everyone = max(self.everyone or 0, event["not_before"])
            elif kind == "key":
                self.keys[event["kid"]] = event["expires_at"]
            # Unknown kinds come from a newer issuer: skipped.

    def key_revoked(self, kid: str) -> bool:
        with self.lock:
            return kid in self.keys

    def revoked(self, sid: str, sub: str, iat: int) -> bool:
        with self.lock:
            return (
                sid in self.sessions
                or iat < self.users.get(sub, 0)
                or (self.everyone is not None and iat < self.everyone)
            )

    def prune(self, now: float) -> None:
        with self.lock:
            self.sessions = {k: v for k, v in self.sessions.items() if v > now}
            self.keys = {k: v for k, v in self.keys.items() if v > now}


class Issuer:
    """The issuer's keys and revocation feed, kept current in the background."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=httpx.Timeout(5.0, read=30.0))
        meta = self.http.get(f"{ISSUER}/.well-known/oauth-authorization-server").json()
        if meta["issuer"] != ISSUER:
            raise RuntimeError(f"the metadata names issuer {meta['issuer']!r}, not {ISSUER!r}")
        self.token_endpoint = meta["token_endpoint"]
        self.feed_url = f"{ISSUER}/auth/revocations"
        # The JWK set may be cached for 60 s (the issuer's max-age); an unknown kid fetches it
        # again, at most once every 2 s, so a flood of bogus kids cannot hammer the issuer.
        self.jwks = jwt.PyJWKClient(meta["jwks_uri"], lifespan=60, cooldown_duration=2)
        self.revocations = Revocations()
        self.cursor: str | None = None
        self.loaded = False
        self.connected = False
        self._token: tuple[str, float] | None = None
        self._stop = threading.Event()

    # The service client's own token, renewed a minute before it expires.
    def service_token(self) -> str:
        if self._token and self._token[1] > time.time() + 60:
            return self._token[0]
        reply = self.http.post(
            self.token_endpoint,
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        reply.raise_for_status()
        body = reply.json()
        self._token = (body["access_token"], time.time() + body["expires_in"])
        return body["access_token"]

    def apply(self, event: dict) -> None:
        self.revocations.apply(event)
        self.cursor = event["cursor"]

    def poll(self) -> None:
        """One page of the JSON feed after the cursor (all that matters without one)."""
        params = {"after": self.cursor} if self.cursor else {}
        headers = {"Authorization": f"Bearer {self.service_token()}"}
        reply = self.http.get(self.feed_url, params=params, headers=headers)
        if reply.status_code == 410:
            self.cursor = None
            return self.poll()
        reply.raise_for_status()
        page = reply.json()
        for event in page["events"]:
            self.apply(event)
        self.cursor = page["cursor"]
        self.loaded = True

    def stream(self) -> None:
        """Follows the feed as Server-Sent Events until the stream ends."""
        headers = {
            "Authorization": f"Bearer {self.service_token()}",
            "Accept": "text/event-stream",
        }
        if self.cursor:
            headers["Last-Event-ID"] = self.cursor
        with self.http.stream("GET", self.feed_url, headers=headers) as reply:
            if reply.status_code == 410:
                self.cursor = None
                return
            reply.raise_for_status()
            self.connected = True
            data = []
            for line in reply.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    self.apply(json.loads("\n".join(data)))
                    data = []
        self.connected = False

    def follow(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                if not self.loaded:
                    self.poll()
                self.stream()
                backoff = 0.2
            except Exception as error:  # noqa: BLE001 - any failure: back off, poll, retry
                self.connected = False
                log.warning("revocation feed: %s; retrying in %.1f s", type(error).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 - the issuer is away: keep what we have
                    pass
            self.revocations.prune(time.time())

    def start(self) -> None:
        try:
            self.poll()
        except Exception as error:  # noqa: BLE001 - /ready says 503 until it loads
            log.warning("revocation feed not loaded yet: %s", error)
        threading.Thread(target=self.follow, daemon=True).start()

    def verify(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Refused(401, "invalid_token", "the token is malformed")
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            raise Refused(401, "invalid_token", "not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str) or self.revocations.key_revoked(kid):
            raise Refused(401, "invalid_token", "unknown signing key")
        try:
            key = self.jwks.get_signing_key(kid)
        except jwt.PyJWKClientError:
            raise Refused(401, "invalid_token", "unknown signing key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "nbf", "sub", "sid", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise Refused(401, "token_expired", "the token has expired")
        except jwt.InvalidTokenError:
            raise Refused(401, "invalid_token", "the token is not valid")
        if self.revocations.revoked(claims["sid"], claims["sub"], claims["iat"]):
            raise Refused(401, "token_revoked", "the token has been revoked")
        return claims


issuer: Issuer | None = None


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI):
    global issuer
    issuer = Issuer()
    issuer.start()
    yield


app = FastAPI(title="stocks", docs_url=None, redoc_url=None, lifespan=lifespan)


@app.exception_handler(Refused)
def refused(_: Request, error: Refused) -> JSONResponse:
    headers = {}
    if error.status == 401:
        challenge = 'Bearer realm="jwt-auth"'
        if error.token_presented:
            challenge += f', error="invalid_token", error_description="{error.message}"'
        headers["WWW-Authenticate"] = challenge
    body = {"error": error.code, "message": error.message}
    return JSONResponse(body, status_code=error.status, headers=headers)


def caller(request: Request) -> dict:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if not value:
        raise Refused(401, "missing_token", "a bearer token is required", token_presented=False)
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "invalid_token", "the Authorization header is not a bearer token")
    if len(token) > 8192:
        raise Refused(401, "invalid_token", "the token is too long")
    assert issuer is not None
    return issuer.verify(token.strip())


def admin(claims: dict = Depends(caller)) -> dict:
    if "admin" not in claims.get("roles", []):
        raise Refused(403, "insufficient_role", "this endpoint requires the `admin` role")
    return claims


@app.get("/stocks/{symbol}")
def stock(symbol: str, claims: dict = Depends(caller)) -> dict:
    # A made-up price, the same for a symbol all day: the point is who may ask.
    seed = hashlib.sha256(f"{symbol.upper()}{time.strftime('%Y-%m-%d')}".encode()).digest()
    return {"symbol": symbol.upper(), "price": int.from_bytes(seed[:2], "big") / 100}


@app.post("/admin/stocks/refresh")
def refresh_stocks(claims: dict = Depends(admin)) -> dict:
    return {"refreshed": True, "by": claims["sub"]}


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.get("/ready")
def ready() -> JSONResponse:
    loaded = issuer is not None and issuer.loaded
    body = {"revocations_loaded": loaded, "streaming": bool(issuer and issuer.connected)}
    return JSONResponse(body, status_code=200 if loaded else 503)
