//! Issuing and verifying access tokens for each algorithm, through jwt-core and through
//! jsonwebtoken's own `encode`/`decode` on the same claims, key and checks, and one refresh
//! rotation over the in-memory store.
//!
//! Results are named `<group>/<bench>` (criterion writes them to
//! `<target>/criterion/<group>/<bench>/new/estimates.json`); the budget check
//! (`src/main.rs`) expects exactly these:
//!
//! - `HS256|RS256|ES256|EdDSA` / `issue`, `verify`: jwt-core's `issue_access`, `verify_access_ignoring_revocations`;
//! - the same groups / `raw_encode`, `raw_decode`: `jsonwebtoken::encode` of the same claims
//!   with the same header and key, `jsonwebtoken::decode` of the same token with a
//!   `Validation` that checks the same `iss`, `aud`, `exp`, `nbf` and leeway;
//! - `rotation` / `refresh`: `Sessions::refresh` over `MemoryStore` with an HS256 key.
//!
//! `benches/budget.sh` runs these and then the budget check.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use jwt_core::{
    ACCESS_TOKEN_TYPE, Algorithm, ClientInfo, KeySet, MemoryStore, SessionPolicy, Sessions,
    SigningKey, Subject, TokenPolicy, TokenService,
};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "api";
const SESSION_ID: &str = "3f0c2a8e-5d1b-4c6a-9e7f-2b8d4a6c1e90";

/// The claims of a jwt-core access token, declared as a plain jsonwebtoken user would.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    sid: String,
    roles: Vec<String>,
}

fn subject() -> Subject {
    Subject { id: "user-1234".into(), roles: vec!["user".into()], email: None }
}

/// One key used both ways: by jwt-core, and by jsonwebtoken directly.
struct Fixture {
    tokens: TokenService,
    /// An access token issued by `tokens`: the input of both verify benches.
    token: String,
    /// jsonwebtoken's header for the same `alg`, `typ` and `kid` as jwt-core's.
    header: Header,
    /// The claims of `token`.
    claims: RawClaims,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// The same algorithm in jsonwebtoken's terms: both use the JOSE names.
fn jwt_algorithm(alg: Algorithm) -> jsonwebtoken::Algorithm {
    alg.as_str().parse().expect("jsonwebtoken knows every algorithm jwt-core has")
}

fn fixture(alg: Algorithm) -> Fixture {
    let key = SigningKey::generate(alg).expect("key generation");
    let (encoding, decoding) = match key.secret() {
        Some(secret) => (EncodingKey::from_secret(secret), DecodingKey::from_secret(secret)),
        None => {
            let pem = key.to_pem().expect("an asymmetric key has a PEM form");
            let encoding = match alg {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
                Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
                _ => EncodingKey::from_ed_pem(pem.as_bytes()),
            }
            .expect("jsonwebtoken reads jwt-core's PEM");
            let jwk = key.verifying_key().to_jwk().expect("an asymmetric key has a public JWK");
            (encoding, DecodingKey::from_jwk(jwk).expect("jsonwebtoken reads jwt-core's JWK"))
        }
    };
    let mut header = Header::new(jwt_algorithm(alg));
    header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
    header.kid = Some(key.kid().to_owned());

    let policy = TokenPolicy::new(ISSUER, AUDIENCE);
    let mut validation = Validation::new(jwt_algorithm(alg));
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = policy.leeway.num_seconds().unsigned_abs();

    let tokens = TokenService::new(policy, KeySet::new(key)).expect("a valid policy");
    let token = tokens.issue_access(&subject(), SESSION_ID, None).expect("issue").token;
    let token = token.into_string();

    // Both sides accept the other's token, so both benches measure the successful path.
    let claims = jsonwebtoken::decode::<RawClaims>(&token, &decoding, &validation)
        .expect("jsonwebtoken accepts jwt-core's token")
        .claims;
    let raw = jsonwebtoken::encode(&header, &claims, &encoding).expect("jsonwebtoken encodes");
    let ours = tokens
        .verify_access_ignoring_revocations(&raw)
        .expect("jwt-core accepts jsonwebtoken's token");
    assert_eq!((ours.jti.as_str(), ours.exp), (claims.jti.as_str(), claims.exp));

    Fixture { tokens, token, header, claims, encoding, decoding, validation }
}

fn per_algorithm(c: &mut Criterion) {
    let user = subject();
    for alg in Algorithm::ALL {
        let f = fixture(alg);
        let mut group = c.benchmark_group(alg.as_str());
        group.bench_function("issue", |b| {
            b.iter(|| {
                f.tokens.issue_access(black_box(&user), black_box(SESSION_ID), None).expect("issue")
            })
        });
        group.bench_function("raw_encode", |b| {
            b.iter(|| {
                jsonwebtoken::encode(black_box(&f.header), black_box(&f.claims), &f.encoding)
                    .expect("encode")
            })
        });
        group.bench_function("verify", |b| {
            b.iter(|| {
                f.tokens.verify_access_ignoring_revocations(black_box(&f.token)).expect("verify")
            })
        });
        group.bench_function("raw_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<RawClaims>(black_box(&f.token), &f.decoding, &f.validation)
                    .expect("decode")
            })
        });
        group.finish();
    }
}

/// One refresh per iteration, each presenting the refresh token the previous one returned:
/// verify, revocation check, store lookups, two new tokens, and the store's rotation.
fn rotation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let key = SigningKey::generate(Algorithm::HS256).expect("key generation");
    let tokens = TokenService::new(TokenPolicy::new(ISSUER, AUDIENCE), KeySet::new(key))
        .expect("a valid policy");
    let store = Arc::new(MemoryStore::new());
    let user = subject();
    store.put_user(user.clone());
    let sessions = Sessions::new(Arc::new(tokens), store, SessionPolicy::default());
    let mut current = runtime
        .block_on(sessions.start(&user, ClientInfo::default()))
        .expect("login")
        .refresh_token
        .into_string();

    let mut group = c.benchmark_group("rotation");
    group.bench_function("refresh", |b| {
        b.iter(|| {
            let pair = runtime
                .block_on(sessions.refresh(black_box(&current), ClientInfo::default()))
                .expect("refresh");
            current = pair.refresh_token.into_string();
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short defaults; `budget.sh --quick` shortens them further from the command line.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = per_algorithm, rotation
}
criterion_main!(benches);
