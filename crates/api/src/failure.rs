//! Why a command, or the start of the server, failed: one line each, and whether time may
//! mend it. A service's refusal becomes its line here, once.

use jwt_auth_service::ServiceError;
use jwt_auth_service::keys::KeyError;

use crate::config::ConfigError;

/// Any failure of a command, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be reached (in time): worth retrying, where a bad setting is not.
    #[error(transparent)]
    Unreachable(ConfigError),
    #[error("{0}")]
    Store(#[from] jwt_auth_store::StoreError),
    #[error("{0}")]
    Core(#[from] jwt_core::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Keys(KeyError),
    /// A service refused: its own words.
    #[error(transparent)]
    Service(ServiceError),
}

/// A service's refusal or failure, as a command says it: the store's and jwt-core's failures
/// as they are, the others in the service's words unless a command's flag says it better.
impl From<ServiceError> for CliError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Store(e) => CliError::Store(e),
            ServiceError::Core(e @ jwt_core::Error::CutOffInFuture(_)) => {
                CliError::Usage(format!("--issued-before {e}"))
            }
            ServiceError::Core(e) => CliError::Core(e),
            ServiceError::LimitOutOfRange { most } => {
                CliError::Usage(format!("--limit must be 1 to {most}"))
            }
            // Of the commands, only `sessions revoke --user` names a user by id alone.
            ServiceError::UnknownUserId(id) => {
                CliError::Usage(format!("--user: no user has the id `{id}`"))
            }
            ServiceError::UnknownEventKind(name) => {
                CliError::Usage(format!("--kind `{name}`: no such kind of event"))
            }
            ServiceError::UnrecordedEventKind(kind) => CliError::Usage(format!(
                "--kind `{kind}`: such events are counted (GET /metrics), never stored in the trail"
            )),
            other => CliError::Service(other),
        }
    }
}

/// A refusal of the keys, as a command says it.
impl From<KeyError> for CliError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::NotInDatabase => CliError::Config(ConfigError {
                setting: "KEY_ENCRYPTION_KEY",
                problem: "`keys revoke` works on keys stored in the database; set it (see \
                          docs/operations.md, Keys) or delete the key file from DATA_DIR/keys/"
                    .into(),
            }),
            other => CliError::Keys(other),
        }
    }
}

impl CliError {
    /// A file of users that cannot be imported: the file, the line at fault, and that nothing
    /// was imported.
    pub fn unreadable_import(file: &str, e: jwt_auth_service::import::ImportError) -> Self {
        CliError::Usage(format!("{file}: {e}; nothing was imported"))
    }

    /// An import that the service refused or failed: an email registered already is named
    /// with the file and its line, and the flag that would skip it.
    pub fn refused_import(file: &str, e: ServiceError) -> Self {
        match e {
            e @ ServiceError::ImportedEmailTaken { .. } => CliError::Usage(format!(
                "{file}: {e} (--skip-existing skips such lines); nothing was imported"
            )),
            other => other.into(),
        }
    }
}

impl CliError {
    /// Whether the error is the database being out of reach (refused or reset connections, no
    /// answer within the connect timeout), which time may mend; a bad setting, a refusal by
    /// the server (a wrong password) or a fault in the data will not be.
    pub fn is_unreachable(&self) -> bool {
        use jwt_auth_store::StoreError::Unavailable;
        matches!(
            self,
            CliError::Unreachable(_)
                | CliError::Store(Unavailable(_))
                | CliError::Core(jwt_core::Error::Unavailable(_))
        ) || matches!(self, CliError::Keys(e) if e.is_unavailable())
    }
}
