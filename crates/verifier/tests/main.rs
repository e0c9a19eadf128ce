//! The integration tests of the verifier, one test binary: `common` is the local issuer they
//! run against, `verifier` follows it (keys, the feed, revocations), `frameworks` serves
//! the actix-web and axum extractors, and `dpop` DPoP-bound tokens at them. Filter by module, e.g.
//! `cargo nextest run -p jwt-auth-verifier --test main -E 'test(/^frameworks::/)'`.
#![allow(clippy::disallowed_methods)] // test fixtures at the system's time

mod common;
#[cfg(all(feature = "actix", feature = "axum"))]
mod dpop;
#[cfg(all(feature = "actix", feature = "axum"))]
mod frameworks;
mod verifier;
