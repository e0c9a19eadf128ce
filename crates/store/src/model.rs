//! The records the store exchanges with the server beyond jwt-core's sessions and tokens:
//! users, password hashes (never printed), security events, and the connection options.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jwt_core::{ClientInfo, Revocation};

use crate::error::StoreError;

/// An argon2id PHC string. The store keeps it as given (hashing happens in the server) and
/// never shows it in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string.
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    /// The PHC string, for the password verifier.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user to create; the store picks the id (a UUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The email address, kept as written; unique without regard to case.
    pub email: String,
    /// The hash of the password: an argon2id PHC string, or, for users imported from
    /// another system, that system's hash (the server checks its form).
    pub password_hash: PasswordHash,
    /// The roles.
    pub roles: Vec<String>,
}

/// What [`Store::import_users`](crate::store::Store::import_users) does with a user whose email is
/// registered already (compared without regard to case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingEmails {
    /// Fail the whole import with [`StoreError::ImportedEmailTaken`](crate::error::StoreError):
    /// importing over an existing account never happens silently.
    Refuse,
    /// Skip such users, and name them in [`Imported::skipped`].
    Skip,
}

/// What [`Store::import_users`](crate::store::Store::import_users) did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Imported {
    /// How many users it created.
    pub created: u64,
    /// The emails (normalized) it skipped because a user with that email exists already.
    pub skipped: Vec<String>,
}

/// A user as stored, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user id (a UUID string), the `sub` of the user's tokens.
    pub id: String,
    /// The email address.
    pub email: String,
    /// The roles.
    pub roles: Vec<String>,
    /// A disabled user cannot log in or refresh.
    pub disabled: bool,
    /// Tokens issued to this user before this time are void (set by logout-all).
    pub tokens_valid_after: Option<DateTime<Utc>>,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the user was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user with the password hash, for login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// The hash to verify the presented password against.
    pub password_hash: PasswordHash,
}

/// One page of users and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The users of the page, oldest first.
    pub users: Vec<User>,
    /// How many users there are.
    pub total: u64,
}

/// What an administrator changes on a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// New roles.
    pub roles: Option<Vec<String>>,
    /// Disable (which revokes every session of the user) or enable.
    pub disabled: Option<bool>,
}

/// A user after an update, and the revocations the update made (when it disabled the user),
/// to apply to the local revocation set at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedUser {
    /// The user as it now is.
    pub user: User,
    /// The sessions revoked and the issued-before cut-off, if the user was disabled.
    pub revocations: Vec<Revocation>,
}

/// What happened, in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A successful login.
    LoginSucceeded,
    /// A failed login (unknown user or wrong password).
    LoginFailed,
    /// A refresh token was rotated.
    Refresh,
    /// A refresh token was replayed after its grace period; the session was revoked.
    RefreshReuseDetected,
    /// A user logged out.
    Logout,
    /// A user logged out everywhere.
    LogoutAll,
    /// An administrator revoked a user's sessions.
    AdminRevoke,
    /// A user was created.
    UserCreated,
    /// An administrator changed a user's roles or disabled flag.
    UserUpdated,
    /// A client revoked a token (RFC 7009).
    TokenRevoked,
    /// An operator voided tokens issued before a time.
    TokensVoided,
    /// An administrator made a new signing key.
    KeyRotated,
    /// An administrator revoked a signing key.
    KeyRevoked,
    /// An operator imported users (`jwt-auth user import`); the detail has the counts.
    UsersImported,
    /// An operator deleted a user, revoking everything of theirs.
    UserDeleted,
}

impl EventKind {
    /// Every kind, in the order they are listed to operators.
    pub const ALL: [EventKind; 15] = [
        EventKind::LoginSucceeded,
        EventKind::LoginFailed,
        EventKind::Refresh,
        EventKind::RefreshReuseDetected,
        EventKind::Logout,
        EventKind::LogoutAll,
        EventKind::AdminRevoke,
        EventKind::UserCreated,
        EventKind::UserUpdated,
        EventKind::TokenRevoked,
        EventKind::TokensVoided,
        EventKind::KeyRotated,
        EventKind::KeyRevoked,
        EventKind::UsersImported,
        EventKind::UserDeleted,
    ];

    /// Whether events of this kind are written to the trail. Refreshes are not: they are
    /// counted (a metric), since a row per rotation would dwarf everything else.
    pub fn is_recorded(self) -> bool {
        self != EventKind::Refresh
    }

    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LoginSucceeded => "login_succeeded",
            EventKind::LoginFailed => "login_failed",
            EventKind::Refresh => "refresh",
            EventKind::RefreshReuseDetected => "refresh_reuse_detected",
            EventKind::Logout => "logout",
            EventKind::LogoutAll => "logout_all",
            EventKind::AdminRevoke => "admin_revoke",
            EventKind::UserCreated => "user_created",
            EventKind::UserUpdated => "user_updated",
            EventKind::TokenRevoked => "token_revoked",
            EventKind::TokensVoided => "tokens_voided",
            EventKind::KeyRotated => "key_rotated",
            EventKind::KeyRevoked => "key_revoked",
            EventKind::UsersImported => "users_imported",
            EventKind::UserDeleted => "user_deleted",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::corrupt("security_events", format!("unknown kind `{s}`")))
    }
}

/// A security event to append to the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The user concerned, if known.
    pub user_id: Option<String>,
    /// The session concerned, if any.
    pub session_id: Option<String>,
    /// Where the request came from.
    pub client: ClientInfo,
    /// Free text for an operator (never a token or a password).
    pub detail: Option<String>,
}

/// A security event as recorded, with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Increases with every event recorded.
    pub id: i64,
    /// The event.
    pub event: SecurityEvent,
}

/// Which events [`Store::events`](crate::store::Store::events) returns: newest first, at most
/// `limit`, of one user and/or one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this user's events.
    pub user_id: Option<String>,
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// At most this many.
    pub limit: u32,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self { user_id: None, kind: None, limit: 100 }
    }
}

/// Which database a [`Store`](crate::store::Store) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Connection settings; the defaults suit a small server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// PostgreSQL: the pool size. SQLite: how many read connections (writes go through one
    /// connection, see the crate documentation).
    pub max_connections: u32,
    /// How long a call waits for a free connection before [`StoreError::Unavailable`]
    /// (SQLite writes queue for the one writer instead). PostgreSQL: a pool that is merely
    /// busy makes calls wait this long; an unreachable database does not (see
    /// `connect_timeout`).
    pub acquire_timeout: Duration,
    /// PostgreSQL: how long one connection attempt may take (TCP connect, start-up and
    /// authentication) before the database counts as unreachable. While it is, every call
    /// fails at once with [`StoreError::Unavailable`] and a background task reconnects. Below
    /// a second, so that the call which meets an unreachable host is answered within one.
    pub connect_timeout: Duration,
    /// SQLite: how long a statement waits for another process's lock (`busy_timeout`).
    pub busy_timeout: Duration,
    /// PostgreSQL: whether writes `NOTIFY` the change channel inside their transaction (see
    /// [`Store::changes`](crate::Store::changes)). A transaction that notified takes a
    /// database-wide lock at commit; with the change stream on NATS, nothing listens, and
    /// writers skip it.
    pub notify_changes: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_millis(750),
            busy_timeout: Duration::from_secs(5),
            notify_changes: true,
        }
    }
}

/// One row of the outbox: its position (the feed's cursor), when it was recorded, and what
/// changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The row's position: ids only grow, and commit in order.
    pub position: i64,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// What changed.
    pub change: OutboxChange,
}

/// What an [`OutboxEntry`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxChange {
    /// A revocation, as the revocation feed serves it.
    Revocation(Revocation),
    /// A user's record changed (roles, the disabled flag, deletion).
    UserChanged(String),
    /// The signing keys changed (stored, rotated or revoked).
    KeysChanged,
}
