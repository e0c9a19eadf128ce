//! The one error type of the services: a domain failure, which the server turns into an HTTP
//! answer and the command line into one line, each in one place.

use std::sync::Arc;

use jwt_auth_store::{EventKind, StoreError};

use crate::passwords::HashError;

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
    /// No user has this id, nor this email.
    #[error("no user has the id or the email `{0}`")]
    UnknownUser(String),
    /// The user has no session with this id (or the user id is not one).
    #[error("no session `{session}` of user `{user}`")]
    UnknownSession {
        /// The user id, as given.
        user: String,
        /// The session id, as given.
        session: String,
    },
    /// The user with this id was deleted meanwhile, by someone else.
    #[error("user {0} was deleted meanwhile")]
    UserGone(String),
    /// A user of an import whose email is registered already: nothing was imported.
    #[error("line {line}: email `{email}` is registered already")]
    ImportedEmailTaken {
        /// The user's line, from 1.
        line: usize,
        /// The email.
        email: String,
    },
    /// No kind of event has this name.
    #[error("no kind of event is called `{0}`")]
    UnknownEventKind(String),
    /// Events of this kind are counted, never stored in the trail.
    #[error("`{0}` events are counted, never stored in the trail")]
    UnrecordedEventKind(EventKind),
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
    /// An unknown user, a wrong password or a disabled account, alike.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// An authorization code, or a refresh token presented by a client, that the client
    /// cannot use (RFC 6749 §5.2 `invalid_grant`): why.
    #[error("{0}")]
    InvalidGrant(String),
    /// A service client's id and secret do not authenticate it (or name no client).
    #[error("client authentication failed")]
    ClientAuthenticationFailed,
    /// Too many attempts from this address, or at this account: try again in this many
    /// seconds.
    #[error("too many attempts; try again in {retry_after} s")]
    RateLimited {
        /// Seconds until an attempt is counted again.
        retry_after: u64,
    },
    /// The system gave no random bytes for a secret.
    #[error("no random bytes")]
    NoRandomness,
    /// A password could not be hashed.
    #[error(transparent)]
    Hashing(#[from] HashError),
    /// jwt-core refused (a cut-off in the future) or its store failed.
    #[error(transparent)]
    Core(#[from] jwt_core::Error),
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
