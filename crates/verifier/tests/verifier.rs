//! The verifier against a local issuer: discovery, the JWK set cache, unknown-kid refetches,
//! outages, the feed client's token, the feed by stream and by polling, and every kind of
//! revocation. Each refusal stands beside its positive control.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, Issuer, eventually};
use chrono::Utc;
use jwt_auth_verifier::{
    ClientSecret, FeedConfig, FeedState, KeySource, Timing, Verifier, VerifyError,
};
use jwt_core::{Algorithm, FeedChange, KeySet, SigningKey, Subject, TokenPolicy, TokenService};

fn timing() -> Timing {
    let mut timing = Timing::default();
    timing.jwks_max_age_floor = Duration::from_secs(1);
    timing.unknown_kid_refetch_interval = Duration::from_secs(2);
    timing.retry_initial = Duration::from_millis(100);
    timing.retry_max = Duration::from_millis(500);
    timing.feed_poll_interval = Duration::from_millis(300);
    timing.feed_idle_timeout = Duration::from_secs(5);
    timing.polling_before_stream_retry = Duration::from_secs(2);
    timing.prune_interval = Duration::from_secs(1);
    timing
}

fn feed() -> FeedConfig {
    FeedConfig::new(CLIENT_ID, ClientSecret::new(CLIENT_SECRET))
}

async fn ready(verifier: Verifier) -> Verifier {
    assert!(
        verifier.wait_ready(Duration::from_secs(10)).await,
        "not ready: {:?}",
        verifier.status()
    );
    verifier
}

async fn discovered(issuer: &Issuer, feed: FeedConfig) -> Verifier {
    let verifier = Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE)
        .timing(timing())
        .feed(feed)
        .start()
        .unwrap();
    ready(verifier).await
}

fn refused(verifier: &Verifier, token: &str) -> jwt_core::Error {
    match verifier.verify(token) {
        Err(VerifyError::Token(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_keys_and_feed_and_tokens_verify() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    let verifier = discovered(&issuer, feed()).await;
    assert_eq!(Issuer::hits(&issuer.state.metadata_hits), 1);

    let token = issuer.token("alice", "s1", &["user"]);
    let claims = verifier.verify(&token).unwrap();
    assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("alice", "s1"));

    // A token of another issuer's key, and one for another audience, are refused.
    let stranger = TokenService::new(
        TokenPolicy::new(&issuer.url, AUDIENCE),
        KeySet::new(SigningKey::generate(Algorithm::EdDSA).unwrap()),
    )
    .unwrap();
    let alice = Subject { id: "alice".into(), roles: vec![], email: None };
    let forged = stranger.issue_access(&alice, "s1", None).unwrap().token.into_string();
    assert!(matches!(refused(&verifier, &forged), jwt_core::Error::UnknownKey));
    let elsewhere = TokenService::new(
        TokenPolicy::new(&issuer.url, "other-api"),
        issuer.state.tokens.keys().as_ref().clone(),
    )
    .unwrap();
    let other_audience = elsewhere.issue_access(&alice, "s1", None).unwrap().token.into_string();
    assert!(matches!(refused(&verifier, &other_audience), jwt_core::Error::InvalidAudience));

    eventually(10, "the feed streams", || verifier.status().feed.state == FeedState::Streaming)
        .await;
    let status = verifier.status();
    assert!(status.is_healthy(), "{status:?}");
    assert_eq!(status.keys.count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_uri_and_an_explicit_feed_work_without_discovery() {
    let issuer = Issuer::start(Algorithm::ES256).await;
    let jwks_uri = format!("{}/.well-known/jwks.json", issuer.url);
    let verifier = Verifier::builder(KeySource::jwks(&issuer.url, jwks_uri), AUDIENCE)
        .timing(timing())
        .feed(feed().server_url(&issuer.url))
        .start()
        .unwrap();
    let verifier = ready(verifier).await;
    assert_eq!(Issuer::hits(&issuer.state.metadata_hits), 0);
    assert!(verifier.verify(&issuer.token("bob", "s2", &[])).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_issuer_that_differs_is_refused() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    *issuer.state.metadata_issuer.lock().unwrap() = Some(format!("{}/", issuer.url));
    let verifier = Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE)
        .timing(timing())
        .start()
        .unwrap();
    assert!(!verifier.wait_ready(Duration::from_secs(2)).await);
    assert!(matches!(verifier.verify(&issuer.token("a", "s", &[])), Err(VerifyError::NotReady)));
    let error = verifier.status().last_error.unwrap();
    assert!(error.contains("issuer"), "{error}");
    assert_eq!(Issuer::hits(&issuer.state.jwks_hits), 0, "no keys from a mismatched issuer");

    // The positive control: the same issuer naming itself exactly.
    *issuer.state.metadata_issuer.lock().unwrap() = None;
    assert!(verifier.wait_ready(Duration::from_secs(10)).await);
    assert!(verifier.verify(&issuer.token("a", "s", &[])).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_refetched_when_its_max_age_runs_out_and_not_before() {
    let short = Issuer::start(Algorithm::EdDSA).await;
    short.state.jwks_max_age.store(1, Ordering::SeqCst);
    let long = Issuer::start(Algorithm::EdDSA).await;
    long.state.jwks_max_age.store(3600, Ordering::SeqCst);
    let start = |issuer: &Issuer| {
        Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE)
            .timing(timing())
            .start()
            .unwrap()
    };
    let (a, b) = (ready(start(&short)).await, ready(start(&long)).await);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let short_hits = Issuer::hits(&short.state.jwks_hits);
    assert!((3..=6).contains(&short_hits), "max-age=1 for 4 s: {short_hits} fetches");
    assert_eq!(Issuer::hits(&long.state.jwks_hits), 1, "max-age=3600: one fetch");
    assert!(b.status().keys.stale_since.is_none());
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    issuer.state.jwks_max_age.store(3600, Ordering::SeqCst);
    let verifier = discovered(&issuer, feed()).await;
    let before = Issuer::hits(&issuer.state.jwks_hits);

    // A key rotated in at the issuer: refused at first, accepted once refetched.
    issuer.rotate(Algorithm::EdDSA);
    let token = issuer.token("alice", "s1", &[]);
    assert!(matches!(refused(&verifier, &token), jwt_core::Error::UnknownKey));
    eventually(10, "the new key is fetched", || verifier.verify(&token).is_ok()).await;

    // A flood of made-up key ids for 5 s: at most one fetch per 2 s interval.
    let bogus = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let after_rotation = Issuer::hits(&issuer.state.jwks_hits);
    let flood_end = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut sent = 0;
    while tokio::time::Instant::now() < flood_end {
        let key = bogus.clone().with_kid(format!("bogus-{sent}"));
        let forger =
            TokenService::new(TokenPolicy::new(&issuer.url, AUDIENCE), KeySet::new(key)).unwrap();
        let alice = Subject { id: "alice".into(), roles: vec![], email: None };
        let forged = forger.issue_access(&alice, "s1", None).unwrap().token.into_string();
        assert!(matches!(refused(&verifier, &forged), jwt_core::Error::UnknownKey));
        sent += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let flood_hits = Issuer::hits(&issuer.state.jwks_hits) - after_rotation;
    assert!(sent > 100, "{sent} forged tokens");
    assert!(
        (1..=4).contains(&flood_hits),
        "{sent} unknown kids in 5 s caused {flood_hits} fetches"
    );
    assert!(after_rotation - before <= 2);
    assert!(verifier.verify(&token).is_ok(), "the real key still verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_verify_while_the_issuer_is_down_and_the_status_says_so() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    issuer.state.jwks_max_age.store(1, Ordering::SeqCst);
    let verifier = discovered(&issuer, feed()).await;
    let token = issuer.token("alice", "s1", &[]);
    assert!(verifier.verify(&token).is_ok());
    eventually(10, "healthy", || verifier.status().is_healthy()).await;

    issuer.state.down.store(true, Ordering::SeqCst);
    eventually(10, "keys stale and feed disconnected", || {
        let status = verifier.status();
        status.keys.stale_since.is_some() && status.feed.state == FeedState::Disconnected
    })
    .await;
    let status = verifier.status();
    assert!(status.ready && !status.is_healthy(), "{status:?}");
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("503")), "{status:?}");
    assert!(verifier.verify(&token).is_ok(), "cached keys keep verifying");

    issuer.state.down.store(false, Ordering::SeqCst);
    eventually(15, "healthy again", || verifier.status().is_healthy()).await;
    assert!(verifier.status().last_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_issuer_at_start_fails_closed() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let verifier =
        Verifier::builder(KeySource::discover(&url), AUDIENCE).timing(timing()).start().unwrap();
    assert!(!verifier.wait_ready(Duration::from_secs(1)).await);
    assert!(matches!(verifier.verify("a.b.c"), Err(VerifyError::NotReady)));
    assert!(verifier.status().last_error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_token_is_renewed_before_it_expires() {
    let issuer = Issuer::start_with(Algorithm::EdDSA, chrono::TimeDelta::seconds(4)).await;
    let verifier = discovered(&issuer, feed().streaming(false)).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let tokens = Issuer::hits(&issuer.state.token_hits);
    assert!(tokens >= 3, "4 s tokens over 9 s: {tokens} requested");
    assert_eq!(Issuer::hits(&issuer.state.feed_unauthorized), 0, "never used an expired token");
    assert!(Issuer::hits(&issuer.state.feed_json_hits) >= 5, "polled throughout");
    assert_eq!(verifier.status().feed.state, FeedState::Polling);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_credentials_keep_the_verifier_not_ready() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    let wrong = FeedConfig::new(CLIENT_ID, ClientSecret::new("not the secret"));
    let verifier = Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE)
        .timing(timing())
        .feed(wrong)
        .start()
        .unwrap();
    assert!(!verifier.wait_ready(Duration::from_secs(2)).await, "fails closed without the feed");
    assert!(Issuer::hits(&issuer.state.bad_client_hits) >= 1);
    let error = verifier.status().last_error.unwrap();
    assert!(error.contains("invalid_client"), "{error}");
    assert!(!error.contains("not the secret"));
    // The positive control: the right secret (with characters that need form-encoding).
    discovered(&issuer, feed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_resumes_with_last_event_id() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    let verifier = discovered(&issuer, feed()).await;
    eventually(10, "streaming", || verifier.status().feed.state == FeedState::Streaming).await;
    let (s1, s2, s3) = (
        issuer.token("alice", "s1", &[]),
        issuer.token("alice", "s2", &[]),
        issuer.token("alice", "s3", &[]),
    );

    issuer.publish(FeedChange::Session { sid: "s1".into() });
    eventually(10, "s1 revoked by the stream", || verifier.verify(&s1).is_err()).await;
    assert!(matches!(refused(&verifier, &s1), jwt_core::Error::Revoked));
    assert!(verifier.verify(&s2).is_ok());

    issuer.cut_streams();
    eventually(10, "reconnected with Last-Event-ID: 1", || {
        issuer.state.last_event_ids.lock().unwrap().contains(&Some("1".into()))
    })
    .await;
    issuer.publish(FeedChange::Session { sid: "s2".into() });
    eventually(10, "s2 revoked after the resume", || verifier.verify(&s2).is_err()).await;
    assert!(verifier.verify(&s3).is_ok());
    assert_eq!(verifier.status().feed.cursor.as_deref(), Some("2"));
    assert_eq!(Issuer::hits(&issuer.state.feed_json_from_scratch), 1, "no full reload on resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_cursor_starts_over_from_the_full_state() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    issuer.publish(FeedChange::Session { sid: "s0".into() });
    let verifier = discovered(&issuer, feed()).await;
    eventually(10, "streaming", || verifier.status().feed.state == FeedState::Streaming).await;
    assert_eq!(Issuer::hits(&issuer.state.feed_json_from_scratch), 1);

    issuer.publish(FeedChange::Session { sid: "s1".into() });
    eventually(10, "s1 applied", || verifier.revocations().is_revoked("s1", "u", 0)).await;
    issuer.forget_cursors();
    issuer.cut_streams();
    eventually(10, "410, then the full state again", || {
        Issuer::hits(&issuer.state.feed_json_from_scratch) >= 2
    })
    .await;
    assert!(Issuer::hits(&issuer.state.gone_answers) >= 1);
    let s2 = issuer.token("alice", "s2", &[]);
    issuer.publish(FeedChange::Session { sid: "s2".into() });
    eventually(10, "s2 revoked after the restart", || verifier.verify(&s2).is_err()).await;
    assert!(verifier.verify(&issuer.token("alice", "s3", &[])).is_ok());
}

/// A server before contract v3 refused a cursor it did not recognise with 400, not 410: the
/// verifier starts over there too, on the stream and on the JSON form alike, instead of
/// retrying the same cursor for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_refused_with_400_by_an_older_server_starts_over_too() {
    for streaming in [true, false] {
        let issuer = Issuer::start(Algorithm::EdDSA).await;
        issuer.state.streams.store(streaming, Ordering::SeqCst);
        issuer.state.refuses_cursors_with_400.store(true, Ordering::SeqCst);
        issuer.publish(FeedChange::Session { sid: "s0".into() });
        let verifier = discovered(&issuer, feed()).await;
        eventually(10, "s0 applied", || verifier.revocations().is_revoked("s0", "u", 0)).await;
        assert_eq!(Issuer::hits(&issuer.state.gone_answers), 0, "the control: no refusal yet");

        issuer.forget_cursors();
        issuer.cut_streams();
        eventually(10, "400, then the full state again", || {
            Issuer::hits(&issuer.state.gone_answers) >= 1
                && Issuer::hits(&issuer.state.feed_json_from_scratch) >= 2
        })
        .await;
        let s1 = issuer.token("alice", "s1", &[]);
        assert!(verifier.verify(&s1).is_ok());
        issuer.publish(FeedChange::Session { sid: "s1".into() });
        eventually(10, "s1 revoked after starting over", || verifier.verify(&s1).is_err()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_streaming_the_feed_is_polled() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    issuer.state.streams.store(false, Ordering::SeqCst);
    let verifier = discovered(&issuer, feed()).await;
    let s1 = issuer.token("alice", "s1", &[]);
    issuer.publish(FeedChange::Session { sid: "s1".into() });
    eventually(10, "s1 revoked by polling", || verifier.verify(&s1).is_err()).await;
    assert!(verifier.verify(&issuer.token("alice", "s2", &[])).is_ok());
    eventually(10, "polling", || verifier.status().feed.state == FeedState::Polling).await;
    assert_eq!(Issuer::hits(&issuer.state.stream_opens), 0);
    assert!(Issuer::hits(&issuer.state.feed_json_hits) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_close_at_once_lead_to_polling() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    issuer.state.streams_close_at_once.store(true, Ordering::SeqCst);
    let verifier = discovered(&issuer, feed()).await;
    eventually(10, "polling", || verifier.status().feed.state == FeedState::Polling).await;
    let opens = Issuer::hits(&issuer.state.stream_opens);
    assert!((3..=4).contains(&opens), "{opens} streams opened before polling");
    let s1 = issuer.token("alice", "s1", &[]);
    issuer.publish(FeedChange::Session { sid: "s1".into() });
    eventually(10, "s1 revoked by polling", || verifier.verify(&s1).is_err()).await;
    assert!(verifier.verify(&issuer.token("alice", "s2", &[])).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_is_tried_again_after_polling() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    issuer.state.streams.store(false, Ordering::SeqCst);
    let verifier = discovered(&issuer, feed()).await;
    eventually(10, "polling", || verifier.status().feed.state == FeedState::Polling).await;
    issuer.state.streams.store(true, Ordering::SeqCst);
    eventually(10, "streaming again", || verifier.status().feed.state == FeedState::Streaming)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_revocation_is_applied() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    let old_kid = issuer.active_kid();
    let old_key_token = issuer.token("carol", "c1", &[]);
    issuer.rotate(Algorithm::EdDSA);
    let verifier = discovered(&issuer, feed()).await;
    eventually(10, "streaming", || verifier.status().feed.state == FeedState::Streaming).await;

    // Session.
    let (s1, s2) = (issuer.token("alice", "s1", &[]), issuer.token("alice", "s2", &[]));
    issuer.publish(FeedChange::Session { sid: "s1".into() });
    eventually(10, "session s1", || verifier.verify(&s1).is_err()).await;
    assert!(verifier.verify(&s2).is_ok());

    // User: alice's tokens issued before the cut-off; bob's stay.
    let bob = issuer.token("bob", "b1", &[]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cut_off = Utc::now().timestamp();
    issuer.publish(FeedChange::User { sub: "alice".into(), not_before: cut_off });
    eventually(10, "alice's cut-off", || verifier.verify(&s2).is_err()).await;
    assert!(matches!(refused(&verifier, &s2), jwt_core::Error::Revoked));
    assert!(verifier.verify(&bob).is_ok());
    assert!(verifier.verify(&issuer.token("alice", "s3", &[])).is_ok(), "issued after the cut-off");

    // Key: every token of the old key; the new key's stay.
    assert!(verifier.verify(&old_key_token).is_ok());
    issuer.publish(FeedChange::Key { kid: old_kid });
    eventually(10, "the old key", || verifier.verify(&old_key_token).is_err()).await;
    // Refused as a revoked key, not an unknown one: the key is still in the JWK set held.
    assert!(matches!(refused(&verifier, &old_key_token), jwt_core::Error::KeyRevoked));
    assert!(verifier.verify(&bob).is_ok());

    // All: everyone's tokens issued before the cut-off.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cut_off = Utc::now().timestamp();
    issuer.publish(FeedChange::All { not_before: cut_off });
    eventually(10, "everyone's cut-off", || verifier.verify(&bob).is_err()).await;
    assert!(verifier.verify(&issuer.token("bob", "b2", &[])).is_ok(), "issued after the cut-off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_that_were_made_before_start_are_loaded_before_ready() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    let s1 = issuer.token("alice", "s1", &[]);
    issuer.publish(FeedChange::Session { sid: "s1".into() });
    let verifier = discovered(&issuer, feed()).await;
    assert!(
        matches!(refused(&verifier, &s1), jwt_core::Error::Revoked),
        "refused from the first request"
    );
    assert!(verifier.verify(&issuer.token("alice", "s2", &[])).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_follows_the_feed_without_a_jwk_set() {
    let secret = jwt_core::Secret::generate();
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    // An HS256 issuer: its key set holds the shared secret, its JWK set is empty.
    let keys = KeySet::new(SigningKey::from_secret(secret.clone()).unwrap());
    issuer.state.tokens.replace_keys(keys.clone());
    issuer.state.service_tokens.replace_keys(keys);
    assert!(issuer.state.tokens.keys().jwks().keys.is_empty());
    let verifier = Verifier::builder(KeySource::hs256(&issuer.url, secret), AUDIENCE)
        .timing(timing())
        .feed(feed().server_url(&issuer.url))
        .start()
        .unwrap();
    let verifier = ready(verifier).await;
    let (s1, s2) = (issuer.token("alice", "s1", &[]), issuer.token("alice", "s2", &[]));
    issuer.publish(FeedChange::Session { sid: "s1".into() });
    eventually(10, "s1 revoked", || verifier.verify(&s1).is_err()).await;
    assert!(verifier.verify(&s2).is_ok());
    assert_eq!(Issuer::hits(&issuer.state.jwks_hits), 0);
}

/// Revocation lag, with the default timing, around an issuer outage long enough for the stream
/// to fail several times: the revocations published while the issuer was down, and those
/// published once it is back, are applied within a second of the issuer answering (the
/// docs' promise), not at a slow polling pace for minutes. The figures are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_are_applied_within_a_second_during_and_after_an_issuer_outage() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    let verifier =
        Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE).feed(feed()).start().unwrap();
    let verifier = ready(verifier).await;
    eventually(10, "streaming", || verifier.status().feed.state == FeedState::Streaming).await;

    // Down for 8 s: the stream fails again and again.
    issuer.state.down.store(true, Ordering::SeqCst);
    issuer.cut_streams();
    let during: Vec<String> =
        (0..5).map(|i| issuer.token("alice", &format!("d{i}"), &[])).collect();
    for i in 0..5 {
        issuer.publish(FeedChange::Session { sid: format!("d{i}") });
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(during.iter().all(|t| verifier.verify(t).is_ok()), "nothing could be read yet");

    // Back: what was published meanwhile is applied within a second of the issuer answering.
    issuer.state.down.store(false, Ordering::SeqCst);
    let back = Instant::now();
    let mut lags = Vec::new();
    while !during.iter().all(|t| verifier.verify(t).is_err()) {
        assert!(back.elapsed() < Duration::from_secs(10), "the outage's revocations never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lags.push(back.elapsed());
    // And those published after it, one at a time.
    for i in 0..20 {
        let token = issuer.token("alice", &format!("a{i}"), &[]);
        assert!(verifier.verify(&token).is_ok(), "the control: not yet revoked");
        issuer.publish(FeedChange::Session { sid: format!("a{i}") });
        let published = Instant::now();
        while verifier.verify(&token).is_ok() {
            assert!(published.elapsed() < Duration::from_secs(10), "a{i} never refused");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lags.push(published.elapsed());
    }
    lags.sort();
    let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "revocation lag over {} revocations after an 8 s issuer outage: p50 {:?}, p99 {:?}, max {:?}",
        lags.len(),
        at(0.5),
        at(0.99),
        lags[lags.len() - 1]
    );
    assert!(at(0.99) <= Duration::from_secs(1), "{lags:?}");
}

/// A verifier that can never become ready says why: `ready` returns the reason (here the
/// server's default issuer `jwt-auth`, which is not the URL the verifier discovers with, and
/// the setting that fixes it), where a correctly set up one is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_says_why_a_verifier_is_not_ready() {
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    *issuer.state.metadata_issuer.lock().unwrap() = Some("jwt-auth".into());
    let verifier = Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE)
        .timing(timing())
        .start()
        .unwrap();
    let not_ready = verifier.ready(Duration::from_secs(2)).await.expect_err("never ready");
    let said = not_ready.to_string();
    assert!(said.contains("the metadata names issuer `jwt-auth`"), "{said}");
    assert!(said.contains("PUBLIC_URL"), "{said}");
    assert!(!verifier.is_ready());

    // The control: the metadata names the URL discovered with.
    *issuer.state.metadata_issuer.lock().unwrap() = None;
    let verifier = Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE)
        .timing(timing())
        .start()
        .unwrap();
    verifier.ready(Duration::from_secs(10)).await.expect("ready");
}
