//! Claims (and headers) behind a valid signature: the input's JSON is signed with the
//! fixture's real key, so the fuzzer reaches claim parsing and validation, which a random
//! token never passes the signature to see.
//!
//! Input: a selector byte, then the header JSON, a NUL, and the claims JSON. Selector bits 0-1
//! pick the algorithm (and so the key that signs), bit 2 a refresh token's `typ` (else an
//! access token's), bit 3 the input's own header; without it the header is the one jwt-core
//! issues (`alg`, `typ`, `kid`) and the input's header part is ignored.
//!
//! Asserted, beside everything `jwt_auth_fuzz::tokens` asserts of an accepted token: with
//! the issued header, a refusal is about the claims (or the size), never the header or the
//! signature; and the token is always refused as the other kind of token.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use jwt_auth_fuzz::{fixture, split_once, tokens};
use jwt_core::{ACCESS_TOKEN_TYPE, Algorithm, Error, REFRESH_TOKEN_TYPE};
use libfuzzer_sys::fuzz_target;

/// jsonwebtoken's signing keys, in `Algorithm::ALL` order: parsing the RSA key per input would
/// cost more than the rest of the run.
fn encoding_key(alg: Algorithm) -> &'static EncodingKey {
    static KEYS: OnceLock<Vec<EncodingKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| Algorithm::ALL.into_iter().map(fixture::encoding_key).collect());
    &keys[Algorithm::ALL.iter().position(|a| *a == alg).expect("every algorithm")]
}

/// What a token with our header and our signature may still be refused for.
fn about_the_claims(error: &Error) -> bool {
    matches!(
        error,
        Error::MissingClaim(_)
            | Error::InvalidClaims
            | Error::InvalidIssuer
            | Error::InvalidAudience
            | Error::Expired
            | Error::NotYetValid
            | Error::TokenTooLarge { .. }
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let alg = fixture::algorithm_of(selector);
    let refresh = selector & 4 != 0;
    let own_header = selector & 8 != 0;
    let (header, claims) = split_once(rest);

    let header = if own_header {
        header.to_vec()
    } else {
        let typ = if refresh { REFRESH_TOKEN_TYPE } else { ACCESS_TOKEN_TYPE };
        let kid = fixture::signing_key(alg).kid();
        serde_json::to_vec(&serde_json::json!({"alg": alg.as_str(), "typ": typ, "kid": kid}))
            .expect("a header of three strings serializes")
    };
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = jsonwebtoken::crypto::sign(
        token.as_bytes(),
        encoding_key(alg),
        fixture::jwt_algorithm(alg),
    )
    .expect("the fixture key signs");
    token.push('.');
    token.push_str(&signature);

    let outcome = tokens::target(alg).check_token(&token);
    if !own_header {
        let (this, other) = if refresh {
            (outcome.refresh.err(), outcome.access.err())
        } else {
            (outcome.access.err(), outcome.refresh.err())
        };
        if let Some(error) = this {
            assert!(about_the_claims(&error), "our header and signature refused: {error:?}");
        }
        assert!(
            matches!(other, Some(Error::WrongTokenType | Error::TokenTooLarge { .. })),
            "the other kind of token: {other:?}"
        );
    }
});
