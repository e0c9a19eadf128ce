//! What a [`Verifier`](crate::Verifier) is told: where the keys come from, whether and how it
//! follows the revocation feed, and its timings.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use crate::error::ConfigError;
use crate::secret::ClientSecret;

/// Where the verification keys come from.
pub enum KeySource {
    /// RFC 8414 discovery: the metadata at `{issuer}/.well-known/oauth-authorization-server`
    /// names the JWK set (`jwks_uri`) and the token endpoint. The metadata's `issuer` must equal
    /// this one exactly, and tokens must carry it as `iss`. (The metadata is read where the
    /// `jwt-auth` server serves it, after the issuer URL; for an issuer URL with a path,
    /// RFC 8414 §3.1 would put the well-known segment before the path.)
    Discovery {
        /// The issuer URL.
        issuer: String,
    },
    /// A JWK set URL given directly; tokens must carry `issuer` as `iss`.
    Jwks {
        /// The `iss` of the tokens.
        issuer: String,
        /// The JWK set URL.
        jwks_uri: String,
    },
    /// A shared HS256 secret from the verifier's own configuration; no JWK set is fetched.
    ///
    /// **Every holder of an HS256 secret can mint tokens**, not only verify them: a service
    /// given the secret can forge any user's token for every other service that trusts the
    /// same secret, and a leak from any one of them compromises all. Downstream services
    /// should verify with the issuer's public keys (EdDSA, ES256 or RS256), which verify
    /// without the power to sign; use this mode only where the issuer cannot be moved to an
    /// asymmetric algorithm yet.
    Hs256 {
        /// The `iss` of the tokens.
        issuer: String,
        /// The shared secret (at least 32 bytes).
        secret: jwt_core::Secret,
    },
}

impl KeySource {
    /// [`KeySource::Discovery`] from the issuer URL.
    pub fn discover(issuer: impl Into<String>) -> Self {
        KeySource::Discovery { issuer: issuer.into() }
    }

    /// [`KeySource::Jwks`].
    pub fn jwks(issuer: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        KeySource::Jwks { issuer: issuer.into(), jwks_uri: jwks_uri.into() }
    }

    /// [`KeySource::Hs256`] (read its warning).
    pub fn hs256(issuer: impl Into<String>, secret: jwt_core::Secret) -> Self {
        KeySource::Hs256 { issuer: issuer.into(), secret }
    }

    pub(crate) fn issuer(&self) -> &str {
        match self {
            KeySource::Discovery { issuer }
            | KeySource::Jwks { issuer, .. }
            | KeySource::Hs256 { issuer, .. } => issuer,
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Discovery { issuer } => {
                f.debug_struct("Discovery").field("issuer", issuer).finish()
            }
            KeySource::Jwks { issuer, jwks_uri } => {
                f.debug_struct("Jwks").field("issuer", issuer).field("jwks_uri", jwks_uri).finish()
            }
            KeySource::Hs256 { issuer, .. } => {
                f.debug_struct("Hs256").field("issuer", issuer).finish_non_exhaustive()
            }
        }
    }
}

/// How the verifier follows the issuer's revocation feed (`GET /auth/revocations`): the
/// client it authenticates as (client credentials, HTTP Basic) and, unless discovery finds
/// them, where the token endpoint and the feed are.
///
/// ```
/// use jwt_auth_verifier::{ClientSecret, FeedConfig};
/// let feed = FeedConfig::new("orders", ClientSecret::new("s3cret"))
///     .server_url("https://auth.example");
/// assert!(!format!("{feed:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub(crate) client_id: String,
    pub(crate) client_secret: ClientSecret,
    pub(crate) token_endpoint: Option<String>,
    pub(crate) revocations_url: Option<String>,
    pub(crate) streaming: bool,
}

impl FeedConfig {
    /// Follows the feed as client `client_id` with `client_secret`.
    pub fn new(client_id: impl Into<String>, client_secret: ClientSecret) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            token_endpoint: None,
            revocations_url: None,
            streaming: true,
        }
    }

    /// The server's base URL: the token endpoint is `{url}/auth/token`, the feed
    /// `{url}/auth/revocations`. Needed unless the keys come from discovery (which reads the
    /// token endpoint from the metadata and finds the feed beside it).
    pub fn server_url(mut self, url: &str) -> Self {
        let base = url.trim_end_matches('/');
        self.token_endpoint = Some(format!("{base}/auth/token"));
        self.revocations_url = Some(format!("{base}/auth/revocations"));
        self
    }

    /// The token endpoint, overriding discovery and [`FeedConfig::server_url`].
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.token_endpoint = Some(url.into());
        self
    }

    /// The feed's URL, overriding discovery and [`FeedConfig::server_url`].
    pub fn revocations_url(mut self, url: impl Into<String>) -> Self {
        self.revocations_url = Some(url.into());
        self
    }

    /// Whether to stream the feed as Server-Sent Events (default yes). Without, or when
    /// streaming fails, the verifier polls the JSON form every
    /// [`Timing::feed_poll_interval`].
    pub fn streaming(mut self, streaming: bool) -> Self {
        self.streaming = streaming;
        self
    }
}

/// The verifier's timings. The defaults suit production; tests shorten them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Timing {
    /// How long a JWK set stays fresh when the response has no `Cache-Control: max-age`
    /// (default 5 minutes).
    pub jwks_default_max_age: Duration,
    /// The shortest freshness honoured, whatever `max-age` says (default 30 s).
    pub jwks_max_age_floor: Duration,
    /// The longest freshness honoured (default 1 hour): key rotations are seen at least this
    /// often.
    pub jwks_max_age_ceiling: Duration,
    /// A token naming an unknown `kid` triggers a refetch of the JWK set at most once per
    /// this interval (default 10 s), so a flood of made-up key ids cannot hammer the issuer.
    pub unknown_kid_refetch_interval: Duration,
    /// The first wait after a failed fetch of the keys; it doubles with each failure in a
    /// row (default 1 s). Also the first wait before streaming the feed is tried again.
    pub retry_initial: Duration,
    /// The longest wait between attempts to fetch the keys (default 30 s), and between
    /// attempts to reach the feed when the issuer refuses the verifier's credentials (a
    /// configuration to fix, not an outage to ride out).
    pub retry_max: Duration,
    /// How often the JSON form of the feed is polled while it is not streamed, and the longest
    /// wait before the next attempt after the issuer could not be reached (default 500 ms):
    /// while the stream is down, a revocation is still applied within this interval of the
    /// issuer answering again.
    pub feed_poll_interval: Duration,
    /// A stream that sends nothing, not even its keep-alive comment (sent at least every 15 s),
    /// for this long is considered dead and reopened (default 45 s).
    pub feed_idle_timeout: Duration,
    /// No longer used: the verifier polls from the first failed attempt to open the stream,
    /// and tries the stream again with the backoff of
    /// [`Timing::polling_before_stream_retry`].
    #[deprecated(note = "the feed is polled from the first failed attempt to stream")]
    pub stream_failures_before_polling: u32,
    /// The longest wait between attempts to open the stream while the feed is polled instead
    /// (default 5 s): the waits start at [`Timing::retry_initial`] and double up to this. A
    /// poll that succeeds after the issuer could not be reached tries the stream at once.
    pub polling_before_stream_retry: Duration,
    /// How often revocations whose tokens have all expired are forgotten (default 60 s).
    pub prune_interval: Duration,
    /// Timeout of each request other than the stream (default 10 s).
    pub request_timeout: Duration,
}

#[allow(deprecated)] // `stream_failures_before_polling` is still set, for whoever reads it.
impl Default for Timing {
    fn default() -> Self {
        Self {
            jwks_default_max_age: Duration::from_secs(300),
            jwks_max_age_floor: Duration::from_secs(30),
            jwks_max_age_ceiling: Duration::from_secs(3600),
            unknown_kid_refetch_interval: Duration::from_secs(10),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            feed_poll_interval: Duration::from_millis(500),
            feed_idle_timeout: Duration::from_secs(45),
            stream_failures_before_polling: 3,
            polling_before_stream_retry: Duration::from_secs(5),
            prune_interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl Timing {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("jwks_max_age_floor", self.jwks_max_age_floor),
            ("unknown_kid_refetch_interval", self.unknown_kid_refetch_interval),
            ("retry_initial", self.retry_initial),
            ("feed_poll_interval", self.feed_poll_interval),
            ("feed_idle_timeout", self.feed_idle_timeout),
            ("polling_before_stream_retry", self.polling_before_stream_retry),
            ("prune_interval", self.prune_interval),
            ("request_timeout", self.request_timeout),
        ];
        for (name, value) in positive {
            if value.is_zero() {
                return Err(ConfigError::new(format!("{name} must be positive")));
            }
        }
        if self.jwks_max_age_floor > self.jwks_max_age_ceiling {
            return Err(ConfigError::new("jwks_max_age_floor must not exceed the ceiling"));
        }
        if self.retry_initial > self.retry_max {
            return Err(ConfigError::new("retry_initial must not exceed retry_max"));
        }
        Ok(())
    }

    /// The freshness of a JWK set whose response said `max_age` (or nothing).
    pub(crate) fn jwks_freshness(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.jwks_default_max_age)
            .clamp(self.jwks_max_age_floor, self.jwks_max_age_ceiling)
    }
}

/// Which URLs the verifier fetches from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UrlPolicy {
    /// Plain http to hosts other than loopback.
    pub(crate) allow_plain_http: bool,
    /// Whether the HTTP client speaks TLS (feature `rustls`, or the application's own client).
    pub(crate) tls: bool,
}

/// Checks that `url` is an absolute http(s) URL, and plain http only to a loopback host
/// unless allowed: keys fetched over plain http across a network could be swapped by anyone
/// on the path.
pub(crate) fn check_url(what: &str, url: &str, policy: UrlPolicy) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url)
        .map_err(|e| ConfigError::new(format!("{what} `{url}` is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {
            if !policy.tls {
                return Err(ConfigError::new(format!(
                    "{what} `{url}` is https, but the `rustls` feature is off; enable it or \
                     give the builder an HTTP client with TLS"
                )));
            }
        }
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback && !policy.allow_plain_http {
                return Err(ConfigError::new(format!(
                    "{what} `{url}` is plain http to a host that is not loopback; use https \
                     (or allow plain http explicitly)"
                )));
            }
        }
        other => return Err(ConfigError::new(format!("{what} has unsupported scheme `{other}`"))),
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_is_clamped() {
        let timing = Timing::default();
        assert_eq!(timing.jwks_freshness(None), Duration::from_secs(300));
        assert_eq!(timing.jwks_freshness(Some(Duration::from_secs(60))), Duration::from_secs(60));
        assert_eq!(timing.jwks_freshness(Some(Duration::ZERO)), Duration::from_secs(30));
        assert_eq!(
            timing.jwks_freshness(Some(Duration::from_secs(86_400 * 365))),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let strict = UrlPolicy { allow_plain_http: false, tls: true };
        let lax = UrlPolicy { allow_plain_http: true, tls: true };
        assert!(check_url("issuer", "http://127.0.0.1:8080", strict).is_ok());
        assert!(check_url("issuer", "http://[::1]:8080", strict).is_ok());
        assert!(check_url("issuer", "http://localhost:8080", strict).is_ok());
        assert!(check_url("issuer", "http://auth.example", strict).is_err());
        assert!(check_url("issuer", "http://auth.example", lax).is_ok());
        assert!(check_url("issuer", "ftp://auth.example", lax).is_err());
        assert!(check_url("issuer", "not a url", lax).is_err());
        assert!(check_url("issuer", "https://auth.example", strict).is_ok());
        let no_tls = UrlPolicy { allow_plain_http: false, tls: false };
        assert!(check_url("issuer", "https://auth.example", no_tls).is_err());
    }
}
