//! Properties of issuing and verifying, over arbitrary input: claims survive a round trip, any
//! one changed byte is refused, nothing panics on garbage, and whatever a hand-assembled token
//! gets accepted with satisfies the policy.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use jsonwebtoken::EncodingKey;
use jwt_core::{
    Algorithm, KeySet, ManualClock, SigningKey, Subject, TokenPolicy, TokenService, dangerous,
    verify_jws,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const T0: i64 = 1_700_000_000;
const LEEWAY: i64 = 5;

/// One service per algorithm, on a clock that never moves. Keys are made once: RSA is slow.
static SERVICES: LazyLock<Vec<TokenService>> = LazyLock::new(|| {
    let clock = Arc::new(ManualClock::new(DateTime::from_timestamp(T0, 0).unwrap()));
    Algorithm::ALL
        .into_iter()
        .map(|alg| {
            let mut policy = TokenPolicy::new("jwt-auth", "api");
            policy.include_email = true;
            let keys = KeySet::new(SigningKey::generate(alg).unwrap());
            TokenService::new(policy, keys).unwrap().with_clock(clock.clone())
        })
        .collect()
});

/// A valid access token of each service.
static TOKENS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let subject = Subject {
        id: "8f2d6c1e-5b0a-4c3e-9d7f-0a1b2c3d4e5f".into(),
        roles: vec!["user".into(), "admin".into()],
        email: Some("alice@example.com".into()),
    };
    SERVICES
        .iter()
        .map(|s| s.issue_access(&subject, "session-1", None).unwrap().token.into_string())
        .collect()
});

fn hs256() -> &'static TokenService {
    &SERVICES[0]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Any characters, control characters and astral planes included.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

/// A downstream user's own claims, flattened beside ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tenant {
    tenant: String,
    level: u32,
    tags: Vec<String>,
    nickname: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Verifies with every entry point; none may panic, whatever the input.
fn verify_everything(token: &str) {
    for service in SERVICES.iter() {
        let _ = service.verify_access_ignoring_revocations(token);
        let _ = service.verify_refresh(token);
        let _ = service.verify_access_ignoring_revocations_with::<Tenant>(token);
        for key in service.keys().verifying_keys() {
            let _ = verify_jws(token, key);
        }
    }
    let _ = dangerous::decode_unverified(token);
}

/// Whether `typ` names `expected`, as RFC 7515 §4.1.9 compares media types.
fn typ_names(typ: &str, expected: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    typ == expected || typ.strip_prefix("application/") == Some(expected)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_claims_round_trip(
        alg in 0..4usize,
        id in text(48),
        roles in prop::collection::vec(text(24), 0..6),
        email in prop::option::of(text(48)),
        sid in text(48),
    ) {
        let service = &SERVICES[alg];
        let subject = Subject { id, roles, email };
        let issued = service.issue_access(&subject, &sid, None)?;
        let claims = service.verify_access_ignoring_revocations(issued.token.expose())?;
        prop_assert_eq!(&claims.sub, &subject.id);
        prop_assert_eq!(&claims.roles, &subject.roles);
        prop_assert_eq!(&claims.email, &subject.email);
        prop_assert_eq!(&claims.sid, &sid);
        prop_assert_eq!(&claims.jti, &issued.jti);
        prop_assert_eq!(claims.iat, issued.issued_at.timestamp());
        prop_assert_eq!(claims.exp, issued.expires_at.timestamp());

        let refresh = service.issue_refresh(&subject.id, &sid, None)?;
        let claims = service.verify_refresh(refresh.token.expose())?;
        prop_assert_eq!(&claims.sub, &subject.id);
        prop_assert_eq!(&claims.sid, &sid);
        prop_assert_eq!(&claims.jti, &refresh.jti);
    }

    #[test]
    fn any_extra_claims_round_trip(
        alg in 0..4usize,
        id in text(32),
        sid in text(32),
        tenant in text(32),
        level in any::<u32>(),
        tags in prop::collection::vec(text(16), 0..5),
        nickname in prop::option::of(text(16)),
    ) {
        let service = &SERVICES[alg];
        let subject = Subject { id, roles: vec!["user".into()], email: None };
        let extra = Tenant { tenant, level, tags, nickname };
        let issued = service.issue_access_with(&subject, &sid, None, extra.clone())?;
        let claims = service.verify_access_ignoring_revocations_with::<Tenant>(issued.token.expose())?;
        prop_assert_eq!(&claims.extra, &extra);
        prop_assert_eq!(&claims.sub, &subject.id);
        prop_assert_eq!(&claims.sid, &sid);
        // The plain verifier accepts the same token and ignores what it does not know.
        prop_assert_eq!(service.verify_access_ignoring_revocations(issued.token.expose())?.sub, subject.id);
    }

    #[test]
    fn any_one_changed_byte_is_refused(
        alg in 0..4usize,
        position in any::<prop::sample::Index>(),
        byte in 0u8..128,
    ) {
        let token = &TOKENS[alg];
        let i = position.index(token.len());
        let mut bytes = token.as_bytes().to_vec();
        bytes[i] = if bytes[i] == byte { (byte + 1) % 128 } else { byte };
        let forged = String::from_utf8(bytes).expect("ASCII for ASCII");
        let result = SERVICES[alg].verify_access_ignoring_revocations(&forged);
        prop_assert!(result.is_err(), "byte {} set to {:?}: {:?}", i, byte as char, result);
    }

    #[test]
    fn any_one_character_replaced_by_a_non_ascii_one_is_refused(
        alg in 0..4usize,
        position in any::<prop::sample::Index>(),
        replacement in any::<char>().prop_filter("non-ASCII", |c| !c.is_ascii()),
    ) {
        let token = &TOKENS[alg];
        let i = position.index(token.len());
        let mut forged = token.clone();
        forged.replace_range(i..i + 1, replacement.encode_utf8(&mut [0; 4]));
        prop_assert!(SERVICES[alg].verify_access_ignoring_revocations(&forged).is_err());
    }

    #[test]
    fn any_truncation_or_extension_is_refused(
        alg in 0..4usize,
        cut in any::<prop::sample::Index>(),
        suffix in "[A-Za-z0-9_=.-]{1,8}",
    ) {
        let token = &TOKENS[alg];
        let service = &SERVICES[alg];
        prop_assert!(service.verify_access_ignoring_revocations(&token[..cut.index(token.len())]).is_err());
        let extended = format!("{token}{suffix}");
        prop_assert!(service.verify_access_ignoring_revocations(&extended).is_err());
    }

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        verify_everything(&input);
    }

    #[test]
    fn arbitrary_three_part_strings_never_panic(
        input in "[A-Za-z0-9_+/=-]{0,64}\\.[A-Za-z0-9_+/=-]{0,160}\\.[A-Za-z0-9_+/=-]{0,120}",
    ) {
        verify_everything(&input);
    }

    #[test]
    fn base64url_json_parts_never_panic(
        header in arb_json(),
        payload in arb_json(),
        signature in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let token = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes()),
            b64(&signature),
        );
        verify_everything(&token);
    }
}

proptest! {
    // Cheap cases (HS256), of which only a fraction is acceptable: run more of them.
    #![proptest_config(ProptestConfig { cases: 1024, ..config() })]

    /// Assembles tokens field by field, each field either right or arbitrary, signed with the
    /// service's own secret: whatever is accepted must satisfy the policy.
    #[test]
    fn whatever_is_accepted_satisfies_the_policy(
        header in arb_header(),
        claims in arb_claims(),
    ) {
        let service = hs256();
        let key = EncodingKey::from_secret(service.keys().active().unwrap().secret().unwrap());
        let message = format!(
            "{}.{}",
            b64(Value::Object(header.clone()).to_string().as_bytes()),
            b64(Value::Object(claims).to_string().as_bytes()),
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)?;
        let token = format!("{}.{}", message, signature);
        verify_everything(&token);

        let typ = header.get("typ").and_then(Value::as_str).unwrap_or_default();
        let header_is_acceptable = |kind: &str| {
            header.get("alg") == Some(&json!("HS256"))
                && header.get("kid").and_then(Value::as_str)
                    == Some(service.keys().active().unwrap().kid())
                && typ_names(typ, kind)
                // A present-but-null forbidden header or `crit` is accepted today: see the
                // ignored tests in rejections.rs.
                && ["crit", "jku", "x5u", "jwk", "x5c"]
                    .iter()
                    .all(|name| header.get(*name).is_none_or(Value::is_null))
        };
        if let Ok(claims) = service.verify_access_ignoring_revocations(&token) {
            prop_assert!(header_is_acceptable("at+jwt"), "header {:?}", header);
            prop_assert_eq!(claims.iss.as_str(), "jwt-auth");
            prop_assert!(claims.aud.contains("api"));
            prop_assert!(T0 < claims.exp.saturating_add(LEEWAY));
            prop_assert!(claims.nbf <= T0 + LEEWAY);
            prop_assert!(claims.iat <= T0 + LEEWAY);
        }
        if let Ok(claims) = service.verify_refresh(&token) {
            prop_assert!(header_is_acceptable("refresh+jwt"), "header {:?}", header);
            prop_assert_eq!(claims.iss.as_str(), "jwt-auth");
            prop_assert!(T0 < claims.exp.saturating_add(LEEWAY));
            prop_assert!(claims.iat <= T0 + LEEWAY);
        }
    }
}

/// Names that mean something to a verifier, and one that does not.
fn arb_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "alg", "typ", "kid", "crit", "jku", "x5u", "jwk", "x5c", "iss", "sub", "aud", "exp", "nbf",
        "iat", "jti", "sid", "roles", "email", "x",
    ])
    .prop_map(str::to_owned)
}

/// Small JSON values, biased towards strings and numbers a verifier looks at.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (T0 - 100..T0 + 100).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(12).prop_map(Value::from),
        prop::sample::select(vec![
            "HS256",
            "none",
            "RS256",
            "at+jwt",
            "refresh+jwt",
            "JWT",
            "jwt-auth",
            "api",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(arb_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `right` most of the time, otherwise absent or arbitrary.
fn mostly(right: Value) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        30 => Just(Some(right)),
        1 => Just(None),
        2 => arb_json().prop_map(Some),
    ]
}

fn object(
    fields: Vec<(&'static str, Option<Value>)>,
    extra: BTreeMap<String, Value>,
) -> Map<String, Value> {
    let mut map: Map<String, Value> = extra.into_iter().collect();
    for (name, value) in fields {
        match value {
            Some(v) => map.insert(name.to_owned(), v),
            None => map.remove(name),
        };
    }
    map
}

fn arb_header() -> impl Strategy<Value = Map<String, Value>> {
    let kid = hs256().keys().active().unwrap().kid().to_owned();
    let typ = prop_oneof![
        Just(json!("at+jwt")),
        Just(json!("refresh+jwt")),
        Just(json!("application/AT+JWT")),
        Just(json!("Refresh+JWT")),
    ];
    (
        mostly(json!("HS256")),
        typ.prop_flat_map(mostly),
        mostly(json!(kid)),
        prop::collection::btree_map(arb_name(), arb_json(), 0..2),
    )
        .prop_map(|(alg, typ, kid, extra)| {
            object(vec![("alg", alg), ("typ", typ), ("kid", kid)], extra)
        })
}

fn arb_claims() -> impl Strategy<Value = Map<String, Value>> {
    // Times around the clock's `T0`, so the leeway boundaries are crossed both ways.
    let time = || (T0 - 20..T0 + 20).prop_map(Value::from).prop_flat_map(mostly);
    (
        (mostly(json!("jwt-auth")), mostly(json!("user-1")), mostly(json!("api"))),
        (prop_oneof![time(), mostly(json!(T0 + 600))], time(), time()),
        (mostly(json!("jti-1")), mostly(json!("session-1")), mostly(json!(["user"]))),
        prop::collection::btree_map(arb_name(), arb_json(), 0..2),
    )
        .prop_map(|((iss, sub, aud), (exp, nbf, iat), (jti, sid, roles), extra)| {
            object(
                vec![
                    ("iss", iss),
                    ("sub", sub),
                    ("aud", aud),
                    ("exp", exp),
                    ("nbf", nbf),
                    ("iat", iat),
                    ("jti", jti),
                    ("sid", sid),
                    ("roles", roles),
                ],
                extra,
            )
        })
}
