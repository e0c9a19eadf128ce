//! Redirect URIs of the clients that sign users in with the authorization code grant, as
//! registered and as an authorization request presents them (HTTP contract v3, "Sign-in for
//! apps"; RFC 9700 §4.1, RFC 8252 §7).
//!
//! - A registered URI is an `https` URI, a loopback `http` URI on an IP literal
//!   (`http://127.0.0.1/...`, `http://[::1]/...`; not `localhost`, RFC 8252 §8.3), or a
//!   private-use scheme named by a reverse domain (`com.example.app:/callback`). It has no
//!   fragment, no wildcard and no user information, and it is written in the canonical form
//!   a URL parser gives it, so that comparing bytes compares URIs.
//! - A presented URI matches a registered one byte for byte, except that for a loopback URI
//!   any port matches (a native app listens on whichever port it gets).

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::error::ServiceError;

/// The longest redirect URI taken, registered or presented.
pub const MAX_REDIRECT_URI_BYTES: usize = 2_000;

/// A redirect URI as registered for a client.
///
/// ```
/// use jwt_auth_service::redirect::RedirectUri;
///
/// let web = RedirectUri::parse("https://app.example.com/callback").unwrap();
/// assert!(web.matches("https://app.example.com/callback"));
/// assert!(!web.matches("https://app.example.com/callback/"), "byte for byte");
///
/// let native = RedirectUri::parse("http://127.0.0.1/callback").unwrap();
/// assert!(native.matches("http://127.0.0.1:51234/callback"), "any port on loopback");
/// assert!(!native.matches("http://127.0.0.1:51234/callback?x=1"));
///
/// for refused in ["http://app.example.com/cb", "https://app.example.com/cb#x",
///                 "https://*.example.com/cb", "http://localhost/cb", "myapp:/cb"] {
///     assert!(RedirectUri::parse(refused).is_err(), "{refused}");
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `https`: exact match.
    Https,
    /// `http` on a loopback IP literal: exact match but for the port.
    Loopback,
    /// A private-use scheme (RFC 8252 §7.1): exact match.
    PrivateUse,
}

impl RedirectUri {
    /// Checks a URI to register; [`ServiceError::InvalidField`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        let refuse =
            |why: &str| ServiceError::InvalidField(format!("redirect URI `{text}`: {why}"));
        if text.len() > MAX_REDIRECT_URI_BYTES {
            return Err(ServiceError::InvalidField(format!(
                "a redirect URI is at most {MAX_REDIRECT_URI_BYTES} bytes"
            )));
        }
        if text.contains('#') {
            return Err(refuse("a redirect URI has no fragment (RFC 6749 §3.1.2)"));
        }
        if text.contains('*') {
            return Err(refuse("a redirect URI is matched exactly: no wildcard"));
        }
        let url = Url::parse(text).map_err(|e| refuse(&format!("not an absolute URI ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("a redirect URI has no user information"));
        }
        if url.as_str() != text {
            return Err(refuse(&format!("write it in its canonical form, `{}`", url.as_str())));
        }
        let kind = match url.scheme() {
            "https" if url.host().is_some() => Kind::Https,
            "http" => match url.host() {
                Some(Host::Ipv4(ip)) if IpAddr::V4(ip).is_loopback() => Kind::Loopback,
                Some(Host::Ipv6(ip)) if IpAddr::V6(ip).is_loopback() => Kind::Loopback,
                _ => {
                    return Err(refuse(
                        "`http` only on a loopback address, written as an IP (127.0.0.1 or [::1])",
                    ));
                }
            },
            scheme if is_private_use(scheme) && url.host().is_none() => Kind::PrivateUse,
            _ => {
                return Err(refuse(
                    "an `https` URI, a loopback `http` URI, or a private-use scheme named by a \
                     reverse domain (`com.example.app:/callback`)",
                ));
            }
        };
        if kind == Kind::Loopback && url.port().is_some() {
            return Err(refuse("register a loopback URI without its port: any port matches"));
        }
        Ok(Self { text: text.to_owned(), kind })
    }

    /// Whether an authorization request's `redirect_uri` is this one.
    pub fn matches(&self, presented: &str) -> bool {
        match self.kind {
            Kind::Https | Kind::PrivateUse => presented == self.text,
            Kind::Loopback => without_port(presented).is_some_and(|rest| rest == self.text),
        }
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A private-use scheme named by a reverse domain: at least two labels, lowercase letters,
/// digits and hyphens, and not a scheme with a meaning of its own.
fn is_private_use(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// A loopback `http` URI with its port taken out (`http://127.0.0.1:8080/cb` gives
/// `http://127.0.0.1/cb`); `None` if it has an unusual port (empty, zero, a leading zero, past
/// 65535) or is not a loopback `http` URI at all.
fn without_port(presented: &str) -> Option<String> {
    let rest = presented.strip_prefix("http://")?;
    let host_end =
        if rest.starts_with('[') { rest.find(']')? + 1 } else { rest.find([':', '/', '?'])? };
    let (host, after) = rest.split_at(host_end);
    let after = match after.strip_prefix(':') {
        Some(port_and_path) => {
            let digits =
                port_and_path.find(|c: char| !c.is_ascii_digit()).unwrap_or(port_and_path.len());
            let port = &port_and_path[..digits];
            let valid = !port.is_empty() && !port.starts_with('0') && port.parse::<u16>().is_ok();
            if !valid {
                return None;
            }
            &port_and_path[digits..]
        }
        None => after,
    };
    Some(format!("http://{host}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> RedirectUri {
        RedirectUri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn what_registers() {
        for good in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?tenant=a",
            "http://127.0.0.1/callback",
            "http://[::1]/callback",
            "com.example.app:/callback",
            "com.example.app:/oauth2redirect/example-provider",
        ] {
            assert_eq!(uri(good).as_str(), good);
        }
    }

    #[test]
    fn what_does_not_register_and_why() {
        for (bad, why) in [
            ("https://app.example.com/cb#frag", "fragment"),
            ("https://app.example.com/cb#", "fragment"),
            ("https://*.example.com/cb", "wildcard"),
            ("https://app.example.com/*", "wildcard"),
            ("https://good@evil.example/cb", "user information"),
            ("https://user:pw@app.example.com/cb", "user information"),
            ("https://APP.example.com/cb", "canonical"),
            ("https://app.example.com", "canonical"),
            ("https://app.example.com/a/../cb", "canonical"),
            ("http://app.example.com/cb", "loopback"),
            ("http://localhost/cb", "loopback"),
            ("http://127.0.0.1:8080/cb", "without its port"),
            ("myapp:/cb", "private-use"),
            ("javascript:alert(1)", "private-use"),
            ("data:text/html,x", "private-use"),
            ("file:///etc/passwd", "private-use"),
            ("/relative/cb", "absolute"),
            ("", "absolute"),
        ] {
            let err = RedirectUri::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_REDIRECT_URI_BYTES));
        assert!(RedirectUri::parse(&long).is_err());
    }

    #[test]
    fn an_https_uri_matches_itself_alone() {
        let registered = uri("https://app.example.com/callback");
        assert!(registered.matches("https://app.example.com/callback"), "the positive control");
        for attack in [
            "https://app.example.com:444/callback",
            "https://app.example.com/callback/extra",
            "https://app.example.com/callbackx",
            "https://APP.example.com/callback",
            "https://app.example.com/Callback",
            "https://app.example.com/callback?x=1",
            "https://app.example.com/callback#x",
            "https://app.example.com@evil.example/callback",
            "https://evil.example/https://app.example.com/callback",
            "https://app.example.com/%63allback",
            "https://app.example.com/callback%2F..",
            "http://app.example.com/callback",
            " https://app.example.com/callback",
        ] {
            assert!(!registered.matches(attack), "{attack}");
        }
    }

    #[test]
    fn a_loopback_uri_matches_on_any_port_and_nothing_else() {
        let registered = uri("http://127.0.0.1/callback");
        for good in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:1/callback",
            "http://127.0.0.1:51234/callback",
            "http://127.0.0.1:65535/callback",
        ] {
            assert!(registered.matches(good), "{good}");
        }
        for attack in [
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:065/callback",
            "http://127.0.0.1:65536/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:80x/callback",
            "http://127.0.0.1:8080/callback/x",
            "http://127.0.0.1:8080/callback?x",
            "http://127.0.0.2:8080/callback",
            "http://localhost:8080/callback",
            "http://[::1]:8080/callback",
            "https://127.0.0.1:8080/callback",
            "http://127.0.0.1@evil.example/callback",
            "http://127.0.0.1:8080@evil.example/callback",
        ] {
            assert!(!registered.matches(attack), "{attack}");
        }
        let six = uri("http://[::1]/cb");
        assert!(six.matches("http://[::1]:9000/cb"));
        assert!(!six.matches("http://127.0.0.1:9000/cb"));
    }

    #[test]
    fn a_private_use_uri_matches_itself_alone() {
        let registered = uri("com.example.app:/callback");
        assert!(registered.matches("com.example.app:/callback"));
        for attack in [
            "com.example.app:/callback2",
            "com.example.apps:/callback",
            "com.example.app://callback",
        ] {
            assert!(!registered.matches(attack), "{attack}");
        }
    }
}
