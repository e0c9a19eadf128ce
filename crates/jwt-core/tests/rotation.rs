//! Refresh rotation through `Sessions` over `MemoryStore`, on a `ManualClock` shared with the
//! `TokenService`: the grace path, reuse detection, the session's maximum age, logout, voiding,
//! two instances sharing one store, introspection, 32 concurrent rotations of one token, and
//! the zero-grace race (many rounds on the system clock, and forced orders on a manual one).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use jwt_core::{
    Algorithm, ClientInfo, Clock, Confirmation, DpopRefusal, Error, GraceOutcome, KeySet,
    ManualClock, MemoryStore, NewRefreshToken, NewSession, RefreshTokenState, RefreshTokenStore,
    Revocation, RevocationStore, RevokeReason, RotateOutcome, SessionPolicy, SessionRecord,
    SessionStore, Sessions, SigningKey, Subject, TokenPair, TokenPolicy, TokenService,
};

const T0: i64 = 1_700_000_000;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("a valid timestamp")
}

fn subject(id: &str) -> Subject {
    Subject { id: id.into(), roles: vec!["user".into()], email: None }
}

fn client(ip: &str) -> ClientInfo {
    ClientInfo { ip: Some(ip.into()), user_agent: Some("rotation-test".into()), proven_key: None }
}

fn policy(grace_secs: i64) -> SessionPolicy {
    SessionPolicy { reuse_grace: TimeDelta::seconds(grace_secs), ..SessionPolicy::default() }
}

/// A token service on a manual clock at [`T0`], with an EdDSA key (fast to make).
fn token_service() -> (Arc<TokenService>, ManualClock) {
    let clock = ManualClock::new(at(T0));
    let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA).unwrap());
    let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    (Arc::new(tokens), clock)
}

/// Sessions over `store` with users alice and bob, and the clock that drives them.
fn sessions_over<S: jwt_core::AuthStore>(
    store: S,
    policy: SessionPolicy,
) -> (Sessions<S>, ManualClock) {
    let (tokens, clock) = token_service();
    (Sessions::new(tokens, store, policy), clock)
}

fn memory_sessions(policy: SessionPolicy) -> (Sessions<Arc<MemoryStore>>, ManualClock) {
    let store = Arc::new(MemoryStore::new());
    store.put_user(subject("alice"));
    store.put_user(subject("bob"));
    sessions_over(store, policy)
}

fn access_works<S: jwt_core::AuthStore>(sessions: &Sessions<S>, pair: &TokenPair) -> bool {
    sessions.authenticate(pair.access_token.expose()).is_ok()
}

fn assert_access_revoked<S: jwt_core::AuthStore>(sessions: &Sessions<S>, pair: &TokenPair) {
    match sessions.authenticate(pair.access_token.expose()) {
        Err(Error::Revoked) => {}
        other => panic!("expected Err(Revoked), got {other:?}"),
    }
}

async fn refresh<S: jwt_core::AuthStore>(
    sessions: &Sessions<S>,
    pair: &TokenPair,
) -> jwt_core::Result<TokenPair> {
    sessions.refresh(pair.refresh_token.expose(), client("198.51.100.1")).await
}

#[tokio::test]
async fn rotation_returns_a_new_working_pair_in_the_same_session() {
    let (sessions, clock) = memory_sessions(SessionPolicy::default());
    let first = sessions.start(&subject("alice"), client("203.0.113.1")).await.unwrap();
    assert_eq!(sessions.store().refresh_token_count(), 1);
    clock.advance(TimeDelta::minutes(1));

    let second = refresh(&sessions, &first).await.unwrap();
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(sessions.store().refresh_token_count(), 2);
    let claims = sessions.authenticate(second.access_token.expose()).unwrap();
    assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("alice", first.session_id.as_str()));
    assert_eq!(claims.iat, T0 + 60);
    let refresh_claims = sessions.tokens().verify_refresh(second.refresh_token.expose()).unwrap();
    assert_eq!(refresh_claims.sid, first.session_id);
    // The old access token lives on until it expires: rotation does not revoke it.
    assert!(access_works(&sessions, &first));
    let third = refresh(&sessions, &second).await.unwrap();
    assert_eq!(third.session_id, first.session_id);
}

#[tokio::test]
async fn retired_token_gets_a_pair_within_the_grace_and_revokes_the_session_after_it() {
    let (sessions, clock) = memory_sessions(policy(10));
    let first = sessions.start(&subject("alice"), client("203.0.113.1")).await.unwrap();
    clock.advance(TimeDelta::seconds(1));
    let rotated =
        sessions.refresh(first.refresh_token.expose(), client("203.0.113.2")).await.unwrap();

    // Within the grace: the lost-response / racing-tab path.
    clock.advance(TimeDelta::seconds(5));
    let grace = refresh(&sessions, &first).await.unwrap();
    assert_eq!(grace.session_id, first.session_id);
    assert_ne!(grace.refresh_token, rotated.refresh_token);
    assert!(access_works(&sessions, &grace));
    clock.advance(TimeDelta::seconds(4)); // 9 s after the rotation: still within
    let last_grace = refresh(&sessions, &first).await.unwrap();
    assert!(access_works(&sessions, &last_grace));
    assert_eq!(sessions.store().refresh_token_count(), 4);

    // 10 s after the rotation: reuse.
    clock.advance(TimeDelta::seconds(1));
    let details = match refresh(&sessions, &first).await {
        Err(Error::RefreshReused(details)) => details,
        other => panic!("expected RefreshReused, got {other:?}"),
    };
    assert_eq!(details.session_id, first.session_id);
    assert_eq!(details.user_id, "alice");
    assert_eq!(details.rotated_at, at(T0 + 1));
    assert_eq!(details.detected_at, at(T0 + 11));
    assert_eq!(details.seconds_since_rotation(), 10);
    assert_eq!(details.rotated_by, client("203.0.113.2"), "the legitimate rotation's client");

    // Every access and refresh token of the session is now refused.
    for pair in [&first, &rotated, &grace, &last_grace] {
        assert_access_revoked(&sessions, pair);
        assert!(refresh(&sessions, pair).await.is_err());
    }
    let record = sessions.store().session(&first.session_id).await.unwrap().unwrap();
    assert_eq!(record.revoke_reason, Some(RevokeReason::RefreshReuse));
    assert_eq!(record.revoked_at, Some(at(T0 + 11)));
    // The user can log in again.
    let again = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert!(access_works(&sessions, &again));
    assert!(refresh(&sessions, &again).await.is_ok());
}

#[tokio::test]
async fn zero_grace_makes_any_reuse_revoke_the_session() {
    let (sessions, _clock) = memory_sessions(policy(0));
    let first = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let second = refresh(&sessions, &first).await.unwrap();
    // Same instant as the rotation, and still reuse.
    match refresh(&sessions, &first).await {
        Err(Error::RefreshReused(details)) => {
            assert_eq!(details.session_id, first.session_id);
            assert_eq!(details.seconds_since_rotation(), 0);
        }
        other => panic!("expected RefreshReused, got {other:?}"),
    }
    assert_access_revoked(&sessions, &second);
    assert!(refresh(&sessions, &second).await.is_err());
    assert_eq!(sessions.store().refresh_token_count(), 2, "the reuse recorded no new token");
}

#[tokio::test]
async fn tokens_issued_near_the_end_of_a_session_expire_with_it() {
    let policy = SessionPolicy { max_age: TimeDelta::hours(1), ..policy(10) };
    let (sessions, clock) = memory_sessions(policy);
    let first = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let end = T0 + 3600;
    assert_eq!(first.refresh_expires_in, 3600, "a refresh token never outlives its session");
    assert_eq!(first.expires_in, 1800);

    clock.set(at(T0 + 45 * 60));
    let late = refresh(&sessions, &first).await.unwrap();
    assert_eq!((late.expires_in, late.refresh_expires_in), (900, 900));
    let claims = sessions.authenticate(late.access_token.expose()).unwrap();
    assert_eq!(claims.exp, end);
    let refresh_claims = sessions.tokens().verify_refresh(late.refresh_token.expose()).unwrap();
    assert_eq!(refresh_claims.exp, end);

    clock.set(at(end));
    match refresh(&sessions, &late).await {
        Err(Error::SessionExpired) => {}
        other => panic!("expected SessionExpired at the session's end, got {other:?}"),
    }
    clock.set(at(end + 60));
    assert!(refresh(&sessions, &late).await.is_err());
    assert!(sessions.authenticate(late.access_token.expose()).is_err());
}

#[tokio::test]
async fn refreshing_often_never_carries_a_session_past_its_maximum_age() {
    // Default policy: sessions of 30 days, refresh tokens of 7 days, refreshed every 6 days.
    let (sessions, clock) = memory_sessions(SessionPolicy::default());
    let mut pair = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let end = T0 + 30 * 86_400;
    for day in [6, 12, 18, 24] {
        clock.set(at(T0 + day * 86_400));
        pair = refresh(&sessions, &pair).await.unwrap();
        let claims = sessions.tokens().verify_refresh(pair.refresh_token.expose()).unwrap();
        assert!(claims.exp <= end, "day {day}: refresh token outlives the session");
        assert!(sessions.authenticate(pair.access_token.expose()).unwrap().exp <= end);
    }
    clock.set(at(end));
    match refresh(&sessions, &pair).await {
        Err(Error::SessionExpired) => {}
        other => panic!("expected SessionExpired, got {other:?}"),
    }
}

#[tokio::test]
async fn refresh_after_the_maximum_age_is_session_expired() {
    let policy = SessionPolicy { max_age: TimeDelta::hours(1), ..policy(10) };
    let (sessions, clock) = memory_sessions(policy);
    let first = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    clock.set(at(T0 + 3600 + 60));
    match refresh(&sessions, &first).await {
        Err(Error::SessionExpired) => {}
        other => panic!("expected SessionExpired, got {other:?}"),
    }
}

/// Two instances on one store and one clock, whose token lifetimes differ: as after an
/// operator changed `REFRESH_TOKEN_EXPIRY` and restarted one of them.
fn instances_with_refresh_ttls(
    policy: SessionPolicy,
    first: TimeDelta,
    second: TimeDelta,
) -> (Sessions<Arc<MemoryStore>>, Sessions<Arc<MemoryStore>>, ManualClock) {
    let store = Arc::new(MemoryStore::new());
    store.put_user(subject("alice"));
    let clock = ManualClock::new(at(T0));
    let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA).unwrap());
    let instance = |refresh_ttl: TimeDelta| {
        let mut token_policy = TokenPolicy::new("jwt-auth", "api");
        token_policy.refresh_ttl = refresh_ttl;
        let tokens = TokenService::new(token_policy, keys.clone())
            .unwrap()
            .with_clock(Arc::new(clock.clone()));
        Sessions::new(Arc::new(tokens), store.clone(), policy)
    };
    (instance(first), instance(second), clock)
}

#[tokio::test]
async fn refresh_token_that_ran_out_within_a_live_session_is_token_expired() {
    // Default policy: refresh tokens of 7 days in sessions of 30.
    let (sessions, clock) = memory_sessions(SessionPolicy::default());
    let idle = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    clock.set(at(T0 + 7 * 86_400 + 60));
    match refresh(&sessions, &idle).await {
        Err(Error::Expired) => {}
        other => panic!("expected Expired, got {other:?}"),
    }
    // Positive control: a fresh token of a live session refreshes at the same moment.
    let fresh = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert!(refresh(&sessions, &fresh).await.is_ok());

    // The token's lifetime (1 h) is shorter than the refresh lifetime of the instance that
    // sees it (2 h), yet its 30-day session lives: the token expired, not the session.
    let (issuer, verifier, clock) = instances_with_refresh_ttls(
        SessionPolicy::default(),
        TimeDelta::hours(1),
        TimeDelta::hours(2),
    );
    let pair = issuer.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    clock.advance(TimeDelta::hours(1) + TimeDelta::minutes(1));
    match refresh(&verifier, &pair).await {
        Err(Error::Expired) => {}
        other => panic!("expected Expired, got {other:?}"),
    }
    let fresh = verifier.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert!(refresh(&verifier, &fresh).await.is_ok(), "positive control");
}

#[tokio::test]
async fn expired_refresh_token_of_an_ended_session_is_session_expired() {
    // Tokens of a full refresh lifetime (1 h) in sessions of 1 h: the token and its session
    // end together, and the session's end is what the client must hear.
    let policy = SessionPolicy { max_age: TimeDelta::hours(1), ..policy(10) };
    let (issuer, verifier, clock) =
        instances_with_refresh_ttls(policy, TimeDelta::hours(1), TimeDelta::hours(1));
    let pair = issuer.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert_eq!(pair.refresh_expires_in, 3600, "not cut short by the session");
    clock.advance(TimeDelta::hours(1) + TimeDelta::minutes(1));
    match refresh(&verifier, &pair).await {
        Err(Error::SessionExpired) => {}
        other => panic!("expected SessionExpired, got {other:?}"),
    }
    let fresh = verifier.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert!(refresh(&verifier, &fresh).await.is_ok(), "positive control");
}

#[tokio::test]
async fn expired_refresh_token_of_an_unknown_session_reveals_nothing_of_it() {
    let policy = SessionPolicy { max_age: TimeDelta::hours(1), ..policy(10) };
    let (sessions, clock) = memory_sessions(policy);
    let pair = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    // The same token service over a store that never saw the session (as after pruning).
    let elsewhere = Sessions::new(sessions.tokens().clone(), Arc::new(MemoryStore::new()), policy);
    clock.set(at(T0 + 3600 + 60));
    match refresh(&sessions, &pair).await {
        Err(Error::SessionExpired) => {}
        other => panic!("expected SessionExpired where the session is known, got {other:?}"),
    }
    match refresh(&elsewhere, &pair).await {
        Err(Error::Expired) => {}
        other => panic!("expected Expired where the session is unknown, got {other:?}"),
    }
}

#[tokio::test]
async fn logout_ends_one_session_and_leaves_the_others() {
    let (sessions, clock) = memory_sessions(SessionPolicy::default());
    let phone = sessions.start(&subject("alice"), client("203.0.113.1")).await.unwrap();
    let laptop = sessions.start(&subject("alice"), client("203.0.113.2")).await.unwrap();
    let phone_next = refresh(&sessions, &phone).await.unwrap();
    clock.advance(TimeDelta::seconds(30));

    sessions.end(&phone.session_id, RevokeReason::Logout).await.unwrap();
    for pair in [&phone, &phone_next] {
        assert_access_revoked(&sessions, pair);
        assert!(refresh(&sessions, pair).await.is_err());
    }
    assert!(access_works(&sessions, &laptop));
    let laptop_next = refresh(&sessions, &laptop).await.unwrap();
    assert!(access_works(&sessions, &laptop_next));

    // Idempotent, and an unknown session is no error.
    sessions.end(&phone.session_id, RevokeReason::Logout).await.unwrap();
    sessions.end("no-such-session", RevokeReason::Logout).await.unwrap();
    let record = sessions.store().session(&phone.session_id).await.unwrap().unwrap();
    assert_eq!(record.revoke_reason, Some(RevokeReason::Logout));
}

#[tokio::test]
async fn end_all_ends_every_session_of_the_user_and_a_new_login_works() {
    let (sessions, clock) = memory_sessions(SessionPolicy::default());
    let alice_1 = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let alice_2 = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let bob = sessions.start(&subject("bob"), ClientInfo::default()).await.unwrap();
    clock.advance(TimeDelta::seconds(10));
    let alice_2_next = refresh(&sessions, &alice_2).await.unwrap();
    clock.advance(TimeDelta::seconds(10));

    sessions.end_all("alice", RevokeReason::LogoutAll).await.unwrap();
    for pair in [&alice_1, &alice_2, &alice_2_next] {
        assert_access_revoked(&sessions, pair);
        assert!(refresh(&sessions, pair).await.is_err());
    }
    assert!(access_works(&sessions, &bob));
    assert!(refresh(&sessions, &bob).await.is_ok());

    // A login in the same second as the logout, and one later, both work.
    let same_second = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert!(access_works(&sessions, &same_second));
    assert!(refresh(&sessions, &same_second).await.is_ok());
    clock.advance(TimeDelta::seconds(1));
    let later = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert!(access_works(&sessions, &later));
    assert!(refresh(&sessions, &later).await.is_ok());
}

#[tokio::test]
async fn void_issued_before_refuses_older_tokens_for_one_user_or_for_everyone() {
    let (sessions, clock) = memory_sessions(SessionPolicy::default());
    let alice_old = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let bob_old = sessions.start(&subject("bob"), ClientInfo::default()).await.unwrap();
    clock.advance(TimeDelta::seconds(60));
    let alice_new = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();

    sessions.void_issued_before(Some("alice"), at(T0 + 30)).await.unwrap();
    assert_access_revoked(&sessions, &alice_old);
    match refresh(&sessions, &alice_old).await {
        Err(Error::Revoked) => {}
        other => panic!("expected Revoked, got {other:?}"),
    }
    assert!(access_works(&sessions, &alice_new), "issued after the cut-off");
    assert!(access_works(&sessions, &bob_old), "another user");

    clock.advance(TimeDelta::seconds(1));
    sessions.void_issued_before(None, clock.now()).await.unwrap();
    for pair in [&bob_old, &alice_new] {
        assert_access_revoked(&sessions, pair);
        assert!(refresh(&sessions, pair).await.is_err());
    }
    let fresh = sessions.start(&subject("bob"), ClientInfo::default()).await.unwrap();
    assert!(access_works(&sessions, &fresh));
    assert!(refresh(&sessions, &fresh).await.is_ok());
}

#[tokio::test]
async fn removed_user_cannot_refresh() {
    let (sessions, _clock) = memory_sessions(SessionPolicy::default());
    let pair = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    sessions.store().remove_user("alice");
    match refresh(&sessions, &pair).await {
        Err(Error::InactiveSubject) => {}
        other => panic!("expected InactiveSubject, got {other:?}"),
    }
    assert_eq!(sessions.store().refresh_token_count(), 1, "nothing was rotated");
}

#[tokio::test]
async fn second_instance_picks_up_revocations_at_its_next_read_of_the_feed() {
    // Two server instances: one store (behind an Arc), one token service, a revocation set each.
    let store = Arc::new(MemoryStore::new());
    store.put_user(subject("alice"));
    store.put_user(subject("bob"));
    let (tokens, clock) = token_service();
    let a = Sessions::new(tokens.clone(), store.clone(), policy(10));
    let b = Sessions::new(tokens, store.clone(), policy(10));
    assert!(!Arc::ptr_eq(a.revocations(), b.revocations()));
    let (b_follows, feed) = (b.revocation_follower(), b.store_feed());

    let logout = a.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let reused = a.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let bob = a.start(&subject("bob"), ClientInfo::default()).await.unwrap();
    assert!(access_works(&b, &logout));
    assert_eq!(b_follows.catch_up(&feed).await.unwrap(), 0, "nothing revoked yet");
    clock.advance(TimeDelta::seconds(5));

    // Logout on A.
    a.end(&logout.session_id, RevokeReason::Logout).await.unwrap();
    assert_access_revoked(&a, &logout);
    // B answers from memory until it reads the feed; the store already refuses the refresh.
    assert!(access_works(&b, &logout));
    match refresh(&b, &logout).await {
        Err(Error::SessionRevoked) => {}
        other => panic!("expected SessionRevoked from the store, got {other:?}"),
    }
    assert_eq!(b_follows.catch_up(&feed).await.unwrap(), 1);
    assert_access_revoked(&b, &logout);

    // Reuse detected on A.
    let rotated = refresh(&a, &reused).await.unwrap();
    clock.advance(TimeDelta::seconds(11));
    assert!(matches!(refresh(&a, &reused).await, Err(Error::RefreshReused(_))));
    assert!(access_works(&b, &rotated));
    assert_eq!(b_follows.catch_up(&feed).await.unwrap(), 1, "the reused session");
    assert_access_revoked(&b, &rotated);

    // Logout everywhere on A, seen by B.
    clock.advance(TimeDelta::seconds(1));
    a.end_all("bob", RevokeReason::LogoutAll).await.unwrap();
    assert!(access_works(&b, &bob));
    assert_eq!(b_follows.catch_up(&feed).await.unwrap(), 2, "bob's session and cut-off");
    assert_access_revoked(&b, &bob);
    // The cursor has passed them: nothing is read twice.
    clock.advance(TimeDelta::seconds(11));
    assert_eq!(b_follows.catch_up(&feed).await.unwrap(), 0);
    assert_eq!(b_follows.cursor().as_deref(), Some("4"));
}

async fn introspect<S: jwt_core::AuthStore>(sessions: &Sessions<S>, pair: &TokenPair) -> bool {
    sessions.introspect_refresh(pair.refresh_token.expose()).await.unwrap().is_some()
}

#[tokio::test]
async fn introspection_says_whether_a_refresh_would_get_a_pair_and_changes_nothing() {
    let (sessions, clock) = memory_sessions(policy(10));
    let first = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let claims = sessions.introspect_refresh(first.refresh_token.expose()).await.unwrap();
    let claims = claims.expect("a current token");
    assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("alice", first.session_id.as_str()));

    clock.advance(TimeDelta::seconds(1));
    let second = refresh(&sessions, &first).await.unwrap();
    clock.advance(TimeDelta::seconds(9));
    assert!(introspect(&sessions, &first).await, "retired 9 s ago: within the grace");
    assert!(introspect(&sessions, &second).await, "current");

    // After the grace, presenting it would revoke the session; asking about it does not.
    clock.advance(TimeDelta::seconds(1));
    assert!(!introspect(&sessions, &first).await, "retired 10 s ago: past the grace");
    let record = sessions.store().session(&first.session_id).await.unwrap().unwrap();
    assert_eq!(record.revoked_at, None);
    assert_eq!(sessions.store().refresh_token_count(), 2);
    assert!(access_works(&sessions, &second));
    let third = refresh(&sessions, &second).await.expect("the session lives on");

    // Neither the wrong kind of token nor garbage is a usable refresh token.
    for token in [third.access_token.expose(), "not.a.token", ""] {
        assert!(sessions.introspect_refresh(token).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn introspection_refuses_tokens_of_revoked_or_ended_sessions_and_inactive_users() {
    let max_age = SessionPolicy { max_age: TimeDelta::hours(1), ..policy(10) };
    let store = Arc::new(MemoryStore::new());
    store.put_user(subject("alice"));
    store.put_user(subject("bob"));
    let (tokens, clock) = token_service();
    let here = Sessions::new(tokens.clone(), store.clone(), max_age);
    let elsewhere = Sessions::new(tokens, store.clone(), max_age);

    let logged_out = here.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let live = here.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let bobs = here.start(&subject("bob"), ClientInfo::default()).await.unwrap();
    here.end(&logged_out.session_id, RevokeReason::Logout).await.unwrap();
    assert!(!introspect(&here, &logged_out).await, "revoked in the revocation set");
    assert!(!introspect(&elsewhere, &logged_out).await, "revoked in the store, not yet synced");
    assert!(introspect(&elsewhere, &live).await);

    store.remove_user("bob");
    assert!(!introspect(&here, &bobs).await, "the user is gone");

    clock.advance(TimeDelta::hours(1));
    assert!(!introspect(&here, &live).await, "the session has ended");
}

/// A `MemoryStore` that counts what `rotate` found, to tell rotations from grace refreshes.
/// Armed with a clock, it also lets a rival win the next rotation first: the rival reads the
/// clock a millisecond later than the caller did, then gets to the store before it.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    rotated: AtomicUsize,
    already_rotated: AtomicUsize,
    rival: std::sync::Mutex<Option<ManualClock>>,
    /// Revokes the session just before the next rotation, as another instance might.
    revoke_before_rotating: std::sync::atomic::AtomicBool,
    /// Answers every session read as if the database were down.
    unavailable: std::sync::atomic::AtomicBool,
}

impl CountingStore {
    fn let_a_rival_rotate_first(&self, clock: &ManualClock) {
        *self.rival.lock().unwrap() = Some(clock.clone());
    }
}

impl SessionStore for CountingStore {
    async fn create_session(
        &self,
        session: &NewSession,
        first_token: &NewRefreshToken,
    ) -> jwt_core::Result<()> {
        self.inner.create_session(session, first_token).await
    }

    async fn session(&self, id: &str) -> jwt_core::Result<Option<SessionRecord>> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(Error::unavailable(std::io::Error::other("the database is down")));
        }
        self.inner.session(id).await
    }

    async fn active_subject(&self, user_id: &str) -> jwt_core::Result<Option<Subject>> {
        self.inner.active_subject(user_id).await
    }
}

impl RefreshTokenStore for CountingStore {
    async fn rotate(
        &self,
        presented_jti: &str,
        replacement: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> jwt_core::Result<RotateOutcome> {
        if self.revoke_before_rotating.swap(false, Ordering::SeqCst) {
            let session = self.inner.session(&replacement.session_id).await?.unwrap();
            self.inner.revoke_session(&session.id, RevokeReason::Logout, at).await?;
        }
        let rival = self.rival.lock().unwrap().take();
        if let Some(clock) = rival {
            clock.advance(TimeDelta::milliseconds(1));
            let theirs = NewRefreshToken { jti: "rival".into(), ..replacement.clone() };
            let outcome = self.inner.rotate(presented_jti, &theirs, clock.now()).await?;
            assert_eq!(outcome, RotateOutcome::Rotated, "the rival wins");
        }
        let outcome = self.inner.rotate(presented_jti, replacement, at).await?;
        match outcome {
            RotateOutcome::Rotated => self.rotated.fetch_add(1, Ordering::SeqCst),
            RotateOutcome::AlreadyRotated { .. } => {
                self.already_rotated.fetch_add(1, Ordering::SeqCst)
            }
            _ => 0,
        };
        Ok(outcome)
    }

    async fn add_refresh_token(&self, token: &NewRefreshToken) -> jwt_core::Result<GraceOutcome> {
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

impl RevocationStore for CountingStore {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_concurrent_rotations_of_one_token_retire_it_once() {
    const TASKS: usize = 32;
    let store = CountingStore::default();
    store.inner.put_user(subject("alice"));
    let (sessions, clock) = sessions_over(store, policy(10));
    let sessions = Arc::new(sessions);
    let original = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let rotated_at = clock.now();

    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let sessions = sessions.clone();
            let barrier = barrier.clone();
            let token = original.refresh_token.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                sessions.refresh(token.expose(), client(&format!("10.0.0.{i}"))).await
            })
        })
        .collect();
    let mut pairs = Vec::with_capacity(TASKS);
    for task in tasks {
        pairs.push(task.await.expect("no task panicked").expect("every rotation gets a pair"));
    }

    let store = sessions.store();
    assert_eq!(store.rotated.load(Ordering::SeqCst), 1, "retired exactly once");
    assert_eq!(store.already_rotated.load(Ordering::SeqCst), TASKS - 1, "the rest took the grace");
    assert_eq!(store.inner.refresh_token_count(), 1 + TASKS);
    let mut refresh_tokens: Vec<&str> = pairs.iter().map(|p| p.refresh_token.expose()).collect();
    refresh_tokens.sort_unstable();
    refresh_tokens.dedup();
    assert_eq!(refresh_tokens.len(), TASKS, "32 distinct refresh tokens");
    for pair in &pairs {
        assert_eq!(pair.session_id, original.session_id);
        let claims = sessions.authenticate(pair.access_token.expose()).unwrap();
        assert_eq!(claims.sid, original.session_id);
    }

    // Every pair's refresh token is current: each rotates once, as a real rotation.
    let mut next = Vec::with_capacity(TASKS);
    for pair in &pairs {
        next.push(refresh(&sessions, pair).await.expect("each returned refresh token rotates"));
    }
    assert_eq!(store.rotated.load(Ordering::SeqCst), 1 + TASKS);
    assert_eq!(store.already_rotated.load(Ordering::SeqCst), TASKS - 1);
    assert_eq!(store.inner.refresh_token_count(), 1 + 2 * TASKS);

    // After the grace, the original is a replay.
    clock.advance(TimeDelta::seconds(10));
    match refresh(&sessions, &original).await {
        Err(Error::RefreshReused(details)) => {
            assert_eq!(details.session_id, original.session_id);
            assert_eq!(details.user_id, "alice");
            assert_eq!(details.rotated_at, rotated_at);
            let ip = details.rotated_by.ip.expect("the winner's client was recorded");
            assert!(ip.starts_with("10.0.0."), "{ip}");
        }
        other => panic!("expected RefreshReused, got {other:?}"),
    }
    for pair in pairs.iter().chain(&next) {
        assert_access_revoked(&sessions, pair);
    }
}

#[tokio::test]
async fn zero_grace_reuse_is_reuse_when_the_loser_read_the_clock_before_the_winner() {
    let store = CountingStore::default();
    store.inner.put_user(subject("alice"));
    let (sessions, clock) = sessions_over(store, policy(0));
    let first = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    clock.advance(TimeDelta::seconds(1));
    // This caller reads the clock, then a rival that read it 1 ms later rotates first.
    sessions.store().let_a_rival_rotate_first(&clock);
    match refresh(&sessions, &first).await {
        Err(Error::RefreshReused(details)) => {
            assert_eq!(details.rotated_at, at(T0 + 1) + TimeDelta::milliseconds(1));
            assert_eq!(details.detected_at, details.rotated_at, "judged by the clock after");
        }
        other => panic!("expected RefreshReused, got {other:?}"),
    }
    let record = sessions.store().session(&first.session_id).await.unwrap().unwrap();
    assert_eq!(record.revoke_reason, Some(RevokeReason::RefreshReuse));
    assert_eq!(sessions.store().inner.refresh_token_count(), 2, "the first and the rival's");
}

#[tokio::test]
async fn zero_grace_reuse_is_reuse_on_a_clock_behind_the_rotation() {
    // Another instance, whose clock is 5 s behind, rotated the token first.
    let (sessions, clock) = memory_sessions(policy(0));
    let first = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    clock.set(at(T0 + 10));
    let second = refresh(&sessions, &first).await.unwrap();
    clock.set(at(T0 + 5));
    match refresh(&sessions, &first).await {
        Err(Error::RefreshReused(details)) => {
            assert_eq!((details.rotated_at, details.detected_at), (at(T0 + 10), at(T0 + 5)));
        }
        other => panic!("expected RefreshReused, got {other:?}"),
    }
    assert_access_revoked(&sessions, &second);
    assert_eq!(sessions.store().refresh_token_count(), 2, "the reuse recorded no new token");
}

#[tokio::test]
async fn positive_grace_takes_a_clock_behind_the_rotation_as_within_it() {
    let (sessions, clock) = memory_sessions(policy(10));
    let first = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    clock.set(at(T0 + 10));
    let second = refresh(&sessions, &first).await.unwrap();
    clock.set(at(T0 + 9));
    let raced = refresh(&sessions, &first).await.expect("within the grace");
    assert_eq!(raced.session_id, first.session_id);
    assert!(access_works(&sessions, &second) && access_works(&sessions, &raced));
}

/// One round of the zero-grace race: `tasks` concurrent refreshes of one fresh token. Exactly
/// one gets a pair; every other is refused, at least one as reuse, and the session ends revoked
/// for reuse, the winner's pair with it.
async fn zero_grace_race_round<S: jwt_core::AuthStore + 'static>(
    sessions: &Arc<Sessions<S>>,
    tasks: usize,
    round: usize,
) {
    let first = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
    let racers: Vec<_> = (0..tasks)
        .map(|i| {
            let (sessions, barrier) = (sessions.clone(), barrier.clone());
            let token = first.refresh_token.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                sessions.refresh(token.expose(), client(&format!("10.0.0.{i}"))).await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks);
    for racer in racers {
        outcomes.push(racer.await.expect("no task panicked"));
    }
    let winners: Vec<&TokenPair> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "round {round}: exactly one pair, got {outcomes:?}");
    let reused = outcomes.iter().filter(|o| matches!(o, Err(Error::RefreshReused(_)))).count();
    assert!(reused >= 1, "round {round}: {outcomes:?}");
    for outcome in &outcomes {
        assert!(
            matches!(
                outcome,
                Ok(_) | Err(Error::RefreshReused(_) | Error::SessionRevoked | Error::Revoked)
            ),
            "round {round}: {outcome:?}"
        );
    }
    let record = sessions.store().session(&first.session_id).await.unwrap().unwrap();
    assert_eq!(record.revoke_reason, Some(RevokeReason::RefreshReuse), "round {round}");
    assert_access_revoked(sessions, winners[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn with_zero_grace_concurrent_refreshes_give_one_pair_and_revoke_the_session() {
    // The system clock, as in a server: each caller reads it whenever the scheduler lets it,
    // so the one that wins the rotation has often read it after some that lose.
    let store = Arc::new(MemoryStore::new());
    store.put_user(subject("alice"));
    let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA).unwrap());
    let tokens = Arc::new(TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys).unwrap());
    let sessions = Arc::new(Sessions::new(tokens, store, policy(0)));
    for round in 0..200 {
        zero_grace_race_round(&sessions, 20, round).await;
    }
}

fn new_token(jti: &str, session_id: &str, parent: Option<&str>) -> NewRefreshToken {
    NewRefreshToken {
        jti: jti.into(),
        session_id: session_id.into(),
        parent_jti: parent.map(Into::into),
        issued_at: at(T0),
        expires_at: at(T0 + 3600),
        client: ClientInfo::default(),
    }
}

#[tokio::test]
async fn the_memory_store_rotates_only_a_current_token_of_its_own_live_session() {
    let store = MemoryStore::new();
    for sid in ["s1", "s2"] {
        let session = NewSession {
            id: sid.into(),
            user_id: "alice".into(),
            created_at: at(T0),
            expires_at: at(T0 + 3600),
            client: ClientInfo::default(),
            grant: None,
            code: None,
        };
        store.create_session(&session, &new_token(&format!("{sid}-a"), sid, None)).await.unwrap();
    }
    let next = new_token("s1-b", "s1", Some("s1-a"));
    let rotate = |jti: &'static str, next: NewRefreshToken| {
        let store = &store;
        async move { store.rotate(jti, &next, at(T0 + 1)).await.unwrap() }
    };
    assert_eq!(rotate("nobody", next.clone()).await, RotateOutcome::NotFound);
    let elsewhere = new_token("s2-b", "s2", Some("s1-a"));
    assert_eq!(rotate("s1-a", elsewhere).await, RotateOutcome::NotFound, "not its session");
    assert_eq!(rotate("s1-a", next.clone()).await, RotateOutcome::Rotated, "the control");
    assert!(matches!(rotate("s1-a", next).await, RotateOutcome::AlreadyRotated { .. }));

    store.revoke_session("s2", RevokeReason::Logout, at(T0 + 2)).await.unwrap();
    let after_logout = new_token("s2-b", "s2", Some("s2-a"));
    assert_eq!(rotate("s2-a", after_logout).await, RotateOutcome::SessionRevoked);
}

#[tokio::test]
async fn a_refresh_token_the_store_never_issued_or_of_another_users_session_is_unknown() {
    let (sessions, _clock) = memory_sessions(policy(10));
    let pair = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let sid = pair.session_id.clone();
    let tokens = sessions.tokens();

    // Validly signed for alice's live session, but with a jti the store has never seen.
    let unissued = tokens.issue_refresh("alice", &sid, None).unwrap().token;
    assert!(sessions.introspect_refresh(unissued.expose()).await.unwrap().is_none());
    let refused = sessions.refresh(unissued.expose(), ClientInfo::default()).await;
    assert!(matches!(refused, Err(Error::UnknownRefreshToken)), "{refused:?}");

    // Validly signed, naming alice's session, for bob.
    let borrowed = tokens.issue_refresh("bob", &sid, None).unwrap().token;
    let refused = sessions.refresh(borrowed.expose(), ClientInfo::default()).await;
    assert!(matches!(refused, Err(Error::UnknownRefreshToken)), "{refused:?}");

    // The control: the token the session really issued.
    assert!(sessions.refresh(pair.refresh_token.expose(), ClientInfo::default()).await.is_ok());
}

#[tokio::test]
async fn a_revocation_landing_between_the_checks_and_the_rotation_wins() {
    let store = CountingStore::default();
    store.inner.put_user(subject("alice"));
    let (sessions, _clock) = sessions_over(store, policy(10));
    let pair = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    let again = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    sessions.store().revoke_before_rotating.store(true, Ordering::SeqCst);
    let refused = sessions.refresh(pair.refresh_token.expose(), ClientInfo::default()).await;
    assert!(matches!(refused, Err(Error::SessionRevoked)), "{refused:?}");
    assert!(sessions.refresh(again.refresh_token.expose(), ClientInfo::default()).await.is_ok());
}

#[tokio::test]
async fn a_failing_store_is_an_error_never_a_refusal_or_an_answer() {
    let store = CountingStore::default();
    store.inner.put_user(subject("alice"));
    let (sessions, _clock) = sessions_over(store, policy(10));
    let pair = sessions.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert!(sessions.introspect_refresh(pair.refresh_token.expose()).await.unwrap().is_some());
    sessions.store().unavailable.store(true, Ordering::SeqCst);
    let failed = sessions.introspect_refresh(pair.refresh_token.expose()).await;
    assert!(matches!(failed, Err(Error::Unavailable(_))), "{failed:?}");
    let failed = sessions.refresh(pair.refresh_token.expose(), ClientInfo::default()).await;
    assert!(matches!(failed, Err(Error::Unavailable(_))), "{failed:?}");
}

#[tokio::test]
async fn a_maximum_age_past_the_end_of_time_is_a_configuration_error() {
    let endless = SessionPolicy { max_age: TimeDelta::MAX, ..policy(10) };
    let (sessions, _clock) = memory_sessions(endless);
    assert_eq!(sessions.policy().max_age, TimeDelta::MAX);
    let started = sessions.start(&subject("alice"), ClientInfo::default()).await;
    assert!(matches!(started, Err(Error::InvalidConfig(_))), "{started:?}");
    let (sessions, _clock) = memory_sessions(policy(10));
    assert!(sessions.start(&subject("alice"), ClientInfo::default()).await.is_ok(), "control");
}

#[tokio::test]
async fn sessions_sharing_a_revocation_set_see_each_others_logouts() {
    let (tokens, _clock) = token_service();
    let store = Arc::new(MemoryStore::new());
    store.put_user(subject("alice"));
    let here = Sessions::new(tokens.clone(), store.clone(), policy(10));
    let there =
        Sessions::new(tokens, store, policy(10)).with_revocations(here.revocations().clone());
    let pair = here.start(&subject("alice"), ClientInfo::default()).await.unwrap();
    assert!(there.authenticate(pair.access_token.expose()).is_ok(), "the control");
    here.end(&pair.session_id, RevokeReason::Logout).await.unwrap();
    assert_eq!(there.revocations().revoked_sessions(), 1);
    assert!(matches!(there.authenticate(pair.access_token.expose()), Err(Error::Revoked)));
}

/// `client(ip)` that proved the DPoP key `jkt`.
fn proving(ip: &str, jkt: &str) -> ClientInfo {
    ClientInfo { proven_key: Some(Confirmation { jkt: jkt.into() }), ..client(ip) }
}

const KEY_1: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const KEY_2: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/// The `cnf` of both tokens of `pair`, and its `token_type`.
fn binding(
    sessions: &Sessions<Arc<MemoryStore>>,
    pair: &TokenPair,
) -> (Option<String>, Option<String>, &'static str) {
    let access = sessions.authenticate(pair.access_token.expose()).expect("a valid access token");
    let refresh = sessions
        .tokens()
        .verify_refresh(pair.refresh_token.expose())
        .expect("a valid refresh token");
    (access.cnf.map(|c| c.jkt), refresh.cnf.map(|c| c.jkt), pair.token_type)
}

#[tokio::test]
async fn a_session_started_with_a_proven_key_binds_both_tokens_and_refreshes_only_with_it() {
    let (sessions, clock) = memory_sessions(policy(0));
    let bound = sessions.start(&subject("alice"), proving("10.0.0.1", KEY_1)).await.unwrap();
    let key = Some(KEY_1.to_owned());
    assert_eq!(binding(&sessions, &bound), (key.clone(), key.clone(), "DPoP"));

    // Positive control: a login that proved no key gets a bearer pair, refreshed by anyone.
    let plain = sessions.start(&subject("bob"), client("10.0.0.2")).await.unwrap();
    assert_eq!(binding(&sessions, &plain), (None, None, "Bearer"));
    clock.advance(TimeDelta::seconds(1));
    let plain = sessions.refresh(plain.refresh_token.expose(), client("10.0.0.2")).await.unwrap();
    assert_eq!(binding(&sessions, &plain), (None, None, "Bearer"));

    // The bound refresh token: without a proof, or with another key, it is refused before the
    // store is asked, and it stays current.
    let token = bound.refresh_token.expose();
    let missing = sessions.refresh(token, client("10.0.0.9")).await;
    assert!(matches!(missing, Err(Error::InvalidDpopProof(DpopRefusal::Missing))), "{missing:?}");
    let other = sessions.refresh(token, proving("10.0.0.9", KEY_2)).await;
    assert!(matches!(other, Err(Error::InvalidDpopProof(DpopRefusal::WrongKey))), "{other:?}");
    assert!(sessions.introspect_refresh(token).await.unwrap().is_some(), "still current");

    // With its key it rotates, and the new pair is bound to the same key.
    let next = sessions.refresh(token, proving("10.0.0.1", KEY_1)).await.unwrap();
    assert_eq!(binding(&sessions, &next), (key.clone(), key, "DPoP"));
}

#[tokio::test]
async fn an_unbound_refresh_token_refreshed_with_a_proven_key_is_bound_from_then_on() {
    let (sessions, clock) = memory_sessions(policy(0));
    let plain = sessions.start(&subject("alice"), client("10.0.0.1")).await.unwrap();
    clock.advance(TimeDelta::seconds(1));
    let bound =
        sessions.refresh(plain.refresh_token.expose(), proving("10.0.0.1", KEY_1)).await.unwrap();
    let key = Some(KEY_1.to_owned());
    assert_eq!(binding(&sessions, &bound), (key.clone(), key, "DPoP"));
    clock.advance(TimeDelta::seconds(1));
    // No way back to a bearer pair.
    let dropped = sessions.refresh(bound.refresh_token.expose(), client("10.0.0.1")).await;
    assert!(matches!(dropped, Err(Error::InvalidDpopProof(DpopRefusal::Missing))), "{dropped:?}");
    assert!(
        sessions.refresh(bound.refresh_token.expose(), proving("10.0.0.1", KEY_1)).await.is_ok()
    );
}

#[test]
fn a_service_token_may_be_bound_too() {
    let (sessions, _clock) = memory_sessions(policy(0));
    let cnf = Confirmation { jkt: KEY_2.into() };
    let issued =
        sessions.issue_bound_access(&subject("billing"), "client-session", None, &cnf).unwrap();
    assert_eq!(sessions.authenticate(issued.token.expose()).unwrap().cnf, Some(cnf));
    let plain = sessions.issue_access(&subject("billing"), "client-session", None).unwrap();
    assert_eq!(sessions.authenticate(plain.token.expose()).unwrap().cnf, None);
}
