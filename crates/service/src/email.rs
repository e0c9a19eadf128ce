//! The email rule at the edge: every place that takes an email (registration, `user add`,
//! `ADMIN_EMAIL`) checks it here first, so a bad address is refused before any hashing. The
//! rule itself is the store's ([`jwt_auth_store::normalize_email`]), which `create_user`
//! enforces too.

use crate::error::ServiceError;

/// The address as it is stored (NFC), or what is wrong with it.
pub fn checked(email: &str) -> Result<String, ServiceError> {
    jwt_auth_store::normalize_email(email).map_err(|e| ServiceError::InvalidField(e.to_string()))
}
