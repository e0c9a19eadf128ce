//! The HTTP server around the route table: the connection timeouts, the body deadline, the
//! per-request span and metrics, the graceful stop, and the server that answers while the
//! database is still out of reach.

use std::time::{Duration, Instant};

use actix_web::dev::{Payload, Server, Service};
use actix_web::{App, HttpMessage, HttpResponse, HttpServer, web};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::error::ApiError;
use crate::routes::meta;
use crate::state::AppState;
use jwt_auth_service::metrics::RouteLabels;

/// How long a client may take to send the headers of a connection's first request. Actix-web
/// times no later request head: a keep-alive connection that stops halfway through its second
/// request's head is held until the client goes (see docs/network-edge.md).
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection stays open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
pub use crate::request_body::CLIENT_BODY_TIMEOUT;

/// Starts the HTTP server on an already bound listener (port 0 in tests) and the background
/// jobs; the returned server runs until stopped, then drains in-flight requests.
pub(crate) fn run(
    state: web::Data<AppState>,
    listener: std::net::TcpListener,
) -> std::io::Result<Server> {
    crate::background::spawn_background_jobs(state.clone().into_inner());
    let stopping = state.stopping.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Inside the metrics below, so that they count the 408s of late bodies.
            .wrap_fn(|mut req, srv| {
                let body = match req.take_payload() {
                    Payload::None => None,
                    payload => {
                        let body = crate::request_body::RequestBody::new(payload);
                        let deadline = tokio::time::Instant::now() + CLIENT_BODY_TIMEOUT;
                        req.set_payload(body.reader(deadline));
                        Some(body)
                    }
                };
                srv.call(req).map(move |result| {
                    result.map(|response| match body {
                        Some(body) => body.answer(response),
                        None => response.map_into_boxed_body(),
                    })
                })
            })
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let request_id = uuid::Uuid::new_v4();
                let method = req.method().to_string();
                let span = tracing::info_span!("request", %request_id, %method, path = %req.path());
                req.extensions_mut().insert(request_id);
                let state = req.app_data::<web::Data<AppState>>().cloned();
                srv.call(req)
                    .map(move |result| {
                        if let (Ok(response), Some(state)) = (&result, state) {
                            let labels = RouteLabels {
                                method,
                                route: response
                                    .request()
                                    .match_pattern()
                                    .unwrap_or_else(|| "unmatched".to_owned()),
                                status: response.status().as_u16(),
                            };
                            state.metrics.requests.get_or_create(&labels).inc();
                            state
                                .metrics
                                .latency
                                .get_or_create(&labels)
                                .observe(started.elapsed().as_secs_f64());
                        }
                        result
                    })
                    .instrument(span)
            })
            .configure(crate::route_table::configure)
    })
    // A client has this long to send its first request's headers (slowloris: 408, then
    // closed), an idle keep-alive connection is closed after this long, and a closing client
    // this long to finish. Bodies have their own deadline (`CLIENT_BODY_TIMEOUT`, above).
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .client_disconnect_timeout(Duration::from_secs(1))
    .listen(listener)?
    .shutdown_timeout(30)
    .shutdown_signal(async move {
        stop_requested().await;
        // The feed's streams end now; requests in flight get the graceful stop's 30 s.
        stopping.send_replace(true);
    })
    .run();
    Ok(server)
}

/// The server that answers while `serve` waits for an unreachable database: `/health` 200,
/// `/ready` 503 (nothing is loaded), and every other request 503 `unavailable` with
/// `Retry-After`, so that clients and orchestrators see a starting instance rather than a
/// refused connection. Stopped through the returned handle once the real server can start on
/// the same socket; signals are the caller's to watch.
pub(crate) fn starting(
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::ServerHandle> {
    let server = HttpServer::new(|| {
        App::new()
            .service(
                crate::route_table::get("/health")
                    .route(crate::route_table::get_or_head().to(meta::health)),
            )
            .service(crate::route_table::get("/ready").route(crate::route_table::get_or_head().to(
                || async { HttpResponse::ServiceUnavailable().json(meta::Readiness::starting()) },
            )))
            .default_service(actix_web::web::to(|| async {
                actix_web::ResponseError::error_response(&ApiError::Unavailable)
            }))
    })
    .workers(1)
    .disable_signals()
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .listen(listener)?
    .shutdown_timeout(5)
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(handle)
}

/// SIGTERM or SIGINT (both stop gracefully). Without signal handling (not Unix, or the
/// handler cannot be installed), never: the server is then stopped through its handle.
pub(crate) async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received; stopping gracefully"),
                _ = int.recv() => tracing::info!("SIGINT received; stopping gracefully"),
            }
            return;
        }
    }
    std::future::pending::<()>().await
}
