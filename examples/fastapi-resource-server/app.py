"""A FastAPI resource server that accepts jwt-auth's access tokens without asking jwt-auth per
request, and still honours a logout at once.

- Keys: the issuer's JWK set, found through its RFC 8414 metadata, fetched and cached by PyJWT's
  ``PyJWKClient`` (a token naming an unknown ``kid`` fetches the set again, at most once per
  cooldown). The algorithm comes from the key, never from the token's header.
- Revocations: a thread follows ``GET /auth/revocations`` as Server-Sent Events, with a service
  client's own token (client credentials, renewed before it expires), resuming with
  ``Last-Event-ID`` and falling back to polling the JSON form; ``session``, ``user``, ``all``
  and ``key`` events go into an in-memory set that every request checks.
- DPoP (RFC 9449): a token bound to a key (``cnf.jkt``) is taken only as ``Authorization: DPoP``
  with a proof signed by that key for this very request, each proof once; any other token only
  as ``Authorization: Bearer``, as the issuer does.
- Errors: the issuer's JSON bodies and RFC 6750 (or, for DPoP, RFC 9449) challenges.

Settings (environment): ``JWT_AUTH_URL`` (the issuer, e.g. https://auth.example.com: its
``PUBLIC_URL``), ``JWT_AUDIENCE`` (default ``api``), ``CLIENT_ID`` and ``CLIENT_SECRET`` (from
``jwt-auth clients add``), ``PUBLIC_URL`` (this service's URL as its clients call it, e.g.
https://stocks.example.com, which DPoP proofs name; without it, the URL the request shows),
``CORS_ORIGINS`` (comma-separated origins of browser apps allowed to call it across origins,
e.g. https://app.example.com; none without it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import re
import string
import threading
import time
import urllib.parse

import httpx
import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

log = logging.getLogger("resource-server")

ISSUER = os.environ["JWT_AUTH_URL"].rstrip("/")
AUDIENCE = os.environ.get("JWT_AUDIENCE", "api")
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ["CLIENT_SECRET"]
PUBLIC_URL = os.environ.get("PUBLIC_URL", "").rstrip("/")
CORS_ORIGINS = [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]
# The issuer's clock leeway is at most 30 s; ours is as small as the contract's tokens allow.
LEEWAY = 5


class Refused(Exception):
    """A request the resource server refuses, as the issuer would. ``dpop``: a token presented
    with the DPoP scheme, or one that needed it, answered with the DPoP challenge."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        token_presented: bool = True,
        dpop: bool = False,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.token_presented, self.dpop = token_presented, dpop


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


# DPoP (RFC 9449), checked as the issuer checks it. A proof is a JWT the client signs with its
# own key for each request; a token bound to that key (its `cnf.jkt` is the key's thumbprint)
# is worth nothing to whoever steals it without the key.

# The algorithms a proof may be signed with, each with the one key type it takes.
DPOP_ALGORITHMS = {"ES256": "EC", "EdDSA": "OKP", "RS256": "RSA"}
# How far a proof's `iat` may be from our clock, either way, in seconds; a proof is remembered
# (to refuse it a second time) until its `iat` is that far in the past.
DPOP_WINDOW = 60
DPOP_MAX_BYTES = 8192
# The members of a public key's RFC 7638 thumbprint, by key type, in lexicographic order.
THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}
# The members only a private (or symmetric) key has: a proof's `jwk` must have none of them.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
DEFAULT_PORTS = {"http": 80, "https": 443}
UNRESERVED = set(string.ascii_letters + string.digits + "-._~")


def proof_refused(reason: str) -> Refused:
    return Refused(401, "invalid_dpop_proof", f"DPoP proof refused: {reason}", dpop=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: object) -> bytes | None:
    """The bytes of `text` if it is canonical base64url without padding, else None."""
    if not isinstance(text, str):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # binascii.Error is one
        return None
    return data if b64url(data) == text else None


def thumbprint(jwk: object) -> str:
    """The RFC 7638 SHA-256 thumbprint of a proof's public `jwk` (EC P-256, OKP Ed25519 or
    RSA of 2048 to 8192 bits), once its members are checked: the `cnf.jkt` of its tokens."""
    if not isinstance(jwk, dict):
        raise proof_refused("its header has no `jwk`")
    if PRIVATE_MEMBERS & jwk.keys():
        raise proof_refused("its `jwk` holds a private key")
    kty = jwk.get("kty")
    names = THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if names is None or not all(isinstance(jwk.get(name), str) for name in names):
        raise proof_refused("its `jwk` is invalid: a required member is missing or no string")
    members = {name: jwk[name] for name in names}
    size = lambda name: len(b64url_decode(members[name]) or b"")
    if members["kty"] == "EC":
        valid = members["crv"] == "P-256" and size("x") == 32 and size("y") == 32
    elif members["kty"] == "OKP":
        valid = members["crv"] == "Ed25519" and size("x") == 32
    else:  # RSA, its numbers without leading zeros (one encoding, so one thumbprint)
        n, e = b64url_decode(members["n"]) or b"\0", b64url_decode(members["e"]) or b"\0"
        bits = int.from_bytes(n, "big").bit_length()
        valid = n[0] != 0 and e[0] != 0 and len(e) <= 4 and 2048 <= bits <= 8192
    if not valid:
        raise proof_refused("its `jwk` is invalid")
    # Canonical JSON: those members only, sorted, no whitespace (their values need no escaping).
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def normalize_url(url: object) -> str | None:
    """`url` as an `htu` is compared (RFC 9449 §4.3, RFC 3986 §6.2.2-3): scheme and host in
    lower case, the default port dropped, an empty path made `/`, unreserved characters
    percent-decoded, no query or fragment. None for anything but an absolute http(s) URL."""
    if not isinstance(url, str):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host += f":{port}"

    def unescape(escape: re.Match) -> str:
        char = chr(int(escape[1], 16))
        return char if char in UNRESERVED else escape[0].upper()

    path = re.sub("%([0-9A-Fa-f]{2})", unescape, parts.path or "/")
    return f"{scheme}://{host}{path}"


def request_url(request: Request) -> str:
    """The URL the client addressed, as its proof's `htu` names it: PUBLIC_URL (set it in
    production: then no Host header chooses it) and the path as sent, without the query."""
    path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    return (PUBLIC_URL or f"{request.url.scheme}://{request.url.netloc}") + path


def verify_proof(proof: str, method: str, url: str, token: str) -> tuple[str, str, int]:
    """Checks a DPoP proof for the request `method` `url` presenting `token`: its header, its
    signature by its own `jwk`, and its claims. Returns the key's thumbprint, `jti` and `iat`."""
    if len(proof) > DPOP_MAX_BYTES:
        raise proof_refused(f"it is larger than {DPOP_MAX_BYTES} bytes")
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.PyJWTError:
        raise proof_refused("it is malformed")
    for name in ("jku", "x5u", "x5c", "cty"):  # another key than its `jwk`, or a content type
        if name in header:
            raise proof_refused(f"its header parameter `{name}` is not accepted")
    if "crit" in header:
        raise proof_refused("its header has critical extensions that are not understood")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") != "dpop+jwt":
        raise proof_refused("its `typ` is not `dpop+jwt`")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in DPOP_ALGORITHMS:  # never `none` nor HMAC
        raise proof_refused("its algorithm is not accepted")
    jwk = header.get("jwk")
    jkt = thumbprint(jwk)
    if jwk["kty"] != DPOP_ALGORITHMS[alg] or jwk.get("alg", alg) != alg:
        raise proof_refused("its `jwk` is no key for its `alg`")
    if jwk.get("use", "sig") != "sig":
        raise proof_refused("its `jwk` is invalid: its `use` is not `sig`")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
    except jwt.PyJWTError:
        raise proof_refused("its `jwk` is invalid: not a public key")
    try:
        # The signature only: the claims are checked below, with the issuer's rules.
        claims = json.loads(jwt.PyJWS().decode(proof, key, algorithms=[alg]))
    except jwt.InvalidSignatureError:
        raise proof_refused("its signature is invalid")
    except (jwt.PyJWTError, ValueError):
        raise proof_refused("it is malformed")
    if not isinstance(claims, dict):
        raise proof_refused("its claims are invalid")

    def claim(name: str, kind: type | tuple[type, ...]):
        value = claims.get(name)
        if value is None:
            raise proof_refused(f"its claim `{name}` is missing")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise proof_refused("its claims are invalid")
        return value

    jti = claim("jti", str)
    if not 1 <= len(jti.encode()) <= 256:
        raise proof_refused("its claim `jti` is invalid")
    if claim("htm", str) != method:
        raise proof_refused("its `htm` is not the request's method")
    htu = normalize_url(claim("htu", str))
    if htu is None:
        raise proof_refused("its claim `htu` is invalid")
    if htu != normalize_url(url):
        raise proof_refused("its `htu` is not the request's URL")
    iat = claim("iat", (int, float))
    if not math.isfinite(iat):
        raise proof_refused("its claim `iat` is invalid")
    iat, now = math.floor(iat), time.time()
    if iat < now - DPOP_WINDOW:
        raise proof_refused("its `iat` is too old")
    if iat > now + DPOP_WINDOW:
        raise proof_refused("its `iat` is in the future")
    # `ath`: the proof is for this token, not any other the thief may hold.
    ath = b64url(hashlib.sha256(token.encode()).digest())
    if not hmac.compare_digest(claim("ath", str).encode(), ath.encode()):
        raise proof_refused("its `ath` is not the hash of the access token")
    return jkt, jti, iat


class ReplayCache:
    """The proofs accepted while their `iat` is in the window, so that none is accepted twice:
    a digest of the key's thumbprint and the `jti` → when it may be forgotten. Expired entries
    are dropped at most once a second, on insert. Bounded: when full, a new proof is refused
    (503) rather than a remembered one forgotten. One process's memory: behind a load
    balancer, a proof replayed to another instance is not caught."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.lock = threading.Lock()
        self.seen: dict[bytes, int] = {}
        self.capacity = capacity
        self.swept_at = 0.0

    def remember(self, jkt: str, jti: str, iat: int) -> bool:
        """False if this proof was accepted already."""
        key = hashlib.sha256(f"{jkt}\0{jti}".encode()).digest()[:16]
        now = time.time()
        with self.lock:
            if now - self.swept_at >= 1:
                self.seen = {k: until for k, until in self.seen.items() if until >= now}
                self.swept_at = now
            if self.seen.get(key, 0) >= now:
                return False
            if len(self.seen) >= self.capacity:
                raise Refused(503, "unavailable", "too many DPoP proofs at once; try again later")
            self.seen[key] = iat + DPOP_WINDOW + 1
            return True


replays = ReplayCache()


def check_presentation(request: Request, scheme: str, token: str, claims: dict) -> None:
    """How a verified token was presented (RFC 9449 §7): one bound to a key (`cnf`) only with
    the DPoP scheme and a proof of that key for this request; any other only as Bearer."""
    cnf = claims.get("cnf")
    if cnf is not None and not (isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str)):
        raise Refused(401, "invalid_token", "the token is not valid", dpop=scheme == "dpop")
    if scheme == "bearer":
        if cnf is None:
            return
        # No downgrade: a bound token stolen without its key is refused as a bearer token.
        message = "token is bound to a key: present it with the DPoP scheme and a proof"
        raise Refused(401, "invalid_token", message, dpop=True)
    if cnf is None:
        message = "token is not bound to a key: present it with the Bearer scheme"
        raise Refused(401, "invalid_token", message, dpop=True)
    proofs = request.headers.getlist("dpop")
    if not proofs:
        raise proof_refused("the request has no DPoP proof")
    if len(proofs) > 1:
        raise proof_refused("the request has more than one DPoP header")
    jkt, jti, iat = verify_proof(proofs[0].strip(), request.method, request_url(request), token)
    if not hmac.compare_digest(jkt.encode(), cnf["jkt"].encode()):
        raise proof_refused("its key is not the key the access token is bound to")
    # Remembered only once its key is the token's: other keys' proofs take no room.
    if not replays.remember(jkt, jti, iat):
        raise proof_refused("its `jti` was used already")


issuer: Issuer | None = None


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI):
    global issuer
    issuer = Issuer()
    issuer.start()
    yield


app = FastAPI(title="stocks", docs_url=None, redoc_url=None, lifespan=lifespan)
if CORS_ORIGINS:
    if "*" in CORS_ORIGINS:
        raise RuntimeError("CORS_ORIGINS names the apps' origins: `*` is not one")
    # Browser apps of those origins only. Their tokens travel in the Authorization and DPoP
    # headers, never in cookies: no credentials. They may read a 401's challenge and a nonce.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=CORS_ORIGINS,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "DPoP"],
        expose_headers=["WWW-Authenticate", "DPoP-Nonce"],
        max_age=600,
    )


@app.exception_handler(Refused)
def refused(_: Request, error: Refused) -> JSONResponse:
    headers = {}
    # A quote or a backslash in a description would end its quoted-string: written as '.
    description = error.message.replace('"', "'").replace("\\", "'")
    if error.status == 401 and error.dpop:
        # RFC 9449 §7.1: the error is the proof's, or else the token's.
        code = error.code if error.code == "invalid_dpop_proof" else "invalid_token"
        headers["WWW-Authenticate"] = (
            f'DPoP realm="jwt-auth", error="{code}", error_description="{description}", '
            f'algs="{" ".join(DPOP_ALGORITHMS)}"'
        )
    elif error.status == 401:
        challenge = 'Bearer realm="jwt-auth"'
        if error.token_presented:
            challenge += f', error="invalid_token", error_description="{description}"'
        headers["WWW-Authenticate"] = challenge
    body = {"error": error.code, "message": error.message}
    return JSONResponse(body, status_code=error.status, headers=headers)


def caller(request: Request) -> dict:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if not value:
        raise Refused(401, "missing_token", "a bearer token is required", token_presented=False)
    if scheme not in ("bearer", "dpop"):
        raise Refused(401, "invalid_token", "the Authorization header is not a bearer token")
    # A token presented with the DPoP scheme is refused with the DPoP challenge.
    dpop = scheme == "dpop"
    if not token:
        raise Refused(401, "invalid_token", "the access token is empty", dpop=dpop)
    if len(token) > 8192:
        raise Refused(401, "invalid_token", "the token is too long", dpop=dpop)
    assert issuer is not None
    try:
        claims = issuer.verify(token)
    except Refused as error:
        error.dpop = dpop
        raise
    check_presentation(request, scheme, token, claims)
    return claims


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
