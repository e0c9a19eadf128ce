// What an API gateway does with jwt-auth's access tokens, and all it needs: the issuer and the
// audience. It reads the discovery document once, then checks every token itself against the
// published keys (fetched again when an unknown `kid` appears), with no call to jwt-auth per
// request. `jose` is the library most Node gateways and middlewares use for this.
import { createRemoteJWKSet, jwtVerify } from 'jose';

export async function gateway(issuer, audience) {
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const keys = createRemoteJWKSet(new URL(discovery.jwks_uri));
  return async function authenticate(authorization) {
    const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    if (!token) throw new Error('no bearer token');
    const { payload } = await jwtVerify(token, keys, {
      issuer: discovery.issuer,
      audience,
      typ: 'at+jwt', // an access token (RFC 9068), never an ID or refresh token
      algorithms: ['EdDSA', 'ES256', 'RS256'], // asymmetric only: a gateway holds no secret
    });
    return payload; // sub, roles, scope, client_id, exp…
  };
}
