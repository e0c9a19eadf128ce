//! What the jwt-auth server does, whoever asks: the HTTP routes and the command line are
//! adapters over these services. Nothing here knows of a web framework (`.ci/layering` checks
//! it): accounts and their rules, user administration, service clients, the signing keys,
//! the password and refresh grants, password hashing on its own threads (and the hashes other systems made), the login
//! throttle, the user cache, the revocation feed as an instance holds it, the import of users,
//! the audit trail, the metrics, and the change feed on NATS JetStream.

#![warn(missing_docs)]

pub mod accounts;
pub mod audit;
pub mod authorize;
pub mod change_stream;
pub mod client_cache;
pub mod clients;
pub mod code_grant;
pub mod dpop;
pub mod email;
pub mod error;
pub mod feed;
pub mod grants;
pub mod id_token_keys;
pub mod import;
pub mod instance;
pub mod key_files;
pub mod keys;
pub mod legacy_hash;
pub mod metrics;
pub mod openid;
pub mod page;
pub mod passwords;
pub mod pkce;
pub mod redirect;
pub mod secret;
pub mod sign_in;
pub mod throttle;
pub mod user_cache;
pub mod users;
pub mod web_origins;

pub use error::{ConfigError, ServiceError};
