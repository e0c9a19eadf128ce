//! The email rule at the edge: every place that takes an email (registration, `user add`,
//! `ADMIN_EMAIL`) checks it here first, so a bad address is refused before any hashing.

use crate::error::ApiError;

/// The address as it is stored, or 422 saying what is wrong with it.
pub fn checked(email: &str) -> Result<String, ApiError> {
    let Some((local, domain)) = email.split_once('@') else {
        return Err(ApiError::InvalidField("email is not a valid address".into()));
    };
    let valid = email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email.to_owned())
    } else {
        Err(ApiError::InvalidField("email is not a valid address".into()))
    }
}
