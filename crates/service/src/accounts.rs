//! What names an account and what it holds, parsed once where it comes in: a user's id (a
//! UUID) and role names. Past the edge, code holds a [`UserId`] or a [`Role`], never a string
//! it must check again.

use std::fmt;

use crate::error::ServiceError;

/// The most characters (Unicode code points) a role's name may have.
pub const MAX_ROLE_CHARS: usize = 64;

/// A role's name: 1 to 64 characters (Unicode code points, not bytes), no whitespace.
///
/// ```
/// use jwt_auth_service::accounts::Role;
///
/// assert_eq!(Role::parse("auditor").unwrap().as_str(), "auditor");
/// assert!(Role::parse("é".repeat(64).as_str()).is_ok(), "characters, not bytes");
/// for bad in ["", "two words", "tab\there", &"x".repeat(65)] {
///     assert!(Role::parse(bad).is_err(), "{bad:?}");
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role(String);

/// A name that is not a role's (see [`Role`]); a [`ServiceError::InvalidRole`] to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotARole(pub String);

impl From<NotARole> for ServiceError {
    fn from(NotARole(name): NotARole) -> Self {
        ServiceError::InvalidRole(name)
    }
}

impl Role {
    /// `name` as a role's name, or the name that is not one.
    pub fn parse(name: &str) -> Result<Self, NotARole> {
        let fits = !name.is_empty()
            && name.chars().take(MAX_ROLE_CHARS + 1).count() <= MAX_ROLE_CHARS
            && !name.chars().any(char::is_whitespace);
        match fits {
            true => Ok(Self(name.to_owned())),
            false => Err(NotARole(name.to_owned())),
        }
    }

    /// Each of `names` as a role, in order; the first that is not one is the error.
    pub fn parse_all(names: &[String]) -> Result<Vec<Self>, NotARole> {
        names.iter().map(|name| Self::parse(name)).collect()
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The names of `roles`, as the store keeps them.
    pub fn names(roles: Vec<Self>) -> Vec<String> {
        roles.into_iter().map(|role| role.0).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's id: a UUID, as the `sub` claim carries it. Anything else names no user, and is
/// not sent to the database, which may refuse it (PostgreSQL text cannot hold a NUL).
///
/// ```
/// use jwt_auth_service::accounts::UserId;
///
/// let id = UserId::parse("0b7e8a52-9a3f-4c1e-8d57-2f0c1a2b3c4d").unwrap();
/// assert_eq!(id.as_str(), "0b7e8a52-9a3f-4c1e-8d57-2f0c1a2b3c4d");
/// assert!(UserId::parse("alice").is_err());
/// assert!(UserId::parse("nul\0").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// `id` as it was given, if it is a UUID; [`ServiceError::UnknownUserId`] otherwise (no
    /// user has it).
    pub fn parse(id: &str) -> Result<Self, ServiceError> {
        match uuid::Uuid::parse_str(id) {
            Ok(_) => Ok(Self(id.to_owned())),
            Err(_) => Err(ServiceError::UnknownUserId(id.to_owned())),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
