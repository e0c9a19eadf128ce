//! Escape hatches for debugging. Nothing here verifies anything: never use it to decide
//! whether to trust a token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

/// The header and claims of a compact JWS, decoded as JSON **without verifying** the
/// signature, the algorithm, the key or any claim. For looking at a token while debugging.
///
/// ```
/// let (header, claims) = jwt_core::dangerous::decode_unverified(
///     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
/// )?;
/// assert_eq!(header["alg"], "HS256");
/// assert_eq!(claims["sub"], "x");
/// # Ok::<(), jwt_core::Error>(())
/// ```
pub fn decode_unverified(token: &str) -> Result<(serde_json::Value, serde_json::Value)> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed("expected three dot-separated parts"));
    };
    let json = |part: &str| -> Result<serde_json::Value> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| Error::Malformed("a part is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| Error::Malformed("a part is not JSON"))
    };
    Ok((json(header)?, json(claims)?))
}

/// The header of a compact JWS, decoded as JSON **without verifying** anything, nor even
/// decoding the rest: for a decision that trusts nothing in it, such as whether a token's
/// `kid` is worth fetching the key set again for.
///
/// ```
/// let header = jwt_core::dangerous::decode_header_unverified("eyJraWQiOiJrMSJ9.x.y")?;
/// assert_eq!(header["kid"], "k1");
/// assert!(jwt_core::dangerous::decode_header_unverified("not base64!.x.y").is_err());
/// # Ok::<(), jwt_core::Error>(())
/// ```
pub fn decode_header_unverified(token: &str) -> Result<serde_json::Value> {
    let header = token.split('.').next().unwrap_or_default();
    let bytes =
        URL_SAFE_NO_PAD.decode(header).map_err(|_| Error::Malformed("a part is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| Error::Malformed("a part is not JSON"))
}
