//! Issue, validate, refresh and log out with the in-memory store.
//!
//! `cargo run -p jwt-core --example quickstart`

use std::sync::Arc;

use jwt_core::{
    Algorithm, ClientInfo, Error, KeySet, MemoryStore, RevokeReason, SessionPolicy, Sessions,
    SigningKey, Subject, TokenPolicy, TokenService,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let key = SigningKey::generate(Algorithm::EdDSA)?;
    println!("signing key: {} ({})", key.kid(), key.algorithm());
    let tokens = Arc::new(TokenService::new(
        TokenPolicy::new("https://auth.example", "api"),
        KeySet::new(key),
    )?);

    let store = MemoryStore::new();
    let alice = Subject { id: "alice".into(), roles: vec!["user".into()], email: None };
    store.put_user(alice.clone());
    let sessions = Sessions::new(tokens, store, SessionPolicy::default());

    let pair = sessions.start(&alice, ClientInfo::default()).await?;
    println!("login: session {}, access token valid {} s", pair.session_id, pair.expires_in);

    let claims = sessions.authenticate(pair.access_token.expose())?;
    println!("authenticated: sub={} roles={:?}", claims.sub, claims.roles);

    let next = sessions.refresh(pair.refresh_token.expose(), ClientInfo::default()).await?;
    println!("refreshed: same session = {}", next.session_id == pair.session_id);

    sessions.end(&next.session_id, RevokeReason::Logout).await?;
    match sessions.authenticate(next.access_token.expose()) {
        Err(Error::Revoked) => println!("after logout: the access token is revoked"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}
