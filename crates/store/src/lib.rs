//! `jwt-auth-store` keeps users, sessions, refresh tokens (by `jti` only: no token string is
//! ever stored), the revocation feed and the audit trail in SQLite or PostgreSQL, and
//! implements jwt-core's [`SessionStore`](jwt_core::SessionStore),
//! [`RefreshTokenStore`](jwt_core::RefreshTokenStore) and
//! [`RevocationStore`](jwt_core::RevocationStore) on them.
//!
//! `DATABASE_URL` picks the backend: `sqlite://PATH` (or `sqlite:PATH`) for an embedded file,
//! `postgres://…` (or `postgresql://…`) for a server. Callers see one [`Store`] either way.
//!
//! ```no_run
//! use std::sync::Arc;
//! use chrono::Utc;
//! use jwt_auth_store::{NewUser, PasswordHash, Store};
//! use jwt_core::{
//!     Algorithm, KeySet, SessionPolicy, Sessions, SigningKey, TokenPolicy, TokenService,
//! };
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(Store::connect("sqlite://jwt-auth.db").await?);
//! store.migrate().await?;
//! let user = store
//!     .create_user(
//!         &NewUser {
//!             email: "alice@example.com".into(),
//!             password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$…"),
//!             roles: vec!["user".into()],
//!         },
//!         Utc::now(),
//!     )
//!     .await?;
//! let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
//! let tokens = Arc::new(TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys)?);
//! let sessions = Sessions::new(tokens, store.clone(), SessionPolicy::default());
//! # let _ = (user, sessions);
//! # Ok(()) }
//! ```
//!
//! The queries are written once (`queries.rs`) and compiled once per backend; see `sqlite.rs`
//! for how SQLite is driven and why.

#![warn(missing_docs)]

mod auth;
mod changes;
mod clients;
mod codes;
mod email;
mod error;
mod keys;
mod leadership;
mod lifetimes;
mod model;
mod outbox;
mod postgres;
mod rows;
mod schema;
mod sqlite;
mod store;

pub use changes::{Change, Changes};
pub use clients::ServiceClient;
pub use codes::{AuthorizationCode, Redemption};
pub use email::{InvalidEmail, MAX_EMAIL_BYTES, normalize_email};
pub use error::{BoxError, StoreError};
pub use keys::{IdTokenKeyTable, ResealedKey, StoredSigningKey};
pub use leadership::Leadership;
pub use lifetimes::TokenLifetimes;
pub use rows::CHANGE_KEPT;
// What `Store` answers to jwt-core's `RefreshTokenStore::refresh_token_state`.
pub use jwt_core::RefreshTokenState;
// What `Store` answers to jwt-core's `RevocationStore::revocation_feed`.
pub use jwt_core::FeedEntry;
pub use model::{
    BackendKind, Credentials, EventKind, EventQuery, ExistingEmails, Imported, NewUser,
    OutboxChange, OutboxEntry, PasswordHash, RecordedEvent, SecurityEvent, StoreOptions,
    UpdatedUser, User, UserPage, UserUpdate,
};
pub use store::{Store, postgres_url_with_database};
