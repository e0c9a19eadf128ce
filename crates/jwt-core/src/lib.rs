//! `jwt-core` issues and validates JSON Web Tokens, rotates signing keys, and rotates refresh
//! tokens with reuse detection, without knowing anything of HTTP or SQL.
//!
//! - [`TokenService`] signs access tokens (`typ: at+jwt`, RFC 9068) and refresh tokens
//!   (`typ: refresh+jwt`), and verifies them strictly: size first, then the header (no
//!   `alg: none`, no `jku`/`x5u`/`jwk`/`x5c`, no `crit`, no `cty`, the right `typ`), then the
//!   key that `kid` selects, whose algorithm must be the header's, then the signature, then
//!   `iss`, `aud`, `exp`, `nbf`, `iat` and every required claim. Each failure is its own
//!   [`Error`] variant.
//! - [`KeySet`] holds the active [`SigningKey`] and older verify-only keys, and publishes the
//!   public ones as a JWK set (RFC 7517).
//! - [`Sessions`] runs login, refresh rotation, logout and the per-request revocation check over
//!   any store implementing [`SessionStore`], [`RefreshTokenStore`] and [`RevocationStore`];
//!   [`MemoryStore`] is one. A [`FeedFollower`] keeps each instance's revocation set
//!   current with the revocations other instances record, by cursor, from a store
//!   ([`StoreFeed`]) or from any other [`FeedSource`].
//! - [`DpopVerifier`] checks DPoP proofs (RFC 9449) for sender-constrained tokens: the
//!   proof's own key, method, URL, time, `jti` and, with [`DpopNonces`], a server nonce every
//!   instance accepts; [`VerifiedProof::check_binding`] holds it against a token's `cnf.jkt`.
//!
//! # Example: issue, validate, refresh, log out
//!
//! ```
//! use std::sync::Arc;
//! use jwt_core::{
//!     Algorithm, ClientInfo, Error, KeySet, MemoryStore, RevokeReason, SessionPolicy, Sessions,
//!     SigningKey, Subject, TokenPolicy, TokenService,
//! };
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
//! let tokens = Arc::new(TokenService::new(TokenPolicy::new("https://auth.example", "api"), keys)?);
//! let store = MemoryStore::new();
//! let alice = Subject { id: "alice".into(), roles: vec!["admin".into()], email: None };
//! store.put_user(alice.clone());
//! let sessions = Sessions::new(tokens, store, SessionPolicy::default());
//!
//! let pair = sessions.start(&alice, ClientInfo::default()).await?;
//! let claims = sessions.authenticate(pair.access_token.expose())?;
//! assert!(claims.has_role("admin"));
//!
//! let next = sessions.refresh(pair.refresh_token.expose(), ClientInfo::default()).await?;
//! sessions.end(&next.session_id, RevokeReason::Logout).await?;
//! assert!(matches!(sessions.authenticate(next.access_token.expose()), Err(Error::Revoked)));
//! assert!(sessions.refresh(next.refresh_token.expose(), ClientInfo::default()).await.is_err());
//! # Ok::<(), Error>(()) }).unwrap();
//! ```
//!
//! # Crypto backend
//!
//! Signatures are computed by `jsonwebtoken` with exactly one crypto backend enabled for the
//! whole workspace; see the README for which one and why.
#![warn(missing_docs)]

mod bearer;
mod claims;
mod clock;
pub mod dangerous;
mod dpop;
mod error;
mod feed;
mod follower;
mod id_token;
mod keyring;
mod keys;
mod memory;
mod revocation;
mod rsa;
mod sealed;
mod sessions;
mod store;
mod tokens;
mod values;

/// The README's Rust example, compiled as a doctest so that it cannot fall behind the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExample;

pub use bearer::{
    REALM, TokenScheme, bearer_challenge, bearer_token, dpop_challenge, presented_token,
};
pub use claims::{AccessClaims, Audience, NoExtra, RefreshClaims};
pub use clock::{Clock, ManualClock, SystemClock};
pub use dpop::{
    DEFAULT_MAX_PROOF_BYTES, DPOP_PROOF_TYPE, DpopNonces, DpopPolicy, DpopRequest, DpopVerifier,
    REPLAY_ENTRY_BYTES, VerifiedProof, access_token_hash, dpop_proof, jwk_thumbprint,
};
pub use error::{DpopRefusal, Error, NonceRefusal, ReplayCacheFull, Result, ReuseDetails};
pub use feed::{FeedChange, FeedEntry, FeedEvent, FeedPage};
pub use follower::{
    FeedFollower, FeedReadError, FeedSource, MAX_PAGES_IN_A_ROW, StoreFeed, feed_position,
};
pub use id_token::{ID_TOKEN_TYPE, IdToken, IdTokenClaims, PASSWORD_METHOD};
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use keyring::{
    AlgorithmChange, JWKS_MAX_AGE, KeyMaterial, KeyRecord, KeyRing, KeyState, MemoryKeyStore,
    PUBLISH_AHEAD, Rotation, SigningKeyStore, StoredKey, check_algorithm, signing_algorithm,
    states,
};
pub use keys::{Algorithm, KeySet, MIN_SECRET_BYTES, Secret, SigningKey, VerifyingKey};
pub use memory::MemoryStore;
pub use revocation::{REVOKED_SESSION_BYTES, RevocationSet, check_cut_off};
pub use sealed::{KEK_BYTES, KeyEncryptionKey};
pub use sessions::{SessionPolicy, Sessions};
pub use store::{
    AuthStore, GraceOutcome, NewRefreshToken, NewSession, RefreshTokenState, RefreshTokenStore,
    RevocationStore, RevokeReason, RotateOutcome, SessionRecord, SessionStore,
};
pub use tokens::{
    ACCESS_TOKEN_TYPE, AccessToken, DEFAULT_MAX_TOKEN_BYTES, Issued, REFRESH_TOKEN_TYPE,
    RefreshToken, SIGN_IN_TOKEN_TYPE, SignInClaims, SignInToken, TokenPair, TokenPolicy,
    TokenService, verify_jws,
};
pub use values::{ClientInfo, Confirmation, Grant, MAX_LEEWAY, Revocation, Subject};
