//! Types for values that must never reach a log line: passwords, refresh tokens, the HS256
//! secret, and database URLs with a password in them. Their `Debug` (and, for
//! [`SecretString`], the absence of `Display`) redacts, so deriving `Debug` on a struct that
//! holds one is safe.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// A secret string (password, token, key material): `Debug` prints `"***"`, there is no
/// `Display`, and the memory is wiped when it is dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Holds `value`, zeroed when dropped.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself: call this only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// The secret as an owned `String`, for APIs that take one (the hashing pool).
    pub fn expose_owned(&self) -> String {
        self.0.as_str().to_owned()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl FromStr for SecretString {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// A database URL: `Debug` and `Display` show it with its password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Holds `url`, which may carry a password.
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::new(url))
    }

    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The URL with the password (if any) replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = self.0.expose();
        let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
        // The authority ends at the first '/', '?' or '#'; its user info at the last '@'.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        match authority.rsplit_once('@') {
            Some((user_info, host)) => {
                let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
                let masked =
                    if user_info.contains(':') { format!("{user}:***") } else { user.into() };
                format!("{scheme}://{masked}@{host}{path}")
            }
            None => url.to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let secret = SecretString::new("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "\"***\"");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Body {
            password: SecretString,
        }
        let body = Body { password: secret.clone() };
        assert!(!format!("{body:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-hunter2", "the value itself is kept");
    }

    #[test]
    fn database_urls_hide_their_password() {
        let show = |url: &str| format!("{:?} {}", DatabaseUrl::new(url), DatabaseUrl::new(url));
        let pg = show("postgres://app:s3cr%40t@db.internal:5432/auth?sslmode=require");
        assert!(!pg.contains("s3cr"), "{pg}");
        assert!(pg.contains("postgres://app:***@db.internal:5432/auth?sslmode=require"), "{pg}");
        assert_eq!(DatabaseUrl::new("postgres://a:b:c@h/d").redacted(), "postgres://a:***@h/d");
        assert_eq!(DatabaseUrl::new("postgres://app@h/d").redacted(), "postgres://app@h/d");
        assert_eq!(DatabaseUrl::new("sqlite://jwt-auth.db").redacted(), "sqlite://jwt-auth.db");
        let url = DatabaseUrl::new("postgres://app:pw@h/d");
        assert_eq!(url.expose(), "postgres://app:pw@h/d", "the URL itself is kept");
    }
}
