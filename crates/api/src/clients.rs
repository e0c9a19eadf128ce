//! The client credentials grant over HTTP (RFC 6749 §4.4): a service authenticates with HTTP
//! Basic (§2.3.1) and gets an access token of its own, with no refresh token. Its `sub` is the
//! client id, its `roles` the client's, its `sid` the client's session. What a client is, its
//! secret and its removal are the service's (`jwt_auth_service::clients`).

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jwt_auth_store::ServiceClient;
use jwt_core::Subject;

use jwt_auth_service::clients::secret_matches;
pub use jwt_auth_service::clients::{new_client, remove};

use crate::oauth_error::OAuthError;
use crate::secret::SecretString;
use crate::state::AppState;

/// The longest client id or secret read from an `Authorization` header.
const MAX_CREDENTIAL_BYTES: usize = 256;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_follows_rfc_6749() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%FF"), None);
    }
}
