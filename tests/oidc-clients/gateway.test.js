// An API gateway in front of a service, given only jwt-auth's issuer and the audience
// (gateway.js, quoted in docs/sign-in-for-apps.md): it checks the access tokens an app got
// through the code grant itself, and refuses ID tokens, tampered tokens and tokens for another
// audience. Its only calls to jwt-auth are discovery and the key set.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';

import { gateway } from './gateway.js';
import { Browser, EMAIL, startServer } from './server.js';

let server;
before(async () => {
  // A gateway checks signatures with public keys: an asymmetric algorithm.
  server = await startServer({ JWT_ALGORITHM: 'EdDSA' });
});
after(() => server?.stop());

test('a gateway configured with the issuer alone checks the access tokens of the code grant', async () => {
  const registration = server.addClient('gateway-app', [
    '--redirect-uri', 'https://app.example.com/callback', '--first-party',
  ]);
  const config = await client.discovery(
    new URL(server.url), registration.client_id, registration.client_secret, undefined,
    { execute: [client.allowInsecureRequests] },
  );
  const verifier = client.randomPKCECodeVerifier();
  const redirectUri = 'https://app.example.com/callback';
  const authorizeUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: 'gateway-state',
  });
  const location = await new Browser().signIn(authorizeUrl.href);
  const tokens = await client.authorizationCodeGrant(config, new URL(location), {
    pkceCodeVerifier: verifier,
    expectedState: 'gateway-state',
  });

  const authenticate = await gateway(server.url, 'api');
  const claims = await authenticate(`Bearer ${tokens.access_token}`);
  assert.equal(claims.client_id, registration.client_id);
  assert.equal(claims.scope, 'openid email');
  assert.equal(claims.iss, server.url);
  const me = await (await fetch(`${server.url}/api/me`, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  })).json();
  assert.equal(me.email, EMAIL);
  assert.equal(claims.sub, me.id);

  // Refused: an ID token, a refresh token, a token with a changed claim, another audience,
  // and no token.
  await assert.rejects(authenticate(`Bearer ${tokens.id_token}`), /typ|unexpected/i);
  await assert.rejects(authenticate(`Bearer ${tokens.refresh_token}`));
  const [header, payload, signature] = tokens.access_token.split('.');
  const forged = JSON.parse(Buffer.from(payload, 'base64url'));
  forged.roles = ['admin'];
  const tampered = `${header}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`;
  await assert.rejects(authenticate(`Bearer ${tampered}`), /signature/i);
  const elsewhere = await gateway(server.url, 'https://reports.example.com');
  await assert.rejects(elsewhere(`Bearer ${tokens.access_token}`), /aud/i);
  await assert.rejects(authenticate(undefined), /no bearer token/);
});
