//! Reading a bearer token from an `Authorization` header value (RFC 6750 §2.1), and writing
//! the challenge of a refusal (RFC 6750 §3), as every service that accepts these tokens must,
//! whatever its web framework.

use crate::error::{Error, Result};

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
    let Some(value) = authorization else { return Ok(None) };
    let Some(space) = value.iter().position(|b| *b == b' ') else { return Ok(None) };
    let (scheme, token) = (&value[..space], &value[space + 1..]);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    // A bearer token was presented: from here on, what is wrong with it is `invalid_token`.
    let token = std::str::from_utf8(token)
        .ok()
        .filter(|token| token.is_ascii())
        .ok_or(Error::Malformed("the bearer token is not ASCII"))?
        .trim();
    if token.is_empty() {
        return Err(Error::Malformed("the bearer token is empty"));
    }
    Ok(Some(token))
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
            reason.replace(['"', '\\'], "'")
        ),
    }
}
