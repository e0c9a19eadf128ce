//! Signing keys stored in the database under a key-encryption key: sealed at rest, refused
//! with a wrong key-encryption key, rotated so that the new public key is published before it
//! signs, and revoked so that every instance refuses its tokens within a second.
#![allow(clippy::disallowed_methods)] // test fixtures at the system's time

use std::time::{Duration, Instant};

use jwt_auth_service::keys::{KeyError, Keys};
use jwt_auth_store::Store;
use jwt_core::{Algorithm, KeyState};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestApp, TestDb, decode};
use crate::http_tests;

/// 32 bytes, base64.
pub const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEK: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
/// How long a revoked key's entry in the revocation feed matters, in these tests.
const RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(7);

fn kek() -> jwt_core::KeyEncryptionKey {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(KEK).expect("base64");
    jwt_core::KeyEncryptionKey::new(&bytes).expect("32 bytes")
}

/// The keys service over `app`'s database, sealed under `kek`, as a key command has it.
async fn keys_under(app: &TestApp, kek: jwt_core::KeyEncryptionKey) -> Keys {
    let store = std::sync::Arc::new(store(app).await);
    Keys::in_database(store, kek, &app.settings().0.data_dir).retention(RETENTION)
}

async fn store(app: &TestApp) -> Store {
    Store::connect(app.settings().0.database_url.expose()).await.expect("the store")
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value =
        app.get("/.well-known/jwks.json").send().await.expect("jwks").json().await.expect("json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    decode(token).0["kid"].as_str().expect("a kid").to_owned()
}

/// Polls `check` every 25 ms until it holds; fails after `limit`. Returns how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn stored_private_keys_are_sealed_and_open_only_with_their_kek(db: TestDb) {
    let app = TestApp::start_with_stored_keys(db, Algorithm::HS256, KEK).await;
    let rows = store(&app).await.signing_keys().await.expect("keys");
    assert_eq!(rows.len(), 1, "the first key was generated and stored");
    let row = &rows[0];
    assert_eq!((row.kid.as_str(), row.algorithm.as_str()), (app.key.kid(), "HS256"));
    let secret = app.key.secret().expect("an HS256 secret");
    assert!(
        !row.sealed_private_key.windows(secret.len()).any(|w| w == secret),
        "the secret is stored in plain text"
    );
    assert!(row.public_jwk.is_none(), "an HS256 secret has no public half");
    let opened = kek().open(Algorithm::HS256, &row.kid, &row.sealed_private_key).expect("opens");
    assert_eq!(opened.secret(), Some(secret));

    // A rotation under another KEK is refused before anything is stored.
    let other = {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(OTHER_KEK).expect("base64");
        jwt_core::KeyEncryptionKey::new(&bytes).expect("32 bytes")
    };
    let refused =
        keys_under(&app, other).await.rotate(Some(Algorithm::HS256), true, app.now()).await;
    assert!(matches!(refused, Err(KeyError::WrongKek { .. })), "{refused:?}");
    assert_eq!(store(&app).await.signing_keys().await.expect("keys").len(), 1, "nothing stored");

    // Another instance given another KEK refuses to start, naming the setting.
    let (config, args) = app.settings();
    let mut args = args.clone();
    args.key_encryption_key = Some(OTHER_KEK.to_owned().into());
    let clock = std::sync::Arc::new(app.clock.clone()) as std::sync::Arc<dyn jwt_core::Clock>;
    let err = jwt_auth_api::Application::build(config.clone(), &args, clock)
        .await
        .err()
        .expect("a wrong key-encryption key is refused");
    let line = err.to_string();
    assert!(line.starts_with("KEY_ENCRYPTION_KEY:"), "{line}");
    assert!(line.contains("does not decrypt") && !line.contains('\n'), "{line}");
}

async fn a_rotated_key_is_published_before_it_signs_and_old_tokens_keep_verifying(db: TestDb) {
    let app = TestApp::start_with_stored_keys(db, Algorithm::EdDSA, KEK).await;
    let sibling = app.sibling().await;
    app.register("alice@example.com").await;
    let old = app.login("alice@example.com").await;
    let old_kid = kid_of(&old.access);
    let keys = keys_under(&app, kek()).await;
    let rotation = keys.rotate(Some(Algorithm::EdDSA), false, app.now()).await.expect("rotates");
    assert!(rotation.replaces);
    let rotation = rotation.record;
    assert_eq!((rotation.activates_at - app.now()).num_seconds(), 61);
    for instance in [&app, &sibling] {
        within(Duration::from_secs(2), "the new key in the JWK set", || async {
            jwks_kids(instance).await.contains(&rotation.kid)
        })
        .await;
        let pair = instance.login("alice@example.com").await;
        assert_eq!(kid_of(&pair.access), old_kid, "the new key must not sign before it activates");
    }
    app.advance(61);
    for instance in [&app, &sibling] {
        within(Duration::from_secs(2), "signing with the new key", || async {
            kid_of(&instance.login("alice@example.com").await.access) == rotation.kid
        })
        .await;
        assert!(jwks_kids(instance).await.contains(&old_kid), "the old key is still published");
        assert_eq!(instance.me(&old.access).await.status, StatusCode::OK, "old tokens verify");
    }
}

async fn a_revoked_key_is_refused_by_every_instance_within_a_second(db: TestDb) {
    let app = TestApp::start_with_stored_keys(db, Algorithm::ES256, KEK).await;
    let sibling = app.sibling().await;
    app.register("alice@example.com").await;
    let old = app.login("alice@example.com").await;
    let old_kid = kid_of(&old.access);
    let store = store(&app).await;

    // The key that signs cannot be revoked; nor can a key that does not exist.
    let keys = keys_under(&app, kek()).await;
    let refused = keys.revoke(&old_kid, app.now()).await;
    assert!(matches!(refused, Err(KeyError::RevokingActiveKey(_))), "{refused:?}");
    let unknown = keys.revoke("no-such-kid", app.now()).await;
    assert!(matches!(unknown, Err(KeyError::UnknownKid(_))), "{unknown:?}");
    assert!(store.signing_keys().await.expect("keys").iter().all(|k| k.revoked_at.is_none()));

    // A compromised key: rotate at once, then revoke the old one.
    let next = keys.rotate(Some(Algorithm::ES256), true, app.now()).await.expect("rotates").record;
    assert_eq!(next.activates_at, app.now());
    keys.revoke(&old_kid, app.now()).await.expect("revokes");
    let listed = keys.stored(app.now()).await.expect("keys");
    let state = |kid: &str| listed.iter().find(|k| k.record.kid == kid).expect("listed").state;
    assert_eq!((state(&old_kid), state(&next.kid)), (KeyState::Revoked, KeyState::Active));

    for instance in [&app, &sibling] {
        // Refused by the revocation feed's key event, and dropped by the key reload: both
        // are pushed, and either may come first.
        let took = within(Duration::from_millis(1_500), "the revoked key refused", || async {
            instance.me(&old.access).await.status == StatusCode::UNAUTHORIZED
                && !jwks_kids(instance).await.contains(&old_kid)
        })
        .await;
        eprintln!("tokens of a revoked key refused after {took:?}");
        instance.me(&old.access).await.assert_token_refused("invalid_token");
        assert!(!jwks_kids(instance).await.contains(&old_kid), "gone from the JWK set");
        let fresh = instance.login("alice@example.com").await;
        assert_eq!(kid_of(&fresh.access), next.kid);
        assert_eq!(instance.me(&fresh.access).await.status, StatusCode::OK);
    }
}

async fn keys_retired_longer_ago_than_any_token_lives_are_pruned(db: TestDb) {
    let app = TestApp::start_with_stored_keys(db, Algorithm::EdDSA, KEK).await;
    let store = store(&app).await;
    let first = app.key.kid().to_owned();
    keys_under(&app, kek()).await.rotate(None, true, app.now()).await.expect("rotates");
    let policy = app.state.tokens().policy();
    let retention = jwt_core::KeySet::retention(policy.access_ttl, policy.refresh_ttl);
    let kids = || async {
        store.signing_keys().await.expect("keys").into_iter().map(|k| k.kid).collect::<Vec<_>>()
    };
    assert_eq!(store.prune_signing_keys(app.now() - retention).await.expect("prunes"), 0);
    assert!(kids().await.contains(&first), "its tokens may still be alive");
    let later = app.now() + retention + chrono::TimeDelta::seconds(1);
    assert_eq!(store.prune_signing_keys(later - retention).await.expect("prunes"), 1);
    assert!(!kids().await.contains(&first));
    assert_eq!(kids().await.len(), 1, "the signing key stays");
}

async fn key_files_are_imported_on_the_first_start_with_a_kek(db: TestDb) {
    let store = Store::connect(&db.url).await.expect("the store");
    store.migrate().await.expect("migrations");
    let data_dir = tempfile::tempdir().expect("a data directory");
    let files = jwt_auth_service::key_files::KeyDir::of(data_dir.path());
    let t0 = chrono::Utc::now() - chrono::TimeDelta::days(1);
    let (old, new) = (
        jwt_core::SigningKey::generate(Algorithm::EdDSA).expect("a key"),
        jwt_core::SigningKey::generate(Algorithm::EdDSA).expect("a key"),
    );
    files.write(&old, t0).expect("written");
    files.write(&new, t0 + chrono::TimeDelta::hours(1)).expect("written");
    let now = chrono::Utc::now();
    let store = std::sync::Arc::new(store);
    let keys = || {
        Keys::in_database(store.clone(), kek(), data_dir.path())
            .wanting(Some(Algorithm::EdDSA))
            .retention(RETENTION)
    };
    let set = keys().start(now).await.expect("starts");
    let stored = store.signing_keys().await.expect("keys");
    let kids: Vec<_> = stored.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, [old.kid(), new.kid()], "both files, and no new key: they are EdDSA");
    assert_eq!(stored[0].retired_at, Some(stored[1].created_at), "replaced by the next file");
    assert_eq!(set.active().expect("signs").kid(), new.kid());
    assert!(set.find(old.kid()).is_some(), "the older file still verifies");
    keys().start(now).await.expect("starts again");
    assert_eq!(store.signing_keys().await.expect("keys"), stored, "only on the first start");
}

/// `/ready` and `/metrics` of `app`.
async fn ready_and_metrics(app: &TestApp) -> (Value, String) {
    let ready = crate::common::send(app.get("/ready")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    let metrics = crate::common::send(app.get("/metrics")).await;
    (ready.body, metrics.text)
}

/// Each instance says what it holds, which `/api/admin/keys` (the database's view) cannot:
/// the key it signs with and the keys it accepts, its feed cursor, and whether change
/// notifications arrive (PostgreSQL); in `/ready` and as metrics. Two instances agree soon
/// after a rotation and a logout (the bound on that is the revocation tests'; 3 s here).
async fn each_instance_says_which_keys_it_holds_and_where_its_feed_stands(db: TestDb) {
    let postgres = db.backend == crate::common::Backend::Postgres;
    let app = TestApp::start_with_stored_keys(db, Algorithm::EdDSA, KEK).await;
    let sibling = app.sibling().await;
    let first = app.key.kid().to_owned();
    for instance in [&app, &sibling] {
        let (ready, metrics) = ready_and_metrics(instance).await;
        assert_eq!(ready["requires"], serde_json::json!(["database", "revocations_loaded"]));
        assert_eq!(ready["keys"]["signing_kid"], first.as_str(), "{ready}");
        assert_eq!(ready["keys"]["algorithm"], "EdDSA", "{ready}");
        assert_eq!(ready["keys"]["verifying_kids"], serde_json::json!([first]), "{ready}");
        let series = format!(r#"jwt_auth_signing_key{{kid="{first}",algorithm="EdDSA"}} 1"#);
        assert!(metrics.lines().any(|l| l == series), "{series}:\n{metrics}");
        assert!(metrics.lines().any(|l| l == "jwt_auth_verifying_keys 1"), "{metrics}");
        if !postgres {
            assert!(ready["feed"]["change_notifications"].is_null(), "{ready}");
            assert!(!metrics.contains("jwt_auth_change_notifications_connected"), "{metrics}");
        }
    }
    if postgres {
        // The dedicated listening connection comes up on its own.
        within(Duration::from_secs(5), "change notifications up", || async {
            let (ready, metrics) = ready_and_metrics(&sibling).await;
            ready["feed"]["change_notifications"] == true
                && metrics.lines().any(|l| l == "jwt_auth_change_notifications_connected 1")
        })
        .await;
    }

    // A rotation: each instance's own view follows.
    let next = keys_under(&app, kek()).await.rotate(None, true, app.now()).await;
    let next = next.expect("rotates").record;
    for instance in [&app, &sibling] {
        within(Duration::from_secs(3), "the new key in /ready", || async {
            ready_and_metrics(instance).await.0["keys"]["signing_kid"] == next.kid.as_str()
        })
        .await;
        let (ready, metrics) = ready_and_metrics(instance).await;
        assert_eq!(ready["keys"]["verifying_kids"].as_array().map(Vec::len), Some(2), "{ready}");
        let series = format!(r#"jwt_auth_signing_key{{kid="{}",algorithm="EdDSA"}} 1"#, next.kid);
        assert!(metrics.lines().any(|l| l == series), "{series}:\n{metrics}");
        assert!(!metrics.contains(&format!(r#"kid="{first}""#)), "the old one is gone: {metrics}");
    }

    // A logout moves both cursors to the same position.
    let before = ready_and_metrics(&sibling).await.0["feed"]["cursor"].clone();
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    let out = crate::common::send(app.post("/auth/logout").bearer_auth(&pair.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    // Read by the instance's feed reader, which the logout wakes; not before it answers.
    within(Duration::from_secs(3), "the logout read here", || async {
        ready_and_metrics(&app).await.0["feed"]["cursor"] != before
    })
    .await;
    let cursor = ready_and_metrics(&app).await.0["feed"]["cursor"].clone();
    let position: i64 = cursor.as_str().expect("a string").parse().expect("a position");
    within(Duration::from_secs(3), "the sibling's cursor", || async {
        let (ready, metrics) = ready_and_metrics(&sibling).await;
        ready["feed"]["cursor"] == cursor
            && metrics.lines().any(|l| l == format!("jwt_auth_feed_cursor {position}"))
    })
    .await;
}

http_tests!(
    each_instance_says_which_keys_it_holds_and_where_its_feed_stands,
    key_files_are_imported_on_the_first_start_with_a_kek,
    stored_private_keys_are_sealed_and_open_only_with_their_kek,
    a_rotated_key_is_published_before_it_signs_and_old_tokens_keep_verifying,
    a_revoked_key_is_refused_by_every_instance_within_a_second,
    keys_retired_longer_ago_than_any_token_lives_are_pruned,
);
