//! Reading an access token from an `Authorization` header value (RFC 6750 §2.1, RFC 9449
//! §7.1), and writing the challenge of a refusal (RFC 6750 §3, RFC 9449 §7.1), as every
//! service that accepts these tokens must, whatever its web framework.

use crate::error::{Error, Result};
use crate::keys::Algorithm;

/// The scheme an access token is presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScheme {
    /// `Authorization: Bearer` (RFC 6750): a token bound to no key.
    Bearer,
    /// `Authorization: DPoP` (RFC 9449 §7.1): a token bound to a key, with a proof of it.
    Dpop,
}

/// The access token in `authorization` and its scheme: `Ok(None)` when none was presented (no
/// header, or a scheme other than `Bearer` and `DPoP`), an [`Error::Malformed`] when one was
/// but is not a token (empty, not ASCII). Schemes are case-insensitive (RFC 7235 §2.1).
///
/// ```
/// use jwt_core::{TokenScheme, presented_token};
/// assert_eq!(presented_token(Some(b"DPoP abc")).unwrap(), Some((TokenScheme::Dpop, "abc")));
/// assert_eq!(presented_token(Some(b"bearer abc")).unwrap(), Some((TokenScheme::Bearer, "abc")));
/// assert_eq!(presented_token(Some(b"Basic abc")).unwrap(), None);
/// assert!(presented_token(Some(b"dpop ")).is_err());
/// ```
pub fn presented_token(authorization: Option<&[u8]>) -> Result<Option<(TokenScheme, &str)>> {
    let Some(value) = authorization else { return Ok(None) };
    let Some(space) = value.iter().position(|b| *b == b' ') else { return Ok(None) };
    let (scheme, token) = (&value[..space], &value[space + 1..]);
    let scheme = if scheme.eq_ignore_ascii_case(b"bearer") {
        TokenScheme::Bearer
    } else if scheme.eq_ignore_ascii_case(b"dpop") {
        TokenScheme::Dpop
    } else {
        return Ok(None);
    };
    // A token was presented: from here on, what is wrong with it is `invalid_token`.
    let token = std::str::from_utf8(token)
        .ok()
        .filter(|token| token.is_ascii())
        .ok_or(Error::Malformed("the access token is not ASCII"))?
        .trim();
    if token.is_empty() {
        return Err(Error::Malformed("the access token is empty"));
    }
    Ok(Some((scheme, token)))
}

/// The bearer token in `authorization` (the header's value, if the request has one):
/// `Ok(None)` when no bearer token was presented (no header, or another scheme), an
/// [`Error::Malformed`] when one was but is not a token (empty, not ASCII), which RFC 6750 §3
/// answers with `invalid_token`. The scheme is case-insensitive (RFC 7235 §2.1).
///
/// ```
/// use jwt_core::bearer_token;
/// assert_eq!(bearer_token(Some(b"bearer abc")).unwrap(), Some("abc"));
/// assert_eq!(bearer_token(None).unwrap(), None);
/// assert_eq!(bearer_token(Some(b"Basic abc")).unwrap(), None);
/// assert!(bearer_token(Some(b"Bearer  ")).is_err());
/// ```
pub fn bearer_token(authorization: Option<&[u8]>) -> Result<Option<&str>> {
    match presented_token(authorization)? {
        Some((TokenScheme::Bearer, token)) => Ok(Some(token)),
        _ => Ok(None),
    }
}

/// The realm of every challenge the server and its verifiers write.
pub const REALM: &str = "jwt-auth";

/// The value of the `WWW-Authenticate` header of a 401 (RFC 6750 §3): the realm alone when no
/// token was presented (`refused: None`), and `error="invalid_token"` with the reason as its
/// description when one was refused. Auth-params are separated by commas (RFC 7235 §2.1); a
/// quote or a backslash in the reason becomes `'`, so the value is one quoted-string each.
///
/// ```
/// use jwt_core::{Error, bearer_challenge};
/// assert_eq!(bearer_challenge(None), r#"Bearer realm="jwt-auth""#);
/// assert_eq!(
///     bearer_challenge(Some(&Error::Expired.to_string())),
///     r#"Bearer realm="jwt-auth", error="invalid_token", error_description="token has expired""#
/// );
/// assert_eq!(
///     bearer_challenge(Some(r#"a "quoted" \ reason"#)),
///     r#"Bearer realm="jwt-auth", error="invalid_token", error_description="a 'quoted' ' reason""#
/// );
/// ```
pub fn bearer_challenge(refused: Option<&str>) -> String {
    match refused {
        None => format!(r#"Bearer realm="{REALM}""#),
        Some(reason) => format!(
            r#"Bearer realm="{REALM}", error="invalid_token", error_description="{}""#,
            quotable(reason)
        ),
    }
}

/// `text` with the characters a quoted-string cannot hold as they are replaced.
fn quotable(text: &str) -> String {
    text.replace(['"', '\\'], "'")
}

/// The value of the `WWW-Authenticate` header of a 401 refusing a DPoP request (RFC 9449
/// §7.1): the realm, the error `code` (`invalid_dpop_proof`, `use_dpop_nonce` or
/// `invalid_token`) with its description, and the algorithms a proof may be signed with.
///
/// ```
/// use jwt_core::{Algorithm, dpop_challenge};
/// assert_eq!(
///     dpop_challenge("invalid_dpop_proof", "DPoP proof refused: its `jti` was used already",
///         &[Algorithm::ES256, Algorithm::EdDSA]),
///     "DPoP realm=\"jwt-auth\", error=\"invalid_dpop_proof\", \
///      error_description=\"DPoP proof refused: its `jti` was used already\", algs=\"ES256 EdDSA\""
/// );
/// ```
pub fn dpop_challenge(code: &str, description: &str, algorithms: &[Algorithm]) -> String {
    let algs = algorithms.iter().map(|alg| alg.as_str()).collect::<Vec<_>>().join(" ");
    format!(
        r#"DPoP realm="{REALM}", error="{code}", error_description="{}", algs="{algs}""#,
        quotable(description)
    )
}
