// A single-page app that signs users in through jwt-auth with oidc-client-ts: a public client
// with the authorization code grant and PKCE, tokens kept in sessionStorage, refreshed with the
// refresh token (no hidden iframe: the sign-in pages refuse to be framed).
"use strict";

const show = (id, visible) => { document.getElementById(id).hidden = !visible; };
const say = (id, text) => { document.getElementById(id).textContent = text; };

async function main() {
  // The server that serves this page says where jwt-auth is and which client this is.
  const config = await (await fetch("config.json")).json();

  const manager = new oidc.UserManager({
    authority: config.authority, // jwt-auth's issuer, its PUBLIC_URL
    client_id: config.client_id, // registered with --public
    redirect_uri: location.origin + "/",
    post_logout_redirect_uri: location.origin + "/",
    response_type: "code", // with PKCE (S256), state and nonce
    scope: "openid email",
    loadUserInfo: true, // GET /auth/userinfo after the sign-in
    automaticSilentRenew: false,
    revokeTokensOnSignout: true, // POST /auth/revoke before the end-session redirect
    userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
  });

  // Back from the sign-in page with a code: exchange it, then drop it from the address bar.
  const query = new URLSearchParams(location.search);
  if (query.has("code") || query.has("error")) {
    await manager.signinRedirectCallback();
    history.replaceState(null, "", "/");
  }

  const user = await manager.getUser();
  const signedIn = user !== null && !user.expired;
  say("status", signedIn ? `Signed in as ${user.profile.email}` : "Signed out");
  show("sign-in", !signedIn);
  for (const id of ["call-me", "refresh", "sign-out"]) show(id, signedIn);

  document.getElementById("sign-in").onclick = () => manager.signinRedirect();

  // Any API that accepts jwt-auth's tokens: here jwt-auth's own /api/me.
  document.getElementById("call-me").onclick = async () => {
    const current = await manager.getUser();
    const answer = await fetch(`${config.authority}/api/me`, {
      headers: { Authorization: `Bearer ${current.access_token}` },
    });
    say("me", JSON.stringify(await answer.json(), null, 2));
  };

  // A silent refresh: with a refresh token, oidc-client-ts calls the token endpoint.
  document.getElementById("refresh").onclick = async () => {
    const refreshed = await manager.signinSilent();
    say("status", `Signed in as ${refreshed.profile.email} (refreshed)`);
  };

  document.getElementById("sign-out").onclick = () => manager.signoutRedirect();
}

main().catch((error) => say("error", String(error)));
