//! The one error type of the store: a variant per thing a caller branches on (a taken email,
//! an unreachable database, a bad `DATABASE_URL`), and the conversion into `jwt_core::Error`
//! that the storage traits need.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// A boxed error from a driver, pool or migration, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in the store. Never a panic: a row that does not parse is
/// [`StoreError::Corrupt`], a lost connection [`StoreError::Unavailable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `DATABASE_URL` is neither `sqlite://PATH` (or `sqlite:PATH`) nor `postgres://…`.
    /// The message never repeats the URL, which may hold a password.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database could not be reached: no connection could be made or taken from the
    /// pool in time, or the connection broke.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The database server answered and refused this client: a wrong password or user, or no
    /// such database. Retrying will not mend it. The message names the server as `host:port`.
    #[error("database refused the connection: {0}")]
    Refused(String),
    /// The signing keys changed (one was added, revoked or re-sealed) while they were being
    /// re-sealed; nothing was changed, and running it again will do.
    #[error(
        "the signing keys changed while they were being re-sealed; nothing changed, run it again"
    )]
    KeysChanged,
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[source] BoxError),
    /// Another user already has this email address, compared without regard to case.
    #[error("email address is already registered")]
    EmailTaken,
    /// The user at `index` of an imported batch has an email that is registered already
    /// (compared without regard to case); nothing was imported.
    #[error("the email of the batch's user {index} is already registered")]
    ImportedEmailTaken {
        /// The position of that user in the batch, from 0.
        index: usize,
    },
    /// The authorization code a session was to start from was claimed or used already; no
    /// session was created.
    #[error("the authorization code was used already")]
    CodeUsed,
    /// Another service client already has this name.
    #[error("a client with this name exists already")]
    NameTaken,
    /// The email breaks the rule of [`normalize_email`](crate::email::normalize_email).
    #[error(transparent)]
    InvalidEmail(#[from] crate::email::InvalidEmail),
    /// A stored row does not parse (an unknown reason or event kind, roles that are not a
    /// JSON array, a feed entry missing its fields).
    #[error("corrupt row in `{table}`: {detail}")]
    Corrupt {
        /// The table the row is in.
        table: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The database refused a statement.
    #[error("database query failed: {0}")]
    Query(#[source] DieselError),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, detail: impl Into<String>) -> Self {
        StoreError::Corrupt { table, detail: detail.into() }
    }

    pub(crate) fn unavailable(err: impl Into<BoxError>) -> Self {
        StoreError::Unavailable(err.into())
    }
}

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )
            | DieselError::BrokenTransactionManager => StoreError::Unavailable(Box::new(err)),
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if sqlite_cannot_write(info.message()) =>
            {
                StoreError::Unavailable(Box::new(err))
            }
            err => StoreError::Query(err),
        }
    }
}

/// Whether SQLite refused a statement because of its file rather than the statement: a full
/// disk (`SQLITE_FULL`), a read-only file or directory (`SQLITE_READONLY`), an I/O error
/// (`SQLITE_IOERR`). diesel passes SQLite's own message for these, not its code, so the
/// messages of `sqlite3_errstr` are matched. Such a failure is an outage to retry once space
/// or permission returns (503), not a fault of the request; the transaction was rolled back.
fn sqlite_cannot_write(message: &str) -> bool {
    ["database or disk is full", "attempt to write a readonly database", "disk I/O error"]
        .iter()
        .any(|known| message.contains(known))
}

/// An unreachable database is [`jwt_core::Error::Unavailable`] (worth retrying, HTTP 503);
/// every other failure is [`jwt_core::Error::Storage`] (a fault, HTTP 500). Either keeps the
/// store's error as its source.
impl From<StoreError> for jwt_core::Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => jwt_core::Error::unavailable(err),
            StoreError::CodeUsed => jwt_core::Error::CodeUsed,
            err => jwt_core::Error::storage(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_database_is_unavailable_to_jwt_core() {
        let down = StoreError::unavailable("connection refused");
        assert!(matches!(jwt_core::Error::from(down), jwt_core::Error::Unavailable(_)));
        for broken in [
            StoreError::corrupt("sessions", "unknown reason `x`"),
            StoreError::Query(DieselError::NotFound),
            StoreError::Migration("a migration failed".into()),
            StoreError::EmailTaken,
        ] {
            let converted = jwt_core::Error::from(broken);
            assert!(matches!(converted, jwt_core::Error::Storage(_)), "{converted:?}");
        }
        let lost = StoreError::from(DieselError::BrokenTransactionManager);
        assert!(matches!(jwt_core::Error::from(lost), jwt_core::Error::Unavailable(_)));
    }
}
