//! The [`Verifier`]: verification in memory on the request path, and the background tasks
//! that keep its keys and revocations current.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jwt_core::{
    AccessClaims, DpopPolicy, DpopRequest, DpopVerifier, JwkSet, KeySet, NoExtra, RevocationSet,
    SigningKey, TokenPolicy, TokenService,
};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;

use crate::config::{FeedConfig, KeySource, Timing, UrlPolicy, check_url};
use crate::error::{ConfigError, VerifyError};
use crate::shared::{FeedEndpoints, Shared, State};
use crate::status::{FeedState, FeedStatus, KeysStatus, Status};

/// Verifies `jwt-auth` access tokens in another service, without a request to the issuer per
/// token.
///
/// [`Verifier::verify`] runs in memory: signature (with the key the token's `kid` selects,
/// whose algorithm is the only one accepted), `typ`, `iss`, `aud`, times, and the revocation
/// set (revoked sessions, per-user and global cut-offs, revoked keys). Background tasks on the
/// Tokio runtime the verifier was started on keep the JWK set and the revocation set current;
/// they stop when the last clone of the verifier is dropped.
///
/// Cloning is cheap (one `Arc`); share one verifier across the application.
///
/// ```no_run
/// use jwt_auth_verifier::{ClientSecret, FeedConfig, KeySource, Verifier};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let verifier = Verifier::builder(KeySource::discover("https://auth.example"), "orders-api")
///     .feed(FeedConfig::new("orders", ClientSecret::new(std::env::var("FEED_SECRET")?)))
///     .start()?;
/// verifier.wait_ready(std::time::Duration::from_secs(30)).await;
/// # let token = "";
/// let claims = verifier.verify(token)?;
/// println!("request from {}", claims.sub);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("policy", self.inner.shared.tokens.policy())
            .field("ready", &self.inner.shared.is_ready())
            .finish_non_exhaustive()
    }
}

/// Configures and starts a [`Verifier`] ([`Verifier::builder`]).
#[derive(Debug)]
pub struct VerifierBuilder {
    source: KeySource,
    audience: String,
    feed: Option<FeedConfig>,
    #[cfg(feature = "nats")]
    nats_feed: Option<crate::nats::NatsFeedConfig>,
    timing: Timing,
    http: Option<reqwest::Client>,
    allow_plain_http: bool,
    leeway: Duration,
    max_token_bytes: usize,
    clock: Option<Arc<dyn jwt_core::Clock>>,
    public_url: Option<String>,
}

impl VerifierBuilder {
    /// Follows the issuer's revocation feed. Without a feed, a revoked token is accepted until
    /// it expires; the verifier then becomes ready as soon as it has keys.
    pub fn feed(mut self, feed: FeedConfig) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Follows the revocation feed on the change stream of NATS JetStream (feature `nats`),
    /// instead of the issuer's HTTP feed: the service then puts no load on the auth server.
    /// Not with [`feed`](VerifierBuilder::feed) too.
    #[cfg(feature = "nats")]
    pub fn nats_feed(mut self, feed: crate::nats::NatsFeedConfig) -> Self {
        self.nats_feed = Some(feed);
        self
    }

    /// Other timings than [`Timing::default`].
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// An HTTP client of the application's own (proxies, extra root certificates). It should
    /// not follow redirects.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Accepts plain http URLs to hosts other than loopback (default no: keys and
    /// revocations over plain http across a network can be changed by anyone on the path).
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 5 s, at most 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Tokens longer than this are refused before decoding (default 8 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Another clock than the system's, for the tokens' times, the status and forgetting
    /// expired revocations: tests move a [`jwt_core::ManualClock`] instead of waiting.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use jwt_auth_verifier::{KeySource, Verifier};
    /// # async fn run() -> Result<(), jwt_auth_verifier::ConfigError> {
    /// let clock = jwt_core::ManualClock::new(chrono::Utc::now());
    /// let verifier = Verifier::builder(KeySource::discover("https://auth.example.com"), "api")
    ///     .clock(Arc::new(clock.clone()))
    ///     .start()?;
    /// clock.advance(chrono::TimeDelta::hours(1));
    /// # let _ = verifier;
    /// # Ok(()) }
    /// ```
    pub fn clock(mut self, clock: Arc<dyn jwt_core::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The external base URL clients address this service with, such as
    /// `https://api.example.com`: the URL a DPoP proof's `htu` must name (RFC 9449 §4.3) is it
    /// followed by the request's path, with no query. A base with a path of its own, such as
    /// `https://gateway.example/orders`, suits a gateway that strips `/orders` before
    /// forwarding. It concerns only DPoP-bound tokens (those with a `cnf` claim), which the
    /// extractors of `actix` and `axum` accept only with a proof of their key.
    ///
    /// Without it, the URL is `http://`, the request's `Host` header (or, without one, the
    /// authority of its URI, as HTTP/2 sends it) and its path, as the `jwt-auth` server takes
    /// it without `PUBLIC_URL`: right for a service clients reach directly over plain http,
    /// wrong behind a proxy that terminates TLS or forwards to another host, where every
    /// proof would be refused. A request without a host of the plain form `host[:port]` then
    /// has its proof refused ([`AuthError::RequestUrl`](crate::AuthError::RequestUrl)).
    ///
    /// [`start`](VerifierBuilder::start) refuses a URL that is not an absolute http(s) URL,
    /// or that has user information, a query or a fragment; a trailing `/` is dropped.
    ///
    /// ```no_run
    /// # use jwt_auth_verifier::{KeySource, Verifier};
    /// # async fn run() -> Result<(), jwt_auth_verifier::ConfigError> {
    /// let verifier = Verifier::builder(KeySource::discover("https://auth.example.com"), "api")
    ///     .public_url("https://api.example.com")
    ///     .start()?;
    /// # let _ = verifier;
    /// # Ok(()) }
    /// ```
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Checks the configuration and starts the background tasks on the current Tokio
    /// runtime. Returns at once: until the keys (and the feed's first state) are loaded,
    /// [`Verifier::verify`] fails closed with [`VerifyError::NotReady`]; see
    /// [`Verifier::wait_ready`].
    ///
    /// Fails outside a Tokio runtime, and on a configuration that cannot work.
    pub fn start(self) -> Result<Verifier, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ConfigError::new("the verifier must be started inside a Tokio runtime"))?;
        self.timing.validate()?;
        #[cfg(feature = "nats")]
        let nats_feed = match (&self.feed, self.nats_feed) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new("follow the HTTP feed or the NATS stream, not both"));
            }
            (_, nats_feed) => nats_feed,
        };
        #[cfg(not(feature = "nats"))]
        let nats_feed: Option<()> = None;
        let follows_feed = self.feed.is_some() || nats_feed.is_some();

        let urls = UrlPolicy {
            allow_plain_http: self.allow_plain_http,
            tls: cfg!(feature = "rustls") || self.http.is_some(),
        };
        let mut policy = TokenPolicy::new(self.source.issuer(), self.audience.clone());
        policy.leeway = chrono::TimeDelta::from_std(self.leeway)
            .map_err(|_| ConfigError::new("leeway out of range"))?;
        policy.max_token_bytes = self.max_token_bytes;
        let empty = KeySet::from_jwks(&JwkSet { keys: vec![] })
            .map_err(|e| ConfigError::new(e.to_string()))?;
        let (keys, fetch) = match &self.source {
            KeySource::Discovery { issuer } => {
                let url = check_url("issuer", issuer, urls)?;
                (empty, Some(crate::keys::Fetch::Discovery(url)))
            }
            KeySource::Jwks { jwks_uri, .. } => {
                let url = check_url("jwks_uri", jwks_uri, urls)?;
                (empty, Some(crate::keys::Fetch::Jwks(url)))
            }
            KeySource::Hs256 { secret, .. } => {
                // A verify-only set: the signing half is dropped (and wiped) here.
                let key = SigningKey::from_secret(secret.clone())
                    .map_err(|e| ConfigError::new(e.to_string()))?;
                let keys = empty
                    .with_verifying_key(key.verifying_key().clone())
                    .map_err(|e| ConfigError::new(e.to_string()))?;
                (keys, None)
            }
        };
        let mut tokens =
            TokenService::new(policy, keys).map_err(|e| ConfigError::new(e.to_string()))?;
        if let Some(clock) = self.clock.clone() {
            tokens = tokens.with_clock(clock);
        }
        // The server's policy (its algorithms are those every DPoP challenge names), no nonces.
        let dpop = DpopVerifier::new(DpopPolicy::default())
            .map_err(|e| ConfigError::new(e.to_string()))?
            .with_clock(tokens.clock().clone());
        let public_url =
            self.public_url.as_deref().map(|url| public_url(url, &dpop)).transpose()?;

        // The feed's endpoints: given, or (with discovery) found in the metadata later.
        let mut given = None;
        if let Some(feed) = &self.feed {
            if feed.client_id.is_empty() {
                return Err(ConfigError::new("the feed's client_id must not be empty"));
            }
            for url in [&feed.token_endpoint, &feed.revocations_url].into_iter().flatten() {
                check_url("feed URL", url, urls)?;
            }
            match (&feed.token_endpoint, &feed.revocations_url) {
                (Some(token_endpoint), Some(revocations_url)) => {
                    given = Some(FeedEndpoints {
                        token_endpoint: token_endpoint.clone(),
                        revocations_url: revocations_url.clone(),
                    });
                }
                _ if matches!(self.source, KeySource::Discovery { .. }) => {}
                _ => {
                    return Err(ConfigError::new(
                        "without discovery, the feed needs its server_url (or token_endpoint \
                         and revocations_url)",
                    ));
                }
            }
        }

        let http = match self.http {
            Some(client) => client,
            None => crate::http::build_client(&self.timing)?,
        };
        let fetches_keys = fetch.is_some();
        let shared = Arc::new(Shared {
            tokens,
            revocations: Arc::default(),
            dpop,
            public_url,
            timing: self.timing,
            http,
            urls,
            ready: AtomicBool::new(false),
            keys_loaded: AtomicBool::new(!fetches_keys),
            feed_synced: AtomicBool::new(!follows_feed),
            not_ready_logged: AtomicBool::new(false),
            ready_changed: Notify::new(),
            unknown_kid: Notify::new(),
            fetches_keys,
            endpoints: watch::Sender::new(given),
            state: Mutex::new(State {
                feed_state: Some(match follows_feed {
                    true => FeedState::Connecting,
                    false => FeedState::Disabled,
                }),
                ..State::default()
            }),
        });
        shared.update_ready();

        let mut tasks = Vec::new();
        if let Some(fetch) = fetch {
            let feed_overrides =
                self.feed.as_ref().map(|f| (f.token_endpoint.clone(), f.revocations_url.clone()));
            let task = crate::keys::run(shared.clone(), fetch, feed_overrides);
            tasks.push(runtime.spawn(task).abort_handle());
        }
        if let Some(feed) = self.feed {
            tasks.push(runtime.spawn(crate::feed::run(shared.clone(), feed)).abort_handle());
        }
        #[cfg(feature = "nats")]
        if let Some(feed) = nats_feed {
            tasks.push(runtime.spawn(crate::nats::run(shared.clone(), feed)).abort_handle());
        }
        if follows_feed {
            tasks.push(runtime.spawn(prune(shared.clone())).abort_handle());
        }
        Ok(Verifier { inner: Arc::new(Inner { shared, tasks }) })
    }
}

/// The base URL of [`VerifierBuilder::public_url`], checked, without its trailing `/`.
fn public_url(url: &str, dpop: &DpopVerifier) -> Result<String, ConfigError> {
    let refused = |why: &str| ConfigError::new(format!("public_url `{url}` {why}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| refused(&format!("is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
        return Err(refused("is not an absolute http(s) URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused("has user information"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(refused("has a query or a fragment: it is a base URL, the paths follow it"));
    }
    let base = url.trim_end_matches('/').to_owned();
    // Whatever else jwt-core's comparison of `htu` refuses (a `%` that starts no escape, ...):
    // it checks the request's URL before it reads the proof, and answers a URL it cannot
    // compare as a wrong `htu`. The empty proof is refused next (as malformed), and
    // remembered by no one.
    let probe = DpopRequest { method: "GET", url: &format!("{base}/"), access_token: None };
    let wrong_url = jwt_core::DpopRefusal::WrongUrl;
    if matches!(dpop.verify("", &probe), Err(jwt_core::Error::InvalidDpopProof(r)) if r == wrong_url)
    {
        return Err(refused("is no URL a DPoP proof's `htu` can name"));
    }
    Ok(base)
}

/// Forgets revocations whose tokens have all expired.
async fn prune(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.timing.prune_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let pruned = shared.revocations.prune(shared.now());
        if pruned > 0 {
            tracing::debug!(pruned, "forgot expired revocations");
        }
    }
}

impl Verifier {
    /// A builder for tokens of `audience` with keys from `source`.
    pub fn builder(source: KeySource, audience: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            source,
            audience: audience.into(),
            feed: None,
            #[cfg(feature = "nats")]
            nats_feed: None,
            timing: Timing::default(),
            http: None,
            allow_plain_http: false,
            leeway: Duration::from_secs(5),
            max_token_bytes: jwt_core::DEFAULT_MAX_TOKEN_BYTES,
            clock: None,
            public_url: None,
        }
    }

    /// Verifies an access token, in memory: no I/O, no lock held beyond the revocation set's
    /// read lock.
    ///
    /// A token whose `kid` is unknown is refused ([`jwt_core::Error::UnknownKey`]) and asks the
    /// background task to refetch the JWK set (at most once per
    /// [`Timing::unknown_kid_refetch_interval`]), so a key the issuer just rotated in is
    /// accepted on a later request. Before the verifier is ready:
    /// [`VerifyError::NotReady`].
    ///
    /// The token alone: a DPoP-bound token (whose claims have `cnf`) is good only with a proof
    /// of its key for the request it came with (RFC 9449), which this does not see. The
    /// extractors of `actix` and `axum` check it; a caller of `verify` who accepts tokens
    /// with `cnf` must check their proofs itself (see [`jwt_core::DpopVerifier`]).
    pub fn verify(&self, token: &str) -> Result<AccessClaims<NoExtra>, VerifyError> {
        self.verify_with(token)
    }

    /// [`Verifier::verify`] for tokens that carry the issuer's extra claims `X`.
    pub fn verify_with<X: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<AccessClaims<X>, VerifyError> {
        let shared = &self.inner.shared;
        if !shared.is_ready() {
            return Err(VerifyError::NotReady);
        }
        match shared.tokens.verify_access_with(token, &shared.revocations) {
            Ok(claims) => Ok(claims),
            Err(jwt_core::Error::UnknownKey) => {
                shared.on_unknown_key(token);
                Err(VerifyError::Token(jwt_core::Error::UnknownKey))
            }
            Err(e) => Err(VerifyError::Token(e)),
        }
    }

    /// Whether the verifier verifies (see [`Status::ready`]).
    pub fn is_ready(&self) -> bool {
        self.inner.shared.is_ready()
    }

    /// Waits until the verifier is ready, at most `timeout`; if it is not by then, says why
    /// (the last failure: an issuer that does not answer, metadata naming another issuer,
    /// credentials the feed refuses). Call it at start-up, and stop there on an error: a
    /// verifier that is not ready refuses every request.
    ///
    /// ```no_run
    /// # async fn run() {
    /// use std::time::Duration;
    /// use jwt_auth_verifier::{KeySource, Verifier};
    ///
    /// let verifier = Verifier::builder(KeySource::discover("https://auth.example.com"), "api")
    ///     .start()
    ///     .expect("valid settings");
    /// if let Err(not_ready) = verifier.ready(Duration::from_secs(10)).await {
    ///     eprintln!("{not_ready}");
    ///     std::process::exit(1);
    /// }
    /// # }
    /// ```
    pub async fn ready(&self, timeout: Duration) -> Result<(), NotReady> {
        if self.wait_ready(timeout).await {
            return Ok(());
        }
        let reason = self.status().last_error.unwrap_or_else(|| {
            "no answer from the issuer yet (its keys or the revocation feed are still loading)"
                .to_owned()
        });
        Err(NotReady { waited: timeout, reason })
    }

    /// Waits until the verifier is ready, at most `timeout`; returns whether it is. See
    /// [`Verifier::ready`], which also says why not.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let shared = &self.inner.shared;
        let wait = async {
            loop {
                let changed = shared.ready_changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if shared.is_ready() {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// The verifier's state, for a readiness or health endpoint.
    pub fn status(&self) -> Status {
        let shared = &self.inner.shared;
        let now = shared.now();
        let state = shared.state();
        let stale_since = state.keys_fresh_until.filter(|until| *until < now);
        let last_error = match (&state.keys_error, &state.feed_error) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { &a.1 } else { &b.1 }),
            (Some(a), None) | (None, Some(a)) => Some(&a.1),
            (None, None) => None,
        };
        Status {
            ready: shared.is_ready(),
            keys: KeysStatus {
                count: shared.tokens.keys().verifying_keys().len(),
                fetched_at: state.keys_fetched_at,
                stale_since,
            },
            feed: FeedStatus {
                state: state.feed_state.unwrap_or(FeedState::Disabled),
                since: state.feed_since,
                cursor: state.feed_cursor.clone(),
                last_seen: state.feed_last_seen,
            },
            last_error: last_error.cloned(),
        }
    }

    /// The revocation set the feed keeps current (the same type the issuer consults).
    pub fn revocations(&self) -> &RevocationSet {
        &self.inner.shared.revocations
    }

    /// The token policy: expected issuer and audience, leeway, size limit.
    pub fn policy(&self) -> &TokenPolicy {
        self.inner.shared.tokens.policy()
    }

    /// What the request path shares with the background tasks: the extractors check DPoP
    /// proofs with its verifier and public URL.
    #[cfg_attr(not(any(feature = "actix", feature = "axum")), allow(dead_code))]
    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;
    use crate::shared::header_kid;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn the_kid_is_read_from_the_header_only() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"k1"}"#);
        assert_eq!(header_kid(&format!("{header}.x.y")).as_deref(), Some("k1"));
        assert_eq!(header_kid("not base64!.x.y"), None);
        let no_kid = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA"}"#);
        assert_eq!(header_kid(&format!("{no_kid}.x.y")), None);
    }

    /// The issuer's side of the tests: signs with `secret` for `https://auth.example`, `api`.
    fn hs256_signer(secret: &jwt_core::Secret) -> TokenService {
        TokenService::new(
            TokenPolicy::new("https://auth.example", "api"),
            KeySet::new(SigningKey::from_secret(secret.clone()).unwrap()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hs256_without_a_feed_is_ready_at_once_and_never_fetches() {
        let secret = jwt_core::Secret::generate();
        let signer = hs256_signer(&secret);
        let verifier = Verifier::builder(KeySource::hs256("https://auth.example", secret), "api")
            .start()
            .unwrap();
        assert!(verifier.wait_ready(Duration::from_secs(1)).await);
        let alice = jwt_core::Subject { id: "alice".into(), roles: vec![], email: None };
        let token = signer.issue_access(&alice, "s1", None).unwrap();
        assert_eq!(verifier.verify(token.token.expose()).unwrap().sub, "alice");
        let other = TokenService::new(
            TokenPolicy::new("https://auth.example", "api"),
            KeySet::new(SigningKey::generate(jwt_core::Algorithm::HS256).unwrap()),
        )
        .unwrap();
        let forged = other.issue_access(&alice, "s1", None).unwrap();
        assert!(matches!(
            verifier.verify(forged.token.expose()),
            Err(VerifyError::Token(jwt_core::Error::UnknownKey))
        ));
        assert_eq!(verifier.status().feed.state, FeedState::Disabled);
        assert!(verifier.status().is_healthy());
    }

    /// The builder's clock decides: a token the verifier accepts at its time is refused as
    /// expired once that clock moves past its lifetime, with no waiting.
    #[tokio::test]
    async fn the_verifier_keeps_the_time_of_the_clock_it_is_given() {
        let secret = jwt_core::Secret::generate();
        let clock = jwt_core::ManualClock::new(chrono::Utc::now());
        let signer = hs256_signer(&secret).with_clock(Arc::new(clock.clone()));
        let verifier = Verifier::builder(KeySource::hs256("https://auth.example", secret), "api")
            .clock(Arc::new(clock.clone()))
            .start()
            .unwrap();
        assert!(verifier.wait_ready(Duration::from_secs(1)).await);
        let alice = jwt_core::Subject { id: "alice".into(), roles: vec![], email: None };
        let token = signer.issue_access(&alice, "s1", None).unwrap();
        assert_eq!(verifier.verify(token.token.expose()).unwrap().sub, "alice");
        clock.advance(chrono::TimeDelta::hours(2));
        let refused = verifier.verify(token.token.expose()).unwrap_err();
        assert!(matches!(refused, VerifyError::Token(jwt_core::Error::Expired)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_feed_without_endpoints_is_refused_unless_discovered() {
        let feed = FeedConfig::new("svc", crate::ClientSecret::new("s"));
        let source = KeySource::hs256("iss", jwt_core::Secret::generate());
        assert!(Verifier::builder(source, "api").feed(feed).start().is_err());
    }

    /// A public URL is a base for paths: absolute http(s), without user, query or fragment,
    /// nothing a proof's `htu` could not name; its trailing `/` goes.
    #[tokio::test]
    async fn a_public_url_is_an_absolute_base_url() {
        let start = |url: &str| {
            let source = KeySource::hs256("iss", jwt_core::Secret::generate());
            Verifier::builder(source, "api").public_url(url).start()
        };
        for (url, base) in [
            ("https://api.example", "https://api.example"),
            ("https://api.example/", "https://api.example"),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
            ("https://gateway.example/orders/", "https://gateway.example/orders"),
        ] {
            let verifier = start(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(verifier.shared().public_url.as_deref(), Some(base), "{url}");
        }
        for url in [
            "api.example",
            "/orders",
            "ftp://api.example",
            "https://user:pw@api.example",
            "https://api.example/?x=1",
            "https://api.example/#top",
            "https://api.example/100%",
        ] {
            let refused = start(url).unwrap_err().to_string();
            assert!(refused.contains("public_url"), "{url}: {refused}");
        }
    }

    #[test]
    fn starting_outside_a_runtime_is_an_error() {
        let source = KeySource::hs256("iss", jwt_core::Secret::generate());
        assert!(Verifier::builder(source, "api").start().is_err());
    }
}

/// Why a verifier is not ready ([`Verifier::ready`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token verifier is not ready after {waited:?}: {reason}")]
pub struct NotReady {
    /// How long it was waited for.
    pub waited: Duration,
    /// The last failure, or what it still waits for.
    pub reason: String,
}
