//! The one error type of the services: a domain failure, which the server turns into an HTTP
//! answer and the command line into one line, each in one place.

use std::sync::Arc;

use jwt_auth_store::StoreError;

/// Why a service refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A value that breaks its rule (an email, a password, a client's name): what is wrong.
    #[error("{0}")]
    InvalidField(String),
    /// Not a role's name (see [`Role`](crate::accounts::Role)): the name.
    #[error("`{0}` is not a role name (1 to 64 characters, no whitespace)")]
    InvalidRole(String),
    /// No user has this id (which may not even be a UUID).
    #[error("no user has the id `{0}`")]
    UnknownUserId(String),
    /// A page of more items than the listing gives at once, or of none.
    #[error("limit must be between 1 and {most}")]
    LimitOutOfRange {
        /// The listing's largest page.
        most: u32,
    },
    /// An offset past what the database counts.
    #[error("offset must be at most {most}")]
    OffsetOutOfRange {
        /// The largest offset.
        most: u64,
    },
    /// Another service client has this name.
    #[error("a client named `{0}` exists already")]
    ClientNameTaken(String),
    /// No service client has this id, nor this name.
    #[error("no client has the id or the name `{0}`; nothing changed")]
    UnknownClient(String),
    /// The client with this id was removed meanwhile, by someone else.
    #[error("no client has the id `{0}` any more; nothing changed")]
    ClientGone(String),
    /// The system gave no random bytes for a secret.
    #[error("no random bytes")]
    NoRandomness,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store failed on a read that several callers waited on together.
    #[error(transparent)]
    SharedStore(Arc<StoreError>),
}

/// A setting that failed validation: names the setting, says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    /// The environment variable of the setting.
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    /// `setting` is wrong: `problem` says how.
    pub fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self { setting, problem: problem.into() }
    }
}
