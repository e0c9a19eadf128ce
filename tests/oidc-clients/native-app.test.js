// A native app (RFC 8252) as a public client: it listens on a loopback port of its choosing,
// sends the user's browser to the server with a redirect URI on that port (registered without
// one: any port matches on loopback), receives the code on its listener, and exchanges it with
// its PKCE verifier and no secret (openid-client, `None` client authentication).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import * as client from 'openid-client';

import { Browser, EMAIL, startServer } from './server.js';

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

/** The app's loopback listener: resolves with the first request's URL. */
async function loopbackReceiver() {
  let deliver;
  const received = new Promise((resolve) => {
    deliver = resolve;
  });
  const listener = createServer((request, response) => {
    response.end('You can close this window.');
    deliver(new URL(request.url, `http://127.0.0.1:${listener.address().port}`));
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return { port: listener.address().port, received, close: () => listener.close() };
}

test('a native app receives the code on a random loopback port and exchanges it without a secret', async () => {
  const registration = server.addClient('desktop', [
    '--redirect-uri', 'http://127.0.0.1/callback', '--public', '--first-party',
  ]);
  assert.equal(registration.client_secret, null, 'a public client has no secret');
  const config = await client.discovery(
    new URL(server.url), registration.client_id, undefined, client.None(),
    { execute: [client.allowInsecureRequests] },
  );
  const receiver = await loopbackReceiver();
  try {
    const redirectUri = `http://127.0.0.1:${receiver.port}/callback`;
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizeUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    // The system browser signs in, then follows the redirect to the app's listener.
    const location = await new Browser().signIn(authorizeUrl.href);
    assert.ok(location.startsWith(`${redirectUri}?`), location);
    await fetch(location);
    const callback = await receiver.received;
    const tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    assert.equal(tokens.claims().aud, registration.client_id);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.access_token);

    // Another port of the same loopback URI is fine; another path is not registered.
    const elsewhere = client.buildAuthorizationUrl(config, {
      redirect_uri: `http://127.0.0.1:${receiver.port}/other`,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const refused = await new Browser().get(elsewhere.href);
    assert.equal(refused.status, 400);
    assert.equal(refused.location, null, 'never a redirect to an unregistered URI');
  } finally {
    receiver.close();
  }
});
