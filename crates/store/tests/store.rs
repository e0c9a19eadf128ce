//! The store's behaviour, the same on both backends: users, sessions and rotation (also under
//! 32 concurrent callers), the revocation feed, pruning, the audit trail, durability across a
//! reopen, and jwt-core's `Sessions` rules running end to end on the SQL store.
#![allow(clippy::disallowed_methods)] // test fixtures at the system's time

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_store::{
    BackendKind, EventKind, EventQuery, RefreshTokenState, SecurityEvent, StoreError, UserUpdate,
};
use jwt_core::{
    Algorithm, ClientInfo, Error, GraceOutcome, KeySet, ManualClock, RefreshTokenStore, Revocation,
    RevocationStore, RevokeReason, RotateOutcome, SessionPolicy, SessionStore, Sessions,
    SigningKey, TokenPolicy, TokenService,
};

use jwt_auth_store::{AuthorizationCode, Redemption, ServiceClient};
use jwt_auth_testdb::backend_tests;

use crate::common::{self, TestDb, client, secs, session, signing_key, t0, token, user};

backend_tests!(
    authorization_codes_are_used_once_and_a_replay_names_the_session_to_revoke,
    ending_a_sign_in_session_ends_the_sessions_started_under_it_and_keeps_grants,
    consents_are_kept_per_user_and_client_and_forgotten_with_the_client,
    migrations_are_idempotent_and_ping_answers,
    users_are_created_and_found_without_regard_to_case,
    duplicate_email_is_taken_whatever_its_case,
    imports_refuse_existing_emails_unless_told_to_skip_them_in_one_transaction,
    an_invalid_email_fails_the_whole_import,
    a_password_hash_is_replaced_only_while_it_is_the_one_read,
    users_are_listed_with_their_total,
    update_changes_roles_and_disabling_revokes_sessions,
    setting_a_password_ends_every_session_of_the_user,
    deleting_a_user_keeps_the_revocations_that_void_their_tokens,
    users_changed_since_names_the_updated_users_only,
    active_subject_is_none_for_missing_or_disabled_users,
    rotation_outcomes,
    concurrent_rotations_retire_a_token_once,
    revocation_feed_returns_what_revokes_recorded,
    revocation_feed_by_position_resumes_after_a_cursor_and_never_reuses_an_id,
    pruning_deletes_expired_rows_in_bounded_batches,
    sessions_of_user_include_revoked_ones_with_reason,
    events_come_newest_first_and_filter,
    committed_data_survives_reopening,
    sessions_rules_run_end_to_end,
    zero_grace_races_give_one_pair_and_revoke_the_session,
    a_grace_refresh_that_checked_before_a_reuse_revoked_the_session_gets_no_pair,
    grace_refreshes_racing_a_reuse_after_the_grace_hand_out_only_recorded_pairs,
    signing_keys_rotate_revoke_and_prune,
    instances_storing_first_keys_at_once_store_one_set,
    concurrent_rotations_leave_one_active_key,
    resealing_replaces_every_sealed_key_at_once_or_none,
    clients_are_added_listed_and_removed_with_their_session_revoked,
    token_lifetimes_are_recorded_per_pair_and_dropped_once_no_token_can_live,
);

async fn token_lifetimes_are_recorded_per_pair_and_dropped_once_no_token_can_live(db: TestDb) {
    use jwt_auth_store::TokenLifetimes;
    let usual = TokenLifetimes { access: secs(1800), refresh: secs(7 * 86_400) };
    let long_access = TokenLifetimes { access: secs(7_200), refresh: secs(86_400) };
    assert!(db.store.token_lifetimes(t0()).await.expect("read").is_empty(), "none recorded");
    db.store.record_token_lifetimes(usual, t0()).await.expect("recorded");
    db.store.record_token_lifetimes(long_access, t0()).await.expect("recorded");
    // Recorded again (another instance, or the same one later): still one row per pair.
    db.store.record_token_lifetimes(usual, t0() + secs(600)).await.expect("recorded");
    let mut now = db.store.token_lifetimes(t0() + secs(600)).await.expect("read");
    now.sort_by_key(|l| l.access);
    assert_eq!(now, [usual, long_access]);
    // A day after it was last seen, no token of the second pair can be alive.
    let later = t0() + secs(86_400 + 1);
    assert_eq!(db.store.token_lifetimes(later).await.expect("read"), [usual]);
    // Recording drops it for good; the first pair, seen again, stays.
    db.store.record_token_lifetimes(usual, later).await.expect("recorded");
    assert_eq!(db.store.token_lifetimes(t0()).await.expect("read"), [usual], "deleted");
}

async fn migrations_are_idempotent_and_ping_answers(db: TestDb) {
    assert!(db.store.migrate().await.expect("migrate again").is_empty());
    db.store.ping().await.expect("ping");
    let expected =
        if db.url.starts_with("sqlite") { BackendKind::Sqlite } else { BackendKind::Postgres };
    assert_eq!(db.store.backend(), expected);
}

async fn users_are_created_and_found_without_regard_to_case(db: TestDb) {
    let alice = user(&db.store, "Alice@Example.com").await;
    assert_eq!(alice.email, "Alice@Example.com");
    assert_eq!(alice.roles, ["user"]);
    assert!(!alice.disabled);
    assert_eq!(alice.created_at, t0());
    assert!(uuid::Uuid::parse_str(&alice.id).is_ok());

    let found = db.store.user_by_id(&alice.id).await.expect("by id");
    assert_eq!(found.as_ref(), Some(&alice));
    let login = db.store.user_by_email("alice@EXAMPLE.COM").await.expect("by email");
    let login = login.expect("found without regard to case");
    assert_eq!(login.user, alice);
    assert!(login.password_hash.expose().starts_with("$argon2id$"));
    assert!(!format!("{login:?}").contains("argon2id"), "the hash is not printed");

    assert_eq!(db.store.user_by_email("bob@example.com").await.expect("query"), None);
    assert_eq!(db.store.user_by_id("no-such-id").await.expect("query"), None);
}

async fn duplicate_email_is_taken_whatever_its_case(db: TestDb) {
    user(&db.store, "Alice@Example.com").await;
    let again = jwt_auth_store::NewUser {
        email: "alice@example.COM".into(),
        password_hash: jwt_auth_store::PasswordHash::new("$argon2id$other"),
        roles: vec![],
    };
    let err = db.store.create_user(&again, t0()).await.expect_err("the email is taken");
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");
    assert_eq!(db.store.list_users(10, 0).await.expect("list").total, 1);
}

use jwt_auth_store::ExistingEmails::{Refuse, Skip};

fn imported(email: &str, hash: &str, roles: &[&str]) -> jwt_auth_store::NewUser {
    jwt_auth_store::NewUser {
        email: email.into(),
        password_hash: jwt_auth_store::PasswordHash::new(hash),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

async fn imports_refuse_existing_emails_unless_told_to_skip_them_in_one_transaction(db: TestDb) {
    user(&db.store, "Alice@Example.com").await;
    let batch = [
        imported("ann@example.com", "$2b$04$first", &["user"]),
        imported("ALICE@example.com", "$2b$04$second", &["admin"]),
        imported("bob@example.com", "pbkdf2_sha256$1000$salt$third", &[]),
    ];
    // By default an existing email fails the whole import, naming its place in the batch.
    let err = db.store.import_users(&batch, t0(), Refuse).await.expect_err("refused");
    assert!(matches!(err, StoreError::ImportedEmailTaken { index: 1 }), "{err:?}");
    assert_eq!(db.store.list_users(10, 0).await.expect("list").total, 1, "nothing imported");
    assert!(db.store.user_by_email("ann@example.com").await.expect("query").is_none());

    let done = db.store.import_users(&batch, t0(), Skip).await.expect("imported");
    assert_eq!(done.created, 2);
    assert_eq!(done.skipped, ["ALICE@example.com"]);
    assert_eq!(db.store.list_users(10, 0).await.expect("list").total, 3);

    let ann = db.store.user_by_email("ann@example.com").await.expect("query").expect("ann");
    assert_eq!(ann.password_hash.expose(), "$2b$04$first");
    assert_eq!(ann.user.roles, ["user"]);
    assert_eq!(ann.user.created_at, t0());
    let bob = db.store.user_by_email("bob@example.com").await.expect("query").expect("bob");
    assert!(bob.user.roles.is_empty());
    // The existing user is untouched: neither its hash nor its roles.
    let alice = db.store.user_by_email("alice@example.com").await.expect("query").expect("alice");
    assert!(alice.password_hash.expose().starts_with("$argon2id$"));
    assert_eq!(alice.user.roles, ["user"]);

    // Importing the same file again creates nothing.
    let again = db.store.import_users(&batch, t0(), Skip).await.expect("imported");
    assert_eq!(again.created, 0);
    assert_eq!(again.skipped.len(), 3);
}

async fn an_invalid_email_fails_the_whole_import(db: TestDb) {
    let batch = [
        imported("ann@example.com", "$2b$04$first", &["user"]),
        imported("not an email", "$2b$04$second", &["user"]),
    ];
    let err = db.store.import_users(&batch, t0(), Refuse).await.expect_err("refused");
    assert!(matches!(err, StoreError::InvalidEmail(_)), "{err:?}");
    assert_eq!(db.store.list_users(10, 0).await.expect("list").total, 0, "nothing imported");
    // Positive control: the valid line alone.
    let done = db.store.import_users(&batch[..1], t0(), Refuse).await.expect("imported");
    assert_eq!(done.created, 1);
}

async fn a_password_hash_is_replaced_only_while_it_is_the_one_read(db: TestDb) {
    let batch = [imported("ann@example.com", "$2b$04$old", &["user"])];
    db.store.import_users(&batch, t0(), Refuse).await.expect("imported");
    let ann = db.store.user_by_email("ann@example.com").await.expect("query").expect("ann");
    let hash = jwt_auth_store::PasswordHash::new;
    let (old, other, new) = (hash("$2b$04$old"), hash("$2b$04$other"), hash("$argon2id$new"));
    let store = &db.store;

    // A stale `current` (the password changed since it was read) replaces nothing.
    assert!(!store.replace_password_hash(&ann.user.id, &other, &new).await.expect("query"));
    let read = db.store.user_by_email("ann@example.com").await.expect("query").expect("ann");
    assert_eq!(read.password_hash.expose(), "$2b$04$old");

    assert!(store.replace_password_hash(&ann.user.id, &old, &new).await.expect("query"));
    let read = db.store.user_by_email("ann@example.com").await.expect("query").expect("ann");
    assert_eq!(read.password_hash.expose(), "$argon2id$new");
    assert_eq!(read.user.updated_at, ann.user.updated_at, "the record's version is unchanged");

    assert!(!store.replace_password_hash("no-such-id", &new, &old).await.expect("query"));
}

async fn users_are_listed_with_their_total(db: TestDb) {
    for i in 0..5 {
        let new = jwt_auth_store::NewUser {
            email: format!("user{i}@example.com"),
            password_hash: jwt_auth_store::PasswordHash::new("$argon2id$x"),
            roles: vec![],
        };
        db.store.create_user(&new, t0() + secs(i)).await.expect("create");
    }
    let page = db.store.list_users(2, 2).await.expect("list");
    assert_eq!(page.total, 5);
    let emails: Vec<_> = page.users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["user2@example.com", "user3@example.com"]);
    assert!(db.store.list_users(10, 10).await.expect("list").users.is_empty());
}

async fn update_changes_roles_and_disabling_revokes_sessions(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    let at = t0() + secs(60);
    let roles = UserUpdate { roles: Some(vec!["admin".into(), "user".into()]), disabled: None };
    let updated = db.store.update_user(&alice.id, &roles, at).await.expect("update");
    let updated = updated.expect("the user exists");
    assert_eq!(updated.user.roles, ["admin", "user"]);
    assert_eq!(updated.user.updated_at, at);
    assert!(updated.revocations.is_empty());

    session(&db.store, "s1", &alice.id, t0(), TimeDelta::days(30)).await;
    session(&db.store, "s2", &alice.id, t0(), TimeDelta::days(30)).await;
    let disable = UserUpdate { roles: None, disabled: Some(true) };
    let at = t0() + secs(120);
    let updated = db.store.update_user(&alice.id, &disable, at).await.expect("disable");
    let updated = updated.expect("the user exists");
    assert!(updated.user.disabled);
    assert_eq!(updated.user.roles, ["admin", "user"], "roles untouched");
    assert_eq!(updated.user.tokens_valid_after, Some(at));
    let mut revoked: Vec<_> = updated
        .revocations
        .iter()
        .filter_map(|r| match r {
            Revocation::Session { id, .. } => Some(id.as_str()),
            Revocation::IssuedBefore { .. } | Revocation::Key { .. } => None,
        })
        .collect();
    revoked.sort_unstable();
    assert_eq!(revoked, ["s1", "s2"]);
    assert!(
        updated
            .revocations
            .contains(&Revocation::IssuedBefore { user_id: Some(alice.id.clone()), before: at })
    );
    let s1 = db.store.session("s1").await.expect("session").expect("s1");
    assert_eq!(s1.revoked_at, Some(at));
    assert_eq!(s1.revoke_reason, Some(RevokeReason::UserDisabled));

    let missing = db.store.update_user("no-such-id", &disable, at).await.expect("update");
    assert_eq!(missing, None);
}

async fn active_subject_is_none_for_missing_or_disabled_users(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    let subject = db.store.active_subject(&alice.id).await.expect("subject").expect("active");
    assert_eq!(subject.id, alice.id);
    assert_eq!(subject.roles, ["user"]);
    assert_eq!(subject.email.as_deref(), Some("alice@example.com"));
    assert_eq!(db.store.active_subject("no-such-id").await.expect("subject"), None);
    let disable = UserUpdate { roles: None, disabled: Some(true) };
    db.store.update_user(&alice.id, &disable, t0()).await.expect("disable");
    assert_eq!(db.store.active_subject(&alice.id).await.expect("subject"), None);
}

async fn rotation_outcomes(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    session(&db.store, "s1", &alice.id, t0(), TimeDelta::days(30)).await;
    let store = &db.store;

    let at = t0() + secs(10);
    let mut t1 = token("t1", "s1", Some("s1-t0"), at);
    t1.client = client("10.0.0.2");
    assert_eq!(store.rotate("s1-t0", &t1, at).await.expect("rotate"), RotateOutcome::Rotated);
    let s1 = store.session("s1").await.expect("session").expect("s1");
    assert_eq!(s1.last_used_at, at);

    let later = at + secs(3);
    let again = store.rotate("s1-t0", &token("t1b", "s1", Some("s1-t0"), later), later).await;
    assert_eq!(
        again.expect("rotate"),
        RotateOutcome::AlreadyRotated { rotated_at: at, rotated_by: client("10.0.0.2") }
    );
    let unknown = store.rotate("nope", &token("t9", "s1", None, later), later).await;
    assert_eq!(unknown.expect("rotate"), RotateOutcome::NotFound);
    // Neither recorded its replacement:
    for jti in ["t1b", "t9"] {
        let probe = store.rotate(jti, &token("probe", "s1", None, later), later).await;
        assert_eq!(probe.expect("rotate"), RotateOutcome::NotFound, "{jti}");
    }

    store.revoke_session("s1", RevokeReason::Logout, later).await.expect("revoke");
    let revoked = store.rotate("t1", &token("t2", "s1", Some("t1"), later), later).await;
    assert_eq!(revoked.expect("rotate"), RotateOutcome::SessionRevoked);
    // Nothing changed: t1 is still current and t2 was not recorded.
    let probe = store.rotate("t2", &token("probe", "s1", None, later), later).await;
    assert_eq!(probe.expect("rotate"), RotateOutcome::NotFound);
    let probe = store.rotate("t1", &token("probe", "s1", None, later), later).await;
    assert_eq!(probe.expect("rotate"), RotateOutcome::SessionRevoked);

    // The grace path records a further token without retiring any, in a live session only.
    let added = store.add_refresh_token(&token("ghost", "s1", Some("t1"), later)).await;
    assert_eq!(added.expect("add"), GraceOutcome::SessionRevoked, "s1 is revoked");
    assert_eq!(store.refresh_token_state("ghost", "s1").await.expect("look up"), None);
    session(&db.store, "s2", &alice.id, t0(), TimeDelta::days(30)).await;
    let added = store.add_refresh_token(&token("extra", "s2", Some("s2-t0"), at)).await;
    assert_eq!(added.expect("add"), GraceOutcome::Recorded);
    let touched = store.session("s2").await.expect("read").expect("exists");
    assert_eq!(touched.last_used_at, at, "the grace path marks the session used");
    let extra = store.rotate("extra", &token("extra-next", "s2", None, at), at).await;
    assert_eq!(extra.expect("rotate"), RotateOutcome::Rotated);
    let first = store.rotate("s2-t0", &token("s2-next", "s2", None, at), at).await;
    assert_eq!(first.expect("rotate"), RotateOutcome::Rotated);

    // A token presented for another session's rotation is unknown there, retired or not, and
    // stays as it was.
    session(&db.store, "s3", &alice.id, t0(), TimeDelta::days(30)).await;
    let foreign = store.rotate("s3-t0", &token("s3-x", "s2", None, at), at).await;
    assert_eq!(foreign.expect("rotate"), RotateOutcome::NotFound);
    let retired = store.rotate("s2-t0", &token("s2-x", "s3", None, at), at).await;
    assert_eq!(retired.expect("rotate"), RotateOutcome::NotFound);
    let own = store.rotate("s3-t0", &token("s3-next", "s3", None, at), at).await;
    assert_eq!(own.expect("rotate"), RotateOutcome::Rotated);

    // Looking a token up tells current from retired, and changes nothing.
    let state = |jti: &'static str, sid: &'static str| async move {
        store.refresh_token_state(jti, sid).await.expect("look up")
    };
    assert_eq!(state("s3-t0", "s3").await, Some(RefreshTokenState::Retired { rotated_at: at }));
    assert_eq!(state("s3-next", "s3").await, Some(RefreshTokenState::Current));
    assert_eq!(state("s3-next", "s3").await, Some(RefreshTokenState::Current));
    assert_eq!(state("s3-next", "s2").await, None, "a token of another session");
    assert_eq!(state("nope", "s3").await, None);
    let next = store.rotate("s3-next", &token("s3-after", "s3", None, at), at).await;
    assert_eq!(next.expect("rotate"), RotateOutcome::Rotated);
}

async fn concurrent_rotations_retire_a_token_once(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    session(&db.store, "s1", &alice.id, t0(), TimeDelta::days(30)).await;
    let store = Arc::new(db.store.clone());
    let callers: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let at = t0() + secs(1) + TimeDelta::milliseconds(i);
                let replacement = token(&format!("r{i}"), "s1", Some("s1-t0"), at);
                store.rotate("s1-t0", &replacement, at).await.expect("rotate")
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for caller in callers {
        outcomes.push(caller.await.expect("the caller finishes"));
    }
    let rotated = outcomes.iter().filter(|o| **o == RotateOutcome::Rotated).count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    let retired_at: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            RotateOutcome::AlreadyRotated { rotated_at, .. } => Some(*rotated_at),
            _ => None,
        })
        .collect();
    assert_eq!(retired_at.len(), 31, "{outcomes:?}");
    assert!(retired_at.windows(2).all(|w| w[0] == w[1]), "one retirement: {retired_at:?}");
    // Exactly one replacement was recorded.
    let mut recorded = 0;
    for i in 0..32 {
        let at = t0() + secs(5);
        let probe = token(&format!("p{i}"), "s1", None, at);
        if store.rotate(&format!("r{i}"), &probe, at).await.expect("rotate")
            == RotateOutcome::Rotated
        {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1);
}

async fn revocation_feed_returns_what_revokes_recorded(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice@example.com").await;
    let bob = user(store, "bob@example.com").await;
    session(store, "a1", &alice.id, t0(), TimeDelta::days(30)).await;
    session(store, "a2", &alice.id, t0(), TimeDelta::days(30)).await;
    session(store, "b1", &bob.id, t0(), TimeDelta::hours(1)).await;

    let at = t0() + secs(10);
    let revoked = store.revoke_session("a1", RevokeReason::Logout, at).await.expect("revoke");
    let a1 = Revocation::Session { id: "a1".into(), expires_at: t0() + TimeDelta::days(30) };
    assert_eq!(revoked, Some(a1.clone()));
    assert_eq!(store.revoke_session("nope", RevokeReason::Logout, at).await.expect("revoke"), None);
    // Revoking again keeps the first reason.
    store.revoke_session("a1", RevokeReason::Admin, at + secs(1)).await.expect("revoke");
    let record = store.session("a1").await.expect("session").expect("a1");
    assert_eq!((record.revoked_at, record.revoke_reason), (Some(at), Some(RevokeReason::Logout)));

    assert_eq!(feed(store, 0, at).await.first(), Some(&a1));
    let head = store.revocation_feed_head().await.expect("head");
    assert!(feed(store, head, at).await.is_empty(), "nothing after the newest position");

    let at = t0() + secs(20);
    let all = store.revoke_user(&alice.id, RevokeReason::LogoutAll, at).await.expect("revoke");
    let cut_off = Revocation::IssuedBefore { user_id: Some(alice.id.clone()), before: at };
    let a2 = Revocation::Session { id: "a2".into(), expires_at: t0() + TimeDelta::days(30) };
    assert_eq!(all, [a2.clone(), cut_off.clone()], "only the live session, then the cut-off");
    let alice_now = store.user_by_id(&alice.id).await.expect("user").expect("alice");
    assert_eq!(alice_now.tokens_valid_after, Some(at));

    let everyone = Revocation::IssuedBefore { user_id: None, before: t0() + secs(25) };
    let voided = store.void_issued_before(None, t0() + secs(25), t0() + secs(30)).await;
    assert_eq!(voided.expect("void"), everyone);
    assert_eq!(feed(store, head, t0() + secs(30)).await, [a2, cut_off, everyone.clone()]);

    // Session expiries keep their microseconds, and compare as times on both backends: a
    // session matters until it would have ended.
    let ms = TimeDelta::milliseconds;
    session(store, "c1", &bob.id, t0(), TimeDelta::hours(1) + ms(500)).await;
    let head = store.revocation_feed_head().await.expect("head");
    store.revoke_session("c1", RevokeReason::Admin, t0() + secs(50)).await.expect("revoke");
    let hour = t0() + TimeDelta::hours(1);
    assert_eq!(feed(store, head, hour + ms(250)).await.len(), 1);
    assert!(feed(store, head, hour + ms(750)).await.is_empty());

    // Bob's session ends at t0 + 1h; revoked after that, it is not in the feed.
    let late = t0() + TimeDelta::hours(2);
    let head = store.revocation_feed_head().await.expect("head");
    store.revoke_session("b1", RevokeReason::Admin, late).await.expect("revoke");
    assert!(feed(store, head, late).await.is_empty());
    assert!(store.revocation_feed_head().await.expect("head") > head, "recorded all the same");
}

/// The revocations of the feed after position `after` that still matter at `now`.
async fn feed(store: &jwt_auth_store::Store, after: i64, now: DateTime<Utc>) -> Vec<Revocation> {
    let entries = store.revocation_feed(after, now).await.expect("feed");
    entries.into_iter().map(|entry| entry.revocation).collect()
}

async fn pruning_deletes_expired_rows_in_bounded_batches(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice@example.com").await;
    for i in 0..25 {
        let id = format!("old{i}");
        session(store, &id, &alice.id, t0(), TimeDelta::hours(1)).await;
        let mut second = token(&format!("{id}-t1"), &id, None, t0());
        second.expires_at = t0() + TimeDelta::hours(1);
        store.add_refresh_token(&second).await.expect("add");
    }
    for i in 0..5 {
        store.revoke_session(&format!("old{i}"), RevokeReason::Logout, t0()).await.expect("revoke");
    }
    for i in 0..3 {
        session(store, &format!("live{i}"), &alice.id, t0(), TimeDelta::days(30)).await;
    }
    store.revoke_session("live0", RevokeReason::Logout, t0()).await.expect("revoke");

    let now = t0() + TimeDelta::hours(2);
    let batch = 10;
    let mut total = 0;
    let mut calls = 0;
    loop {
        let deleted = store.prune_expired(now, batch).await.expect("prune");
        assert!(deleted <= 4 * u64::from(batch), "a call deletes at most a batch per table");
        calls += 1;
        if deleted == 0 {
            break;
        }
        total += deleted;
        assert!(calls < 20, "pruning ends");
    }
    assert_eq!(total, 50 + 25 + 5, "tokens, sessions, feed entries of expired sessions");
    // Tokens first (5 calls of 10), then sessions (10, 10, 5), then one call that finds nothing.
    assert_eq!(calls, 9);
    assert_eq!(store.session("old0").await.expect("session"), None);
    for i in 0..3 {
        assert!(store.session(&format!("live{i}")).await.expect("session").is_some());
    }
    let live = store.rotate("live1-t0", &token("n", "live1", None, now), now).await;
    assert_eq!(live.expect("rotate"), RotateOutcome::Rotated);
    assert_eq!(
        feed(store, 0, t0()).await,
        [Revocation::Session { id: "live0".into(), expires_at: t0() + TimeDelta::days(30) }]
    );
    assert!(store.user_by_id(&alice.id).await.expect("user").is_some(), "users are kept");
}

async fn sessions_of_user_include_revoked_ones_with_reason(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice@example.com").await;
    session(store, "old", &alice.id, t0(), TimeDelta::hours(1)).await;
    session(store, "s1", &alice.id, t0() + secs(1), TimeDelta::days(1)).await;
    session(store, "s2", &alice.id, t0() + secs(2), TimeDelta::days(1)).await;
    store.revoke_session("s1", RevokeReason::Admin, t0() + secs(3)).await.expect("revoke");

    let now = t0() + TimeDelta::hours(2);
    let sessions = store.sessions_of_user(&alice.id, now).await.expect("sessions");
    let ids: Vec<_> = sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s2", "s1"], "newest first, the expired one left out");
    assert_eq!(sessions[0].revoked_at, None);
    assert_eq!(sessions[0].client, client("10.0.0.1"));
    assert_eq!(sessions[1].revoke_reason, Some(RevokeReason::Admin));
}

async fn events_come_newest_first_and_filter(db: TestDb) {
    let store = &db.store;
    let event = |kind, user: Option<&str>, at: DateTime<Utc>| SecurityEvent {
        kind,
        at,
        user_id: user.map(str::to_owned),
        session_id: None,
        client: client("10.0.0.9"),
        detail: Some("detail".into()),
    };
    let recorded = [
        event(EventKind::LoginFailed, None, t0()),
        event(EventKind::LoginSucceeded, Some("u1"), t0() + secs(1)),
        event(EventKind::Refresh, Some("u1"), t0() + secs(2)),
        event(EventKind::LoginSucceeded, Some("u2"), t0() + secs(3)),
        event(EventKind::RefreshReuseDetected, Some("u1"), t0() + secs(4)),
    ];
    for e in &recorded {
        store.record_event(e).await.expect("record");
    }
    let all = store.events(&EventQuery::default()).await.expect("events");
    let kinds: Vec<_> = all.iter().map(|e| e.event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::RefreshReuseDetected,
            EventKind::LoginSucceeded,
            EventKind::Refresh,
            EventKind::LoginSucceeded,
            EventKind::LoginFailed
        ]
    );
    assert_eq!(all[0].event, recorded[4]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));

    let u1 = EventQuery { user_id: Some("u1".into()), kind: None, limit: 2 };
    let u1 = store.events(&u1).await.expect("events");
    assert_eq!(u1.iter().map(|e| e.event.at).collect::<Vec<_>>(), [t0() + secs(4), t0() + secs(2)]);
    let logins = EventQuery { user_id: None, kind: Some(EventKind::LoginSucceeded), limit: 10 };
    assert_eq!(store.events(&logins).await.expect("events").len(), 2);
    let both =
        EventQuery { user_id: Some("u2".into()), kind: Some(EventKind::LoginSucceeded), limit: 10 };
    assert_eq!(store.events(&both).await.expect("events")[0].event, recorded[3]);
}

async fn committed_data_survives_reopening(mut db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    session(&db.store, "s1", &alice.id, t0(), TimeDelta::days(1)).await;
    let at = t0() + secs(5);
    let rotated = db.store.rotate("s1-t0", &token("t1", "s1", Some("s1-t0"), at), at).await;
    assert_eq!(rotated.expect("rotate"), RotateOutcome::Rotated);
    db.store.revoke_user(&alice.id, RevokeReason::LogoutAll, at).await.expect("revoke");

    db.reopen().await;
    let store = &db.store;
    assert_eq!(
        store.user_by_id(&alice.id).await.expect("user").map(|u| u.email),
        Some(alice.email)
    );
    let s1 = store.session("s1").await.expect("session").expect("s1");
    assert_eq!((s1.last_used_at, s1.revoke_reason), (at, Some(RevokeReason::LogoutAll)));
    let again = store.rotate("s1-t0", &token("x", "s1", None, at), at).await;
    assert!(matches!(again.expect("rotate"), RotateOutcome::AlreadyRotated { .. }));
    assert_eq!(feed(store, 0, t0()).await.len(), 2);
}

async fn sessions_rules_run_end_to_end(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    let clock = ManualClock::new(Utc::now());
    let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA).expect("a key"));
    let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys).expect("tokens");
    let tokens = Arc::new(tokens.with_clock(Arc::new(clock.clone())));
    let store = Arc::new(db.store.clone());
    let policy = SessionPolicy { reuse_grace: TimeDelta::seconds(10), ..SessionPolicy::default() };
    let here = Sessions::new(Arc::clone(&tokens), Arc::clone(&store), policy);
    let elsewhere = Sessions::new(Arc::clone(&tokens), Arc::clone(&store), policy);

    let subject = store.active_subject(&alice.id).await.expect("subject").expect("active");
    let login = here.start(&subject, client("10.1.1.1")).await.expect("login");
    let claims = here.authenticate(login.access_token.expose()).expect("authenticated");
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_str()),
        (alice.id.as_str(), login.session_id.as_str())
    );

    clock.advance(TimeDelta::seconds(60));
    let next =
        here.refresh(login.refresh_token.expose(), client("10.1.1.2")).await.expect("refresh");
    assert_eq!(next.session_id, login.session_id);
    // A racing tab presents the old token within the grace period: it gets a pair too.
    clock.advance(TimeDelta::seconds(5));
    let raced = here.refresh(login.refresh_token.expose(), ClientInfo::default()).await;
    let raced = raced.expect("within grace");
    here.authenticate(raced.access_token.expose()).expect("the raced pair works");
    let usable = |token: &str| {
        let (here, token) = (&here, token.to_owned());
        async move { here.introspect_refresh(&token).await.expect("introspect").is_some() }
    };
    assert!(usable(login.refresh_token.expose()).await, "retired within the grace");
    assert!(usable(next.refresh_token.expose()).await, "current");

    // Presented after the grace: reuse, and the whole session goes. Introspection only says so.
    clock.advance(TimeDelta::seconds(20));
    assert!(!usable(login.refresh_token.expose()).await, "retired past the grace");
    assert!(usable(next.refresh_token.expose()).await, "introspection revoked nothing");
    let reused = here.refresh(login.refresh_token.expose(), ClientInfo::default()).await;
    match reused {
        Err(Error::RefreshReused(details)) => {
            assert_eq!(details.session_id, login.session_id);
            assert_eq!(details.rotated_by, client("10.1.1.2"));
        }
        other => panic!("expected reuse, got {other:?}"),
    }
    let stored = store.session(&login.session_id).await.expect("session").expect("it exists");
    assert_eq!(stored.revoke_reason, Some(RevokeReason::RefreshReuse));
    assert!(matches!(here.authenticate(next.access_token.expose()), Err(Error::Revoked)));
    assert!(here.refresh(next.refresh_token.expose(), ClientInfo::default()).await.is_err());

    // Another instance learns of it from the feed.
    elsewhere.authenticate(raced.access_token.expose()).expect("not yet synced");
    let feed = elsewhere.store_feed();
    assert!(elsewhere.revocation_follower().catch_up(&feed).await.expect("read") >= 1);
    assert!(matches!(elsewhere.authenticate(raced.access_token.expose()), Err(Error::Revoked)));

    // Logout-all on a fresh session: its tokens stop working here at once.
    clock.advance(TimeDelta::seconds(1));
    let again = here.start(&subject, ClientInfo::default()).await.expect("login");
    here.end_all(&alice.id, RevokeReason::LogoutAll).await.expect("logout-all");
    assert!(matches!(here.authenticate(again.access_token.expose()), Err(Error::Revoked)));
}

/// 20 rounds of 20 concurrent refreshes of one fresh token with no reuse grace, on the system
/// clock: each round exactly one caller gets a pair, the others are refused (at least one as
/// reuse), and the session ends revoked for reuse.
async fn zero_grace_races_give_one_pair_and_revoke_the_session(db: TestDb) {
    const TASKS: usize = 20;
    let alice = user(&db.store, "alice@example.com").await;
    let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA).expect("a key"));
    let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys).expect("tokens");
    let store = Arc::new(db.store.clone());
    let policy = SessionPolicy { reuse_grace: TimeDelta::zero(), ..SessionPolicy::default() };
    let sessions = Arc::new(Sessions::new(Arc::new(tokens), Arc::clone(&store), policy));
    let subject = store.active_subject(&alice.id).await.expect("subject").expect("active");
    for round in 0..20 {
        let first = sessions.start(&subject, ClientInfo::default()).await.expect("login");
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let racers: Vec<_> = (0..TASKS)
            .map(|_| {
                let (sessions, barrier) = (Arc::clone(&sessions), Arc::clone(&barrier));
                let token = first.refresh_token.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    sessions.refresh(token.expose(), ClientInfo::default()).await
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(TASKS);
        for racer in racers {
            outcomes.push(racer.await.expect("the caller finishes"));
        }
        let pairs = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(pairs, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.iter().any(|o| matches!(o, Err(Error::RefreshReused(_)))),
            "round {round}: {outcomes:?}"
        );
        for outcome in &outcomes {
            assert!(
                matches!(
                    outcome,
                    Ok(_) | Err(Error::RefreshReused(_) | Error::SessionRevoked | Error::Revoked)
                ),
                "round {round}: {outcome:?}"
            );
        }
        let stored = store.session(&first.session_id).await.expect("session").expect("exists");
        assert_eq!(stored.revoke_reason, Some(RevokeReason::RefreshReuse), "round {round}");
    }
}

async fn setting_a_password_ends_every_session_of_the_user(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    let bob = user(&db.store, "bob@example.com").await;
    session(&db.store, "a1", &alice.id, t0(), TimeDelta::days(30)).await;
    session(&db.store, "b1", &bob.id, t0(), TimeDelta::days(30)).await;
    let at = t0() + secs(60);
    let hash = jwt_auth_store::PasswordHash::new("$argon2id$new");
    let set = db.store.set_password(&alice.id, &hash, at).await.expect("set").expect("alice");
    assert_eq!(set.user.updated_at, at);
    assert_eq!(set.user.tokens_valid_after, Some(at));
    assert!(
        set.revocations
            .contains(&Revocation::IssuedBefore { user_id: Some(alice.id.clone()), before: at })
    );
    let read = db.store.user_by_email("alice@example.com").await.expect("read").expect("alice");
    assert_eq!(read.password_hash.expose(), "$argon2id$new");
    let a1 = db.store.session("a1").await.expect("session").expect("a1");
    assert_eq!(a1.revoked_at, Some(at));
    // The control: another user's session and password are untouched.
    let b1 = db.store.session("b1").await.expect("session").expect("b1");
    assert_eq!(b1.revoked_at, None);
    let bob_read = db.store.user_by_email("bob@example.com").await.expect("read").expect("bob");
    assert_ne!(bob_read.password_hash.expose(), "$argon2id$new");
    assert_eq!(db.store.set_password("no-such-id", &hash, at).await.expect("set"), None);
}

async fn deleting_a_user_keeps_the_revocations_that_void_their_tokens(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    let bob = user(&db.store, "bob@example.com").await;
    session(&db.store, "a1", &alice.id, t0(), TimeDelta::days(30)).await;
    session(&db.store, "b1", &bob.id, t0(), TimeDelta::days(30)).await;
    let head = db.store.revocation_feed_head().await.expect("head");
    let at = t0() + secs(60);
    let deleted = db.store.delete_user(&alice.id, at).await.expect("delete").expect("alice");
    assert_eq!(deleted.user.email, "alice@example.com");
    assert!(db.store.user_by_id(&alice.id).await.expect("read").is_none());
    assert!(db.store.session("a1").await.expect("read").is_none(), "her sessions went too");
    // What voids her tokens outlives her row, in the feed every instance reads.
    let feed = db.store.revocation_feed(head, at).await.expect("feed");
    let revoked: Vec<&Revocation> = feed.iter().map(|entry| &entry.revocation).collect();
    assert!(
        revoked
            .contains(&&Revocation::IssuedBefore { user_id: Some(alice.id.clone()), before: at }),
        "{revoked:?}"
    );
    assert!(revoked.iter().any(|r| matches!(r, Revocation::Session { id, .. } if id == "a1")));
    // The email is free again; the control: bob and his session are as they were.
    user(&db.store, "alice@example.com").await;
    assert!(db.store.user_by_id(&bob.id).await.expect("read").is_some());
    assert_eq!(db.store.session("b1").await.expect("read").expect("b1").revoked_at, None);
    assert_eq!(db.store.delete_user(&alice.id, at).await.expect("delete"), None, "once");
}

async fn users_changed_since_names_the_updated_users_only(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    let bob = user(&db.store, "bob@example.com").await;
    // Positive control: created at t0, both are changed "since t0".
    let mut both = db.store.users_changed_since(t0()).await.expect("changed");
    both.sort();
    let mut expected = vec![alice.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(both, expected);
    assert!(db.store.users_changed_since(t0() + secs(1)).await.expect("changed").is_empty());

    let update = UserUpdate { roles: Some(vec!["admin".into()]), disabled: None };
    db.store.update_user(&bob.id, &update, t0() + secs(5)).await.expect("updated");
    let changed = db.store.users_changed_since(t0() + secs(5)).await.expect("changed");
    assert_eq!(changed, std::slice::from_ref(&bob.id));
    assert!(db.store.users_changed_since(t0() + secs(6)).await.expect("changed").is_empty());
}

async fn revocation_feed_by_position_resumes_after_a_cursor_and_never_reuses_an_id(db: TestDb) {
    let store = &db.store;
    assert_eq!(store.revocation_feed_head().await.expect("head"), 0);
    let alice = user(store, "alice@example.com").await;
    session(store, "short", &alice.id, t0(), secs(100)).await;
    session(store, "long", &alice.id, t0(), secs(3600)).await;
    store.revoke_session("short", RevokeReason::Logout, t0()).await.expect("revoked");
    store.revoke_user(&alice.id, RevokeReason::Admin, t0() + secs(1)).await.expect("revoked");
    let feed = store.revocation_feed(0, t0()).await.expect("feed");
    let ids: Vec<i64> = feed.iter().map(|e| e.position).collect();
    assert_eq!(feed[0].recorded_at, t0());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert_eq!(feed.len(), 3, "short, then long and alice's cut-off: {feed:?}");
    assert_eq!(store.revocation_feed_head().await.expect("head"), ids[2]);
    let after_first = store.revocation_feed(ids[0], t0()).await.expect("feed");
    assert_eq!(after_first, feed[1..]);
    assert!(store.revocation_feed(ids[2], t0()).await.expect("feed").is_empty());

    // What no longer matters is left out: `short` has ended by t0+100 s, a cut-off never.
    let later = store.revocation_feed(0, t0() + secs(200)).await.expect("feed");
    assert_eq!(later, feed[1..]);

    // Pruned to nothing, the feed still hands out a newer id next.
    let head = ids[2];
    store.prune_expired(t0() + secs(4000), 100).await.expect("pruned");
    session(store, "next", &alice.id, t0(), secs(9000)).await;
    store.revoke_session("next", RevokeReason::Logout, t0() + secs(4001)).await.expect("revoked");
    let next = store.revocation_feed(head, t0() + secs(4001)).await.expect("feed");
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(next[0].position > head);
}

async fn signing_keys_rotate_revoke_and_prune(db: TestDb) {
    let store = &db.store;
    assert!(store.signing_keys().await.expect("keys").is_empty());
    let first = signing_key("first", t0());
    assert!(store.add_first_signing_keys(std::slice::from_ref(&first)).await.expect("stored"));
    let other = signing_key("other", t0());
    assert!(!store.add_first_signing_keys(&[other]).await.expect("runs"), "only when empty");
    assert_eq!(store.signing_keys().await.expect("keys"), [first], "read back as written");

    let next = signing_key("next", t0() + secs(61));
    store.rotate_signing_key(&next).await.expect("rotates");
    let keys = store.signing_keys().await.expect("keys");
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["first", "next"]);
    assert_eq!(keys[0].retired_at, Some(next.activates_at), "replaced when the next one signs");
    assert_eq!(keys[1].retired_at, None);

    assert!(
        store.revoke_signing_key("nope", t0(), t0() + secs(3600)).await.expect("runs").is_none()
    );
    let revoked =
        store.revoke_signing_key("next", t0() + secs(5), t0() + secs(3600)).await.expect("revokes");
    assert_eq!(revoked.expect("known").revoked_at, Some(t0() + secs(5)));
    let again =
        store.revoke_signing_key("next", t0() + secs(9), t0() + secs(3600)).await.expect("runs");
    assert_eq!(again.expect("known").revoked_at, Some(t0() + secs(5)), "the first time stays");
    // In the revocation feed once, for the services that verify with a cached JWK set.
    let feed = revocations_in_feed(store).await;
    assert_eq!(feed, [Revocation::Key { kid: "next".into(), expires_at: t0() + secs(3600) }]);

    // `first` retired at t0+61 s, `next` revoked at t0+5 s.
    assert_eq!(store.prune_signing_keys(t0() + secs(5)).await.expect("prunes"), 0);
    assert_eq!(store.prune_signing_keys(t0() + secs(6)).await.expect("prunes"), 1);
    assert_eq!(store.prune_signing_keys(t0() + secs(62)).await.expect("prunes"), 1);
    assert!(store.signing_keys().await.expect("keys").is_empty());
}

/// What the whole feed revokes, oldest first, as seen at `t0`.
async fn revocations_in_feed(store: &jwt_auth_store::Store) -> Vec<Revocation> {
    let feed = store.revocation_feed(0, t0()).await.expect("feed");
    feed.into_iter().map(|e| e.revocation).collect()
}

fn service_client(id: &str, name: &str) -> ServiceClient {
    ServiceClient {
        id: id.into(),
        name: name.into(),
        secret_digest: vec![7; 32],
        roles: vec!["service".into()],
        session_id: format!("session-of-{id}"),
        created_at: t0(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        public: false,
        first_party: false,
        require_dpop: false,
    }
}

async fn clients_are_added_listed_and_removed_with_their_session_revoked(db: TestDb) {
    let store = &db.store;
    let billing = service_client("c1", "billing");
    store.add_client(&billing).await.expect("added");
    // An app that signs users in: its URIs and flags are read back as written.
    let app = ServiceClient {
        secret_digest: vec![],
        redirect_uris: vec!["https://app.example.com/cb".into(), "http://127.0.0.1/cb".into()],
        post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
        public: true,
        first_party: true,
        ..service_client("c2", "reports")
    };
    store.add_client(&app).await.expect("added");
    assert_eq!(store.client("c2").await.expect("read"), Some(app));
    // A service client whose token requests must carry a DPoP proof: the flag is read back
    // set, and, beside it, unset for the clients added without it (the first-party app
    // too: the two flags are columns of their own).
    let bound = ServiceClient { require_dpop: true, ..service_client("c4", "signer") };
    store.add_client(&bound).await.expect("added");
    let read = store.client("c4").await.expect("read").expect("stored");
    assert!(read.require_dpop && !read.first_party, "{read:?}");
    assert_eq!(read, bound);
    for id in ["c1", "c2"] {
        let read = store.client(id).await.expect("read").expect("stored");
        assert!(!read.require_dpop, "{read:?}");
    }
    let taken = store.add_client(&service_client("c3", "billing")).await;
    assert!(matches!(taken, Err(StoreError::NameTaken)), "{taken:?}");
    assert_eq!(store.client("c1").await.expect("read"), Some(billing.clone()));
    assert_eq!(store.client("c3").await.expect("read"), None);
    let listed: Vec<(String, bool)> = store
        .clients()
        .await
        .expect("list")
        .into_iter()
        .map(|c| (c.name, c.require_dpop))
        .collect();
    let names_and_dpop = [("billing", false), ("reports", false), ("signer", true)];
    assert_eq!(listed, names_and_dpop.map(|(name, dpop)| (name.to_owned(), dpop)));
    assert!(!format!("{billing:?}").contains("[7, 7"), "no digest in Debug output");

    let (removed, revocations) =
        store.remove_client("c1", t0(), t0() + secs(1800)).await.expect("runs").expect("removed");
    assert_eq!(removed, billing);
    let expected =
        Revocation::Session { id: "session-of-c1".into(), expires_at: t0() + secs(1800) };
    assert_eq!(revocations, std::slice::from_ref(&expected));
    let feed = revocations_in_feed(store).await;
    assert_eq!(feed, [expected]);
    assert_eq!(store.client("c1").await.expect("read"), None);
    assert!(store.remove_client("c1", t0(), t0()).await.expect("runs").is_none());
}

/// Two instances' views of one store: the same keys, each on its own clock, so that one is
/// inside the reuse grace while the other is past it.
fn two_clocks_on_one_store<S: jwt_core::AuthStore>(
    store: impl Fn() -> S,
) -> (Sessions<S>, ManualClock, Sessions<S>, ManualClock) {
    let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA).expect("a key"));
    let policy = SessionPolicy { reuse_grace: TimeDelta::seconds(10), ..SessionPolicy::default() };
    let start = Utc::now();
    let side = |keys: KeySet| {
        let clock = ManualClock::new(start);
        let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys).expect("tokens");
        let tokens = Arc::new(tokens.with_clock(Arc::new(clock.clone())));
        (Sessions::new(tokens, store(), policy), clock)
    };
    let (grace, grace_clock) = side(keys.clone());
    let (reuse, reuse_clock) = side(keys);
    (grace, grace_clock, reuse, reuse_clock)
}

/// The store, with the grace path held at its store step until the test lets it go: the
/// interleaving where a grace-path refresh has checked its session, a reuse after the grace
/// then revokes that session, and only then does the grace path record its token.
#[derive(Clone)]
struct HeldGrace {
    inner: Arc<jwt_auth_store::Store>,
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl SessionStore for HeldGrace {
    async fn create_session(
        &self,
        session: &jwt_core::NewSession,
        first: &jwt_core::NewRefreshToken,
    ) -> jwt_core::Result<()> {
        self.inner.create_session(session, first).await
    }
    async fn session(&self, id: &str) -> jwt_core::Result<Option<jwt_core::SessionRecord>> {
        self.inner.session(id).await
    }
    async fn active_subject(&self, user_id: &str) -> jwt_core::Result<Option<jwt_core::Subject>> {
        self.inner.active_subject(user_id).await
    }
}

impl RefreshTokenStore for HeldGrace {
    async fn rotate(
        &self,
        presented: &str,
        replacement: &jwt_core::NewRefreshToken,
        at: DateTime<Utc>,
    ) -> jwt_core::Result<RotateOutcome> {
        self.inner.rotate(presented, replacement, at).await
    }
    async fn add_refresh_token(
        &self,
        token: &jwt_core::NewRefreshToken,
    ) -> jwt_core::Result<GraceOutcome> {
        self.reached.notify_one();
        self.release.notified().await;
        self.inner.add_refresh_token(token).await
    }
    async fn refresh_token_state(
        &self,
        jti: &str,
        session_id: &str,
    ) -> jwt_core::Result<Option<RefreshTokenState>> {
        self.inner.refresh_token_state(jti, session_id).await
    }
}

impl RevocationStore for HeldGrace {
    async fn revoke_session(
        &self,
        id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> jwt_core::Result<Option<Revocation>> {
        self.inner.revoke_session(id, reason, at).await
    }
    async fn revoke_user(
        &self,
        user_id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> jwt_core::Result<Vec<Revocation>> {
        self.inner.revoke_user(user_id, reason, at).await
    }
    async fn void_issued_before(
        &self,
        user_id: Option<&str>,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> jwt_core::Result<Revocation> {
        self.inner.void_issued_before(user_id, before, at).await
    }
    async fn revocation_feed(
        &self,
        after: i64,
        now: DateTime<Utc>,
    ) -> jwt_core::Result<Vec<jwt_core::FeedEntry>> {
        self.inner.revocation_feed(after, now).await
    }
    async fn revocation_feed_head(&self) -> jwt_core::Result<i64> {
        self.inner.revocation_feed_head().await
    }
}

/// The interleaving that used to hand out a pair of a revoked session: the grace path has
/// found its session live, then a reuse after the grace revokes it, then the grace path
/// reaches the store. The store's check is part of recording the token, so the grace path is
/// refused. Beside it, the same grace refresh with nothing in between gets its pair.
async fn a_grace_refresh_that_checked_before_a_reuse_revoked_the_session_gets_no_pair(db: TestDb) {
    let alice = user(&db.store, "alice@example.com").await;
    let held = HeldGrace {
        inner: Arc::new(db.store.clone()),
        reached: Arc::new(tokio::sync::Notify::new()),
        release: Arc::new(tokio::sync::Notify::new()),
    };
    let (grace, grace_clock, reuse, reuse_clock) = two_clocks_on_one_store(|| held.clone());
    let grace = Arc::new(grace);
    let subject = held.inner.active_subject(&alice.id).await.expect("read").expect("active");

    for revoked_in_between in [false, true] {
        let login = grace.start(&subject, ClientInfo::default()).await.expect("login");
        grace_clock.advance(secs(1));
        reuse_clock.set(jwt_core::Clock::now(&grace_clock));
        grace.refresh(login.refresh_token.expose(), ClientInfo::default()).await.expect("rotate");
        grace_clock.advance(secs(2));
        reuse_clock.advance(secs(60));

        let racing = {
            let (grace, token) = (Arc::clone(&grace), login.refresh_token.clone());
            tokio::spawn(async move { grace.refresh(token.expose(), ClientInfo::default()).await })
        };
        held.reached.notified().await;
        if revoked_in_between {
            let reused = reuse.refresh(login.refresh_token.expose(), ClientInfo::default()).await;
            assert!(matches!(reused, Err(Error::RefreshReused(_))), "{reused:?}");
        }
        held.release.notify_one();
        let outcome = racing.await.expect("the grace refresh finishes");
        if revoked_in_between {
            assert!(matches!(outcome, Err(Error::SessionRevoked)), "{outcome:?}");
        } else {
            let pair = outcome.expect("a grace pair in a live session");
            grace.authenticate(pair.access_token.expose()).expect("its access token works");
            let claims = grace.tokens().verify_refresh(pair.refresh_token.expose()).expect("ok");
            let state = held.inner.refresh_token_state(&claims.jti, &claims.sid).await;
            assert_eq!(state.expect("read"), Some(RefreshTokenState::Current));
        }
    }
}

/// Rounds of 16 grace-path refreshes (an instance whose clock is inside the grace) racing one
/// reuse of the same retired token past the grace (another instance's clock), on the system's
/// scheduling. In every round the reuse revokes the session, every pair handed out has its
/// refresh token recorded in the store (current), no refresh that started after the reuse
/// answered got a pair, and after the round the grace path is closed.
async fn grace_refreshes_racing_a_reuse_after_the_grace_hand_out_only_recorded_pairs(db: TestDb) {
    const ROUNDS: usize = 20;
    const RACERS: usize = 16;
    let alice = user(&db.store, "alice@example.com").await;
    let store = Arc::new(db.store.clone());
    let (grace, grace_clock, reuse, reuse_clock) = two_clocks_on_one_store(|| Arc::clone(&store));
    let (grace, reuse) = (Arc::new(grace), Arc::new(reuse));
    let subject = store.active_subject(&alice.id).await.expect("read").expect("active");
    let (mut handed_out, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let login = grace.start(&subject, ClientInfo::default()).await.expect("login");
        grace_clock.advance(secs(1));
        reuse_clock.set(jwt_core::Clock::now(&grace_clock));
        grace.refresh(login.refresh_token.expose(), ClientInfo::default()).await.expect("rotate");
        grace_clock.advance(secs(2));
        reuse_clock.advance(secs(60));

        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS + 1));
        let reused_at = Arc::new(std::sync::OnceLock::<std::time::Instant>::new());
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (grace, barrier) = (Arc::clone(&grace), Arc::clone(&barrier));
                let token = login.refresh_token.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    // Staggered, so that some start before the reuse and some after.
                    tokio::time::sleep(std::time::Duration::from_micros(300 * i as u64)).await;
                    let started = std::time::Instant::now();
                    (started, grace.refresh(token.expose(), ClientInfo::default()).await)
                })
            })
            .collect();
        let reuser = {
            let (reuse, barrier, reused_at) =
                (Arc::clone(&reuse), Arc::clone(&barrier), Arc::clone(&reused_at));
            let token = login.refresh_token.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let outcome = reuse.refresh(token.expose(), ClientInfo::default()).await;
                reused_at.set(std::time::Instant::now()).expect("set once");
                outcome
            })
        };
        let reused = reuser.await.expect("the reuse finishes");
        assert!(matches!(reused, Err(Error::RefreshReused(_))), "round {round}: {reused:?}");
        let reused_at = *reused_at.get().expect("set");
        for racer in racers {
            let (started, outcome) = racer.await.expect("the racer finishes");
            match outcome {
                Ok(pair) => {
                    assert!(started < reused_at, "round {round}: a pair after the revocation");
                    let claims =
                        grace.tokens().verify_refresh(pair.refresh_token.expose()).expect("ok");
                    let state = store.refresh_token_state(&claims.jti, &claims.sid).await;
                    assert_eq!(
                        state.expect("read"),
                        Some(RefreshTokenState::Current),
                        "round {round}: the pair's refresh token is recorded"
                    );
                    handed_out += 1;
                }
                Err(Error::SessionRevoked | Error::Revoked) => refused += 1,
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        let stored = store.session(&login.session_id).await.expect("read").expect("exists");
        assert_eq!(stored.revoke_reason, Some(RevokeReason::RefreshReuse), "round {round}");
        // After the reuse answered, the grace path is closed for good.
        let late = grace.refresh(login.refresh_token.expose(), ClientInfo::default()).await;
        assert!(matches!(late, Err(Error::SessionRevoked | Error::Revoked)), "{late:?}");
    }
    println!(
        "{ROUNDS} rounds of {RACERS} grace refreshes against one reuse: {handed_out} pairs \
         handed out before the revocation, {refused} refused"
    );
}

/// Eight instances (each its own store and connection pool) that find the key table empty at
/// once each try to store their own first keys: exactly one set is stored, and the others are
/// told so. Twenty rounds, on a fresh table each.
async fn instances_storing_first_keys_at_once_store_one_set(db: TestDb) {
    const INSTANCES: usize = 8;
    let instances: Vec<_> = {
        let mut opened = Vec::new();
        for _ in 0..INSTANCES {
            opened.push(Arc::new(common::connect(&db.url).await));
        }
        opened
    };
    for round in 0..20 {
        let barrier = Arc::new(tokio::sync::Barrier::new(INSTANCES));
        let tries: Vec<_> = instances
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let (store, barrier) = (Arc::clone(store), Arc::clone(&barrier));
                tokio::spawn(async move {
                    let mine = [
                        signing_key(&format!("r{round}-i{i}-a"), t0()),
                        signing_key(&format!("r{round}-i{i}-b"), t0() + secs(60)),
                    ];
                    barrier.wait().await;
                    (i, store.add_first_signing_keys(&mine).await.expect("runs"))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for attempt in tries {
            let (i, stored) = attempt.await.expect("finishes");
            if stored {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?} stored first keys");
        let kids: Vec<_> =
            db.store.signing_keys().await.expect("keys").into_iter().map(|k| k.kid).collect();
        let w = winners[0];
        assert_eq!(kids, [format!("r{round}-i{w}-a"), format!("r{round}-i{w}-b")], "round {round}");
        for kid in kids {
            db.store.revoke_signing_key(&kid, t0(), t0()).await.expect("revoke");
        }
        db.store.prune_signing_keys(t0() + secs(1)).await.expect("prune");
        assert!(db.store.signing_keys().await.expect("keys").is_empty(), "round {round}");
    }
}

/// Rotations run at once from several instances never leave two keys that sign: each retires
/// whatever was active when it ran, so exactly one key is neither retired nor revoked.
async fn concurrent_rotations_leave_one_active_key(db: TestDb) {
    const INSTANCES: usize = 8;
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(Arc::new(common::connect(&db.url).await));
    }
    assert!(db.store.add_first_signing_keys(&[signing_key("k0", t0())]).await.expect("stored"));
    for round in 0..10 {
        let barrier = Arc::new(tokio::sync::Barrier::new(INSTANCES));
        let rotations: Vec<_> = instances
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let (store, barrier) = (Arc::clone(store), Arc::clone(&barrier));
                tokio::spawn(async move {
                    let at = t0() + secs(10 * (round + 1)) + TimeDelta::milliseconds(i as i64);
                    let next = signing_key(&format!("r{round}-i{i}"), at);
                    barrier.wait().await;
                    store.rotate_signing_key(&next).await.expect("rotates");
                })
            })
            .collect();
        for rotation in rotations {
            rotation.await.expect("finishes");
        }
        let keys = db.store.signing_keys().await.expect("keys");
        let active: Vec<_> = keys
            .iter()
            .filter(|k| k.retired_at.is_none() && k.revoked_at.is_none())
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(active.len(), 1, "round {round}: {active:?}");
    }
}

/// Re-sealing replaces every stored key's sealed private key in one step, and only if the keys
/// are still as read: a list that misses a key, or holds a sealed key that changed since, is
/// refused and changes nothing.
async fn resealing_replaces_every_sealed_key_at_once_or_none(db: TestDb) {
    use jwt_auth_store::ResealedKey;
    let store = &db.store;
    let (a, b) = (signing_key("a", t0()), signing_key("b", t0() + secs(60)));
    assert!(store.add_first_signing_keys(&[a.clone(), b.clone()]).await.expect("stored"));
    let resealed = |key: &jwt_auth_store::StoredSigningKey, now: &[u8]| ResealedKey {
        kid: key.kid.clone(),
        sealed_before: key.sealed_private_key.clone(),
        sealed_now: now.to_vec(),
    };
    let stale = ResealedKey { sealed_before: vec![9, 9], ..resealed(&b, &[2]) };
    for refused in [vec![resealed(&a, &[1])], vec![resealed(&a, &[1]), stale]] {
        let outcome = store.reseal_signing_keys(&refused).await;
        assert!(matches!(outcome, Err(StoreError::KeysChanged)), "{outcome:?}");
        assert_eq!(store.signing_keys().await.expect("keys"), [a.clone(), b.clone()]);
    }
    store.reseal_signing_keys(&[resealed(&a, &[1]), resealed(&b, &[2])]).await.expect("resealed");
    let keys = store.signing_keys().await.expect("keys");
    let sealed: Vec<_> = keys.iter().map(|k| k.sealed_private_key.clone()).collect();
    assert_eq!(sealed, [vec![1], vec![2]]);
    assert_eq!(keys[0], jwt_auth_store::StoredSigningKey { sealed_private_key: vec![1], ..a });
}

fn authorization_code(digest: u8, expires_in: i64) -> AuthorizationCode {
    AuthorizationCode {
        digest: vec![digest; 32],
        client_id: "app".into(),
        user_id: "alice".into(),
        redirect_uri: "http://127.0.0.1:5555/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: "openid email".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        resource: None,
        auth_time: t0(),
        created_at: t0(),
        expires_at: t0() + secs(expires_in),
        sign_in_session: None,
    }
}

async fn authorization_codes_are_used_once_and_a_replay_names_the_session_to_revoke(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice@example.com").await;
    let grant = jwt_core::Grant { client_id: "app".into(), scope: "email".into(), audience: None };
    let from_code = |id: &str, digest: &[u8], at| jwt_core::NewSession {
        id: id.into(),
        user_id: alice.id.clone(),
        created_at: at,
        expires_at: at + secs(3_600),
        client: client("10.0.0.1"),
        grant: Some(grant.clone()),
        code: Some(digest.to_vec()),
    };
    let start = async |id: &str, digest: &[u8], at| {
        let first = token(&format!("{id}-t0"), id, None, at);
        store.create_session(&from_code(id, digest, at), &first).await
    };

    // A fresh code reads as issued, with its active user; the session that starts from it
    // claims it, once.
    let first = AuthorizationCode { user_id: alice.id.clone(), ..authorization_code(1, 60) };
    store.add_authorization_code(&first).await.expect("stored");
    let read = store.fresh_authorization_code(&first.digest, t0() + secs(1)).await;
    let (read, subject) = read.expect("runs").expect("fresh");
    assert_eq!(read, first);
    assert_eq!(subject.map(|s| s.id), Some(alice.id.clone()));
    start("s1", &first.digest, t0() + secs(1)).await.expect("claimed");
    let again = start("s2", &first.digest, t0() + secs(1)).await;
    assert!(matches!(again, Err(jwt_core::Error::CodeUsed)), "{again:?}");
    assert!(SessionStore::session(store, "s2").await.expect("read").is_none(), "nothing created");
    assert_eq!(store.fresh_authorization_code(&first.digest, t0()).await.expect("runs"), None);
    // A replay names the session to revoke.
    let replay = store.redeem_authorization_code(&first.digest, t0() + secs(2)).await;
    assert_eq!(replay.expect("runs"), Redemption::Replayed { session_id: Some("s1".into()) });

    // Used up by a failed exchange, a code starts no session, and a replay names none.
    let burned = authorization_code(2, 60);
    store.add_authorization_code(&burned).await.expect("stored");
    let read = store.fresh_authorization_code(&burned.digest, t0()).await.expect("runs");
    assert_eq!(read.expect("fresh").1, None, "its user `alice` is no user: no subject");
    let redeemed = store.redeem_authorization_code(&burned.digest, t0() + secs(1)).await;
    assert_eq!(redeemed.expect("runs"), Redemption::Fresh(Box::new(burned.clone())));
    let late_claim = start("s3", &burned.digest, t0() + secs(1)).await;
    assert!(matches!(late_claim, Err(jwt_core::Error::CodeUsed)), "{late_claim:?}");
    let replay = store.redeem_authorization_code(&burned.digest, t0() + secs(1)).await;
    assert_eq!(replay.expect("runs"), Redemption::Replayed { session_id: None });

    // Expired at its 60th second, and never issued: unknown alike, and claimed by nothing.
    let late = authorization_code(3, 60);
    store.add_authorization_code(&late).await.expect("stored");
    assert_eq!(
        store.fresh_authorization_code(&late.digest, t0() + secs(60)).await.expect("runs"),
        None
    );
    let expired_claim = start("s4", &late.digest, t0() + secs(60)).await;
    assert!(matches!(expired_claim, Err(jwt_core::Error::CodeUsed)), "{expired_claim:?}");
    let expired = store.redeem_authorization_code(&late.digest, t0() + secs(60)).await;
    assert_eq!(expired.expect("runs"), Redemption::Unknown);
    let never = store.redeem_authorization_code(&[9; 32], t0()).await;
    assert_eq!(never.expect("runs"), Redemption::Unknown);
    assert!(start("s5", &[9; 32], t0()).await.is_err());
    assert!(!format!("{first:?}").contains("[1, 1"), "no digest in Debug output");
}

async fn ending_a_sign_in_session_ends_the_sessions_started_under_it_and_keeps_grants(db: TestDb) {
    let store = &db.store;
    let alice = user(store, "alice@example.com").await;
    let new =
        |id: &str, grant: Option<jwt_core::Grant>, code: Option<Vec<u8>>| jwt_core::NewSession {
            id: id.into(),
            user_id: alice.id.clone(),
            created_at: t0(),
            expires_at: t0() + secs(3_600),
            client: client("10.0.0.1"),
            grant,
            code,
        };
    store.create_sign_in_session(&new("browser", None, None)).await.expect("signed in");
    // A session started by a code issued under that sign-in, another under none, and a login.
    let grant = jwt_core::Grant {
        client_id: "app".into(),
        scope: "openid email".into(),
        audience: Some("https://reports.example.com".into()),
    };
    for (sid, digest, sign_in) in [("granted", 1, Some("browser")), ("other", 2, None)] {
        let code = AuthorizationCode {
            sign_in_session: sign_in.map(str::to_owned),
            ..authorization_code(digest, 60)
        };
        store.add_authorization_code(&code).await.expect("stored");
        let first = token(&format!("{sid}-t0"), sid, None, t0());
        let session = new(sid, Some(grant.clone()), Some(code.digest.clone()));
        store.create_session(&session, &first).await.expect("created");
    }
    session(store, "login", &alice.id, t0(), secs(3_600)).await;
    let stored = SessionStore::session(store, "granted").await.expect("read").expect("there");
    assert_eq!(stored.grant.as_ref(), Some(&grant), "the grant is kept with the session");
    let login = SessionStore::session(store, "login").await.expect("read").expect("there");
    assert_eq!(login.grant, None);
    let browser = SessionStore::session(store, "browser").await.expect("read").expect("there");
    assert!(browser.revoked_at.is_none() && browser.grant.is_none());

    let ended = store
        .end_sign_in_session("browser", RevokeReason::Logout, t0() + secs(5))
        .await
        .expect("ended");
    let mut ids: Vec<String> = ended
        .iter()
        .map(|r| match r {
            Revocation::Session { id, .. } => id.clone(),
            other => panic!("a session revocation, not {other:?}"),
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["browser", "granted"]);
    for (sid, revoked) in [("browser", true), ("granted", true), ("other", false), ("login", false)]
    {
        let found = SessionStore::session(store, sid).await.expect("read").expect("there");
        assert_eq!(found.revoked_at.is_some(), revoked, "{sid}");
    }
    let feed = store.revocation_feed(0, t0() + secs(5)).await.expect("feed");
    assert_eq!(feed.len(), 2, "each revocation is in the feed for other instances");
    let again = store.end_sign_in_session("browser", RevokeReason::Logout, t0() + secs(6)).await;
    assert!(again.expect("runs").is_empty(), "ending it again changes nothing");
}

async fn consents_are_kept_per_user_and_client_and_forgotten_with_the_client(db: TestDb) {
    let store = &db.store;
    let (alice, bob) =
        (user(store, "alice@example.com").await, user(store, "bob@example.com").await);
    let app = ServiceClient {
        id: "app".into(),
        name: "app".into(),
        secret_digest: vec![],
        roles: vec![],
        session_id: "app-session".into(),
        created_at: t0(),
        redirect_uris: vec!["https://app.example.com/cb".into()],
        post_logout_redirect_uris: vec![],
        public: true,
        first_party: false,
        require_dpop: false,
    };
    store.add_client(&app).await.expect("added");
    assert_eq!(store.consent(&alice.id, "app").await.expect("read"), None);
    store.record_consent(&alice.id, "app", "email", t0()).await.expect("recorded");
    store.record_consent(&alice.id, "app", "openid email", t0()).await.expect("replaced");
    assert_eq!(
        store.consent(&alice.id, "app").await.expect("read").as_deref(),
        Some("openid email")
    );
    assert_eq!(store.consent(&bob.id, "app").await.expect("read"), None, "per user");

    // A session granted to the client ends with it; a login's does not.
    let grant = jwt_core::Grant { client_id: "app".into(), scope: "email".into(), audience: None };
    let granted = jwt_core::NewSession {
        id: "granted".into(),
        user_id: alice.id.clone(),
        created_at: t0(),
        expires_at: t0() + secs(3_600),
        client: client("10.0.0.1"),
        grant: Some(grant),
        code: None,
    };
    store.create_session(&granted, &token("granted-t0", "granted", None, t0())).await.expect("ok");
    session(store, "login", &alice.id, t0(), secs(3_600)).await;
    let (_, revocations) = store
        .remove_client("app", t0() + secs(1), t0() + secs(1_800))
        .await
        .expect("runs")
        .expect("removed");
    // Each revocation returned, for the server that removed it to apply at once: the client's
    // own session first, then the session granted to it, until that session expires.
    let revoked = |id: &str, expires_at| Revocation::Session { id: id.into(), expires_at };
    let expected =
        [revoked("app-session", t0() + secs(1_800)), revoked("granted", t0() + secs(3_600))];
    assert_eq!(revocations, expected);
    let ended = SessionStore::session(store, "granted").await.expect("read").expect("there");
    assert_eq!(ended.revoke_reason, Some(RevokeReason::ClientRemoved));
    let login = SessionStore::session(store, "login").await.expect("read").expect("there");
    assert!(login.revoked_at.is_none());
    assert_eq!(store.consent(&alice.id, "app").await.expect("read"), None, "forgotten");
}
