// oauth4webapi (which implements DPoP, RFC 9449) in Node, as a public client registered with
// --require-dpop, against a real `jwt-auth serve` that requires server nonces: the code flow
// with PKCE and a DPoP key, `/api/me` with the bound token, and a refresh with the same key;
// the same token refused as a bearer token, and a refresh with another key refused. Then both
// bound access tokens, each call with a fresh proof of the same key, at the two example
// resource servers (resource-servers.js: the Rust one and the FastAPI one, both following this
// server): 200 with the proof, 401 as a bearer token and 401 with another key's proof.
// tests/browser/test_dpop.py runs the same library, the same steps, in headless Chromium.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';

import { startResourceServers } from './resource-servers.js';
import { Browser, EMAIL, startServer } from './server.js';

const REDIRECT = 'http://127.0.0.1/callback';
// The audience of the issuer's own API and of the resource servers; the code flow asks for it
// (RFC 8707 `resource`), and a resource server set to another one would refuse the tokens.
const AUDIENCE = 'https://api.example.test';
const insecure = { [oauth.allowInsecureRequests]: true };

let server;
let resources;
before(async () => {
  // EdDSA: the resource servers verify with the keys the issuer publishes.
  server = await startServer({ DPOP_NONCE: 'true', JWT_AUDIENCE: AUDIENCE, JWT_ALGORITHM: 'EdDSA' });
  resources = await startResourceServers(server, AUDIENCE);
});
after(async () => {
  await resources?.stop();
  server?.stop();
});

// What the code flow below obtained, for the resource servers' tests after it.
let bound;

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
    resource: AUDIENCE,
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
  bound = { client, DPoP, tokens: [tokens.access_token, refreshed.access_token] };
});

const EXAMPLES = [
  ['the Rust example resource server', 'rust'],
  ['the FastAPI example resource server', 'fastapi'],
];
for (const [name, which] of EXAMPLES) {
  test(`${name} takes both bound tokens with a fresh proof each, not as bearer tokens nor with another key's proof`, async () => {
    assert.ok(bound, 'the code flow above obtained the tokens');
    const { client, DPoP } = bound;
    const stocks = new URL(`${resources[which].url}/stocks/acme`);
    const get = (token, handle) =>
      oauth.protectedResourceRequest(token, 'GET', stocks, undefined, undefined, { DPoP: handle, ...insecure });
    const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    for (const token of bound.tokens) {
      // With a proof of the key: the handle signs a new one (new jti, this URL, this token's
      // hash) for each call, so the second call is no replay of the first.
      for (let i = 0; i < 2; i += 1) {
        const answer = await get(token, DPoP);
        assert.equal(answer.status, 200);
        assert.equal((await answer.json()).symbol, 'ACME');
      }

      // The same token as a bearer token, no proof: refused, with the DPoP challenge.
      const stolen = await fetch(stocks, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(stolen.status, 401);
      assert.match(stolen.headers.get('www-authenticate'), /^DPoP realm="jwt-auth", error="invalid_token"/);
      assert.equal((await stolen.json()).error, 'invalid_token');

      // As DPoP with a valid proof of another key: refused as a proof.
      await assert.rejects(
        get(token, thief),
        (err) =>
          err instanceof oauth.WWWAuthenticateChallengeError &&
          err.status === 401 &&
          err.cause.some((c) => c.scheme === 'dpop' && c.parameters.error === 'invalid_dpop_proof'),
      );

      // And the key's own proof is still taken after both refusals.
      assert.equal((await get(token, DPoP)).status, 200);
    }
  });
}
