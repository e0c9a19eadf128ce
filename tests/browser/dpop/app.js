// oauth4webapi (RFC 9449 DPoP) in the browser, as a public single-page app: a DPoP key pair
// made with WebCrypto (its private key not extractable) and kept in IndexedDB across the
// sign-in's navigation, the code flow with PKCE on jwt-auth's pages, the code exchanged with a
// proof (once more with the server's nonce when it asks for one), /api/me, a refresh with the
// same key (and one with another key, refused), /api/me again, then each example resource
// server with the bound token: with a proof of the key, as a bearer token, and with another
// key's proof. What each step answered goes into #result as JSON, for tests/browser/test_dpop.py
// to check: statuses, token types and error codes, never a token.
import * as oauth from './oauth4webapi.js';

const insecure = { [oauth.allowInsecureRequests]: true };

function show(id, text) {
  document.getElementById(id).textContent = text;
}

/** Runs `action` on IndexedDB's store of this page's key pair; what it asked for. */
function keys(mode, action) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('dpop-keys', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('keys');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction('keys', mode);
      const request = action(tx.objectStore('keys'));
      tx.oncomplete = () => {
        open.result.close();
        resolve(request.result);
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

async function signIn(as, client, config, redirectUri) {
  show('status', 'Signing in…');
  const keyPair = await oauth.generateKeyPair('ES256');
  await keys('readwrite', (store) => store.put(keyPair, 'dpop'));
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  sessionStorage.setItem('flow', JSON.stringify({ verifier, state }));
  const authorize = new URL(as.authorization_endpoint);
  authorize.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'offline_access',
    resource: config.audience,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  }).toString();
  location.assign(authorize.href);
}

async function back(as, client, config, redirectUri, here) {
  show('status', 'Exchanging the code…');
  const { verifier, state } = JSON.parse(sessionStorage.getItem('flow'));
  sessionStorage.removeItem('flow');
  history.replaceState(null, '', '/'); // the code leaves the address bar
  const keyPair = await keys('readonly', (store) => store.get('dpop'));
  const DPoP = oauth.DPoP(client, keyPair);
  const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const result = {
    key: {
      algorithm: `${keyPair.privateKey.algorithm.name} ${keyPair.privateKey.algorithm.namedCurve}`,
      private_key_extractable: keyPair.privateKey.extractable,
    },
    dpop_signing_alg_values_supported: as.dpop_signing_alg_values_supported,
  };

  // Runs `request` (which builds a fresh request each time), once more on `use_dpop_nonce`;
  // its value, and whether the server asked for a nonce.
  const withNonce = async (request) => {
    try {
      return { value: await request(), nonce_asked: false };
    } catch (err) {
      if (!oauth.isDPoPNonceError(err)) throw err;
      return { value: await request(), nonce_asked: true };
    }
  };
  // A token request's refusal: its status and error code.
  const refusal = (err) => {
    if (err instanceof oauth.ResponseBodyError) return { status: err.status, error: err.error };
    throw err;
  };
  // A call of `url` with `token`: the status, the challenge's scheme and error if refused, and
  // the JSON answer's `email` or `symbol` (nothing else of it) if not.
  const answer = async (response) => {
    const body = await response.json();
    return { status: response.status, email: body.email, symbol: body.symbol };
  };
  const challenged = (err) => {
    if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err;
    const [first] = err.cause;
    return { status: err.status, scheme: first?.scheme, error: first?.parameters.error };
  };
  const withProof = async (token, url, handle = DPoP) => {
    try {
      const called = await withNonce(() =>
        oauth.protectedResourceRequest(token, 'GET', url, undefined, undefined, { DPoP: handle, ...insecure }),
      );
      return { ...(await answer(called.value)), nonce_asked: called.nonce_asked };
    } catch (err) {
      return challenged(err);
    }
  };
  // The token as a thief who copied it would send it: a bearer token, no proof.
  const asBearer = async (token, url) => {
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    const challenge = response.headers.get('www-authenticate') ?? '';
    return {
      status: response.status,
      scheme: challenge.split(' ')[0].toLowerCase(),
      error: /error="([^"]*)"/.exec(challenge)?.[1],
    };
  };

  const params = oauth.validateAuthResponse(as, client, here, state);
  const exchanged = await withNonce(async () =>
    oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, {
        DPoP,
        ...insecure,
      }),
    ),
  );
  const tokens = exchanged.value;
  result.token = {
    token_type: tokens.token_type,
    nonce_asked: exchanged.nonce_asked,
    refresh_token: typeof tokens.refresh_token === 'string',
  };

  show('status', 'Calling /api/me…');
  const me = new URL(`${config.issuer}/api/me`);
  result.me = await withProof(tokens.access_token, me);
  result.me_as_bearer = await asBearer(tokens.access_token, me);

  show('status', 'Refreshing…');
  const refresh = (handle) => async () =>
    oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, {
        DPoP: handle,
        ...insecure,
      }),
    );
  try {
    await withNonce(refresh(thief));
    result.refresh_with_another_key = { status: 200 };
  } catch (err) {
    result.refresh_with_another_key = refusal(err);
  }
  const refreshed = (await withNonce(refresh(DPoP))).value;
  result.refresh = {
    token_type: refreshed.token_type,
    new_access_token: refreshed.access_token !== tokens.access_token,
    new_refresh_token: refreshed.refresh_token !== tokens.refresh_token,
  };
  result.me_after_refresh = await withProof(refreshed.access_token, me);

  result.resource_servers = {};
  for (const [name, base] of Object.entries(config.resource_servers)) {
    show('status', `Calling the ${name} resource server…`);
    const stocks = new URL(`${base}/stocks/acme`);
    result.resource_servers[name] = {
      with_proof: await withProof(tokens.access_token, stocks),
      refreshed_with_proof: await withProof(refreshed.access_token, stocks),
      as_bearer: await asBearer(refreshed.access_token, stocks),
      with_another_key: await withProof(refreshed.access_token, stocks, thief),
      with_proof_again: await withProof(refreshed.access_token, stocks),
    };
  }
  await keys('readwrite', (store) => store.delete('dpop'));
  show('result', JSON.stringify(result, null, 2));
  show('status', 'Done');
}

async function main() {
  const config = await (await fetch('/config.json')).json();
  const issuer = new URL(config.issuer);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  const client = { client_id: config.client_id };
  const redirectUri = `${location.origin}/`;
  const here = new URL(location.href);
  if (here.searchParams.has('state')) await back(as, client, config, redirectUri, here);
  else await signIn(as, client, config, redirectUri);
}

main().catch((err) => {
  // The error's name, code and message: oauth4webapi puts no token in them.
  show('error', `${err.name}${err.code ? ` (${err.code})` : ''}: ${err.message}`);
  show('status', 'Failed');
});
