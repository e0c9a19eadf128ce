//! The one error type of the services: a domain failure, which the server turns into an HTTP
//! answer and the command line into one line, each in one place.

use std::sync::Arc;

use jwt_auth_store::StoreError;

/// Why a service refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A value that breaks its rule (an email, a password, a role's name): what is wrong.
    #[error("{0}")]
    InvalidField(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store failed on a read that several callers waited on together.
    #[error(transparent)]
    SharedStore(Arc<StoreError>),
}
