//! The feed task: a token by client credentials, renewed before it expires; the feed's state
//! in JSON first, then its changes streamed as Server-Sent Events (resumed with
//! `Last-Event-ID`), or polled when streaming fails; a cursor the server no longer knows
//! (410) starts over from the full state. The cursor and what is applied are
//! [`jwt_core::FeedFollower`]'s, as on the server; this is the HTTP around it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use jwt_core::{FeedEvent, FeedFollower, FeedPage, FeedReadError, FeedSource};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use tokio::time::{Instant, sleep};
use zeroize::Zeroizing;

use crate::config::FeedConfig;
use crate::http::{Backoff, FetchError, MAX_BODY_BYTES, chain, read_ok};
use crate::secret::ServiceToken;
use crate::shared::{FeedEndpoints, Shared};
use crate::status::FeedState;

/// A stream open this long counts as working even if no event came.
const STREAM_PROVEN_AFTER: Duration = Duration::from_secs(10);

/// The token and when to renew it.
struct Held {
    token: ServiceToken,
    renew_at: Instant,
}

/// How a stream ended.
enum StreamEnd {
    /// 410 (or, from a server before contract v3, 400): the cursor is not known.
    CursorExpired,
    /// 401: the token is no longer accepted.
    Unauthorized,
    /// The server does not stream (another content type, 404, 405, 406, 501).
    NotSupported(String),
    /// It broke, or could not be opened; `opened` says whether it had been.
    Failed { error: String, opened: bool },
}

/// What a poll met, besides a cursor the server does not know (which the follower handles).
enum PollError {
    Unauthorized,
    Other(String),
}

impl From<FetchError> for FeedReadError<PollError> {
    fn from(err: FetchError) -> Self {
        match err {
            FetchError::Status { status: 410, .. } => FeedReadError::CursorExpired,
            FetchError::Status { status: 401, .. } => {
                FeedReadError::Failed(PollError::Unauthorized)
            }
            other => FeedReadError::Failed(PollError::Other(other.to_string())),
        }
    }
}

/// Whether a failed token request means the issuer could not be reached (an outage to ride
/// out at the polling pace), rather than a refusal to fix (spaced by the long backoff).
fn unreachable(err: &FetchError) -> bool {
    match err {
        FetchError::Transport(_) | FetchError::Body(_) => true,
        FetchError::Status { status, .. } => *status >= 500 || *status == 429,
    }
}

struct Follower {
    shared: Arc<Shared>,
    config: FeedConfig,
    endpoints: FeedEndpoints,
    held: Option<Held>,
    /// The cursor (`None` before the first state is loaded, or after a 410), and the
    /// revocation set it applies the feed to.
    feed: FeedFollower,
    /// Spaces the attempts after a refusal (credentials the issuer does not take).
    backoff: Backoff,
    /// Spaces the attempts to open the stream again while the feed is polled: from
    /// `retry_initial`, doubling, up to `polling_before_stream_retry`.
    stream_backoff: Backoff,
    /// Polling instead of streaming until then.
    poll_until: Option<Instant>,
    /// The last attempt could not reach the issuer: the next success streams again at once.
    was_unreachable: bool,
}

pub(crate) async fn run(shared: Arc<Shared>, config: FeedConfig) {
    let mut endpoints = shared.endpoints.subscribe();
    let endpoints = match endpoints.wait_for(Option::is_some).await {
        Ok(found) => found.clone().expect("waited for Some"),
        Err(_) => return,
    };
    let backoff = Backoff::new(&shared.timing);
    let stream_backoff =
        Backoff::between(shared.timing.retry_initial, shared.timing.polling_before_stream_retry);
    let feed = FeedFollower::new(shared.revocations.clone(), shared.tokens.clock().clone());
    let mut follower = Follower {
        shared,
        config,
        endpoints,
        held: None,
        feed,
        backoff,
        stream_backoff,
        poll_until: None,
        was_unreachable: false,
    };
    follower.follow().await;
}

impl Follower {
    async fn follow(&mut self) {
        loop {
            let token = match self.token().await {
                Ok(token) => token,
                Err(e) if unreachable(&e) => {
                    self.outage(format!("client credentials: {e}")).await;
                    continue;
                }
                Err(e) => {
                    self.failed(format!("client credentials: {e}")).await;
                    continue;
                }
            };
            if self.feed.cursor().is_none() {
                match self.catch_up(&token).await {
                    Ok(()) => {
                        self.shared.feed_synced();
                        self.reached();
                    }
                    Err(e) => self.poll_failed(e).await,
                }
                continue;
            }
            let stream = self.config.streaming
                && self.poll_until.is_none_or(|until| Instant::now() >= until);
            if stream {
                self.poll_until = None;
                match self.stream(&token).await {
                    StreamEnd::CursorExpired => self.cursor_expired(),
                    StreamEnd::Unauthorized => self.unauthorized().await,
                    StreamEnd::NotSupported(why) => {
                        tracing::info!(%why, "the revocation feed does not stream here; polling");
                        self.poll_until =
                            Some(Instant::now() + self.shared.timing.polling_before_stream_retry);
                    }
                    StreamEnd::Failed { error, opened } => {
                        // Polled from the first failure, at the polling pace; the stream is
                        // tried again with a backoff capped at a few seconds. A stream that
                        // had opened is tried again at once.
                        if opened {
                            self.stream_backoff.reset();
                        } else {
                            self.poll_until =
                                Some(Instant::now() + self.stream_backoff.next_delay());
                        }
                        self.outage(format!("revocation stream: {error}")).await;
                    }
                }
            } else {
                match self.catch_up(&token).await {
                    Ok(()) => {
                        self.reached();
                        self.shared.feed_state(FeedState::Polling);
                        sleep(self.shared.timing.feed_poll_interval).await;
                    }
                    Err(e) => self.poll_failed(e).await,
                }
            }
        }
    }

    /// The issuer answered: the refusal backoff starts over, and after an outage the stream
    /// is tried again at once.
    fn reached(&mut self) {
        self.backoff.reset();
        if std::mem::take(&mut self.was_unreachable) {
            self.poll_until = None;
            self.stream_backoff.reset();
        }
    }

    fn cursor_expired(&mut self) {
        tracing::info!("the revocation feed no longer knows our cursor; reloading its state");
        self.feed.restart();
    }

    async fn unauthorized(&mut self) {
        // Renewed once at once; if the new token is refused too, the backoff spaces the tries.
        let fresh = self.held.take().is_some_and(|held| held.renew_at > Instant::now());
        if fresh {
            self.failed("the feed refused the verifier's token".into()).await;
        }
    }

    async fn poll_failed(&mut self, err: PollError) {
        match err {
            PollError::Unauthorized => self.unauthorized().await,
            PollError::Other(e) => self.outage(format!("revocation feed: {e}")).await,
        }
    }

    /// A refusal to fix (credentials): the attempts are spaced by the long backoff.
    async fn failed(&mut self, error: String) {
        self.shared.feed_failed(error);
        sleep(self.backoff.next_delay()).await;
    }

    /// The issuer could not be reached: tried again at the polling pace, so that a revocation
    /// is applied within that interval of the issuer answering again.
    async fn outage(&mut self, error: String) {
        self.shared.feed_failed(error);
        self.was_unreachable = true;
        sleep(self.shared.timing.feed_poll_interval).await;
    }

    /// The held token, or a new one when it is due for renewal.
    async fn token(&mut self) -> Result<ServiceToken, FetchError> {
        if let Some(held) = &self.held
            && Instant::now() < held.renew_at
        {
            return Ok(held.token.clone());
        }
        let held = self.request_token().await?;
        let token = held.token.clone();
        self.held = Some(held);
        Ok(token)
    }

    /// `POST token_endpoint` with `grant_type=client_credentials` and HTTP Basic client
    /// authentication: id and secret each form-urlencoded, then base64 (RFC 6749 §2.3.1).
    async fn request_token(&self) -> Result<Held, FetchError> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            token_type: String,
            expires_in: u64,
        }
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let credentials = Zeroizing::new(format!(
            "{}:{}",
            encode(&self.config.client_id),
            Zeroizing::new(encode(self.config.client_secret.expose())).as_str()
        ));
        let mut basic = HeaderValue::try_from(
            Zeroizing::new(format!("Basic {}", STANDARD.encode(credentials.as_bytes()))).as_str(),
        )
        .map_err(|_| FetchError::Body("the client credentials do not fit a header".into()))?;
        basic.set_sensitive(true);
        let requested_at = Instant::now();
        let response = self
            .shared
            .http
            .post(&self.endpoints.token_endpoint)
            .header(AUTHORIZATION, basic)
            .header(ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .timeout(self.shared.timing.request_timeout)
            .send()
            .await?;
        let body = Zeroizing::new(read_ok(response, 64 * 1024).await?);
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| FetchError::Body("the token response is not RFC 6749 JSON".into()))?;
        if !parsed.token_type.eq_ignore_ascii_case("bearer") {
            return Err(FetchError::Body(format!("unexpected token_type `{}`", parsed.token_type)));
        }
        let lifetime = Duration::from_secs(parsed.expires_in.max(1));
        tracing::debug!(?lifetime, "obtained a token for the revocation feed");
        Ok(Held {
            token: ServiceToken::new(parsed.access_token),
            renew_at: requested_at + renew_after(lifetime),
        })
    }

    fn bearer(token: &ServiceToken) -> Result<HeaderValue, String> {
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| "the issuer's token does not fit a header".to_owned())?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Reads pages of the JSON form from the cursor (or the whole state without one) until
    /// one brings nothing new.
    async fn catch_up(&mut self, token: &ServiceToken) -> Result<(), PollError> {
        let source = HttpFeed {
            http: &self.shared.http,
            url: &self.endpoints.revocations_url,
            bearer: Self::bearer(token).map_err(PollError::Other)?,
            timeout: self.shared.timing.request_timeout,
        };
        self.feed.catch_up(&source).await?;
        self.shared.feed_seen(self.feed.cursor().as_deref());
        Ok(())
    }

    /// Streams the feed from the cursor until the stream ends.
    async fn stream(&mut self, token: &ServiceToken) -> StreamEnd {
        let failed = |error: String| StreamEnd::Failed { error, opened: false };
        let bearer = match Self::bearer(token) {
            Ok(bearer) => bearer,
            Err(e) => return failed(e),
        };
        let mut request = self
            .shared
            .http
            .get(&self.endpoints.revocations_url)
            .header(AUTHORIZATION, bearer)
            .header(ACCEPT, "text/event-stream");
        let cursor = self.feed.cursor();
        if let Some(cursor) = &cursor {
            request = request.header("Last-Event-ID", cursor.as_str());
        }
        // No overall timeout: the stream is meant to last. The idle timeout below catches a
        // connection that went silent.
        let response =
            match tokio::time::timeout(self.shared.timing.request_timeout, request.send()).await {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => return failed(chain(&e)),
                Err(_) => return failed("no answer in time".into()),
            };
        let status = response.status();
        let is_event_stream =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.trim_start().to_ascii_lowercase().starts_with("text/event-stream")
            });
        match status {
            StatusCode::GONE => return StreamEnd::CursorExpired,
            // Servers before contract v3 refused a cursor they could not read with 400: the
            // cursor is as unknown as an expired one, and only starting again recovers.
            StatusCode::BAD_REQUEST if cursor.is_some() => return StreamEnd::CursorExpired,
            StatusCode::UNAUTHORIZED => return StreamEnd::Unauthorized,
            StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_ACCEPTABLE
            | StatusCode::NOT_IMPLEMENTED => {
                return StreamEnd::NotSupported(format!("HTTP {}", status.as_u16()));
            }
            s if s.is_success() && !is_event_stream => {
                return StreamEnd::NotSupported("the answer is not text/event-stream".into());
            }
            s if !s.is_success() => {
                let code = read_ok(response, 64 * 1024).await.err();
                return failed(
                    code.map_or_else(|| format!("HTTP {}", s.as_u16()), |e| e.to_string()),
                );
            }
            _ => {}
        }
        self.shared.feed_state(FeedState::Streaming);
        let opened_at = Instant::now();
        let mut delivered = false;

        let idle = self.shared.timing.feed_idle_timeout;
        let shared = self.shared.clone();
        // Every chunk, keep-alive comments included, proves the connection alive.
        let chunks =
            futures_util::stream::unfold(Box::pin(response.bytes_stream()), move |mut bytes| {
                let shared = shared.clone();
                async move {
                    match tokio::time::timeout(idle, bytes.next()).await {
                        Ok(Some(Ok(chunk))) => {
                            shared.feed_seen(None);
                            Some((Ok(chunk), bytes))
                        }
                        Ok(Some(Err(e))) => Some((Err(chain(&e)), bytes)),
                        Ok(None) => None,
                        Err(_) => Some((Err(format!("nothing received for {idle:?}")), bytes)),
                    }
                }
            });
        let mut events = Box::pin(chunks.eventsource());
        let error = loop {
            let event = match events.next().await {
                Some(Ok(event)) => event,
                Some(Err(e)) => break e.to_string(),
                None => break "the server closed the stream".to_owned(),
            };
            delivered = true;
            match serde_json::from_str::<FeedEvent>(&event.data) {
                Ok(feed_event) => {
                    self.shared.feed_seen(Some(&feed_event.cursor));
                    self.feed.apply(std::slice::from_ref(&feed_event));
                }
                Err(e) => {
                    // Skipped, but resumed after: the server said the event is behind us.
                    tracing::warn!(error = %e, "skipping a feed event that does not parse");
                    if !event.id.is_empty() {
                        self.feed.skip_to(event.id);
                    }
                }
            }
        };
        // A stream that brought events or lasted counts as opened (its failure resets the
        // backoff); one that a server closes at once, again and again, leads to polling.
        let opened = delivered || opened_at.elapsed() >= STREAM_PROVEN_AFTER;
        if opened {
            self.backoff.reset();
        }
        StreamEnd::Failed { error, opened }
    }
}

/// The issuer's feed in JSON, read with one token.
struct HttpFeed<'a> {
    http: &'a reqwest::Client,
    url: &'a str,
    bearer: HeaderValue,
    timeout: Duration,
}

impl FeedSource for HttpFeed<'_> {
    type Error = PollError;

    async fn events_after(
        &self,
        cursor: Option<&str>,
    ) -> Result<FeedPage, FeedReadError<PollError>> {
        let mut request = self
            .http
            .get(self.url)
            .header(AUTHORIZATION, self.bearer.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.timeout);
        if let Some(cursor) = cursor {
            request = request.query(&[("after", cursor)]);
        }
        let response = request.send().await.map_err(FetchError::from)?;
        let body = read_ok(response, MAX_BODY_BYTES).await.map_err(|e| match e {
            // Servers before contract v3 refused a cursor they could not read with 400.
            FetchError::Status { status: 400, .. } if cursor.is_some() => {
                FeedReadError::CursorExpired
            }
            other => other.into(),
        });
        let body = match body {
            Err(FeedReadError::CursorExpired) => {
                tracing::info!(
                    "the revocation feed no longer knows our cursor; reloading its state"
                );
                return Err(FeedReadError::CursorExpired);
            }
            other => other?,
        };
        serde_json::from_slice(&body).map_err(|e| {
            FeedReadError::Failed(PollError::Other(format!(
                "a feed page is not the expected JSON: {e}"
            )))
        })
    }
}

/// When a token of `lifetime` is renewed: after three quarters of it, but at least two
/// seconds before it ends (`iat` and `exp` are whole seconds, so a token may end up to a
/// second sooner than `expires_in` says), and never before half of it.
fn renew_after(lifetime: Duration) -> Duration {
    let margin = lifetime.saturating_sub(Duration::from_secs(2));
    lifetime.mul_f64(0.75).min(margin).max(lifetime / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_well_before_they_expire() {
        let secs = Duration::from_secs;
        assert_eq!(renew_after(secs(1800)), secs(1350));
        assert_eq!(renew_after(secs(4)), secs(2));
        assert_eq!(renew_after(secs(2)), secs(1));
    }
}
