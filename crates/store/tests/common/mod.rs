//! What every test of the store shares: a store on a database of its own (a temporary SQLite
//! file, or a fresh PostgreSQL database), from `jwt-auth-testdb` with `backend_tests!`, which
//! instantiates each test body once per backend, and the rows the tests start from.
//!
//! When PostgreSQL is unreachable, its tests fail if `CI` is set and are otherwise skipped
//! with a loud line on stderr.

pub use jwt_auth_testdb::{Backend, cluster, connect, pg};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use jwt_auth_store::{NewUser, PasswordHash, Store, StoredSigningKey, User};
use jwt_core::{ClientInfo, NewRefreshToken, NewSession, SessionStore};

/// A migrated store on a database that lives as long as this value.
pub type TestDb = jwt_auth_testdb::TestDb<Store>;

/// A fixed start time, whole seconds, so that tests can reason about it.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).single().expect("a valid time")
}

pub fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// A stored signing key record (its contents are opaque to the store) activating at
/// `activates_at`.
pub fn signing_key(kid: &str, activates_at: DateTime<Utc>) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.into(),
        algorithm: "EdDSA".into(),
        created_at: t0(),
        activates_at,
        retired_at: None,
        revoked_at: None,
        public_jwk: Some(r#"{"kty":"OKP"}"#.into()),
        sealed_private_key: vec![1, 0, 255, 7],
    }
}

pub fn client(ip: &str) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.to_owned()),
        user_agent: Some(format!("agent of {ip}")),
        proven_key: None,
    }
}

pub async fn user(store: &Store, email: &str) -> User {
    let new = NewUser {
        email: email.to_owned(),
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        roles: vec!["user".to_owned()],
    };
    store.create_user(&new, t0()).await.expect("the user is created")
}

pub fn token(
    jti: &str,
    session_id: &str,
    parent: Option<&str>,
    at: DateTime<Utc>,
) -> NewRefreshToken {
    NewRefreshToken {
        jti: jti.to_owned(),
        session_id: session_id.to_owned(),
        parent_jti: parent.map(str::to_owned),
        issued_at: at,
        expires_at: at + TimeDelta::days(7),
        client: client("10.0.0.1"),
    }
}

/// Creates session `id` of `user_id` at `at`, lasting `ttl`, with first refresh token
/// `{id}-t0`.
pub async fn session(store: &Store, id: &str, user_id: &str, at: DateTime<Utc>, ttl: TimeDelta) {
    let session = NewSession {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        created_at: at,
        expires_at: at + ttl,
        client: client("10.0.0.1"),
        grant: None,
        code: None,
    };
    let mut first = token(&format!("{id}-t0"), id, None, at);
    first.expires_at = first.expires_at.min(session.expires_at);
    store.create_session(&session, &first).await.expect("the session is created");
}
