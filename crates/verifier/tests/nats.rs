//! The verifier's NATS source (feature `nats`) against a NATS server of the test's own, the
//! stream filled as the auth server's relay fills it: the verifier reads the stream from its
//! first message, is ready once caught up, applies what comes next, asks for the JWK set again
//! on a key change, goes on after NATS restarts, and never calls the issuer's HTTP feed.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use jwt_auth_nats::{Connection, StreamSettings};
use jwt_auth_testdb::nats::NatsServer;
use jwt_auth_verifier::{FeedState, KeySource, NatsFeedConfig, Timing, Verifier};
use jwt_core::{Algorithm, FeedChange, FeedEvent};

use crate::common::{AUDIENCE, Issuer, eventually};

fn timing() -> Timing {
    let mut timing = Timing::default();
    timing.unknown_kid_refetch_interval = Duration::from_millis(200);
    timing.prune_interval = Duration::from_secs(1);
    timing
}

/// The auth server's side: the stream, and changes published as its relay does.
struct Relay {
    nats: Connection,
    next: u32,
}

impl Relay {
    async fn start(server: &NatsServer) -> Relay {
        let nats = Connection::connect(&server.url(), "relay").await.expect("a URL");
        assert!(nats.connected_within(Duration::from_secs(10)).await, "connected in time");
        let settings = StreamSettings {
            name: jwt_auth_nats::DEFAULT_STREAM.into(),
            max_age: Duration::from_secs(3600),
            replicas: 1,
        };
        nats.ensure_stream(&settings).await.expect("the stream");
        // Positions of the outbox have gaps (rows of other kinds, rolled-back ids).
        Relay { nats, next: 10 }
    }

    async fn publish(&mut self, change: FeedChange) -> String {
        self.next += 3;
        let expires_at = (Utc::now() + TimeDelta::hours(1)).timestamp();
        let event = FeedEvent { cursor: self.next.to_string(), change, expires_at };
        let mut tries = 0;
        // Right after a restart the server may not answer JetStream requests yet.
        while let Err(e) = self.nats.publish(&event).await {
            tries += 1;
            assert!(tries < 50, "could not publish: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        event.cursor
    }
}

async fn verifier(issuer: &Issuer, server: &NatsServer) -> Verifier {
    let verifier = Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE)
        .timing(timing())
        .nats_feed(NatsFeedConfig::new(server.url()))
        .start()
        .expect("starts");
    assert!(verifier.wait_ready(Duration::from_secs(10)).await, "{:?}", verifier.status());
    verifier
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_read_from_its_first_message_then_followed() {
    let Some(server) = NatsServer::start() else { return };
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    let mut relay = Relay::start(&server).await;
    let (s0, s1, s2) = (
        issuer.token("alice", "s0", &[]),
        issuer.token("alice", "s1", &[]),
        issuer.token("alice", "s2", &[]),
    );
    relay.publish(FeedChange::Session { sid: "s0".into() }).await;
    relay.publish(FeedChange::UserChanged { sub: "alice".into() }).await;
    let before = relay.publish(FeedChange::Session { sid: "s1".into() }).await;

    // Ready means caught up: what the stream held before is applied.
    let verifier = verifier(&issuer, &server).await;
    assert!(verifier.verify(&s0).is_err());
    assert!(verifier.verify(&s1).is_err());
    assert!(verifier.verify(&s2).is_ok(), "positive control");
    assert_eq!(verifier.status().feed.cursor.as_deref(), Some(before.as_str()));
    assert_eq!(verifier.status().feed.state, FeedState::Streaming);

    // What comes next is followed.
    relay.publish(FeedChange::Session { sid: "s2".into() }).await;
    eventually(10, "s2 revoked from the stream", || verifier.verify(&s2).is_err()).await;
    let bob = issuer.token("bob", "b1", &[]);
    relay
        .publish(FeedChange::User { sub: "bob".into(), not_before: Utc::now().timestamp() + 5 })
        .await;
    eventually(10, "bob's tokens voided", || verifier.verify(&bob).is_err()).await;

    // A key change: the JWK set is fetched again, without a token asking for it.
    let jwks = Issuer::hits(&issuer.state.jwks_hits);
    relay.publish(FeedChange::KeysChanged).await;
    eventually(10, "the JWK set fetched again", || Issuer::hits(&issuer.state.jwks_hits) > jwks)
        .await;

    // The auth server's HTTP feed was never asked.
    assert_eq!(Issuer::hits(&issuer.state.feed_json_hits), 0);
    assert_eq!(Issuer::hits(&issuer.state.stream_opens), 0);
    assert_eq!(Issuer::hits(&issuer.state.token_hits), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_nats_restarts_it_goes_on_from_where_it_was() {
    let Some(mut server) = NatsServer::start() else { return };
    let issuer = Issuer::start(Algorithm::EdDSA).await;
    let mut relay = Relay::start(&server).await;
    relay.publish(FeedChange::Session { sid: "s1".into() }).await;
    let verifier = verifier(&issuer, &server).await;
    let s2 = issuer.token("alice", "s2", &[]);
    assert!(verifier.verify(&issuer.token("alice", "s1", &[])).is_err());

    server.kill();
    eventually(10, "the outage shows", || verifier.status().feed.state == FeedState::Disconnected)
        .await;
    // Tokens keep verifying from memory meanwhile.
    assert!(verifier.verify(&s2).is_ok());

    server.resume();
    let cursor = relay.publish(FeedChange::Session { sid: "s2".into() }).await;
    eventually(15, "s2 revoked after the restart", || verifier.verify(&s2).is_err()).await;
    assert_eq!(verifier.status().feed.state, FeedState::Streaming);
    assert_eq!(verifier.status().feed.cursor.as_deref(), Some(cursor.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_feed_and_the_stream_are_not_both_followed() {
    let built = Verifier::builder(
        KeySource::jwks("https://auth.example", "https://auth.example/jwks"),
        AUDIENCE,
    )
    .feed(jwt_auth_verifier::FeedConfig::new("c", jwt_auth_verifier::ClientSecret::new("s")))
    .nats_feed(NatsFeedConfig::new("nats://127.0.0.1:4222"))
    .start();
    let error = built.expect_err("refused").to_string();
    assert!(error.contains("not both"), "{error}");
    // Positive control: the stream alone starts.
    let alone = Verifier::builder(
        KeySource::jwks("https://auth.example", "https://auth.example/jwks"),
        AUDIENCE,
    )
    .nats_feed(NatsFeedConfig::new("nats://127.0.0.1:4222"))
    .start();
    assert!(alone.is_ok(), "{alone:?}");
}
