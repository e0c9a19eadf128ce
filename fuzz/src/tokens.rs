//! What the token targets assert about one input: every verification entry point of
//! `jwt-core` (access, access with revocations, refresh, the lower `verify_jws`, and the
//! bearer header parser) runs on it without panicking, and whatever one of them accepts is
//! checked against an independent oracle: the signature verifies under openssl's public key
//! with jsonwebtoken alone, the header is one we issue, the returned claims are the payload's,
//! and the policy's issuer, audience and times hold at the fixture's clock.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use jwt_core::{
    ACCESS_TOKEN_TYPE, AccessClaims, Algorithm, Audience, Error, REFRESH_TOKEN_TYPE, RefreshClaims,
    Revocation, RevocationSet, TokenService,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::fixture::{self, AUDIENCE, ISSUER, NOW};

/// Header fields we never issue and refuse to accept.
const FORBIDDEN_HEADERS: [&str; 6] = ["jku", "x5u", "jwk", "x5c", "crit", "cty"];

/// A fixture service and what the oracle needs beside it.
pub struct Target {
    service: TokenService,
    /// Always empty: `verify_access` must then agree with `verify_access_ignoring_revocations`.
    no_revocations: RevocationSet,
    /// The independent verifying key of each algorithm, in `Algorithm::ALL` order.
    independent: Vec<DecodingKey>,
}

/// What verification made of one token, for targets that assert more.
pub struct Outcome {
    pub access: Result<AccessClaims, Error>,
    pub refresh: Result<RefreshClaims, Error>,
}

/// The target whose service signs with `alg` (every fixture key verifies), built once.
pub fn target(alg: Algorithm) -> &'static Target {
    static TARGETS: OnceLock<Vec<Target>> = OnceLock::new();
    let targets = TARGETS.get_or_init(|| Algorithm::ALL.into_iter().map(Target::new).collect());
    &targets[Algorithm::ALL.iter().position(|a| *a == alg).expect("every algorithm")]
}

impl Target {
    fn new(alg: Algorithm) -> Self {
        Self {
            service: fixture::service(alg),
            no_revocations: RevocationSet::new(),
            independent: Algorithm::ALL.into_iter().map(fixture::decoding_key).collect(),
        }
    }

    /// The service under test.
    pub fn service(&self) -> &TokenService {
        &self.service
    }

    /// Raw fuzz input: as an `Authorization` header value, behind a `Bearer ` scheme, and as
    /// the token itself.
    pub fn check_bytes(&self, data: &[u8]) {
        if let Some(token) = check_bearer(data) {
            self.check_token(token);
        }
        check_prefixed_bearer(data);
        if let Ok(token) = std::str::from_utf8(data) {
            self.check_token(token);
        }
    }

    /// Every verification entry point on `token`, with the oracle on what they accept.
    pub fn check_token(&self, token: &str) -> Outcome {
        let service = &self.service;
        let access = service.verify_access_ignoring_revocations(token);
        let refresh = service.verify_refresh(token);
        let unrevoked = service.verify_access(token, &self.no_revocations);
        match (&access, &unrevoked) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "the same claims with no revocation"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "the same refusal"),
            (a, b) => panic!("verify_access_ignoring_revocations {a:?} but verify_access {b:?}"),
        }
        assert!(
            !(access.is_ok() && refresh.is_ok()),
            "a token accepted both as an access and as a refresh token"
        );
        if let Ok(claims) = &access {
            self.check_accepted_access(token, claims);
        }
        if let Ok(claims) = &refresh {
            self.check_accepted_refresh(token, claims);
        }
        for key in self.service.keys().verifying_keys() {
            // The lower layer checks no claim: its payload need not even be JSON.
            if let Ok(payload) = jwt_core::verify_jws(token, key) {
                self.genuine_signature(token, key.algorithm());
                let part = token.split('.').nth(1).expect("three parts");
                assert_eq!(
                    URL_SAFE_NO_PAD.decode(part).ok(),
                    Some(payload),
                    "verify_jws returns the payload it verified"
                );
            }
        }
        Outcome { access, refresh }
    }

    fn check_accepted_access(&self, token: &str, claims: &AccessClaims) {
        let (header, payload) = self.check_accepted(
            token,
            ACCESS_TOKEN_TYPE,
            claims,
            self.service.verify_access_ignoring_revocations(token).ok(),
            [
                ("iss", &claims.iss),
                ("sub", &claims.sub),
                ("jti", &claims.jti),
                ("sid", &claims.sid),
            ],
            [("exp", claims.exp), ("iat", claims.iat)],
        );
        assert_eq!(payload.get("email").and_then(Value::as_str), claims.email.as_deref());
        assert_eq!(payload.get("nbf").and_then(Value::as_i64), Some(claims.nbf));
        assert_eq!(payload.get("roles"), Some(&Value::from(claims.roles.clone())));
        let aud = match &claims.aud {
            Audience::One(one) => Value::from(one.as_str()),
            Audience::Many(many) => Value::from(many.clone()),
        };
        assert_eq!(payload.get("aud"), Some(&aud));
        assert!(claims.aud.contains(AUDIENCE), "accepted for another audience");
        assert_times(claims.exp, Some(claims.nbf), claims.iat);

        // Revoking its session, or its key, must refuse it.
        let far = DateTime::<Utc>::MAX_UTC;
        let revoked = RevocationSet::new();
        revoked.apply(&[Revocation::Session { id: claims.sid.clone(), expires_at: far }]);
        let refused = self.service.verify_access(token, &revoked);
        assert!(matches!(refused, Err(Error::Revoked)), "revoked session: {refused:?}");
        let kid = header["kid"].as_str().expect("checked").to_owned();
        let revoked = RevocationSet::new();
        revoked.apply(&[Revocation::Key { kid, expires_at: far }]);
        let refused = self.service.verify_access(token, &revoked);
        assert!(matches!(refused, Err(Error::KeyRevoked)), "revoked key: {refused:?}");
    }

    fn check_accepted_refresh(&self, token: &str, claims: &RefreshClaims) {
        self.check_accepted(
            token,
            REFRESH_TOKEN_TYPE,
            claims,
            self.service.verify_refresh(token).ok(),
            [
                ("iss", &claims.iss),
                ("sub", &claims.sub),
                ("jti", &claims.jti),
                ("sid", &claims.sid),
            ],
            [("exp", claims.exp), ("iat", claims.iat)],
        );
        assert_times(claims.exp, None, claims.iat);
    }

    /// What both token types share once accepted as `typ`: [`Target::genuine_issued`], it
    /// verifies again to the same claims (`reverified`), and the claims every token carries,
    /// `strings` and `numbers`, are the signed payload's. Returns the header and the payload.
    fn check_accepted<C: PartialEq + std::fmt::Debug>(
        &self,
        token: &str,
        typ: &str,
        claims: &C,
        reverified: Option<C>,
        strings: [(&str, &str); 4],
        numbers: [(&str, i64); 2],
    ) -> (Map<String, Value>, Map<String, Value>) {
        let (header, payload) = self.genuine_issued(token, typ);
        assert_eq!(reverified.as_ref(), Some(claims), "re-verifies");
        for (name, value) in strings {
            assert_eq!(payload.get(name).and_then(Value::as_str), Some(value), "{name}");
        }
        for (name, value) in numbers {
            assert_eq!(payload.get(name).and_then(Value::as_i64), Some(value), "{name}");
        }
        (header, payload)
    }

    /// The oracle for a token the service accepted as `typ`: [`Target::genuine`] under the
    /// algorithm its header names, a `kid` naming the fixture key of that algorithm, the type
    /// and the issuer. Returns the header and the payload as JSON objects.
    fn genuine_issued(&self, token: &str, typ: &str) -> (Map<String, Value>, Map<String, Value>) {
        let header = header_of(token);
        let alg: Algorithm = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|name| name.parse().ok())
            .unwrap_or_else(|| panic!("accepted with header {header:?}"));
        let (header, payload) = self.genuine(token, alg);
        let kid = header.get("kid").and_then(Value::as_str);
        assert_eq!(kid, Some(fixture::signing_key(alg).kid()), "the kid of the key that signed");
        let named = header.get("typ").and_then(Value::as_str).unwrap_or_default();
        let bare = named
            .get(..12)
            .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
            .map_or(named, |_| &named[12..]);
        assert!(bare.eq_ignore_ascii_case(typ), "accepted as {typ} with typ {named:?}");
        assert_eq!(payload.get("iss").and_then(Value::as_str), Some(ISSUER));
        (header, payload)
    }

    /// [`Target::genuine_signature`], and the payload is a JSON object; both are returned.
    fn genuine(&self, token: &str, alg: Algorithm) -> (Map<String, Value>, Map<String, Value>) {
        let header = self.genuine_signature(token, alg);
        let payload = token.split('.').nth(1).expect("three parts");
        (header, json_object(payload, "payload"))
    }

    /// The signature of `token` verifies under the fixture's `alg` key with jsonwebtoken alone,
    /// and its header is a JSON object naming `alg` and none of the refused fields; returned.
    fn genuine_signature(&self, token: &str, alg: Algorithm) -> Map<String, Value> {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "accepted a token of {} parts", parts.len());
        let header = header_of(token);
        assert_eq!(header.get("alg").and_then(Value::as_str), Some(alg.as_str()));
        for name in FORBIDDEN_HEADERS {
            assert!(!header.contains_key(name), "accepted a token with `{name}` in its header");
        }
        let message = &token.as_bytes()[..parts[0].len() + 1 + parts[1].len()];
        let key = &self.independent[Algorithm::ALL.iter().position(|a| *a == alg).expect("all")];
        let verified =
            jsonwebtoken::crypto::verify(parts[2], message, key, fixture::jwt_algorithm(alg));
        assert!(matches!(verified, Ok(true)), "accepted a signature our {alg} key did not make");
        header
    }
}

/// `exp`, `nbf` and `iat` allow the token at the fixture's clock, with the policy's leeway.
fn assert_times(exp: i64, nbf: Option<i64>, iat: i64) {
    let leeway = fixture::policy().leeway.num_seconds();
    assert!(NOW < exp.saturating_add(leeway), "accepted expired: exp {exp}");
    assert!(nbf.is_none_or(|nbf| nbf <= NOW + leeway), "accepted before nbf {nbf:?}");
    assert!(iat <= NOW + leeway, "accepted an iat in the future: {iat}");
}

fn header_of(token: &str) -> Map<String, Value> {
    json_object(token.split('.').next().unwrap_or_default(), "header")
}

fn json_object(part: &str, what: &str) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("accepted a {what} that is not base64url: {e}"));
    let members: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("accepted a {what} that is not a JSON object: {e}"));
    // A number beyond an f64's range is well-formed JSON (RFC 8259 §6 leaves the range to the
    // parser), which jwt-core accepts in a member it does not read, as `serde_json::Value`
    // would not: every member is kept, such a value as `null`.
    members
        .into_iter()
        .map(|(name, raw)| (name, serde_json::from_str(raw.get()).unwrap_or(Value::Null)))
        .collect()
}

/// `jwt_core::bearer_token` on `value` as an `Authorization` header, against RFC 6750 §2.1 as
/// the function documents it; the token when one was presented and well-formed.
pub fn check_bearer(value: &[u8]) -> Option<&str> {
    let found = jwt_core::bearer_token(Some(value));
    let split = value.iter().position(|b| *b == b' ').map(|at| (&value[..at], &value[at + 1..]));
    let presented = split.filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer"));
    let expected = presented
        .map(|(_, rest)| std::str::from_utf8(rest).ok().filter(|t| t.is_ascii()).map(str::trim));
    match (found, expected) {
        (Ok(None), None) => None,
        (Ok(Some(token)), Some(Some(rest))) if token == rest && !token.is_empty() => Some(token),
        (Err(Error::Malformed(_)), Some(None)) => None,
        (Err(Error::Malformed(_)), Some(Some(""))) => None,
        (found, expected) => panic!("bearer_token gave {found:?}, expected {expected:?}"),
    }
}

/// `Bearer <value>`: presented, so a token exactly when `value` is ASCII with something
/// besides whitespace, and then that, trimmed.
fn check_prefixed_bearer(value: &[u8]) {
    let header = [b"Bearer ".as_slice(), value].concat();
    let token = jwt_core::bearer_token(Some(&header));
    let expected = std::str::from_utf8(value).ok().filter(|v| v.is_ascii()).map(str::trim);
    match (token, expected) {
        (Ok(Some(token)), Some(trimmed)) if token == trimmed && !trimmed.is_empty() => {}
        (Err(_), None) | (Err(_), Some("")) => {}
        (token, expected) => panic!("bearer_token gave {token:?} for Bearer {expected:?}"),
    }
}
