//! The request and response bodies of the `/auth` and `/api` endpoints, with the constraints
//! the OpenAPI document publishes for them.

use serde::{Deserialize, Serialize};

// Role names are counted in characters (Unicode code points, as JSON Schema's `maxLength`
// counts them, so that the document states the rule exactly).
use jwt_auth_service::accounts::MAX_ROLE_CHARS;

use jwt_auth_service::secret::SecretString;

/// The characters a role name cannot hold: exactly those of `char::is_whitespace` (Unicode
/// `White_Space`), spelled out so that every regular-expression engine reads the document's
/// pattern alike.
const WHITESPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

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
    pub code: Option<SecretString>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
}

/// The form of `POST /auth/token` as the document shows it: one grant, with the fields that
/// grant requires (a missing one is 400 `invalid_request`).
#[allow(dead_code, reason = "a schema of the OpenAPI document: the handler reads `TokenForm`")]
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
    /// Refreshing (RFC 6749 §6): rotates the refresh token, as `POST /auth/refresh` does. A
    /// refresh token of the authorization code grant is refreshed only by its client,
    /// authenticated as for the code's exchange.
    RefreshToken {
        refresh_token: String,
        /// A client application's id (a public client's authentication).
        client_id: Option<String>,
        /// A confidential client's secret (`client_secret_post`), unless HTTP Basic is used.
        #[schema(format = Password)]
        client_secret: Option<String>,
    },
    /// The authorization code grant (RFC 6749 §4.1.3, with PKCE): a confidential client
    /// authenticates with HTTP Basic or `client_secret_post`, a public one sends `client_id`.
    AuthorizationCode {
        /// The code from the redirect.
        code: String,
        /// The redirect URI of the authorization request.
        redirect_uri: String,
        /// The PKCE verifier: 43 to 128 characters of `[A-Za-z0-9-._~]`.
        code_verifier: String,
        /// The client's id, unless HTTP Basic is used.
        client_id: Option<String>,
        /// A confidential client's secret (`client_secret_post`), unless HTTP Basic is used.
        #[schema(format = Password)]
        client_secret: Option<String>,
    },
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

/// The schema of `PATCH /api/admin/users/{id}`'s `roles`: `null`, or names as
/// [`Role::parse`](jwt_auth_service::accounts::Role::parse) takes them.
pub(crate) fn role_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let class: String = WHITESPACE
        .iter()
        .map(|&(from, to)| {
            let escape = |c: char| format!("\\u{:04X}", u32::from(c));
            if from == to { escape(from) } else { format!("{}-{}", escape(from), escape(to)) }
        })
        .collect();
    let role = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_ROLE_CHARS))
        .pattern(Some(format!("^[^{class}]+$")))
        .description(Some("1 to 64 characters (Unicode code points), no whitespace"));
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(role)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_auth_service::accounts::Role;

    #[test]
    fn the_documented_whitespace_is_exactly_what_role_names_refuse() {
        let listed = |c: char| WHITESPACE.iter().any(|&(from, to)| (from..=to).contains(&c));
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "U+{:04X}", u32::from(c));
            if c.is_ascii() {
                let role = Role::parse(&format!("a{c}b"));
                assert_eq!(role.is_ok(), !c.is_whitespace(), "U+{:04X}", u32::from(c));
            }
        }
        let valid_role = |name: &str| Role::parse(name).is_ok();
        assert!(valid_role(&"é".repeat(64)) && !valid_role(&"é".repeat(65)), "chars, not bytes");
        assert!(valid_role(&"😀".repeat(64)) && !valid_role(&"😀".repeat(65)));
        assert!(!valid_role(""));
    }
}
