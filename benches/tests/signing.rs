//! Signing works in this crate's build: jsonwebtoken panics at the first sign or verify when
//! its features enable no crypto backend or both, which no compiler catches. This signs and
//! verifies one token per algorithm through jwt-core, and one through jsonwebtoken directly.

use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use jwt_core::{Algorithm, KeySet, SigningKey, Subject, TokenPolicy, TokenService};
use serde::{Deserialize, Serialize};

#[test]
fn jwt_core_issues_and_verifies_with_every_algorithm() {
    let alice = Subject { id: "alice".into(), roles: vec!["user".into()], email: None };
    for alg in Algorithm::ALL {
        let key = SigningKey::generate(alg).unwrap();
        let tokens =
            TokenService::new(TokenPolicy::new("jwt-auth", "api"), KeySet::new(key)).unwrap();
        let issued = tokens.issue_access(&alice, "s1", None).unwrap();
        let claims = tokens.verify_access_ignoring_revocations(issued.token.expose()).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("alice", "s1"), "{alg}");
    }
}

#[test]
fn jsonwebtoken_encodes_and_decodes() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Claims {
        sub: String,
        exp: u64,
    }
    let claims = Claims { sub: "alice".into(), exp: jsonwebtoken::get_current_timestamp() + 60 };
    let secret = [7u8; 32];
    let token =
        jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(&secret))
            .unwrap();
    let decoded = jsonwebtoken::decode::<Claims>(
        &token,
        &DecodingKey::from_secret(&secret),
        &Validation::default(),
    )
    .unwrap();
    assert_eq!(decoded.claims, claims);
}
