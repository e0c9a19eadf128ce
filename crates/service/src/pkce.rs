//! Proof Key for Code Exchange (RFC 7636), as OAuth 2.1 and HTTP contract v3 require it: an
//! authorization request sends `code_challenge` with `code_challenge_method=S256` (`plain` is
//! refused, and so is a request without the method), and the code exchange proves it with the
//! `code_verifier` whose SHA-256 the challenge is.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The shortest `code_verifier` (RFC 7636 §4.1).
pub const MIN_VERIFIER_CHARS: usize = 43;
/// The longest `code_verifier` (RFC 7636 §4.1).
pub const MAX_VERIFIER_CHARS: usize = 128;
/// The length of an S256 challenge: 32 bytes in unpadded base64url.
pub const CHALLENGE_CHARS: usize = 43;

/// Why a challenge is refused: the text of an `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// No `code_challenge`.
    #[error("code_challenge is required (PKCE, S256)")]
    MissingChallenge,
    /// No method, or another one than `S256`.
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    /// Not 43 characters of base64url.
    #[error("code_challenge must be the base64url SHA-256 of the verifier: 43 characters")]
    MalformedChallenge,
}

/// An S256 code challenge, checked.
///
/// ```
/// use jwt_auth_service::pkce::CodeChallenge;
///
/// // RFC 7636 Appendix B.
/// let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// let challenge = CodeChallenge::parse(Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), Some("S256")).unwrap();
/// assert!(challenge.verify(verifier));
/// assert!(!challenge.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"));
/// assert!(CodeChallenge::parse(Some(verifier), Some("plain")).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The challenge of an authorization request, from its `code_challenge` and
    /// `code_challenge_method`.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge.ok_or(PkceError::MissingChallenge)?;
        if method != Some("S256") {
            return Err(PkceError::UnsupportedMethod);
        }
        let decodes = URL_SAFE_NO_PAD.decode(challenge).is_ok_and(|bytes| bytes.len() == 32);
        if challenge.len() != CHALLENGE_CHARS || !decodes {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(Self(challenge.to_owned()))
    }

    /// A challenge as stored with its code.
    pub fn from_stored(challenge: String) -> Self {
        Self(challenge)
    }

    /// The challenge, to store with the code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` is a well-formed `code_verifier` (43 to 128 characters of
    /// `[A-Za-z0-9-._~]`) whose SHA-256 is this challenge, compared in constant time.
    pub fn verify(&self, verifier: &str) -> bool {
        let well_formed = (MIN_VERIFIER_CHARS..=MAX_VERIFIER_CHARS).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
        let same: bool = computed.as_bytes().ct_eq(self.0.as_bytes()).into();
        well_formed && same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge_of(verifier: &str) -> CodeChallenge {
        let text = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
        CodeChallenge::parse(Some(&text), Some("S256")).expect("a well-formed challenge")
    }

    #[test]
    fn the_method_must_be_s256_and_the_challenge_well_formed() {
        let good = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(CodeChallenge::parse(Some(good), Some("S256")).is_ok(), "the positive control");
        assert_eq!(CodeChallenge::parse(None, Some("S256")), Err(PkceError::MissingChallenge));
        for method in [None, Some("plain"), Some("s256"), Some("S512"), Some("")] {
            assert_eq!(
                CodeChallenge::parse(Some(good), method),
                Err(PkceError::UnsupportedMethod),
                "{method:?}"
            );
        }
        for bad in ["", "short", &format!("{good}A"), &good.replace('-', "+"), &"=".repeat(43)] {
            assert_eq!(
                CodeChallenge::parse(Some(bad), Some("S256")),
                Err(PkceError::MalformedChallenge),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_the_verifier_of_the_challenge_in_the_lengths_of_the_rfc_verifies() {
        let shortest = "a".repeat(MIN_VERIFIER_CHARS);
        let longest = "b".repeat(MAX_VERIFIER_CHARS);
        assert!(challenge_of(&shortest).verify(&shortest), "43 characters");
        assert!(challenge_of(&longest).verify(&longest), "128 characters");
        let mixed = "AZaz09-._~".repeat(5);
        assert!(challenge_of(&mixed).verify(&mixed), "every allowed character");

        let too_short = "a".repeat(MIN_VERIFIER_CHARS - 1);
        let too_long = "b".repeat(MAX_VERIFIER_CHARS + 1);
        assert!(!challenge_of(&too_short).verify(&too_short), "42 characters");
        assert!(!challenge_of(&too_long).verify(&too_long), "129 characters");
        let odd = format!("{}+/", "c".repeat(MIN_VERIFIER_CHARS));
        assert!(!challenge_of(&odd).verify(&odd), "characters outside the RFC's set");
        assert!(!challenge_of(&shortest).verify(&longest), "another verifier");
        assert!(!challenge_of(&shortest).verify(""), "none");
    }
}
