//! Accounts as an operator names them: by id, or by the email they log in with (the command
//! line's user commands find their user here), and the rules of what an account holds: role
//! names.

use jwt_auth_store::{Store, StoreError, User};

/// The user that `id_or_email` names: by email when it holds an `@` (compared without regard
/// to case, as at login), by id otherwise; `None` if there is no such user.
pub async fn find(store: &Store, id_or_email: &str) -> Result<Option<User>, StoreError> {
    if id_or_email.contains('@') {
        return Ok(store.user_by_email(id_or_email).await?.map(|credentials| credentials.user));
    }
    store.user_by_id(id_or_email).await
}

/// The most characters (Unicode code points) a role's name may have.
pub const MAX_ROLE_CHARS: usize = 64;

/// Whether `role` may be a role's name: 1 to 64 characters, no whitespace.
pub fn valid_role(role: &str) -> bool {
    !role.is_empty()
        && role.chars().take(MAX_ROLE_CHARS + 1).count() <= MAX_ROLE_CHARS
        && !role.chars().any(char::is_whitespace)
}
