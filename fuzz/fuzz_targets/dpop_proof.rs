//! DPoP proofs (RFC 9449) as a server receives them in a `DPoP` header: the input as the proof
//! of a token request (no access token) and of an API request presenting an access token, each
//! to a fresh `DpopVerifier` whose clock stands at the fixture's `NOW`. Its seeds are proofs of
//! the fixture's ES256, EdDSA and RS256 keys.
//!
//! Asserted: every refusal is an `invalid_dpop_proof` (no nonces are required, the replay cache
//! has room); of an accepted proof, with jsonwebtoken alone: the header's `typ` is `dpop+jwt`,
//! its `alg` the one reported and one of ES256, EdDSA and RS256, its `jwk` holds no private
//! member, and the public key made of the `jwk`'s members verifies the signature under that
//! `alg`; the thumbprint is jsonwebtoken's RFC 7638 thumbprint of that key; the claims hold the
//! request's method, a `jti` of at most 256 bytes, an `iat` within 60 s of `NOW`, an `htu`,
//! and for the API request the access token's `ath`; the same proof again is a replay.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jwt_auth_fuzz::dpop::{ACCESS_TOKEN, API_URL, TOKEN_URL, verifier};
use jwt_core::{DpopRefusal, DpopRequest, Error, VerifiedProof, access_token_hash};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn part(b64: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD.decode(b64).expect("an accepted proof is base64url");
    serde_json::from_slice(&bytes).expect("an accepted proof is JSON")
}

fn check_accepted(proof: &str, request: &DpopRequest<'_>, verified: &VerifiedProof) {
    let parts: Vec<&str> = proof.split('.').collect();
    assert_eq!(parts.len(), 3, "an accepted proof is a compact JWS");
    let (header, claims) = (part(parts[0]), part(parts[1]));

    let typ = header["typ"].as_str().expect("a typ").to_ascii_lowercase();
    assert!(typ == "dpop+jwt" || typ == "application/dpop+jwt", "typ {typ}");
    let alg = header["alg"].as_str().expect("an alg");
    assert!(["ES256", "EdDSA", "RS256"].contains(&alg), "alg {alg}");
    assert_eq!(alg, verified.algorithm.as_str());

    let jwk = header["jwk"].as_object().expect("a jwk");
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(!jwk.contains_key(private), "a jwk with `{private}` accepted");
    }
    // The public key alone, as jsonwebtoken reads it.
    let public: Map<String, Value> = ["kty", "crv", "x", "y", "n", "e"]
        .into_iter()
        .filter_map(|name| jwk.get(name).map(|value| (name.to_owned(), value.clone())))
        .collect();
    let public: Jwk = serde_json::from_value(Value::Object(public)).expect("jsonwebtoken reads it");
    let key = DecodingKey::from_jwk(&public).expect("a public key");
    let message = &proof[..parts[0].len() + 1 + parts[1].len()];
    let jwt_alg: jsonwebtoken::Algorithm = alg.parse().expect("a JOSE name");
    let verifies = jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), &key, jwt_alg);
    assert!(matches!(verifies, Ok(true)), "the jwk does not verify the signature: {verifies:?}");
    let thumbprint = public.thumbprint(ThumbprintHash::SHA256).expect("a thumbprint");
    assert_eq!(verified.jkt, thumbprint, "RFC 7638 thumbprint");

    assert_eq!(claims["htm"].as_str(), Some(request.method));
    assert!(claims["htu"].is_string());
    let jti = claims["jti"].as_str().expect("a jti");
    assert!(!jti.is_empty() && jti.len() <= 256 && jti == verified.jti);
    let iat = claims["iat"].as_f64().expect("a numeric iat").floor();
    assert!((iat - jwt_auth_fuzz::fixture::NOW as f64).abs() <= 60.0, "iat {iat}");
    assert_eq!(verified.iat.timestamp() as f64, iat);
    if let Some(token) = request.access_token {
        assert_eq!(claims["ath"].as_str(), Some(access_token_hash(token).as_str()));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = std::str::from_utf8(data) else { return };
    let requests = [
        DpopRequest { method: "POST", url: TOKEN_URL, access_token: None },
        DpopRequest { method: "GET", url: API_URL, access_token: Some(ACCESS_TOKEN) },
    ];
    for request in requests {
        let verifier = verifier();
        match verifier.verify(proof, &request) {
            Ok(verified) => {
                check_accepted(proof, &request, &verified);
                let again = verifier.verify(proof, &request);
                assert!(
                    matches!(again, Err(Error::InvalidDpopProof(DpopRefusal::Replayed))),
                    "a proof accepted twice: {again:?}"
                );
            }
            Err(Error::InvalidDpopProof(_)) => {}
            Err(other) => panic!("a proof refused as no invalid_dpop_proof: {other:?}"),
        }
    }
});
