//! The DPoP fixture: the requests of the `dpop_proof` target and a verifier on the fixture's
//! clock, shared with the seed generator so that its proofs are the ones the target accepts.

use std::sync::Arc;

use chrono::DateTime;
use jwt_core::{DpopPolicy, DpopVerifier, ManualClock};

use crate::fixture::NOW;

/// The URL of the token request.
pub const TOKEN_URL: &str = "https://auth.fuzz.example/token";
/// The URL of the API request.
pub const API_URL: &str = "https://api.fuzz.example/v1/me";
/// The access token the API request presents (its `ath` is checked, nothing else of it).
pub const ACCESS_TOKEN: &str = "fuzz-access-token";

/// A fresh verifier with the default policy, its clock standing at [`NOW`].
pub fn verifier() -> DpopVerifier {
    let clock = ManualClock::new(DateTime::from_timestamp(NOW, 0).expect("a fixture time"));
    DpopVerifier::new(DpopPolicy::default())
        .expect("the default policy is valid")
        .with_clock(Arc::new(clock))
}
