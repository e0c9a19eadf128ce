//! The request and response bodies of the `/auth` and `/api` endpoints, with the constraints
//! the OpenAPI document publishes for them.

use serde::{Deserialize, Serialize};

use crate::passwords::{MAX_PASSWORD_BYTES, MIN_PASSWORD_BYTES};
use crate::secret::SecretString;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    /// An email address (see the contract's rule), at most 254 bytes.
    #[schema(format = "email", max_length = 254, min_length = 3)]
    pub email: String,
    /// 8 to 1024 bytes.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024)]
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
pub struct LoginBody {
    /// The email the account was registered with.
    pub username: String,
    /// At most 1024 bytes.
    #[schema(value_type = String, format = Password, max_length = 1024)]
    pub password: SecretString,
}

/// `?cookie=true`: the refresh token goes into an `HttpOnly` cookie instead of the body.
#[derive(Debug, Deserialize)]
pub struct CookieQuery {
    #[serde(default)]
    pub cookie: bool,
}

/// The form of `POST /auth/token`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// `password` or `refresh_token`.
    pub grant_type: Option<String>,
    pub username: Option<String>,
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<SecretString>,
}

/// The form of `POST /auth/revoke` and `POST /auth/introspect`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenParam {
    #[schema(value_type = Option<String>)]
    pub token: Option<SecretString>,
}

/// Whether a password's length is acceptable: at login only the upper bound (so that no
/// hashing is spent on a megabyte), at registration both.
pub fn check_password(password: &SecretString, registering: bool) -> Result<(), String> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("password must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if registering && password.len() < MIN_PASSWORD_BYTES {
        return Err(format!("password must be at least {MIN_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}
