//! Writes the seed corpus of every fuzz target: `seeds <corpus dir>` fills
//! `<corpus dir>/<target>/seed-<name>` with real inputs made by the code under test and the
//! fixture keys (tokens valid, expired and forged; JWKs and JWK sets; PEM and DER keys;
//! durations, CIDRs, bodies, forms and headers), so each run starts deep inside the parsers
//! instead of rediscovering the formats. Seeds are generated, never committed: `scripts/fuzz.sh`
//! runs this before fuzzing, and rewriting a seed of the same name is harmless.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta};
use jwt_auth_fuzz::dpop;
use jwt_auth_fuzz::fixture::{self, NOW};
use jwt_core::{
    ACCESS_TOKEN_TYPE, Algorithm, FeedEvent, FeedPage, REFRESH_TOKEN_TYPE, Revocation, SigningKey,
    Subject,
};
use serde_json::{Value, json};

/// Where one target's seeds go.
struct Corpus {
    dir: PathBuf,
    count: usize,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> std::io::Result<Self> {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        Ok(Self { dir, count: 0 })
    }

    fn add(&mut self, name: &str, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.count += 1;
        fs::write(self.dir.join(format!("seed-{name}")), bytes)
    }
}

fn alice() -> Subject {
    Subject {
        id: "5f0c7a4e-2b1d-4c8e-9f3a-6d2e1b0a9c87".into(),
        roles: vec!["user".into(), "admin".into()],
        email: Some("alice@example.com".into()),
    }
}

fn name_of(alg: Algorithm) -> String {
    alg.as_str().to_ascii_lowercase()
}

/// `header.claims.signature`, signed with the fixture's `alg` key whatever the header says.
fn sign(alg: Algorithm, header: &Value, claims: &Value) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut token);
    let key = fixture::encoding_key(alg);
    let signature = jsonwebtoken::crypto::sign(token.as_bytes(), &key, fixture::jwt_algorithm(alg))
        .expect("the fixture key signs");
    format!("{token}.{signature}")
}

fn our_header(alg: Algorithm, typ: &str) -> Value {
    json!({"alg": alg.as_str(), "typ": typ, "kid": fixture::signing_key(alg).kid()})
}

fn access_claims() -> Value {
    json!({
        "iss": fixture::ISSUER, "sub": alice().id, "aud": fixture::AUDIENCE,
        "exp": NOW + 1800, "nbf": NOW, "iat": NOW,
        "jti": "0b5e8f52-5a43-4d8b-8f0e-3d1c2b7a6e59", "sid": "s-1", "roles": ["user"],
    })
}

fn refresh_claims() -> Value {
    json!({
        "iss": fixture::ISSUER, "sub": alice().id, "exp": NOW + 86_400, "iat": NOW,
        "jti": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "sid": "s-1",
    })
}

/// The claims of an access token, changed in one way each.
fn access_variants() -> Vec<(&'static str, Value)> {
    let with = |name: &str, value: Value| {
        let mut claims = access_claims();
        claims[name] = value;
        claims
    };
    let without = |name: &str| {
        let mut claims = access_claims();
        claims.as_object_mut().expect("an object").remove(name);
        claims
    };
    vec![
        ("valid", access_claims()),
        ("aud-array", with("aud", json!(["web", fixture::AUDIENCE]))),
        ("wrong-aud", with("aud", json!("other"))),
        ("wrong-iss", with("iss", json!("https://evil.example"))),
        ("expired", with("exp", json!(NOW - 3600))),
        ("not-yet", with("nbf", json!(NOW + 3600))),
        ("iat-future", with("iat", json!(NOW + 3600))),
        ("exp-string", with("exp", json!("soon"))),
        ("exp-float", with("exp", json!(1.9e9))),
        ("exp-huge", with("exp", json!(u64::MAX))),
        ("no-sid", without("sid")),
        ("no-roles", without("roles")),
        ("email", with("email", json!("alice@example.com"))),
        ("extra", with("tenant", json!({"id": 7, "tags": ["a", null, 1.5]}))),
    ]
}

fn tokens(root: &Path) -> std::io::Result<()> {
    for alg in Algorithm::ALL {
        let mut corpus = Corpus::new(root, &format!("token_{}", name_of(alg)))?;
        let now = fixture::service(alg);
        let access = now.issue_access(&alice(), "s-1", None).expect("signs").token.into_string();
        let refresh = now.issue_refresh(&alice().id, "s-1", None).expect("signs").token;
        corpus.add("access", &access)?;
        corpus.add("refresh", refresh.expose())?;
        corpus.add("bearer-access", format!("Bearer {access}"))?;
        corpus.add("bearer-lower", format!("bearer  {access} "))?;
        corpus.add("basic", "Basic YWxpY2U6c2VjcmV0")?;
        let past = fixture::service_at(alg, NOW - 86_400);
        let expired = past.issue_access(&alice(), "s-1", None).expect("signs").token;
        corpus.add("expired", expired.expose())?;
        let future = fixture::service_at(alg, NOW + 86_400);
        let early = future.issue_access(&alice(), "s-1", None).expect("signs").token;
        corpus.add("not-yet-valid", early.expose())?;

        for (name, claims) in access_variants() {
            corpus.add(
                &format!("claims-{name}"),
                sign(alg, &our_header(alg, ACCESS_TOKEN_TYPE), &claims),
            )?;
        }
        let kid = fixture::signing_key(alg).kid();
        let headers = [
            ("typ-jwt", json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid})),
            ("typ-media", json!({"alg": alg.as_str(), "typ": "application/AT+JWT", "kid": kid})),
            ("no-kid", json!({"alg": alg.as_str(), "typ": ACCESS_TOKEN_TYPE})),
            ("unknown-kid", json!({"alg": alg.as_str(), "typ": ACCESS_TOKEN_TYPE, "kid": "nope"})),
            (
                "jku",
                json!({"alg": alg.as_str(), "typ": ACCESS_TOKEN_TYPE, "kid": kid, "jku": "https://x"}),
            ),
            (
                "crit",
                json!({"alg": alg.as_str(), "typ": ACCESS_TOKEN_TYPE, "kid": kid, "crit": ["exp"]}),
            ),
            (
                "cty",
                json!({"alg": alg.as_str(), "typ": ACCESS_TOKEN_TYPE, "kid": kid, "cty": "JWT"}),
            ),
            ("alg-none", json!({"alg": "none", "typ": ACCESS_TOKEN_TYPE, "kid": kid})),
        ];
        for (name, header) in headers {
            corpus.add(&format!("header-{name}"), sign(alg, &header, &access_claims()))?;
        }
        // Algorithm confusion: a header naming another algorithm, and HS256 under the kid of
        // each public key (signed with the fixture secret, as an attacker would with the
        // public key bytes).
        for other in Algorithm::ALL.into_iter().filter(|other| *other != alg) {
            let header = json!({"alg": other.as_str(), "typ": ACCESS_TOKEN_TYPE, "kid": kid});
            corpus.add(
                &format!("confused-{}", name_of(other)),
                sign(alg, &header, &access_claims()),
            )?;
            let header = json!({"alg": "HS256", "typ": ACCESS_TOKEN_TYPE, "kid": fixture::signing_key(other).kid()});
            corpus.add(
                &format!("hs256-as-{}", name_of(other)),
                sign(Algorithm::HS256, &header, &access_claims()),
            )?;
        }
        let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(with_sub(&parts[1], "mallory"));
        corpus.add("tampered", parts.join("."))?;
        corpus.add("two-parts", access.rsplit_once('.').expect("three parts").0)?;
        corpus.add("padded", format!("{access}=="))?;
        println!("{:>14}: {} seeds", format!("token_{}", name_of(alg)), corpus.count);
    }
    Ok(())
}

fn with_sub(payload_b64: &str, sub: &str) -> String {
    let bytes = URL_SAFE_NO_PAD.decode(payload_b64).expect("our payload is base64url");
    let mut claims: Value = serde_json::from_slice(&bytes).expect("our payload is JSON");
    claims["sub"] = json!(sub);
    claims.to_string()
}

fn token_claims(root: &Path) -> std::io::Result<()> {
    let mut corpus = Corpus::new(root, "token_claims")?;
    for (index, alg) in Algorithm::ALL.into_iter().enumerate() {
        let alg_bits = index as u8;
        let seed = |flags: u8, header: &Value, claims: &Value| {
            let mut bytes = vec![alg_bits | flags];
            if flags & 8 != 0 {
                bytes.extend(header.to_string().bytes());
            }
            bytes.push(0);
            bytes.extend(claims.to_string().bytes());
            bytes
        };
        let name = name_of(alg);
        for (variant, claims) in access_variants() {
            corpus.add(&format!("{name}-access-{variant}"), seed(0, &Value::Null, &claims))?;
        }
        corpus.add(&format!("{name}-refresh"), seed(4, &Value::Null, &refresh_claims()))?;
        corpus
            .add(&format!("{name}-refresh-as-access"), seed(0, &Value::Null, &refresh_claims()))?;
        let kid = fixture::signing_key(alg).kid();
        let headers = [
            ("ours", our_header(alg, ACCESS_TOKEN_TYPE)),
            ("media-typ", json!({"alg": alg.as_str(), "typ": "application/at+jwt", "kid": kid})),
            ("x5c", json!({"alg": alg.as_str(), "typ": ACCESS_TOKEN_TYPE, "kid": kid, "x5c": []})),
            (
                "jwk-null",
                json!({"alg": alg.as_str(), "typ": ACCESS_TOKEN_TYPE, "kid": kid, "jwk": null}),
            ),
            ("kid-number", json!({"alg": alg.as_str(), "typ": ACCESS_TOKEN_TYPE, "kid": 7})),
        ];
        for (variant, header) in headers {
            corpus.add(&format!("{name}-header-{variant}"), seed(8, &header, &access_claims()))?;
        }
        let refresh_header = our_header(alg, REFRESH_TOKEN_TYPE);
        corpus.add(
            &format!("{name}-header-refresh"),
            seed(8 | 4, &refresh_header, &refresh_claims()),
        )?;
    }
    // Texts JSON values cannot be told from by a struct parser without care.
    let claims = access_claims().to_string();
    let duplicate = claims.replacen("{", "{\"sid\":\"other\",", 1);
    corpus.add("duplicate-claim", [&[0u8][..], &[0], duplicate.as_bytes()].concat())?;
    corpus.add("array-claims", [&[0u8, 0][..], b"[\"i\",\"s\"]"].concat())?;
    corpus.add("trailing", [&[0u8, 0][..], claims.as_bytes(), b" x"].concat())?;
    println!("{:>14}: {} seeds", "token_claims", corpus.count);
    Ok(())
}

fn jwk(root: &Path) -> std::io::Result<()> {
    let mut corpus = Corpus::new(root, "jwk")?;
    let all = fixture::key_set(Algorithm::EdDSA).jwks();
    corpus.add("set-fixture", serde_json::to_vec(&all)?)?;
    corpus.add("set-empty", r#"{"keys":[]}"#)?;
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let name = name_of(alg);
        let ours = fixture::signing_key(alg).verifying_key().to_jwk().expect("public").clone();
        let value = serde_json::to_value(&ours)?;
        corpus.add(&name, value.to_string())?;
        let fresh = SigningKey::generate(alg).expect("generates");
        let fresh = serde_json::to_value(fresh.verifying_key().to_jwk().expect("public"))?;
        corpus.add(&format!("{name}-fresh"), fresh.to_string())?;
        let changed = |name: &str, new: Value| {
            let mut jwk = value.clone();
            match new {
                Value::Null => {
                    jwk.as_object_mut().expect("an object").remove(name);
                }
                new => jwk[name] = new,
            }
            jwk.to_string()
        };
        corpus.add(&format!("{name}-no-kid"), changed("kid", Value::Null))?;
        corpus.add(&format!("{name}-use-enc"), changed("use", json!("enc")))?;
        corpus.add(&format!("{name}-alg-hs256"), changed("alg", json!("HS256")))?;
        corpus.add(&format!("{name}-no-alg"), changed("alg", Value::Null))?;
        corpus.add(&format!("{name}-key-ops"), changed("key_ops", json!(["verify"])))?;
        corpus.add(&format!("{name}-in-set"), json!({"keys": [value, fresh]}).to_string())?;
        corpus.add(&format!("{name}-twice"), json!({"keys": [value, value]}).to_string())?;
    }
    let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    let others = [
        ("oct", json!({"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ", "kid": "s"})),
        ("p384", json!({"kty": "EC", "crv": "P-384", "x": x, "y": y, "kid": "p"})),
        ("p256-bad-point", json!({"kty": "EC", "crv": "P-256", "x": x, "y": x, "kid": "b"})),
        ("x25519", json!({"kty": "OKP", "crv": "X25519", "x": x, "kid": "x"})),
        (
            "rsa-small",
            json!({"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl", "e": "AQAB", "kid": "r"}),
        ),
        ("rsa-e-zero", json!({"kty": "RSA", "n": x, "e": "AA", "kid": "z"})),
        ("unknown-kty", json!({"kty": "PQC", "kid": "q"})),
    ];
    for (name, value) in others {
        corpus.add(name, value.to_string())?;
    }
    println!("{:>14}: {} seeds", "jwk", corpus.count);
    Ok(())
}

/// The DER inside a PEM text.
fn pem_contents(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    STANDARD.decode(body).expect("PEM is base64")
}

/// Reads one DER element: (tag, contents, rest).
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        let len = rest.get(..n)?.iter().fold(0usize, |len, b| len << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    Some((tag, rest.get(..len)?, &rest[len..]))
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`.
fn pkcs1_of(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (_, info, _) = der_element(pkcs8)?;
    let (_, _version, rest) = der_element(info)?;
    let (_, _algorithm, rest) = der_element(rest)?;
    let (_, key, _) = der_element(rest)?;
    Some(key.to_vec())
}

fn pem_of(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ASCII")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn key_pem_der(root: &Path) -> std::io::Result<()> {
    let mut corpus = Corpus::new(root, "key_pem_der")?;
    for (index, alg) in Algorithm::ALL.into_iter().enumerate() {
        let selector = index as u8;
        let name = name_of(alg);
        let seed = |bytes: &[u8]| [&[selector][..], bytes].concat();
        let Some(pem) = fixture::private_pem(alg) else {
            corpus.add("hs256-secret", seed(fixture::HS256_SECRET))?;
            corpus.add("hs256-short", seed(&fixture::HS256_SECRET[..31]))?;
            corpus.add("hs256-long", seed(&[0x5a; 64]))?;
            continue;
        };
        let der = pem_contents(pem);
        corpus.add(&format!("{name}-pem"), seed(pem.as_bytes()))?;
        corpus.add(&format!("{name}-der"), seed(&der))?;
        let fresh = SigningKey::generate(alg).expect("generates").to_pem().expect("PEM");
        corpus.add(&format!("{name}-fresh-pem"), seed(fresh.as_bytes()))?;
        corpus.add(
            &format!("{name}-public-pem"),
            seed(fixture::public_pem(alg).expect("public").as_bytes()),
        )?;
        corpus.add(&format!("{name}-truncated-der"), seed(&der[..der.len() / 2]))?;
        // Another algorithm's key under this selector.
        let next = Algorithm::ALL[(index % 3) + 1];
        let other = fixture::private_pem(next).expect("asymmetric");
        corpus.add(&format!("{name}-given-{}", name_of(next)), seed(other.as_bytes()))?;
        if alg == Algorithm::RS256 {
            let pkcs1 = pkcs1_of(&der).expect("a PKCS#8 RSA key");
            corpus.add("rs256-pkcs1-pem", seed(pem_of("RSA PRIVATE KEY", &pkcs1).as_bytes()))?;
            corpus.add("rs256-pkcs1-der", seed(&pkcs1))?;
        }
    }
    println!("{:>14}: {} seeds", "key_pem_der", corpus.count);
    Ok(())
}

fn feed(root: &Path) -> std::io::Result<()> {
    let mut corpus = Corpus::new(root, "feed")?;
    let at = |seconds| DateTime::from_timestamp(seconds, 0).expect("in range");
    let revocations = [
        ("session", Revocation::Session { id: "s-1".into(), expires_at: at(NOW + 600) }),
        ("user", Revocation::IssuedBefore { user_id: Some(alice().id), before: at(NOW) }),
        ("all", Revocation::IssuedBefore { user_id: None, before: at(NOW) }),
        (
            "key",
            Revocation::Key {
                kid: fixture::signing_key(Algorithm::ES256).kid().into(),
                expires_at: at(NOW + 86_400),
            },
        ),
    ];
    let mut events = Vec::new();
    for (cursor, (name, revocation)) in revocations.iter().enumerate() {
        let event =
            FeedEvent::from_revocation(cursor.to_string(), revocation, TimeDelta::minutes(30));
        corpus.add(&format!("event-{name}"), serde_json::to_vec(&event)?)?;
        events.push(event);
    }
    let page = FeedPage { events, cursor: "3".into() };
    corpus.add("page", serde_json::to_vec(&page)?)?;
    corpus.add("page-empty", r#"{"events":[],"cursor":"0"}"#)?;
    corpus.add(
        "event-unknown",
        r#"{"cursor":"9","kind":"tenant","tenant":"t","expires_at":1900000000}"#,
    )?;
    corpus.add(
        "event-far",
        r#"{"cursor":"9","kind":"session","sid":"s","expires_at":9223372036854775807}"#,
    )?;
    corpus.add(
        "event-before-time",
        r#"{"cursor":"9","kind":"all","not_before":-9223372036854775808,"expires_at":0}"#,
    )?;
    println!("{:>14}: {} seeds", "feed", corpus.count);
    Ok(())
}

/// Proofs of the fixture's asymmetric keys for the `dpop_proof` target's two requests, valid
/// and each wrong in one respect.
fn dpop_proof(root: &Path) -> std::io::Result<()> {
    let mut corpus = Corpus::new(root, "dpop_proof")?;
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let jwk = fixture::signing_key(alg).verifying_key().to_jwk().expect("public").clone();
        let header = json!({"typ": "dpop+jwt", "alg": alg.as_str(), "jwk": jwk});
        let token = json!({
            "jti": format!("seed-{}", name_of(alg)), "htm": "POST", "htu": dpop::TOKEN_URL,
            "iat": NOW,
        });
        let api = json!({
            "jti": format!("seed-api-{}", name_of(alg)), "htm": "GET", "htu": dpop::API_URL,
            "iat": NOW, "ath": jwt_core::access_token_hash(dpop::ACCESS_TOKEN),
        });
        let with = |value: &Value, field: &str, to: Value| {
            let mut value = value.clone();
            value[field] = to;
            value
        };
        let mut private = header.clone();
        private["jwk"]["d"] = "AQAB".into();
        let seeds = [
            ("token", sign(alg, &header, &token)),
            ("api", sign(alg, &header, &api)),
            ("stale", sign(alg, &header, &with(&token, "iat", (NOW - 61).into()))),
            ("method", sign(alg, &header, &with(&token, "htm", "GET".into()))),
            ("url-case", sign(alg, &header, &with(&token, "htu", "HTTPS://Auth.Fuzz.Example:443/token?q".into()))),
            ("private-jwk", sign(alg, &private, &token)),
            ("typ-jwt", sign(alg, &with(&header, "typ", "JWT".into()), &token)),
            ("alg-none", sign(alg, &with(&header, "alg", "none".into()), &token)),
        ];
        for (name, proof) in seeds {
            corpus.add(&format!("{}-{name}", name_of(alg)), proof)?;
        }
    }
    // The seeds must be what the target accepts.
    let proof = std::fs::read_to_string(corpus.dir.join("seed-es256-token"))?;
    let request = jwt_core::DpopRequest { method: "POST", url: dpop::TOKEN_URL, access_token: None };
    dpop::verifier().verify(&proof, &request).expect("the seed proof verifies");
    println!("{:>14}: {} seeds", "dpop_proof", corpus.count);
    Ok(())
}

fn texts(root: &Path, target: &str, seeds: &[(&str, &[u8])]) -> std::io::Result<()> {
    let mut corpus = Corpus::new(root, target)?;
    for (name, bytes) in seeds {
        corpus.add(name, bytes)?;
    }
    println!("{target:>14}: {} seeds", corpus.count);
    Ok(())
}

fn settings(root: &Path) -> std::io::Result<()> {
    texts(
        root,
        "settings",
        &[
            ("30m", b"30m"),
            ("7d", b"7d"),
            ("90s", b"90s"),
            ("900", b"900"),
            ("zero", b"0"),
            ("1h-spaced", b" 1h "),
            ("3650d", b"3650d"),
            ("3651d", b"3651d"),
            ("unit-only", b"m"),
            ("unknown-unit", b"10x"),
            ("negative", b"-5"),
            ("huge", b"99999999999999999d"),
            ("cidr-v4", b"10.0.0.0/8"),
            ("cidr-v6", b"::1/128"),
            ("cidr-host-bits", b"10.1.2.3/8"),
            ("cidr-list", b"10.0.0.0/8, 127.0.0.1 ,::1"),
            ("cidr-blanks", b" , ,192.168.0.0/16,"),
            ("cidr-link-local", b"fe80::/10"),
            ("cidr-bad-prefix", b"10.0.0.0/33"),
            ("cidr-mapped", b"::ffff:10.0.0.1/128"),
            ("alg-hs256", b"HS256"),
            ("alg-rs256", b"RS256"),
            ("alg-es256", b"ES256"),
            ("alg-eddsa", b"EdDSA"),
            ("alg-lower", b"eddsa"),
            ("alg-none", b"none"),
            ("cursor", b"42"),
            ("cursor-spaced", b" 7 "),
            ("cursor-past-max", b"99999999999999999999"),
            ("cursor-plus", b"+1"),
            ("cursor-zeros", b"000"),
        ],
    )
}

fn bodies(root: &Path) -> std::io::Result<()> {
    let long = format!(r#"{{"email":"alice@example.com","password":"{}"}}"#, "p".repeat(1025));
    texts(
        root,
        "bodies",
        &[
            ("register", br#"{"email":"alice@example.com","password":"correct horse battery"}"#),
            (
                "register-nfd",
                "{\"email\":\"Jose\u{301}@exa\u{301}mple.com\",\"password\":\"correct horse\"}"
                    .as_bytes(),
            ),
            ("register-short-password", br#"{"email":"a@b.co","password":"short"}"#),
            ("register-long-password", long.as_bytes()),
            ("register-bad-email", br#"{"email":"not an email","password":"correct horse"}"#),
            ("login", br#"{"username":"alice@example.com","password":"correct horse battery"}"#),
            ("login-escapes", br#"{"username":"al\u0000ice\ud83d\ude00","password":"\"\\\/"}"#),
            ("patch", br#"{"roles":["user","auditor"],"disabled":false}"#),
            ("patch-null", br#"{"roles":null,"disabled":null}"#),
            ("patch-unknown", br#"{"roles":["user"],"admin":true}"#),
            ("patch-bad-role", br#"{"roles":["two words",""]}"#),
            ("array", br#"["alice@example.com","correct horse"]"#),
            ("trailing", br#"{"username":"a","password":"b"} x"#),
            ("duplicate", br#"{"username":"a","username":"b","password":"c"}"#),
            ("wrong-type", br#"{"username":7,"password":true}"#),
            ("empty", b""),
            ("deep", &[b'['; 200]),
        ],
    )
}

fn forms(root: &Path) -> std::io::Result<()> {
    texts(
        root,
        "forms",
        &[
            (
                "password",
                b"grant_type=password&username=alice%40example.com&password=correct+horse+battery",
            ),
            ("refresh", b"grant_type=refresh_token&refresh_token=eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
            ("client-credentials", b"grant_type=client_credentials"),
            ("duplicate", b"grant_type=password&grant_type=refresh_token"),
            ("empty-value", b"grant_type=&username"),
            ("bad-percent", b"username=%ZZ%&password=%FF"),
            ("token", b"token=abc.def.ghi&token_type_hint=refresh_token"),
            ("page", b"limit=20&offset=40"),
            ("page-bad", b"limit=-1&offset=18446744073709551616"),
            ("cookie", b"cookie=true"),
            ("cookie-one", b"cookie=1"),
            ("after", b"after=42"),
            ("after-bad", b"after=%2B1"),
        ],
    )
}

fn headers(root: &Path) -> std::io::Result<()> {
    let basic =
        |id: &str, secret: &str| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let refresh = fixture::service(Algorithm::HS256)
        .issue_refresh(&alice().id, "s-1", None)
        .expect("signs")
        .token
        .into_string();
    let cookie = |body: &str| format!("refresh_token={refresh}\0{body}");
    let client = basic("3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c", "jas_secret");
    let encoded = basic("a%3Ab+c", "p%25ss%2Bword");
    let long = basic(&"i".repeat(257), "s");
    let seeds: Vec<(&str, String)> = vec![
        ("basic", client),
        ("basic-encoded", encoded),
        ("basic-lower", basic("id", "secret").replacen("Basic", "basic", 1)),
        ("basic-long-id", long),
        ("basic-no-colon", format!("Basic {}", STANDARD.encode("id"))),
        ("basic-bad-base64", "Basic !!!".into()),
        ("bearer", "Bearer abc".into()),
        ("cookie-only", cookie("")),
        ("cookie-json-body", cookie(r#"{"refresh_token":"from-body"}"#)),
        ("cookie-null-body", cookie(r#"{"refresh_token":null}"#)),
        ("cookie-empty-object", cookie("{}")),
        ("cookie-bad-body", cookie("refresh_token=x")),
        ("cookies", format!("theme=dark; refresh_token={refresh}; other=%41\0")),
        ("cookie-encoded", "refresh_token=a%3Bb%20c; refresh_token=second\0".into()),
        ("no-cookie-body", "theme=dark\0{\"refresh_token\":\"t\"}".into()),
    ];
    let seeds: Vec<(&str, &[u8])> = seeds.iter().map(|(n, s)| (*n, s.as_bytes())).collect();
    texts(root, "headers", &seeds)
}

fn main() -> std::io::Result<()> {
    let Some(root) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: seeds <corpus dir>");
        std::process::exit(2);
    };
    // The seeds' tokens must verify under the targets' key set.
    let check = fixture::service(Algorithm::EdDSA);
    let issued = check.issue_access(&alice(), "s-1", None).expect("signs");
    check.verify_access_ignoring_revocations(issued.token.expose()).expect("the fixture verifies its own tokens");

    tokens(&root)?;
    token_claims(&root)?;
    jwk(&root)?;
    dpop_proof(&root)?;
    key_pem_der(&root)?;
    feed(&root)?;
    settings(&root)?;
    bodies(&root)?;
    forms(&root)?;
    headers(&root)
}
