//! The client credentials grant over HTTP (RFC 6749 §4.4): a service authenticates with HTTP
//! Basic (§2.3.1) and gets an access token of its own, with no refresh token. Its `sub` is the
//! client id, its `roles` the client's, its `sid` the client's session. What a client is, its
//! secret and its removal are the service's (`jwt_auth_service::clients`).

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
pub use jwt_auth_service::clients::{authenticate, authenticate_app, issue};

use crate::oauth_error::OAuthError;
use jwt_auth_service::secret::SecretString;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_follows_rfc_6749() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%FF"), None);
    }
}
