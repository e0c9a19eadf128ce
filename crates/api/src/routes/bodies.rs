//! The request and response bodies of the `/auth` and `/api` endpoints, with the constraints
//! the OpenAPI document publishes for them.

use serde::{Deserialize, Serialize};

use crate::secret::SecretString;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"email": "alice@example.com", "password": "correct horse battery staple"}))]
pub struct RegisterBody {
    /// An email address: one `@`, a non-empty local part, a domain of at least two
    /// dot-separated labels; no whitespace or control character; at most 254 bytes.
    #[schema(format = "email", min_length = 5, max_length = 254)]
    pub email: String,
    /// 8 to 256 characters (Unicode code points).
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 256)]
    pub password: SecretString,
}

/// A user as `POST /auth/register` and `GET /api/me` show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserBody {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "email")]
    pub email: String,
    pub roles: Vec<String>,
}

impl From<jwt_auth_store::User> for UserBody {
    fn from(user: jwt_auth_store::User) -> Self {
        Self { id: user.id, email: user.email, roles: user.roles }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"username": "alice@example.com", "password": "correct horse battery staple"}))]
pub struct LoginBody {
    /// The email the account was registered with.
    pub username: String,
    /// At most 1024 bytes (UTF-8).
    #[schema(value_type = String, format = Password, max_length = 1024)]
    pub password: SecretString,
}

/// `?cookie=true`: the refresh token goes into an `HttpOnly` cookie instead of the body.
#[derive(Debug, Deserialize)]
pub struct CookieQuery {
    #[serde(default)]
    pub cookie: bool,
}

/// The form of `POST /auth/token` as it is read: every field optional, so that what is
/// missing gets RFC 6749's `invalid_request` rather than a generic refusal. The document
/// shows [`TokenRequest`] instead.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    /// `password` or `refresh_token`.
    pub grant_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
}

/// The form of `POST /auth/token` as the document shows it: one grant, with the fields that
/// grant requires (a missing one is 400 `invalid_request`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    /// The resource owner password grant (RFC 6749 §4.3).
    Password {
        /// The email the account was registered with.
        username: String,
        /// At most 1024 bytes (UTF-8).
        #[schema(format = Password, max_length = 1024)]
        password: String,
    },
    /// Refreshing (RFC 6749 §6): rotates the refresh token, as `POST /auth/refresh` does.
    RefreshToken { refresh_token: String },
    /// A service client's own token (RFC 6749 §4.4), the client authenticated with HTTP
    /// Basic (`client_id:client_secret`, each form-urlencoded, then base64).
    ClientCredentials {},
}

/// The form of `POST /auth/revoke` and `POST /auth/introspect`; a missing `token` is 400
/// `invalid_request`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenParam {
    /// An access or a refresh token.
    #[schema(value_type = String, required = true)]
    pub token: Option<SecretString>,
}
