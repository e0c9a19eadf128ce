//! Values that must never reach a log line: the feed client's secret and the access token it
//! obtains. `Debug` and `Display` redact them, and their memory is wiped when they are dropped.

use std::fmt;

use zeroize::Zeroizing;

/// The client secret the verifier authenticates to the issuer with (client credentials,
/// RFC 6749 §4.4). `Debug` and `Display` print `[redacted]`; the bytes are zeroed on drop.
///
/// ```
/// use jwt_auth_verifier::ClientSecret;
/// let secret = ClientSecret::new("s3cret");
/// assert_eq!(format!("{secret:?}"), "ClientSecret([redacted])");
/// assert_eq!(secret.to_string(), "[redacted]");
/// assert_eq!(secret.expose(), "s3cret");
/// ```
#[derive(Clone)]
pub struct ClientSecret(Zeroizing<String>);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret itself: call this only where it is sent, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for ClientSecret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

/// The verifier's own access token for the feed. Never shown, wiped on drop.
#[derive(Clone)]
pub(crate) struct ServiceToken(Zeroizing<String>);

impl ServiceToken {
    pub(crate) fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceToken([redacted])")
    }
}
