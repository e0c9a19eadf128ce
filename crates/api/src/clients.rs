//! The client credentials grant over HTTP (RFC 6749 §4.4): a service authenticates with HTTP
//! Basic (§2.3.1) and gets an access token of its own, with no refresh token. Its `sub` is the
//! client id, its `roles` the client's, its `sid` the client's session. What a client is, its
//! secret and its removal are the service's (`jwt_auth_service::clients`); how a client is
//! shown, by `clients list --json` and the admin API alike, is [`ClientView`]'s.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use jwt_auth_service::clients::NewClient;
pub use jwt_auth_service::clients::{authenticate, authenticate_app, issue};
use jwt_auth_store::ServiceClient;
use serde::Serialize;

use crate::oauth_error::OAuthError;
use jwt_auth_service::secret::SecretString;

/// A client as `jwt-auth clients list --json` prints it and `GET /api/admin/clients` lists it:
/// everything but the digest of its secret (and the id of its session, an internal handle).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// Its `client_id` at the token and authorization endpoints, and the `sub` of its own
    /// tokens.
    #[schema(format = "uuid")]
    pub client_id: String,
    /// A name for people, unique.
    pub name: String,
    /// The roles of its tokens (client credentials grant).
    pub roles: Vec<String>,
    /// When it was registered.
    pub created: DateTime<Utc>,
    /// Where the authorization code grant may send users back, matched exactly; none for a
    /// service client.
    pub redirect_uris: Vec<String>,
    /// Where `GET /auth/end-session` may send users after signing out.
    pub post_logout_redirect_uris: Vec<String>,
    /// No secret: a single-page, mobile or desktop app, identified by its `client_id` alone.
    pub public: bool,
    /// Its users are never asked to consent.
    pub first_party: bool,
    /// Its token requests must carry a DPoP proof (RFC 9449): its tokens are always bound to
    /// a key.
    pub require_dpop: bool,
}

impl From<&ServiceClient> for ClientView {
    fn from(client: &ServiceClient) -> Self {
        Self {
            client_id: client.id.clone(),
            name: client.name.clone(),
            roles: client.roles.clone(),
            created: client.created_at,
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            public: client.public,
            first_party: client.first_party,
            require_dpop: client.require_dpop,
        }
    }
}

/// A client just registered, as `clients add --json` prints it and `POST /api/admin/clients`
/// answers: the client, and its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AddedClient {
    #[serde(flatten)]
    pub client: ClientView,
    /// The secret, shown once (only its digest is kept): `null` for a public client, which
    /// has none.
    #[schema(format = Password, example = "jas_…")]
    pub client_secret: Option<String>,
}

impl From<&NewClient> for AddedClient {
    fn from(new: &NewClient) -> Self {
        Self {
            client: ClientView::from(&new.client),
            client_secret: new.secret.as_ref().map(|secret| secret.expose().to_owned()),
        }
    }
}

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
