//! The storage traits that refresh rotation and revocation run on, and the records they
//! exchange. A backend implements all three traits; `jwt-core` ships an in-memory one
//! ([`MemoryStore`](crate::MemoryStore)), the `store` crate the SQL ones.
//!
//! The rules (grace period, maximum session age, what reuse means) live in
//! [`Sessions`](crate::Sessions); a backend only has to make each method atomic.

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::feed::FeedEntry;
use crate::values::{ClientInfo, Grant, Revocation, Subject};

/// A session to create at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The session id (`sid`).
    pub id: String,
    /// The user.
    pub user_id: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Its absolute end: no refresh carries it further.
    pub expires_at: DateTime<Utc>,
    /// Who logged in.
    pub client: ClientInfo,
    /// What a client application was granted, for a session of the authorization code grant.
    pub grant: Option<Grant>,
    /// The digest of the single-use authorization code the session starts from, for a session
    /// of the authorization code grant: the store claims the code in the transaction that
    /// creates the session, and fails with [`Error::CodeUsed`](crate::Error::CodeUsed),
    /// creating nothing, if it was claimed or used already. So one code starts at most one
    /// session, however many exchanges race.
    pub code: Option<Vec<u8>>,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session id (`sid`).
    pub id: String,
    /// The user.
    pub user_id: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// The last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// Its absolute end.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    pub revoke_reason: Option<RevokeReason>,
    /// Who logged in.
    pub client: ClientInfo,
    /// What a client application was granted, for a session of the authorization code grant.
    pub grant: Option<Grant>,
}

/// A refresh token to record. Only its `jti` is kept, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// The token's `jti`.
    pub jti: String,
    /// Its session.
    pub session_id: String,
    /// The `jti` of the token it replaced, if any.
    pub parent_jti: Option<String>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Who it was issued to.
    pub client: ClientInfo,
}

/// What [`RefreshTokenStore::rotate`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was current: it is now retired and the replacement recorded.
    Rotated,
    /// The presented token had already been retired at `rotated_at`; nothing was changed.
    AlreadyRotated {
        /// When it was retired.
        rotated_at: DateTime<Utc>,
        /// Who presented it then.
        rotated_by: ClientInfo,
    },
    /// The session is revoked; nothing was changed.
    SessionRevoked,
    /// No such token; nothing was changed.
    NotFound,
}

/// What [`RefreshTokenStore::add_refresh_token`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraceOutcome {
    /// The session was live: the token is recorded and the session's last use updated.
    Recorded,
    /// The session is revoked (or gone); nothing was changed, and the pair must not be handed
    /// out.
    SessionRevoked,
}

/// Where one refresh token stands, as [`RefreshTokenStore::refresh_token_state`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenState {
    /// Not rotated yet: presenting it would rotate it.
    Current,
    /// Rotated (retired) at this time.
    Retired {
        /// When it was rotated.
        rotated_at: DateTime<Utc>,
    },
}

/// Why a session was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// The user logged out everywhere.
    LogoutAll,
    /// A refresh token was replayed after its grace period.
    RefreshReuse,
    /// An administrator revoked it.
    Admin,
    /// The user was disabled.
    UserDisabled,
    /// A client revoked one of its tokens (RFC 7009).
    TokenRevocation,
    /// An operator voided tokens issued before a time (incident response).
    Incident,
    /// The client application the session was granted to was removed.
    ClientRemoved,
    /// An authorization code was exchanged a second time: the session its first exchange
    /// started is revoked (the code may have been stolen).
    CodeReplay,
}

impl RevokeReason {
    /// The stable name stored in databases and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::LogoutAll => "logout_all",
            RevokeReason::RefreshReuse => "refresh_reuse",
            RevokeReason::Admin => "admin",
            RevokeReason::UserDisabled => "user_disabled",
            RevokeReason::TokenRevocation => "token_revocation",
            RevokeReason::Incident => "incident",
            RevokeReason::ClientRemoved => "client_removed",
            RevokeReason::CodeReplay => "code_replay",
        }
    }

    const ALL: [RevokeReason; 9] = [
        RevokeReason::Logout,
        RevokeReason::LogoutAll,
        RevokeReason::RefreshReuse,
        RevokeReason::Admin,
        RevokeReason::UserDisabled,
        RevokeReason::TokenRevocation,
        RevokeReason::Incident,
        RevokeReason::ClientRemoved,
        RevokeReason::CodeReplay,
    ];
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevokeReason {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::storage(UnknownReason(s.to_owned())))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown revocation reason `{0}`")]
struct UnknownReason(String);

/// Sessions and the users behind them.
pub trait SessionStore: Send + Sync {
    /// Creates a session and records its first refresh token, in one transaction.
    fn create_session(
        &self,
        session: &NewSession,
        first_token: &NewRefreshToken,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The session with this id.
    fn session(&self, id: &str) -> impl Future<Output = Result<Option<SessionRecord>>> + Send;

    /// The user as tokens should describe them now; `None` if the user is gone or disabled.
    fn active_subject(&self, user_id: &str)
    -> impl Future<Output = Result<Option<Subject>>> + Send;
}

/// Refresh tokens, known by `jti`.
pub trait RefreshTokenStore: Send + Sync {
    /// Atomically: if `presented_jti` is current, belongs to the replacement's session, and that
    /// session is not revoked, retire it (record
    /// `at`, the replacement's `jti` and client) and record `replacement`, and update the
    /// session's last use; otherwise change nothing and say why (a token of another session is
    /// `NotFound`). Whatever the concurrency, a token is retired once.
    fn rotate(
        &self,
        presented_jti: &str,
        replacement: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<RotateOutcome>> + Send;

    /// Atomically: if the token's session exists and is not revoked, record a further token in
    /// it without retiring any, and update the session's last use to the token's issue time;
    /// otherwise change nothing and
    /// say so. The grace path, where a client that lost the race (or the response) gets a pair
    /// of its own.
    ///
    /// The check and the record are one step, so a revocation committed first is always seen:
    /// no token is ever added to a session after its revocation, and a pair whose token was
    /// recorded was issued in a live session.
    fn add_refresh_token(
        &self,
        token: &NewRefreshToken,
    ) -> impl Future<Output = Result<GraceOutcome>> + Send;

    /// Where token `jti` of session `session_id` stands: current or retired; `None` if the
    /// session has no such token (never issued, pruned, or of another session). A read with
    /// no side effect, for introspection: only [`RefreshTokenStore::rotate`] retires a token.
    fn refresh_token_state(
        &self,
        jti: &str,
        session_id: &str,
    ) -> impl Future<Output = Result<Option<RefreshTokenState>>> + Send;
}

/// Revocations, and the feed that spreads them to every instance.
pub trait RevocationStore: Send + Sync {
    /// Revokes one session and all its refresh tokens, in one transaction. `None` if there is
    /// no such session; an already revoked session keeps its first reason.
    fn revoke_session(
        &self,
        id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Revocation>>> + Send;

    /// Revokes every session of a user and voids the user's tokens issued before `at`, in one
    /// transaction.
    fn revoke_user(
        &self,
        user_id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Revocation>>> + Send;

    /// Voids tokens issued before `before`, for one user or for all.
    fn void_issued_before(
        &self,
        user_id: Option<&str>,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Revocation>> + Send;

    /// The revocation feed by position: the entries after position `after` that still matter
    /// at `now` (every cut-off; a session or a key until it would have expired), oldest first.
    /// Positions only grow, are never reused, and become visible in their order, so that a
    /// reader that resumes after the last position it saw misses nothing.
    fn revocation_feed(
        &self,
        after: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<FeedEntry>>> + Send;

    /// The newest position of the feed, 0 when it is empty.
    fn revocation_feed_head(&self) -> impl Future<Output = Result<i64>> + Send;
}

/// The three store traits together: what [`Sessions`](crate::Sessions) needs.
pub trait AuthStore: SessionStore + RefreshTokenStore + RevocationStore {}

impl<T: SessionStore + RefreshTokenStore + RevocationStore> AuthStore for T {}

/// A shared store is a store: servers keep one behind an `Arc`.
impl<T: SessionStore + ?Sized> SessionStore for std::sync::Arc<T> {
    fn create_session(
        &self,
        session: &NewSession,
        first_token: &NewRefreshToken,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).create_session(session, first_token)
    }

    fn session(&self, id: &str) -> impl Future<Output = Result<Option<SessionRecord>>> + Send {
        (**self).session(id)
    }

    fn active_subject(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<Subject>>> + Send {
        (**self).active_subject(user_id)
    }
}

impl<T: RefreshTokenStore + ?Sized> RefreshTokenStore for std::sync::Arc<T> {
    fn rotate(
        &self,
        presented_jti: &str,
        replacement: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<RotateOutcome>> + Send {
        (**self).rotate(presented_jti, replacement, at)
    }

    fn add_refresh_token(
        &self,
        token: &NewRefreshToken,
    ) -> impl Future<Output = Result<GraceOutcome>> + Send {
        (**self).add_refresh_token(token)
    }

    fn refresh_token_state(
        &self,
        jti: &str,
        session_id: &str,
    ) -> impl Future<Output = Result<Option<RefreshTokenState>>> + Send {
        (**self).refresh_token_state(jti, session_id)
    }
}

impl<T: RevocationStore + ?Sized> RevocationStore for std::sync::Arc<T> {
    fn revoke_session(
        &self,
        id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Revocation>>> + Send {
        (**self).revoke_session(id, reason, at)
    }

    fn revoke_user(
        &self,
        user_id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Revocation>>> + Send {
        (**self).revoke_user(user_id, reason, at)
    }

    fn void_issued_before(
        &self,
        user_id: Option<&str>,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Revocation>> + Send {
        (**self).void_issued_before(user_id, before, at)
    }

    fn revocation_feed(
        &self,
        after: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<FeedEntry>>> + Send {
        (**self).revocation_feed(after, now)
    }

    fn revocation_feed_head(&self) -> impl Future<Output = Result<i64>> + Send {
        (**self).revocation_feed_head()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_reasons_round_trip_through_their_stored_names() {
        for reason in RevokeReason::ALL {
            assert_eq!(reason.to_string(), reason.as_str());
            assert_eq!(reason.as_str().parse::<RevokeReason>().unwrap(), reason);
        }
        assert!(matches!("Logout".parse::<RevokeReason>(), Err(Error::Storage(_))), "exact names");
        assert!(matches!("".parse::<RevokeReason>(), Err(Error::Storage(_))));
    }
}
