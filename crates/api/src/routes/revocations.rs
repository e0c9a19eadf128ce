//! `GET /auth/revocations`: the revocation feed for other services that verify access tokens
//! themselves, as JSON pages by cursor or as a Server-Sent Events stream, served from this
//! instance's copy of the feed (see [`jwt_auth_service::feed`]), never from the database per reader.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::responses::{BearerRefused, InsufficientRole, RateLimited, Unavailable};
use crate::state::AppState;
use jwt_auth_service::feed::{CursorExpired, StreamGuard, parse_cursor};

/// How often a stream with nothing to say sends a comment line (the contract: at least every
/// 15 seconds), which also shows a vanished reader.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Roles that may read the feed.
const READERS: [&str; 2] = ["service", "admin"];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The cursor of the last event applied: only later events are returned. Without it,
    /// every event that still matters. Opaque: a cursor the feed does not recognise gets 410.
    pub after: Option<String>,
}

/// A page of the feed (the wire types are jwt-core's `FeedPage` and `FeedEvent`).
#[allow(
    dead_code,
    reason = "a schema of the OpenAPI document: the handler writes this answer itself"
)]
#[derive(utoipa::ToSchema)]
pub struct FeedPageBody {
    /// Oldest first: `{cursor, kind, ..., expires_at}` with `kind` one of `session` (`sid`),
    /// `user` (`sub`, `not_before`), `all` (`not_before`) or `key` (`kid`); times in seconds
    /// since the epoch.
    pub events: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Where to resume (`after=`).
    pub cursor: String,
}

/// `cursor_expired`.
#[allow(dead_code, reason = "an answer of the OpenAPI document: the error type writes it")]
#[derive(utoipa::IntoResponses)]
#[response(status = 410)]
pub struct CursorGone(pub crate::responses::ErrorBody);

#[utoipa::path(get, path = "/auth/revocations", tag = "auth", security(("bearer" = [])),
    params(FeedQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "with `Accept: text/event-stream`: resume after this cursor (takes precedence over `after`)")),
    responses(
        (status = 200, description = "the events after the cursor; with `Accept: text/event-stream`, a stream of them (`id:` the cursor, `data:` the event JSON, a comment line every 10 s)",
            content(
                (FeedPageBody = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 422, body = crate::responses::ErrorBody, description = "`invalid_field`: a query string that does not parse (`after` twice)"),
        BearerRefused, InsufficientRole, CursorGone, RateLimited, Unavailable,
    ))]
pub async fn feed(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    if !READERS.iter().any(|role| caller.claims.has_role(role)) {
        return Err(ApiError::InsufficientRole("service"));
    }
    let (streaming, cursor) = what_is_asked(&req, &query)?;
    let events = page(&state, cursor).await?;
    if !streaming {
        let (events, cursor) = events;
        let mut response = HttpResponse::Ok();
        response.insert_header((CACHE_CONTROL, "no-store"));
        return Ok(response.json(jwt_core::FeedPage { events, cursor: cursor.to_string() }));
    }
    let guard = state.feed.open_stream(&caller.claims.sub).ok_or(ApiError::TooManyStreams {
        limit: jwt_auth_service::feed::MAX_STREAMS_PER_CLIENT,
        retry_after: HEARTBEAT.as_secs(),
    })?;
    let (backlog, position) = events;
    let until = caller.claims.exp;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(event_stream(state.into_inner(), guard, backlog, position, until)))
}

/// Whether the reader asks for a stream (`Accept: text/event-stream`), and the cursor it reads
/// after: `Last-Event-ID` on a stream, else `after`. Cursors are opaque: one this feed never
/// gave out (malformed, from an older format) is as unknown as an expired one, and the reader
/// starts again without it.
fn what_is_asked(req: &HttpRequest, query: &FeedQuery) -> Result<(bool, Option<i64>), ApiError> {
    let streaming = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("text/event-stream")));
    let last_event_id = streaming
        .then(|| req.headers().get("last-event-id"))
        .flatten()
        .and_then(|v| v.to_str().ok());
    let cursor = match last_event_id.or(query.after.as_deref()) {
        Some(text) => Some(parse_cursor(text).map_err(|CursorExpired| ApiError::CursorExpired)?),
        None => None,
    };
    Ok((streaming, cursor))
}

/// The events after `cursor`; a cursor ahead of this instance is first checked against the
/// store (another instance may have read further), then refused if still unknown.
async fn page(
    state: &AppState,
    cursor: Option<i64>,
) -> Result<(Vec<jwt_core::FeedEvent>, i64), ApiError> {
    if let Some(c) = cursor
        && c > state.feed.head()
    {
        state.feed.advance().await?;
    }
    state.feed.after(cursor).map_err(|CursorExpired| ApiError::CursorExpired)
}

/// What a stream sends next.
struct Stream {
    state: Arc<AppState>,
    _guard: StreamGuard,
    pending: std::collections::VecDeque<jwt_core::FeedEvent>,
    position: i64,
    heads: tokio::sync::watch::Receiver<i64>,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The reader's token expires then (seconds since the epoch): the stream ends, and the
    /// reader comes back with a fresh one and `Last-Event-ID`.
    until: i64,
    started: bool,
}

fn event_stream(
    state: Arc<AppState>,
    guard: StreamGuard,
    backlog: Vec<jwt_core::FeedEvent>,
    position: i64,
    until: i64,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    let mut heads = state.feed.subscribe();
    heads.mark_unchanged();
    let stopping = state.stopping.subscribe();
    let first = Stream {
        stopping,
        state,
        _guard: guard,
        pending: backlog.into(),
        position,
        heads,
        until,
        started: false,
    };
    stream::unfold(first, |mut s| async move {
        if !s.started {
            s.started = true;
            // Tells the reader how soon to reconnect, and opens the stream at once.
            return Some((Ok(Bytes::from_static(b"retry: 1000\n: connected\n\n")), s));
        }
        loop {
            if let Some(event) = s.pending.pop_front() {
                s.position = event.cursor.parse().unwrap_or(s.position);
                let json = serde_json::to_string(&event).unwrap_or_default();
                let frame = format!("id: {}\ndata: {json}\n\n", event.cursor);
                return Some((Ok(Bytes::from(frame)), s));
            }
            let left = s.until - s.state.now().timestamp();
            if left <= 0 || *s.stopping.borrow() {
                return None;
            }
            let expiry = Duration::from_secs(u64::try_from(left).unwrap_or(0));
            tokio::select! {
                changed = s.heads.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    match s.state.feed.after(Some(s.position)) {
                        Ok((events, _)) => s.pending.extend(events),
                        // Fell behind what was dropped: the reader starts again.
                        Err(CursorExpired) => return None,
                    }
                }
                _ = tokio::time::sleep(HEARTBEAT) => {
                    return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s));
                }
                _ = tokio::time::sleep(expiry) => return None,
                // The server stops: the reader reconnects (to another instance) and resumes.
                _ = s.stopping.changed() => return None,
            }
        }
    })
}
