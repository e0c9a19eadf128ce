//! The revocation feed's wire format, as a verifier reads it from the server (`GET
//! /auth/revocations`, and each SSE event): the input as JSON for a `FeedPage` and a
//! `FeedEvent`, each event turned into the `Revocation` a `RevocationSet` applies.
//!
//! Asserted: what is read writes back to JSON that reads as the same value; an event gives a
//! revocation exactly when its kind is known and its times are in range, and that revocation
//! is the event's; applied to a set, it voids what it says and nothing issued at or after its
//! cut-off.
#![no_main]

use std::fmt::Debug;

use chrono::DateTime;
use jwt_core::{FeedChange, FeedEvent, FeedPage, Revocation, RevocationSet};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_vec(value).expect("a feed value serializes");
    let again: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!("{value:?} wrote {} which does not read: {e}", String::from_utf8_lossy(&json))
    });
    assert_eq!(&again, value, "written as {}", String::from_utf8_lossy(&json));
}

fn in_range(seconds: i64) -> bool {
    DateTime::from_timestamp(seconds, 0).is_some()
}

fn check_event(event: &FeedEvent) {
    let revocation = event.revocation();
    let at = event.expires_at;
    match (&event.change, &revocation) {
        (FeedChange::Unknown, None) => {}
        (FeedChange::Session { .. } | FeedChange::Key { .. }, None) => assert!(!in_range(at)),
        (FeedChange::User { not_before, .. } | FeedChange::All { not_before }, None) => {
            assert!(!in_range(*not_before));
        }
        (FeedChange::Session { sid }, Some(Revocation::Session { id, expires_at })) => {
            assert_eq!((id, expires_at.timestamp()), (sid, at));
        }
        (FeedChange::Key { kid }, Some(Revocation::Key { kid: revoked, expires_at })) => {
            assert_eq!((revoked, expires_at.timestamp()), (kid, at));
        }
        (
            FeedChange::User { sub, not_before },
            Some(Revocation::IssuedBefore { user_id: Some(user), before }),
        ) => assert_eq!((user, before.timestamp()), (sub, *not_before)),
        (
            FeedChange::All { not_before },
            Some(Revocation::IssuedBefore { user_id: None, before }),
        ) => {
            assert_eq!(before.timestamp(), *not_before);
        }
        (change, revocation) => panic!("{change:?} read as {revocation:?}"),
    }
    let Some(revocation) = revocation else { return };

    let set = RevocationSet::new();
    set.apply(std::slice::from_ref(&revocation));
    // Ids that no event names, to ask about tokens the revocation does not concern.
    let (other_sid, other_sub) = ("\u{0}no-session", "\u{0}no-user");
    match &revocation {
        Revocation::Session { id, .. } => {
            assert!(set.is_revoked(id, other_sub, i64::MAX), "the session is revoked");
            if id != other_sid {
                assert!(!set.is_revoked(other_sid, other_sub, i64::MIN), "and nothing else");
            }
        }
        Revocation::Key { kid, .. } => {
            assert!(set.is_key_revoked(kid), "the key is revoked");
            assert!(!set.is_revoked(other_sid, other_sub, i64::MIN), "and no session");
        }
        Revocation::IssuedBefore { user_id, before } => {
            let cut = before.timestamp();
            let sub = user_id.as_deref().unwrap_or(other_sub);
            assert!(set.is_revoked(other_sid, sub, cut - 1), "issued before the cut-off");
            assert!(!set.is_revoked(other_sid, sub, cut), "issued at the cut-off");
            if user_id.as_deref().is_some_and(|user| user != other_sub) {
                assert!(!set.is_revoked(other_sid, other_sub, cut - 1), "another user");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = serde_json::from_slice::<FeedPage>(data) {
        round_trips(&page);
        page.events.iter().for_each(check_event);
    }
    if let Ok(event) = serde_json::from_slice::<FeedEvent>(data) {
        round_trips(&event);
        check_event(&event);
    }
});
