//! Service clients and the client credentials grant (RFC 6749 §4.4): a service authenticates
//! with HTTP Basic (§2.3.1) and gets an access token of its own, with no refresh token. Its
//! `sub` is the client id, its `roles` the client's, its `sid` the client's session, so that
//! removing the client revokes every token it holds, on every instance.
//!
//! A secret is 256 random bits, shown once by `jwt-auth clients add`; only its SHA-256 digest
//! is stored (a slow hash adds nothing to a secret that cannot be guessed), and presented
//! secrets are compared by digest in constant time, an unknown client against a dummy digest.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jwt_auth_store::{ServiceClient, Store, StoreError};
use jwt_core::Subject;
use subtle::ConstantTimeEq;

use crate::error::OAuthError;
use crate::secret::SecretString;
use crate::state::AppState;

/// The role a client gets when none is given.
pub const DEFAULT_ROLE: &str = "service";
/// Every secret starts with this, so that a leaked one is easy to recognise (and to scan
/// for).
pub const SECRET_PREFIX: &str = "jas_";
/// The longest client id or secret read from an `Authorization` header.
const MAX_CREDENTIAL_BYTES: usize = 256;
/// The longest client name.
pub const MAX_NAME_BYTES: usize = 100;

/// A new client: what to store, and the secret to show once.
pub struct NewClient {
    pub client: ServiceClient,
    pub secret: SecretString,
}

/// Makes a client named `name` with `roles` (`service` when empty), at `now`.
pub fn new_client(name: &str, roles: &[String], now: DateTime<Utc>) -> Result<NewClient, String> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(|c| c.is_control())
    {
        return Err(format!(
            "the client name must be 1 to {MAX_NAME_BYTES} bytes, without control characters"
        ));
    }
    if let Err(crate::accounts::NotARole(bad)) = crate::accounts::Role::parse_all(roles) {
        return Err(format!("`{bad}` is not a role name (1 to 64 characters, no whitespace)"));
    }
    let roles = if roles.is_empty() { vec![DEFAULT_ROLE.to_owned()] } else { roles.to_vec() };
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut *bytes).map_err(|_| "no random bytes".to_owned())?;
    let secret = SecretString::new(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(*bytes)));
    let client = ServiceClient {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        secret_digest: secret_digest(secret.expose()),
        roles,
        session_id: uuid::Uuid::new_v4().to_string(),
        created_at: now,
    };
    Ok(NewClient { client, secret })
}

/// The digest stored for `secret`.
pub fn secret_digest(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

/// Whether `secret` is the one `stored` is the digest of, in constant time; with no stored
/// digest (an unknown client) the work is the same and the answer `false`.
fn secret_matches(secret: &str, stored: Option<&[u8]>) -> bool {
    let presented = secret_digest(secret);
    let dummy = [0u8; 32];
    let equal: bool = presented.ct_eq(stored.unwrap_or(&dummy)).into();
    equal && stored.is_some()
}

/// The client id and secret of an `Authorization: Basic` header; `None` without one.
pub fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, SecretString)>, OAuthError> {
    let Some(value) = req.headers().get(AUTHORIZATION) else { return Ok(None) };
    let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidClient("client authentication must be HTTP Basic".into()));
    }
    let decoded = zeroize::Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| bad())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: each is form-urlencoded before they are joined.
    let id = form_decode(id).ok_or_else(bad)?;
    let secret = SecretString::new(form_decode(secret).ok_or_else(bad)?);
    if id.is_empty() || id.len() > MAX_CREDENTIAL_BYTES || secret.len() > MAX_CREDENTIAL_BYTES {
        return Err(bad());
    }
    Ok(Some((id, secret)))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

/// The client that `id` and `secret` authenticate, counting a failure against the pair of
/// client id and IP like a failed login; 401 `invalid_client` for a wrong or unknown one.
pub async fn authenticate(
    state: &AppState,
    ip: IpAddr,
    id: &str,
    secret: &SecretString,
) -> Result<ServiceClient, OAuthError> {
    // Keyed apart from accounts: an email has no space.
    let account = format!("client {id}");
    state.throttle.check_pair(&account, ip).map_err(|retry_after| {
        OAuthError::Api(crate::error::ApiError::RateLimited { retry_after })
    })?;
    let client = state.store.client(id).await?;
    if secret_matches(secret.expose(), client.as_ref().map(|c| c.secret_digest.as_slice())) {
        state.throttle.succeeded(&account, ip);
        // Checked above: a match needs a stored client.
        return client.ok_or_else(|| OAuthError::InvalidClient("unknown client".into()));
    }
    state.throttle.failed(&account, ip);
    tracing::warn!(client_id = %id, %ip, "client authentication failed");
    Err(OAuthError::InvalidClient("client authentication failed".into()))
}

/// The access token of `client`: `sub` its id, `roles` its roles, `sid` its session.
pub fn issue(
    state: &AppState,
    client: &ServiceClient,
) -> Result<jwt_core::Issued<jwt_core::AccessToken>, OAuthError> {
    let subject = Subject { id: client.id.clone(), roles: client.roles.clone(), email: None };
    state
        .sessions
        .issue_access(&subject, &client.session_id, None)
        .map_err(|e| OAuthError::Api(e.into()))
}

/// The client that `id_or_name` names: the one with that id, or else the one with that name
/// (names are unique); `None` if there is neither.
pub async fn named(store: &Store, id_or_name: &str) -> Result<Option<ServiceClient>, StoreError> {
    if let Some(client) = store.client(id_or_name).await? {
        return Ok(Some(client));
    }
    Ok(store.clients().await?.into_iter().find(|client| client.name == id_or_name))
}

/// Removes a client; `None` if there is none with that id. Its tokens, which live
/// `token_lifetime` at most, are refused everywhere once the revocation is read.
pub async fn remove(
    store: &Store,
    id: &str,
    token_lifetime: chrono::TimeDelta,
    now: DateTime<Utc>,
) -> Result<Option<ServiceClient>, StoreError> {
    let tokens_expire_at = now + token_lifetime + jwt_core::MAX_LEEWAY;
    Ok(store.remove_client(id, now, tokens_expire_at).await?.map(|(client, _)| client))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_match_only_their_digest() {
        let now = Utc::now();
        let a = new_client("billing", &[], now).expect("a client");
        let b = new_client("billing", &[], now).expect("a client");
        assert!(a.secret.expose().starts_with(SECRET_PREFIX));
        assert_ne!(a.secret.expose(), b.secret.expose());
        assert_ne!(a.client.id, b.client.id);
        assert_eq!(a.client.roles, [DEFAULT_ROLE]);
        assert!(secret_matches(a.secret.expose(), Some(&a.client.secret_digest)));
        assert!(!secret_matches(b.secret.expose(), Some(&a.client.secret_digest)));
        assert!(!secret_matches(a.secret.expose(), None));
        assert!(!format!("{:?}", a.secret).contains(SECRET_PREFIX));
    }

    #[test]
    fn names_and_roles_are_checked() {
        let now = Utc::now();
        assert!(new_client("", &[], now).is_err());
        assert!(new_client("a\nb", &[], now).is_err());
        assert!(new_client(&"x".repeat(MAX_NAME_BYTES + 1), &[], now).is_err());
        assert!(new_client("ok", &["two words".into()], now).is_err());
        let roles = new_client("ok", &["service".into(), "reports".into()], now).unwrap();
        assert_eq!(roles.client.roles, ["service", "reports"]);
    }

    #[test]
    fn form_decoding_follows_rfc_6749() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%FF"), None);
    }
}
