//! An in-memory implementation of the store traits: for tests, examples, and small services
//! that can afford to lose sessions on restart. Every method holds one lock for its whole
//! duration, which makes each one atomic.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::feed::FeedEntry;
use crate::store::{
    GraceOutcome, NewRefreshToken, NewSession, RefreshTokenState, RefreshTokenStore,
    RevocationStore, RevokeReason, RotateOutcome, SessionRecord, SessionStore,
};
use crate::values::{ClientInfo, Revocation, Subject};

/// Sessions, refresh tokens, revocations and users, in memory.
///
/// ```
/// use jwt_core::{MemoryStore, Subject};
/// let store = MemoryStore::new();
/// store.put_user(Subject { id: "u1".into(), roles: vec![], email: None });
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, Subject>,
    sessions: HashMap<String, SessionRecord>,
    tokens: HashMap<String, TokenRow>,
    /// Revocations with the time they were recorded, oldest first.
    feed: Vec<(DateTime<Utc>, Revocation)>,
    /// The digests of the authorization codes sessions were started from.
    claimed_codes: HashSet<Vec<u8>>,
}

#[derive(Debug)]
struct TokenRow {
    rotated_at: Option<DateTime<Utc>>,
    rotated_by: ClientInfo,
    session_id: String,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an active user.
    pub fn put_user(&self, subject: Subject) {
        self.lock().users.insert(subject.id.clone(), subject);
    }

    /// Records a revocation in the feed as it is, whatever it names (for tests).
    #[cfg(test)]
    pub(crate) fn record(&self, at: DateTime<Utc>, revocation: Revocation) {
        self.lock().feed.push((at, revocation));
    }

    /// Removes a user: refreshes of their sessions fail from now on.
    pub fn remove_user(&self, user_id: &str) {
        self.lock().users.remove(user_id);
    }

    /// How many refresh tokens have been recorded (current and retired).
    pub fn refresh_token_count(&self) -> usize {
        self.lock().tokens.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn insert_token(&mut self, token: &NewRefreshToken) {
        self.tokens.insert(
            token.jti.clone(),
            TokenRow {
                rotated_at: None,
                rotated_by: ClientInfo::default(),
                session_id: token.session_id.clone(),
            },
        );
    }

    fn revoke(&mut self, id: &str, reason: RevokeReason, at: DateTime<Utc>) -> Option<Revocation> {
        let session = self.sessions.get_mut(id)?;
        if session.revoked_at.is_none() {
            session.revoked_at = Some(at);
            session.revoke_reason = Some(reason);
        }
        let revocation = Revocation::Session { id: id.to_owned(), expires_at: session.expires_at };
        self.feed.push((at, revocation.clone()));
        Some(revocation)
    }
}

impl SessionStore for MemoryStore {
    async fn create_session(&self, session: &NewSession, first: &NewRefreshToken) -> Result<()> {
        let mut state = self.lock();
        if let Some(code) = &session.code
            && !state.claimed_codes.insert(code.clone())
        {
            return Err(crate::Error::CodeUsed);
        }
        state.sessions.insert(
            session.id.clone(),
            SessionRecord {
                id: session.id.clone(),
                user_id: session.user_id.clone(),
                created_at: session.created_at,
                last_used_at: session.created_at,
                expires_at: session.expires_at,
                revoked_at: None,
                revoke_reason: None,
                client: session.client.clone(),
                grant: session.grant.clone(),
            },
        );
        state.insert_token(first);
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn active_subject(&self, user_id: &str) -> Result<Option<Subject>> {
        Ok(self.lock().users.get(user_id).cloned())
    }
}

impl RefreshTokenStore for MemoryStore {
    async fn rotate(
        &self,
        presented_jti: &str,
        replacement: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> Result<RotateOutcome> {
        let mut state = self.lock();
        let Some(row) = state.tokens.get(presented_jti) else {
            return Ok(RotateOutcome::NotFound);
        };
        if row.session_id != replacement.session_id {
            return Ok(RotateOutcome::NotFound);
        }
        let session_id = row.session_id.clone();
        if let Some(rotated_at) = row.rotated_at {
            return Ok(RotateOutcome::AlreadyRotated {
                rotated_at,
                rotated_by: row.rotated_by.clone(),
            });
        }
        match state.sessions.get_mut(&session_id) {
            Some(session) if session.revoked_at.is_none() => session.last_used_at = at,
            _ => return Ok(RotateOutcome::SessionRevoked),
        }
        let row = state.tokens.get_mut(presented_jti).expect("looked up under the same lock");
        row.rotated_at = Some(at);
        row.rotated_by = replacement.client.clone();
        state.insert_token(replacement);
        Ok(RotateOutcome::Rotated)
    }

    async fn add_refresh_token(&self, token: &NewRefreshToken) -> Result<GraceOutcome> {
        let mut state = self.lock();
        match state.sessions.get_mut(&token.session_id) {
            Some(session) if session.revoked_at.is_none() => {
                session.last_used_at = token.issued_at;
            }
            _ => return Ok(GraceOutcome::SessionRevoked),
        }
        state.insert_token(token);
        Ok(GraceOutcome::Recorded)
    }

    async fn refresh_token_state(
        &self,
        jti: &str,
        session_id: &str,
    ) -> Result<Option<RefreshTokenState>> {
        let state = self.lock();
        Ok(state.tokens.get(jti).filter(|row| row.session_id == session_id).map(|row| {
            match row.rotated_at {
                None => RefreshTokenState::Current,
                Some(rotated_at) => RefreshTokenState::Retired { rotated_at },
            }
        }))
    }
}

impl RevocationStore for MemoryStore {
    async fn revoke_session(
        &self,
        id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> Result<Option<Revocation>> {
        Ok(self.lock().revoke(id, reason, at))
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> Result<Vec<Revocation>> {
        let mut state = self.lock();
        let ids: Vec<String> = state
            .sessions
            .values()
            .filter(|s| s.user_id == user_id && s.revoked_at.is_none())
            .map(|s| s.id.clone())
            .collect();
        let mut revocations: Vec<Revocation> =
            ids.iter().filter_map(|id| state.revoke(id, reason, at)).collect();
        let cut_off = Revocation::IssuedBefore { user_id: Some(user_id.to_owned()), before: at };
        state.feed.push((at, cut_off.clone()));
        revocations.push(cut_off);
        Ok(revocations)
    }

    async fn void_issued_before(
        &self,
        user_id: Option<&str>,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Revocation> {
        let cut_off = Revocation::IssuedBefore { user_id: user_id.map(str::to_owned), before };
        self.lock().feed.push((at, cut_off.clone()));
        Ok(cut_off)
    }

    async fn revocation_feed(&self, after: i64, now: DateTime<Utc>) -> Result<Vec<FeedEntry>> {
        let state = self.lock();
        let matters = |revocation: &Revocation| match revocation {
            Revocation::IssuedBefore { .. } => true,
            Revocation::Session { expires_at, .. } | Revocation::Key { expires_at, .. } => {
                *expires_at > now
            }
        };
        Ok(state
            .feed
            .iter()
            .zip(1..)
            .filter(|((_, revocation), position)| *position > after && matters(revocation))
            .map(|((recorded_at, revocation), position)| FeedEntry {
                position,
                recorded_at: *recorded_at,
                revocation: revocation.clone(),
            })
            .collect())
    }

    async fn revocation_feed_head(&self) -> Result<i64> {
        Ok(i64::try_from(self.lock().feed.len()).unwrap_or(i64::MAX))
    }
}
