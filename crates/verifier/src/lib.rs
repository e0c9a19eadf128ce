//! `jwt-auth-verifier` lets another service verify the access tokens of a `jwt-auth` server
//! itself, in memory, with the same answer the server would give — revoked tokens included.
//!
//! - **Keys**: found by RFC 8414 discovery from the issuer URL (the metadata's `issuer` must
//!   equal the configured one exactly), or from a `jwks_uri` given directly, or — for HS256
//!   issuers — a shared secret from the verifier's own configuration (read the warning on
//!   [`KeySource::Hs256`]). The JWK set is cached for its `Cache-Control: max-age` (clamped
//!   between a floor and a ceiling, with a default when absent), refetched when a token names
//!   an unknown `kid` (at most once per short interval, so made-up key ids cannot hammer the
//!   issuer), and kept in use while the issuer is unreachable.
//! - **Revocations**: with a [`FeedConfig`], the verifier obtains its own token by client
//!   credentials (renewed before it expires), loads the issuer's revocation feed
//!   (`GET /auth/revocations`) and follows it as Server-Sent Events, resuming with
//!   `Last-Event-ID`, backing off exponentially, polling the JSON form when streaming fails,
//!   and starting over when the server no longer knows its cursor (410). Events go into a
//!   [`jwt_core::RevocationSet`], the type the issuer itself consults, pruned periodically.
//! - **Per request, no I/O**: [`Verifier::verify`] is synchronous and in memory. Until the
//!   keys and the feed's first state are loaded it fails closed ([`VerifyError::NotReady`]).
//! - **State**: [`Verifier::status`] says whether keys are fresh or stale since when, whether
//!   the feed is connected, and the last error, for readiness and health checks.
//! - **Frameworks**: with feature `actix`, the extractors `actix::Authenticated`,
//!   `actix::RequireRole`, `actix::AuthenticatedWith` (claims of your own) and
//!   `actix::MaybeAuthenticated` (anonymous callers too); with feature `axum`,
//!   `axum::VerifierLayer` and the extractors `axum::Authenticated` (and
//!   `Option<axum::Authenticated>`), `axum::RequireRole` and `axum::AuthenticatedWith`. A role
//!   chosen at run time is `Authenticated::require_any_role`. Both answer refusals exactly as
//!   the server does ([`AuthError`]): 401 with an RFC 6750 challenge and `{"error", "message"}`
//!   (`missing_token`, `invalid_token`, `token_expired`, `token_revoked`), 403
//!   `insufficient_role`, 503 `unavailable` before the verifier is ready.
//! - **DPoP** (RFC 9449): both enforce DPoP-bound tokens as the server does. A token with a
//!   `cnf` claim is accepted only as `Authorization: DPoP` with a `DPoP` proof of its key for
//!   the request's method and URL ([`VerifierBuilder::public_url`], or `http://` and the
//!   request's `Host`), each proof once per verifier; a token without `cnf` only as
//!   `Authorization: Bearer`. Those refusals, and any of a token presented as DPoP, are 401
//!   with RFC 9449's challenge ([`AuthError::Dpop`]). No nonce is required. A bearer token
//!   without `cnf` costs nothing more than before.
//!
//! # Why a crate of its own
//!
//! `jwt-core` holds everything that decides whether a token is good — keys, verification,
//! the revocation set, the feed's wire types — and stays free of any HTTP crate by
//! construction (CI checks it). Following an issuer needs an HTTP client, a TLS stack, an SSE
//! parser and a runtime, and serving needs a web framework; those live here, each framework
//! behind its own feature, so a service pays only for what it uses and `jwt-core` users pay
//! for none of it.
//!
//! # Features
//!
//! - `rustls` (default): https issuers, through rustls on aws-lc-rs (the crypto library the
//!   workspace already uses) with Mozilla's root certificates compiled in. The HTTP client
//!   itself (reqwest) is not optional: fetching keys and revocations is what this crate is
//!   for. Without `rustls`, only plain http to loopback (or an application's own
//!   [`reqwest::Client`], see [`VerifierBuilder::http_client`]) works.
//! - `actix`: actix-web extractors. `axum`: an axum layer and extractors. No framework is a
//!   default feature.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use jwt_auth_verifier::{ClientSecret, FeedConfig, KeySource, Verifier, VerifyError};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder(KeySource::discover("https://auth.example"), "orders-api")
//!     .feed(FeedConfig::new("orders", ClientSecret::new(std::env::var("FEED_SECRET")?)))
//!     .start()?;
//! if !verifier.wait_ready(Duration::from_secs(30)).await {
//!     eprintln!("not ready yet: {:?}", verifier.status());
//! }
//! # let token = "";
//! match verifier.verify(token) {
//!     Ok(claims) => println!("{} with roles {:?}", claims.sub, claims.roles),
//!     Err(VerifyError::NotReady) => println!("try again shortly"),
//!     Err(e) => println!("refused: {e}"),
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

#[cfg(any(feature = "actix", feature = "axum"))]
mod caller;
mod config;
mod error;
mod feed;
mod http;
mod keys;
#[cfg(feature = "nats")]
mod nats;
mod secret;
mod shared;
mod status;
mod verifier;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;

/// The Rust examples of `docs/protecting-your-service.md`, compiled as doctests so that they
/// cannot fall behind the API (the page's whole-service sketches are marked `ignore`).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/protecting-your-service.md")]
pub struct ProtectingYourService;

pub use config::{FeedConfig, KeySource, Timing};
pub use error::{AuthError, ConfigError, VerifyError, bearer_token};
pub use jwt_core::{AccessClaims, Audience, NoExtra};
#[cfg(feature = "nats")]
pub use nats::NatsFeedConfig;
pub use secret::ClientSecret;
pub use status::{FeedState, FeedStatus, KeysStatus, Status};
pub use verifier::{NotReady, Verifier, VerifierBuilder};

/// A role an endpoint can require (`actix::RequireRole`, `axum::RequireRole`); for roles
/// chosen at run time, see `Authenticated::require_any_role` in either module.
///
/// ```
/// use jwt_auth_verifier::Role;
/// struct Billing;
/// impl Role for Billing {
///     const NAME: &'static str = "billing";
/// }
/// ```
pub trait Role {
    /// The role's name in the `roles` claim.
    const NAME: &'static str;
}

/// The `admin` role.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl Role for Admin {
    const NAME: &'static str = "admin";
}

/// The `service` role (the role of client-credentials tokens).
#[derive(Debug, Clone, Copy)]
pub struct Service;

impl Role for Service {
    const NAME: &'static str = "service";
}
