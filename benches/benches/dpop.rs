//! DPoP proof verification (RFC 9449) for each algorithm a proof may be signed with, beside
//! the verification of an access token of the same algorithm: what a DPoP-bound request costs
//! a resource server on top of its bearer token.
//!
//! Results are named `dpop_<alg>/verify_proof` (`DpopVerifier::verify` of a proof with `ath`:
//! header, the `jwk`'s thumbprint, signature, claims, the replay cache) and
//! `dpop_<alg>/verify_access` (`TokenService::verify_access_ignoring_revocations`). Each proof
//! is verified once (a second time would be a replay): they are signed outside the
//! measurement, in batches.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::EncodingKey;
use jwt_core::{
    Algorithm, DpopPolicy, DpopRequest, DpopVerifier, KeySet, ManualClock, SigningKey, Subject,
    TokenPolicy, TokenService, access_token_hash,
};

const T0: i64 = 1_700_000_000;
const URL: &str = "https://api.example/v1/me";

/// A client's key signing proofs for the access token `token`.
struct Client {
    alg: Algorithm,
    header: String,
    encoding: EncodingKey,
    ath: String,
}

impl Client {
    fn new(alg: Algorithm, token: &str) -> Self {
        let key = SigningKey::generate(alg).expect("key generation");
        let pem = key.to_pem().expect("an asymmetric key");
        let encoding = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("jsonwebtoken reads jwt-core's PEM");
        let jwk = key.verifying_key().to_jwk().expect("public");
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": alg.as_str(), "jwk": jwk});
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        Self { alg, header, encoding, ath: access_token_hash(token) }
    }

    fn proof(&self) -> String {
        let claims = serde_json::json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": "GET",
            "htu": URL,
            "iat": T0,
            "ath": self.ath,
        });
        let message = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims.to_string()));
        let alg = self.alg.as_str().parse().expect("a JOSE name");
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, alg)
            .expect("the client signs");
        format!("{message}.{signature}")
    }
}

fn per_algorithm(c: &mut Criterion) {
    let clock = Arc::new(ManualClock::new(DateTime::from_timestamp(T0, 0).expect("a time")));
    // Every proof of the run stays remembered (the clock stands still): room for all of them.
    let policy = DpopPolicy { replay_capacity: 50_000_000, ..DpopPolicy::default() };
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let tokens = TokenService::new(
            TokenPolicy::new("https://auth.example", "api"),
            KeySet::new(SigningKey::generate(alg).expect("key generation")),
        )
        .expect("a valid policy")
        .with_clock(clock.clone());
        let subject = Subject { id: "user-1234".into(), roles: vec!["user".into()], email: None };
        let token = tokens.issue_access(&subject, "session-1", None).expect("issued").token;
        let token = token.expose();
        let client = Client::new(alg, token);
        let verifier =
            DpopVerifier::new(policy.clone()).expect("a valid policy").with_clock(clock.clone());
        let request = DpopRequest { method: "GET", url: URL, access_token: Some(token) };

        let mut group = c.benchmark_group(format!("dpop_{}", alg.as_str()));
        group.bench_function("verify_proof", |b| {
            b.iter_batched(
                || client.proof(),
                |proof| verifier.verify(black_box(&proof), &request).expect("a valid proof"),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("verify_access", |b| {
            b.iter(|| tokens.verify_access_ignoring_revocations(black_box(token)).expect("valid"))
        });
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = per_algorithm
}
criterion_main!(benches);
