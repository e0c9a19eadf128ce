//! The wire format of the revocation feed a server publishes for other services that verify
//! its tokens themselves (`GET /auth/revocations`): each [`FeedEvent`] says which tokens are
//! void and until when that matters, and turns into the [`Revocation`] a [`RevocationSet`]
//! applies.
//!
//! [`RevocationSet`]: crate::RevocationSet

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::values::Revocation;

/// One event of the feed: `{"cursor", "kind", ..., "expires_at"}`, times as NumericDate
/// (seconds since the epoch).
///
/// ```
/// use jwt_core::{FeedChange, FeedEvent, Revocation};
///
/// let event: FeedEvent = serde_json::from_str(
///     r#"{"cursor": "7", "kind": "session", "sid": "s1", "expires_at": 1900000000}"#,
/// )?;
/// assert_eq!(event.change, FeedChange::Session { sid: "s1".into() });
/// assert!(matches!(event.revocation(), Some(Revocation::Session { id, .. }) if id == "s1"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// Where a reader that has applied this event resumes (`after=`, `Last-Event-ID`).
    pub cursor: String,
    /// What the event voids.
    #[serde(flatten)]
    pub change: FeedChange,
    /// After this time every token the event voids has expired: it no longer matters.
    pub expires_at: i64,
}

/// What a [`FeedEvent`] voids, by its `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeedChange {
    /// Every token of session `sid`.
    Session {
        /// The session id (the tokens' `sid`).
        sid: String,
    },
    /// Every token of user `sub` issued before `not_before` (a logout everywhere).
    User {
        /// The user id (the tokens' `sub`).
        sub: String,
        /// The cut-off, seconds since the epoch: tokens with an earlier `iat` are void.
        not_before: i64,
    },
    /// Every token of anyone issued before `not_before`.
    All {
        /// The cut-off, seconds since the epoch.
        not_before: i64,
    },
    /// Every token signed with key `kid`.
    Key {
        /// The key id (the tokens' `kid` header).
        kid: String,
    },
    /// On the change stream only, never on `GET /auth/revocations`: user `sub`'s record
    /// changed (roles, the disabled flag), so a cached copy of it is stale. Voids no token by
    /// itself: a disabled user's tokens are voided by a `user` event of their own.
    UserChanged {
        /// The user id.
        sub: String,
    },
    /// On the change stream only, never on `GET /auth/revocations`: the signing keys changed (a
    /// key published, retired or revoked), so the key set is to be read again.
    KeysChanged,
    /// A kind this version does not know (a newer server): skipped, never an error.
    #[serde(other)]
    Unknown,
}

/// One entry of a store's revocation feed (see
/// [`RevocationStore::revocation_feed`](crate::RevocationStore::revocation_feed)): its position,
/// which only grows and is never reused, when it was recorded, and what it revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// The entry's position in the feed.
    pub position: i64,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// What it revokes.
    pub revocation: Revocation,
}

/// One page of the feed as JSON: the events after the cursor asked for, oldest first, and
/// the cursor to ask with next (the last event's, or the one asked with when none is new).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPage {
    /// The events, oldest first.
    pub events: Vec<FeedEvent>,
    /// Where to resume.
    pub cursor: String,
}

impl FeedEvent {
    /// The event for revocation `revocation`, recorded at `cursor`. A cut-off matters for
    /// `token_lifetime` after it (the longest a token issued before it can live); a session or
    /// a key for as long as the revocation says.
    ///
    /// ```
    /// use chrono::{TimeDelta, TimeZone, Utc};
    /// use jwt_core::{FeedChange, FeedEvent, Revocation};
    ///
    /// let before = Utc.timestamp_opt(1_900_000_000, 0).unwrap();
    /// let logout_all = Revocation::IssuedBefore { user_id: Some("alice".into()), before };
    /// let event = FeedEvent::from_revocation("8".into(), &logout_all, TimeDelta::minutes(30));
    /// assert_eq!(event.change, FeedChange::User { sub: "alice".into(), not_before: 1_900_000_000 });
    /// assert_eq!(event.expires_at, 1_900_000_000 + 1_800);
    /// assert_eq!(event.revocation(), Some(logout_all));
    /// ```
    pub fn from_revocation(
        cursor: String,
        revocation: &Revocation,
        token_lifetime: TimeDelta,
    ) -> FeedEvent {
        let (change, expires_at) = match revocation {
            Revocation::Session { id, expires_at } => {
                (FeedChange::Session { sid: id.clone() }, *expires_at)
            }
            Revocation::IssuedBefore { user_id, before } => {
                let not_before = before.timestamp();
                let change = match user_id {
                    Some(sub) => FeedChange::User { sub: sub.clone(), not_before },
                    None => FeedChange::All { not_before },
                };
                (change, *before + token_lifetime)
            }
            Revocation::Key { kid, expires_at } => {
                (FeedChange::Key { kid: kid.clone() }, *expires_at)
            }
        };
        FeedEvent { cursor, change, expires_at: expires_at.timestamp() }
    }

    /// The event for a store's feed entry, with its position as the cursor. It matters until
    /// every access token it voids has expired: for a session or a key, `token_lifetime` after
    /// it was recorded at the latest, whatever the revocation says.
    ///
    /// ```
    /// use chrono::{TimeDelta, TimeZone, Utc};
    /// use jwt_core::{FeedEntry, FeedEvent, Revocation};
    ///
    /// let recorded_at = Utc.timestamp_opt(1_900_000_000, 0).unwrap();
    /// let month = TimeDelta::days(30);
    /// let revocation = Revocation::Session { id: "s".into(), expires_at: recorded_at + month };
    /// let entry = FeedEntry { position: 3, recorded_at, revocation };
    /// let event = FeedEvent::from_entry(&entry, TimeDelta::minutes(30));
    /// assert_eq!((event.cursor.as_str(), event.expires_at), ("3", 1_900_000_000 + 1_800));
    /// ```
    pub fn from_entry(entry: &FeedEntry, token_lifetime: TimeDelta) -> FeedEvent {
        let mut event = FeedEvent::from_revocation(
            entry.position.to_string(),
            &entry.revocation,
            token_lifetime,
        );
        if matches!(entry.revocation, Revocation::Session { .. } | Revocation::Key { .. }) {
            let horizon = (entry.recorded_at + token_lifetime).timestamp();
            event.expires_at = event.expires_at.min(horizon);
        }
        event
    }

    /// The revocation to apply to a [`RevocationSet`](crate::RevocationSet); `None` for an
    /// unknown kind or a time out of range.
    pub fn revocation(&self) -> Option<Revocation> {
        let at = |secs: i64| DateTime::<Utc>::from_timestamp(secs, 0);
        Some(match &self.change {
            FeedChange::Session { sid } => {
                Revocation::Session { id: sid.clone(), expires_at: at(self.expires_at)? }
            }
            FeedChange::User { sub, not_before } => {
                Revocation::IssuedBefore { user_id: Some(sub.clone()), before: at(*not_before)? }
            }
            FeedChange::All { not_before } => {
                Revocation::IssuedBefore { user_id: None, before: at(*not_before)? }
            }
            FeedChange::Key { kid } => {
                Revocation::Key { kid: kid.clone(), expires_at: at(self.expires_at)? }
            }
            FeedChange::UserChanged { .. } | FeedChange::KeysChanged | FeedChange::Unknown => {
                return None;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_kind_round_trips_through_json_and_revocations() {
        let t = Utc.timestamp_opt(1_900_000_000, 0).unwrap();
        let ttl = TimeDelta::minutes(30);
        for revocation in [
            Revocation::Session { id: "s".into(), expires_at: t },
            Revocation::IssuedBefore { user_id: Some("u".into()), before: t },
            Revocation::IssuedBefore { user_id: None, before: t },
            Revocation::Key { kid: "k".into(), expires_at: t },
        ] {
            let event = FeedEvent::from_revocation("1".into(), &revocation, ttl);
            let json = serde_json::to_string(&event).unwrap();
            let back: FeedEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(back, event, "{json}");
            assert_eq!(back.revocation(), Some(revocation), "{json}");
        }
        let all = FeedEvent::from_revocation(
            "2".into(),
            &Revocation::IssuedBefore { user_id: None, before: t },
            ttl,
        );
        assert_eq!(
            serde_json::to_value(&all).unwrap(),
            serde_json::json!({"cursor": "2", "kind": "all", "not_before": 1_900_000_000i64, "expires_at": 1_900_001_800i64})
        );
    }

    #[test]
    fn a_session_or_a_key_matters_until_its_access_tokens_expire_or_it_ends() {
        let t = Utc.timestamp_opt(1_900_000_000, 0).unwrap();
        let lifetime = TimeDelta::minutes(30);
        let month = t + TimeDelta::days(30);
        let minute = t + TimeDelta::minutes(1);
        for (revocation, expires_at) in [
            (Revocation::Session { id: "s".into(), expires_at: month }, t + lifetime),
            (Revocation::Session { id: "s".into(), expires_at: minute }, minute),
            (Revocation::Key { kid: "k".into(), expires_at: month }, t + lifetime),
            (Revocation::IssuedBefore { user_id: None, before: t }, t + lifetime),
        ] {
            let entry = FeedEntry { position: 3, recorded_at: t, revocation };
            let event = FeedEvent::from_entry(&entry, lifetime);
            assert_eq!((event.cursor.as_str(), event.expires_at), ("3", expires_at.timestamp()));
        }
    }

    #[test]
    fn the_stream_only_kinds_round_trip_and_void_nothing() {
        for (change, json) in [
            (
                FeedChange::UserChanged { sub: "u".into() },
                serde_json::json!({"cursor": "4", "kind": "user_changed", "sub": "u", "expires_at": 9}),
            ),
            (
                FeedChange::KeysChanged,
                serde_json::json!({"cursor": "4", "kind": "keys_changed", "expires_at": 9}),
            ),
        ] {
            let event = FeedEvent { cursor: "4".into(), change, expires_at: 9 };
            assert_eq!(serde_json::to_value(&event).unwrap(), json);
            assert_eq!(serde_json::from_value::<FeedEvent>(json).unwrap(), event);
            assert_eq!(event.revocation(), None);
        }
    }

    #[test]
    fn an_unknown_kind_is_skipped_not_an_error() {
        let event: FeedEvent = serde_json::from_str(
            r#"{"cursor": "3", "kind": "tenant", "tenant": "t", "expires_at": 1}"#,
        )
        .unwrap();
        assert_eq!(event.change, FeedChange::Unknown);
        assert_eq!(event.revocation(), None);
    }
}
