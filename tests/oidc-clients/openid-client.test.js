// openid-client (the certified relying-party library) in Node, as a confidential client of a
// real `jwt-auth serve`: discovery; the code flow with PKCE, state and nonce; the ID token
// checked (signature by the published key, `iss`, `aud`, `nonce`); UserInfo; refresh; and
// end-session back to a registered URI.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';

import { Browser, EMAIL, startServer } from './server.js';

const REDIRECT = 'http://127.0.0.1/callback';
const SIGNED_OUT = 'http://127.0.0.1/signed-out';

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

async function configure(registration) {
  // The issuer is plain http on a loopback address: the library allows it only when told.
  const options = { execute: [client.allowInsecureRequests] };
  return client.discovery(
    new URL(server.url),
    registration.client_id,
    undefined,
    client.ClientSecretBasic(registration.client_secret),
    options,
  );
}

test('a confidential client signs a user in, checks the ID token, reads UserInfo, refreshes and signs out', async () => {
  const registration = server.addClient('node-web', [
    '--redirect-uri', REDIRECT, '--post-logout-redirect-uri', SIGNED_OUT,
  ]);
  const config = await configure(registration);
  const metadata = config.serverMetadata();
  assert.equal(metadata.issuer, server.url);
  assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizeUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: 'http://127.0.0.1:50200/callback',
    scope: 'openid email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const browser = new Browser();
  const back = await browser.signIn(authorizeUrl.href);

  const tokens = await client.authorizationCodeGrant(config, new URL(back), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert.equal(claims.iss, server.url);
  assert.equal(claims.aud, registration.client_id);
  assert.equal(claims.nonce, nonce);
  assert.deepEqual(claims.amr, ['pwd']);
  assert.equal(claims.email, EMAIL);
  assert.equal(tokens.scope, 'openid email offline_access');

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.email, EMAIL);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token && refreshed.access_token !== tokens.access_token);
  const again = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  assert.equal(again.sub, claims.sub);

  // A replayed code: the library gets the server's refusal.
  await assert.rejects(
    client.authorizationCodeGrant(config, new URL(back), {
      pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
    }),
    (e) => e.error === 'invalid_grant',
  );

  const endUrl = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: SIGNED_OUT,
    state: 'bye',
  });
  const out = await browser.get(endUrl.href);
  assert.equal(out.status, 302);
  assert.equal(out.location, `${SIGNED_OUT}?state=bye`);
  // Signed out: the replay revoked the session, and end-session the browser's sign-in.
  const quiet = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'openid', prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', state: 's2',
  });
  const refused = await browser.get(quiet.href);
  assert.match(refused.location, /error=login_required/);
});

test('a wrong PKCE verifier is refused', async () => {
  const registration = server.addClient('node-web-2', ['--redirect-uri', REDIRECT, '--first-party']);
  const config = await configure(registration);
  const state = client.randomState();
  const authorizeUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
    state,
  });
  const back = await new Browser().signIn(authorizeUrl.href);
  await assert.rejects(
    client.authorizationCodeGrant(config, new URL(back), {
      pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state,
    }),
    (e) => e.error === 'invalid_grant',
  );
});
