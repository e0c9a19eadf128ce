//! A small issuer on 127.0.0.1 that speaks the contract of the `jwt-auth` server: RFC 8414
//! metadata, the JWK set with `Cache-Control`, client credentials at `/auth/token`, and
//! `/auth/revocations` as JSON and as Server-Sent Events. It counts what it serves and can be
//! made to fail, forget cursors, cut streams, or refuse to stream.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{TimeDelta, Utc};
use jwt_core::{
    Algorithm, FeedChange, FeedEvent, FeedPage, KeySet, SigningKey, Subject, TokenPolicy,
    TokenService,
};
use subtle::ConstantTimeEq;

pub const AUDIENCE: &str = "api";
pub const CLIENT_ID: &str = "orders service";
pub const CLIENT_SECRET: &str = "s3cret:with/odd&chars";

pub struct Issuer {
    pub url: String,
    pub state: Arc<IssuerState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub struct IssuerState {
    pub url: String,
    /// Signs user tokens.
    pub tokens: TokenService,
    /// Signs the feed client's tokens (same keys, its own lifetime).
    pub service_tokens: TokenService,
    pub jwks_max_age: AtomicU64,
    /// Every endpoint answers 503.
    pub down: AtomicBool,
    /// Whether `Accept: text/event-stream` is honoured (else JSON is answered).
    pub streams: AtomicBool,
    /// Streams are answered, then closed at once.
    pub streams_close_at_once: AtomicBool,
    /// The metadata's `issuer`, when it should differ from the URL.
    pub metadata_issuer: Mutex<Option<String>>,
    events: Mutex<Vec<FeedEvent>>,
    /// Cursors below this are forgotten: 410.
    pub forgotten_below: AtomicU64,
    /// Answers a forgotten cursor as a server before contract v3 did: 400 `invalid_request`.
    pub refuses_cursors_with_400: AtomicBool,
    /// Open streams end when this changes.
    pub generation: AtomicU64,
    pub metadata_hits: AtomicUsize,
    pub jwks_hits: AtomicUsize,
    pub token_hits: AtomicUsize,
    pub bad_client_hits: AtomicUsize,
    pub feed_json_hits: AtomicUsize,
    pub feed_json_from_scratch: AtomicUsize,
    pub stream_opens: AtomicUsize,
    pub feed_unauthorized: AtomicUsize,
    pub gone_answers: AtomicUsize,
    /// The `Last-Event-ID` of every stream request.
    pub last_event_ids: Mutex<Vec<Option<String>>>,
}

impl Issuer {
    pub async fn start(alg: Algorithm) -> Issuer {
        Self::start_with(alg, TimeDelta::minutes(30)).await
    }

    /// An issuer whose feed client tokens live `service_ttl`.
    pub async fn start_with(alg: Algorithm, service_ttl: TimeDelta) -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = KeySet::new(SigningKey::generate(alg).unwrap());
        let tokens = TokenService::new(TokenPolicy::new(&url, AUDIENCE), keys.clone()).unwrap();
        let mut service_policy = TokenPolicy::new(&url, AUDIENCE);
        service_policy.access_ttl = service_ttl;
        service_policy.leeway = TimeDelta::zero();
        let service_tokens = TokenService::new(service_policy, keys).unwrap();
        let state = Arc::new(IssuerState {
            url: url.clone(),
            tokens,
            service_tokens,
            jwks_max_age: AtomicU64::new(60),
            down: AtomicBool::new(false),
            streams: AtomicBool::new(true),
            streams_close_at_once: AtomicBool::new(false),
            metadata_issuer: Mutex::new(None),
            events: Mutex::new(Vec::new()),
            forgotten_below: AtomicU64::new(0),
            refuses_cursors_with_400: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            metadata_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
            token_hits: AtomicUsize::new(0),
            bad_client_hits: AtomicUsize::new(0),
            feed_json_hits: AtomicUsize::new(0),
            feed_json_from_scratch: AtomicUsize::new(0),
            stream_opens: AtomicUsize::new(0),
            feed_unauthorized: AtomicUsize::new(0),
            gone_answers: AtomicUsize::new(0),
            last_event_ids: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/auth/token", post(token))
            .route("/auth/revocations", get(revocations))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Issuer { url, state, server }
    }

    /// An access token for `sub` in session `sid`.
    pub fn token(&self, sub: &str, sid: &str, roles: &[&str]) -> String {
        let subject = Subject {
            id: sub.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            email: None,
        };
        self.state.tokens.issue_access(&subject, sid, None).unwrap().token.into_string()
    }

    /// Rotates in a new signing key (the old one still verifies); returns its kid.
    pub fn rotate(&self, alg: Algorithm) -> String {
        let next = SigningKey::generate(alg).unwrap();
        let kid = next.kid().to_owned();
        let keys = self.state.tokens.keys().rotate(next).unwrap();
        self.state.tokens.replace_keys(keys.clone());
        self.state.service_tokens.replace_keys(keys);
        kid
    }

    /// The kid of the active key.
    pub fn active_kid(&self) -> String {
        self.state.tokens.keys().active().unwrap().kid().to_owned()
    }

    /// Records a feed event; returns its cursor.
    pub fn publish(&self, change: FeedChange) -> String {
        let mut events = self.state.events.lock().unwrap();
        let cursor = (events.len() + 1).to_string();
        let expires_at = (Utc::now() + TimeDelta::hours(1)).timestamp();
        events.push(FeedEvent { cursor: cursor.clone(), change, expires_at });
        cursor
    }

    /// Ends every open stream.
    pub fn cut_streams(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets every cursor up to now: the next resume gets 410.
    pub fn forget_cursors(&self) {
        let len = self.state.events.lock().unwrap().len() as u64;
        self.state.forgotten_below.store(len + 1, Ordering::SeqCst);
    }

    pub fn hits(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

fn unavailable() -> Response {
    let body = serde_json::json!({"error": "unavailable", "message": "down for the test"});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

fn error(status: StatusCode, code: &str) -> Response {
    let body = serde_json::json!({"error": code, "message": code});
    (status, axum::Json(body)).into_response()
}

async fn metadata(State(state): State<Arc<IssuerState>>) -> Response {
    state.metadata_hits.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let url = &state.url;
    let issuer = state.metadata_issuer.lock().unwrap().clone().unwrap_or_else(|| url.clone());
    let body = serde_json::json!({
        "issuer": issuer,
        "token_endpoint": format!("{url}/auth/token"),
        "jwks_uri": format!("{url}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{url}/auth/revoke"),
        "introspection_endpoint": format!("{url}/auth/introspect"),
    });
    ([(header::CACHE_CONTROL, "public, max-age=60")], axum::Json(body)).into_response()
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let max_age = state.jwks_max_age.load(Ordering::SeqCst);
    let cache = format!("public, max-age={max_age}");
    ([(header::CACHE_CONTROL, cache)], axum::Json(state.tokens.keys().jwks())).into_response()
}

fn form_decode(part: &str) -> String {
    form_urlencoded::parse(format!("v={part}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn token(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.token_hits.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let grant = form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "grant_type");
    if grant.is_none_or(|(_, v)| v != "client_credentials") {
        return error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let valid =
        credentials.as_deref().and_then(|c| c.split_once(':')).is_some_and(|(id, secret)| {
            let id_ok = form_decode(id).as_bytes().ct_eq(CLIENT_ID.as_bytes());
            let secret_ok = form_decode(secret).as_bytes().ct_eq(CLIENT_SECRET.as_bytes());
            bool::from(id_ok & secret_ok)
        });
    if !valid {
        state.bad_client_hits.fetch_add(1, Ordering::SeqCst);
        let body =
            serde_json::json!({"error": "invalid_client", "error_description": "bad client"});
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"jwt-auth\"")],
            axum::Json(body),
        )
            .into_response();
    }
    let subject = Subject { id: CLIENT_ID.into(), roles: vec!["service".into()], email: None };
    let issued = state.service_tokens.issue_access(&subject, "client-session", None).unwrap();
    let expires_in = (issued.expires_at - issued.issued_at).num_seconds();
    let body = serde_json::json!({
        "access_token": issued.token.expose(),
        "token_type": "Bearer",
        "expires_in": expires_in,
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

#[derive(serde::Deserialize)]
struct After {
    after: Option<String>,
}

async fn revocations(
    State(state): State<Arc<IssuerState>>,
    Query(query): Query<After>,
    headers: HeaderMap,
) -> Response {
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(bearer) = bearer else {
        return error(StatusCode::UNAUTHORIZED, "missing_token");
    };
    match state.service_tokens.verify_access_ignoring_revocations(bearer) {
        Ok(claims) if claims.has_role("service") => {}
        Ok(_) => return error(StatusCode::FORBIDDEN, "insufficient_role"),
        Err(_) => {
            state.feed_unauthorized.fetch_add(1, Ordering::SeqCst);
            return error(StatusCode::UNAUTHORIZED, "invalid_token");
        }
    }
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let streaming = wants_stream && state.streams.load(Ordering::SeqCst);
    let after = if streaming {
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
    } else {
        query.after
    };
    if streaming {
        state.stream_opens.fetch_add(1, Ordering::SeqCst);
        state.last_event_ids.lock().unwrap().push(after.clone());
    } else {
        state.feed_json_hits.fetch_add(1, Ordering::SeqCst);
        if after.is_none() {
            state.feed_json_from_scratch.fetch_add(1, Ordering::SeqCst);
        }
    }
    let after = match after.as_deref().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) if n >= state.forgotten_below.load(Ordering::SeqCst) => n,
        Some(_) => {
            state.gone_answers.fetch_add(1, Ordering::SeqCst);
            if state.refuses_cursors_with_400.load(Ordering::SeqCst) {
                return error(StatusCode::BAD_REQUEST, "invalid_request");
            }
            return error(StatusCode::GONE, "cursor_expired");
        }
    };
    if !streaming {
        let events: Vec<FeedEvent> =
            state.events.lock().unwrap().iter().skip(after as usize).cloned().collect();
        let cursor = events.last().map_or(after.to_string(), |e| e.cursor.clone());
        return axum::Json(FeedPage { events, cursor }).into_response();
    }
    if state.streams_close_at_once.load(Ordering::SeqCst) {
        return ([(header::CONTENT_TYPE, "text/event-stream")], "").into_response();
    }
    let generation = state.generation.load(Ordering::SeqCst);
    let stream = futures_util::stream::unfold(
        (state, after, 0u32),
        move |(state, sent, ticks)| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if state.generation.load(Ordering::SeqCst) != generation
                || state.down.load(Ordering::SeqCst)
            {
                return None;
            }
            let new: Vec<FeedEvent> =
                state.events.lock().unwrap().iter().skip(sent as usize).cloned().collect();
            let mut chunk = String::new();
            for event in &new {
                chunk.push_str(&format!(
                    "id: {}\ndata: {}\n\n",
                    event.cursor,
                    serde_json::to_string(event).unwrap()
                ));
            }
            // A keep-alive comment every second.
            if ticks % 20 == 19 {
                chunk.push_str(": keep-alive\n\n");
            }
            let sent = sent + new.len() as u64;
            Some((Ok::<_, std::convert::Infallible>(chunk), (state, sent, ticks + 1)))
        },
    );
    (
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-store")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Waits until `check` holds, at most `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
