//! The downstream verifier's per-request cost against jwt-core's local verification of the
//! same token: `jwt-auth-verifier`'s `Verifier::verify` (readiness flag, signature and claims,
//! then the revocation set holding 1,000 revoked sessions) beside
//! `TokenService::verify_access_ignoring_revocations` (signature and claims only), for EdDSA (keys from a JWK set
//! served on 127.0.0.1) and HS256 (a shared secret). The ratio of the two medians is the
//! verifier's overhead; the target is at most 1.1×.
//!
//! Results are named `verifier_<alg>/verify_access_ignoring_revocations` and `verifier_<alg>/verifier_verify`.
#![allow(clippy::disallowed_methods)] // test fixtures at the system's time

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jwt_auth_verifier::{KeySource, Verifier};
use jwt_core::{
    Algorithm, FeedEvent, KeySet, Revocation, SigningKey, Subject, TokenPolicy, TokenService,
};

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "api";

/// Serves `body` as the JWK set at any path of a 127.0.0.1 port, on a thread of its own;
/// returns the URL.
fn serve_jwks(body: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Cache-Control: public, max-age=3600\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

struct Fixture {
    local: TokenService,
    verifier: Verifier,
    token: String,
}

fn fixture(runtime: &tokio::runtime::Runtime, alg: Algorithm) -> Fixture {
    let key = SigningKey::generate(alg).unwrap();
    let local =
        TokenService::new(TokenPolicy::new(ISSUER, AUDIENCE), KeySet::new(key.clone())).unwrap();
    let source = match key.secret() {
        Some(secret) => KeySource::hs256(ISSUER, jwt_core::Secret::new(secret.to_vec()).unwrap()),
        None => {
            let jwks = serde_json::to_string(&local.keys().jwks()).unwrap();
            KeySource::jwks(ISSUER, serve_jwks(jwks))
        }
    };
    let verifier = runtime.block_on(async {
        let verifier = Verifier::builder(source, AUDIENCE).start().unwrap();
        assert!(verifier.wait_ready(Duration::from_secs(10)).await, "{:?}", verifier.status());
        verifier
    });
    // Revocations as the feed delivers them (expiring in an hour).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let expires_at = now.as_secs() + 3600;
    let revoked: Vec<Revocation> = (0..1000)
        .map(|i| {
            let event: FeedEvent = serde_json::from_value(serde_json::json!({
                "cursor": i.to_string(), "kind": "session", "sid": format!("revoked-{i}"),
                "expires_at": expires_at,
            }))
            .unwrap();
            event.revocation().unwrap()
        })
        .collect();
    verifier.revocations().apply(&revoked);
    let user = Subject { id: "user-1234".into(), roles: vec!["user".into()], email: None };
    let token = local
        .issue_access(&user, "3f0c2a8e-5d1b-4c6a-9e7f-2b8d4a6c1e90", None)
        .unwrap()
        .token
        .into_string();
    assert!(local.verify_access_ignoring_revocations(&token).is_ok());
    assert!(verifier.verify(&token).is_ok());
    Fixture { local, verifier, token }
}

fn verify(c: &mut Criterion) {
    // The verifier's background task (idle here) needs a runtime that outlives the benches.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for alg in [Algorithm::EdDSA, Algorithm::HS256] {
        let f = fixture(&runtime, alg);
        let mut group = c.benchmark_group(format!("verifier_{alg}"));
        group.bench_function("verify_access_ignoring_revocations", |b| {
            b.iter(|| f.local.verify_access_ignoring_revocations(black_box(&f.token)).unwrap())
        });
        group.bench_function("verifier_verify", |b| {
            b.iter(|| f.verifier.verify(black_box(&f.token)).unwrap())
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
    targets = verify
}
criterion_main!(benches);
