"""A server-side web app that signs its users in through jwt-auth with authlib: a confidential
client of the authorization code grant with PKCE and OpenID Connect (the ID token checked
against the issuer's published keys, its nonce and issuer), its session in a signed cookie.

Settings (environment): ``JWT_AUTH_URL`` (the issuer: its ``PUBLIC_URL``), ``CLIENT_ID`` and
``CLIENT_SECRET`` (from ``jwt-auth clients add web --redirect-uri URL/callback``),
``REDIRECT_URI`` (that URL) and ``SESSION_SECRET`` (random, to sign the session cookie).
"""

from __future__ import annotations

import os

from authlib.integrations.starlette_client import OAuth
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.middleware.sessions import SessionMiddleware


def create_app(issuer: str, client_id: str, client_secret: str, redirect_uri: str,
               session_secret: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=session_secret, same_site="lax")
    oauth = OAuth()
    oauth.register(
        "jwt_auth",
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_id=client_id,
        client_secret=client_secret,
        client_kwargs={"scope": "openid email", "code_challenge_method": "S256"},
    )

    @app.get("/login")
    async def login(request: Request):
        return await oauth.jwt_auth.authorize_redirect(request, redirect_uri)

    @app.get("/callback")
    async def callback(request: Request):
        token = await oauth.jwt_auth.authorize_access_token(request)
        request.session["user"] = {"sub": token["userinfo"]["sub"],
                                   "email": token["userinfo"].get("email")}
        request.session["id_token"] = token["id_token"]
        return RedirectResponse("/")

    @app.get("/")
    async def home(request: Request):
        return {"user": request.session.get("user")}

    return app


def app_from_environment() -> FastAPI:
    return create_app(os.environ["JWT_AUTH_URL"], os.environ["CLIENT_ID"],
                      os.environ["CLIENT_SECRET"], os.environ["REDIRECT_URI"],
                      os.environ["SESSION_SECRET"])
