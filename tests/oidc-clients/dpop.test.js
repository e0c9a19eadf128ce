// oauth4webapi (which implements DPoP, RFC 9449) in Node, as a public client registered with
// --require-dpop, against a real `jwt-auth serve` that requires server nonces: the code flow
// with PKCE and a DPoP key, `/api/me` with the bound token, and a refresh with the same key;
// the same token refused as a bearer token, and a refresh with another key refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';

import { Browser, EMAIL, startServer } from './server.js';

const REDIRECT = 'http://127.0.0.1/callback';
const insecure = { [oauth.allowInsecureRequests]: true };

let server;
before(async () => {
  server = await startServer({ DPOP_NONCE: 'true' });
});
after(() => server?.stop());

/** Runs `request` (which builds a fresh request each time), once more on `use_dpop_nonce`. */
async function withNonce(request) {
  try {
    return await request();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return request();
  }
}

test('a public client binds its tokens with DPoP through the code flow, /api/me and a refresh', async () => {
  const registration = server.addClient('dpop-app', [
    '--redirect-uri', REDIRECT, '--public', '--require-dpop',
  ]);
  const issuer = new URL(server.url);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  assert.deepEqual(as.dpop_signing_alg_values_supported, ['ES256', 'EdDSA', 'RS256']);
  const client = { client_id: registration.client_id };
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));

  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authorize = new URL(as.authorization_endpoint);
  authorize.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: 'http://127.0.0.1:50300/callback',
    response_type: 'code',
    scope: 'offline_access',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  }).toString();
  const back = await new Browser().signIn(authorize.href);
  const params = oauth.validateAuthResponse(as, client, new URL(back), state);

  // The server wants a nonce: the first attempt is answered with one, and nothing is used up.
  const tokens = await withNonce(async () =>
    oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(
        as, client, oauth.None(), params, 'http://127.0.0.1:50300/callback', verifier, { DPoP, ...insecure },
      ),
    ),
  );
  assert.equal(tokens.token_type, 'dpop');
  const me = new URL(`${server.url}/api/me`);
  const call = (token) =>
    withNonce(() => oauth.protectedResourceRequest(token, 'GET', me, undefined, undefined, { DPoP, ...insecure }));
  const answer = await call(tokens.access_token);
  assert.equal(answer.status, 200);
  assert.equal((await answer.json()).email, EMAIL);

  // The same token as a bearer token, as a thief who copied it would send it.
  const stolen = await fetch(me, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(stolen.status, 401);
  assert.match(stolen.headers.get('www-authenticate'), /^DPoP realm="jwt-auth", error="invalid_token"/);

  // A refresh with another key is refused; with its own key it gets a new bound pair.
  const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  await assert.rejects(
    withNonce(async () =>
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, { DPoP: thief, ...insecure }),
      ),
    ),
    (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_dpop_proof',
  );
  const refreshed = await withNonce(async () =>
    oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, { DPoP, ...insecure }),
    ),
  );
  assert.equal(refreshed.token_type, 'dpop');
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.equal((await call(refreshed.access_token)).status, 200);
});
