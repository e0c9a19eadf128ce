//! OpenID Connect ID tokens (OpenID Connect Core 1.0 §2): who signed in, for the client that
//! asked, signed with an asymmetric key published in the JWK set. With asymmetric signing keys
//! that is the signing key; with an HMAC secret, which no client may hold, a key of ID tokens
//! of its own ([`TokenService::replace_id_token_keys`]). An ID token is never an access token:
//! its header `typ` is `JWT`, which access-token verification refuses.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{KeySet, SigningKey};
use crate::tokens::{TokenService, sign_with};

/// Header `typ` of ID tokens.
pub const ID_TOKEN_TYPE: &str = "JWT";

/// How the user authenticated (`amr`, RFC 8176): a list, so that a second factor adds a
/// method rather than changing one.
pub const PASSWORD_METHOD: &str = "pwd";

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// The client the token is for.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// When the user typed the password, seconds since the epoch.
    pub auth_time: i64,
    /// The `nonce` of the authorization request, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The authentication methods (RFC 8176), e.g. `["pwd"]`.
    pub amr: Vec<String>,
    /// The sign-in session at the server.
    pub sid: String,
    /// The user's email, for scope `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the server has verified the email, for scope `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

crate::tokens::redacted_token!(
    /// A signed ID token. `Debug` does not show it.
    IdToken
);

impl TokenService {
    /// Sets the keys ID tokens are signed with, instead of the signing keys: for a service
    /// whose signing key is an HMAC secret. Their public halves join the JWK set
    /// ([`TokenService::jwks`]).
    pub fn replace_id_token_keys(&self, keys: Option<KeySet>) {
        self.id_keys.store(keys.map(Arc::new));
    }

    /// The keys of ID tokens set apart from the signing keys, if any.
    pub fn id_token_keys(&self) -> Option<Arc<KeySet>> {
        self.id_keys.load_full()
    }

    /// The key ID tokens are signed with now: the ID-token keys' active key, or else the
    /// signing key if it is asymmetric.
    fn id_token_key(&self) -> Result<SigningKey> {
        if let Some(keys) = self.id_keys.load_full() {
            return keys.active().cloned().ok_or(Error::NoSigningKey);
        }
        let keys = self.keys();
        match keys.active() {
            Some(key) if !key.algorithm().is_symmetric() => Ok(key.clone()),
            Some(_) => Err(Error::InvalidConfig(
                "ID tokens need an asymmetric key; the signing key is an HMAC secret".into(),
            )),
            None => Err(Error::NoSigningKey),
        }
    }

    /// Whether ID tokens can be signed now.
    pub fn can_sign_id_tokens(&self) -> bool {
        self.id_token_key().is_ok()
    }

    /// Signs an ID token of `claims`.
    ///
    /// ```
    /// use chrono::Utc;
    /// use jwt_core::{Algorithm, IdTokenClaims, KeySet, SigningKey, TokenPolicy, TokenService};
    ///
    /// let keys = KeySet::new(SigningKey::generate(Algorithm::HS256)?);
    /// let tokens = TokenService::new(TokenPolicy::new("https://auth.example", "api"), keys)?;
    /// tokens.replace_id_token_keys(Some(KeySet::new(SigningKey::generate(Algorithm::RS256)?)));
    /// let now = Utc::now().timestamp();
    /// let claims = IdTokenClaims {
    ///     iss: "https://auth.example".into(), sub: "u1".into(), aud: "spa".into(),
    ///     exp: now + 300, iat: now, auth_time: now, nonce: Some("n".into()),
    ///     amr: vec!["pwd".into()], sid: "s".into(), email: None, email_verified: None,
    /// };
    /// let token = tokens.issue_id_token(&claims)?;
    /// assert_eq!(tokens.verify_id_token_hint(token.expose())?, claims);
    /// // It is published, and it is no access token.
    /// assert_eq!(tokens.jwks().keys.len(), 1);
    /// assert!(tokens.verify_access_ignoring_revocations(token.expose()).is_err());
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn issue_id_token(&self, claims: &IdTokenClaims) -> Result<IdToken> {
        let key = self.id_token_key()?;
        Ok(IdToken(sign_with(&key, ID_TOKEN_TYPE, claims)?))
    }

    /// The claims of an ID token this service issued, checked for signature and issuer but
    /// not for expiry: an `id_token_hint` (OpenID Connect RP-Initiated Logout 1.0 §2), which
    /// names a sign-in that may have ended long ago.
    pub fn verify_id_token_hint(&self, token: &str) -> Result<IdTokenClaims> {
        let keys = self.keys();
        let id_keys = self.id_keys.load_full();
        let mut sets: Vec<&KeySet> = Vec::new();
        if let Some(id_keys) = id_keys.as_deref() {
            sets.push(id_keys);
        }
        let asymmetric = keys.active().is_some_and(|k| !k.algorithm().is_symmetric());
        if asymmetric {
            sets.push(&keys);
        }
        let payload = self.verify_signed_by(token, ID_TOKEN_TYPE, &sets)?;
        let claims: IdTokenClaims = crate::claims::parse(&payload)?;
        if claims.iss != self.policy().issuer {
            return Err(Error::InvalidIssuer);
        }
        Ok(claims)
    }

    /// The JWK set to publish: the public halves of the signing keys (none for HMAC secrets)
    /// and of the ID-token keys.
    pub fn jwks(&self) -> JwkSet {
        let mut set = self.keys().jwks();
        if let Some(id_keys) = self.id_keys.load_full() {
            for jwk in id_keys.jwks().keys {
                if !set.keys.iter().any(|k| k.common.key_id == jwk.common.key_id) {
                    set.keys.push(jwk);
                }
            }
        }
        set
    }

    /// The expiry of an ID token issued now for a sign-in: the access-token lifetime.
    pub fn id_token_expiry(&self) -> DateTime<Utc> {
        self.now() + self.policy().access_ttl
    }
}
