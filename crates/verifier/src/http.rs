//! The HTTP plumbing shared by key fetching and the feed: the client, bounded bodies,
//! `Cache-Control: max-age`, the server's error bodies, and retry backoff.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, HeaderMap};

use crate::config::Timing;
use crate::error::ConfigError;

/// The largest metadata, JWK set or feed page body read (bigger is refused, not truncated).
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A client for the issuer: rustls on aws-lc-rs with Mozilla's roots (feature `rustls`), no
/// redirects (a key source is where it is said to be), a connect timeout.
pub(crate) fn build_client(timing: &Timing) -> Result<reqwest::Client, ConfigError> {
    let builder = reqwest::Client::builder()
        .connect_timeout(timing.request_timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jwt-auth-verifier/", env!("CARGO_PKG_VERSION")));
    #[cfg(feature = "rustls")]
    let builder = {
        use std::sync::Arc;
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        builder.use_preconfigured_tls(tls)
    };
    builder.build().map_err(|e| ConfigError::new(format!("HTTP client: {}", chain(&e))))
}

/// An error with its causes, `a: b: c`.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// Why a request to the issuer failed.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// No answer: connection refused, timeout, broken connection.
    Transport(String),
    /// An answer with an error status, and the `error` code of its JSON body if any.
    Status { status: u16, code: Option<String> },
    /// An answer that is not what it should be.
    Body(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Transport(e) => f.write_str(e),
            FetchError::Status { status, code: Some(code) } => write!(f, "HTTP {status} ({code})"),
            FetchError::Status { status, code: None } => write!(f, "HTTP {status}"),
            FetchError::Body(e) => f.write_str(e),
        }
    }
}

impl From<reqwest::Error> for FetchError {
    fn from(err: reqwest::Error) -> Self {
        FetchError::Transport(chain(&err))
    }
}

/// The body of a successful answer, at most `limit` bytes; an error status becomes
/// [`FetchError::Status`] with the body's `error` code.
pub(crate) async fn read_ok(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::Body(format!("the answer is larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(FetchError::Status { status: status.as_u16(), code: error_code(&body) });
    }
    Ok(body)
}

/// The `error` of a JSON error body (the server's `{"error", "message"}`, or RFC 6749's
/// `{"error", "error_description"}`).
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    serde_json::from_slice::<ErrorBody>(body).ok().map(|b| b.error)
}

/// `Cache-Control: max-age` (`no-cache` and `no-store` count as 0); `None` when absent.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("max-age") {
                if let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok()) {
                    found = Some(found.map_or(secs, |f: u64| f.min(secs)));
                }
            } else if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store")
            {
                found = Some(0);
            }
        }
    }
    found.map(Duration::from_secs)
}

/// Exponential backoff with jitter: each wait is between half and all of a delay that starts
/// at `initial` and doubles up to `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(timing: &Timing) -> Self {
        Self::between(timing.retry_initial, timing.retry_max)
    }

    /// Waits from `initial`, doubling, up to `max`.
    pub(crate) fn between(initial: Duration, max: Duration) -> Self {
        Self { initial, max, next: initial }
    }

    /// The wait before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        // Half fixed, half random: instances restarted together spread out.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let fraction = (random % 1000) as f64 / 1000.0;
        delay / 2 + delay.mul_f64(0.5 * fraction)
    }

    /// After a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(CACHE_CONTROL, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age(&headers(&["public, max-age=60"])), Some(Duration::from_secs(60)));
        assert_eq!(max_age(&headers(&["Max-Age=\"30\", public"])), Some(Duration::from_secs(30)));
        assert_eq!(max_age(&headers(&["no-store"])), Some(Duration::ZERO));
        assert_eq!(max_age(&headers(&["public"])), None);
        assert_eq!(max_age(&headers(&[])), None);
        assert_eq!(max_age(&headers(&["max-age=abc"])), None);
        assert_eq!(max_age(&headers(&["max-age=60", "max-age=10"])), Some(Duration::from_secs(10)));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let timing = Timing {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(8),
            ..Timing::default()
        };
        let mut backoff = Backoff::new(&timing);
        let caps = [1, 2, 4, 8, 8, 8];
        for cap in caps {
            let delay = backoff.next_delay();
            let cap = Duration::from_secs(cap);
            assert!(delay <= cap && delay >= cap / 2, "{delay:?} for {cap:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn error_codes_are_read_from_either_body() {
        assert_eq!(
            error_code(br#"{"error":"cursor_expired","message":"m"}"#).as_deref(),
            Some("cursor_expired")
        );
        assert_eq!(
            error_code(br#"{"error":"invalid_client","error_description":"d"}"#).as_deref(),
            Some("invalid_client")
        );
        assert_eq!(error_code(b"<html>"), None);
    }
}
