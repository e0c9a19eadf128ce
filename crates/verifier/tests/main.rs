//! The integration tests of the verifier, one test binary: `common` is the local issuer they
//! run against, `verifier` follows it (keys, the feed, revocations), `frameworks` serves
//! the actix-web and axum extractors, `dpop` DPoP-bound tokens at them, and `nats` the
//! change stream on NATS JetStream in place of the HTTP feed. Filter by module, e.g.
//! `cargo nextest run -p jwt-auth-verifier --test main -E 'test(/^frameworks::/)'`.
#![allow(clippy::disallowed_methods)] // test fixtures at the system's time

mod common;
#[cfg(all(feature = "actix", feature = "axum"))]
mod dpop;
#[cfg(all(feature = "actix", feature = "axum"))]
mod frameworks;
#[cfg(feature = "nats")]
mod nats;
mod verifier;
