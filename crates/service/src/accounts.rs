//! Accounts as an operator names them: by id, or by the email they log in with. The command
//! line's user commands find their user here.

use jwt_auth_store::{Store, StoreError, User};

/// The user that `id_or_email` names: by email when it holds an `@` (compared without regard
/// to case, as at login), by id otherwise; `None` if there is no such user.
pub async fn find(store: &Store, id_or_email: &str) -> Result<Option<User>, StoreError> {
    if id_or_email.contains('@') {
        return Ok(store.user_by_email(id_or_email).await?.map(|credentials| credentials.user));
    }
    store.user_by_id(id_or_email).await
}
