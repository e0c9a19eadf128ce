//! An actix-web API that accepts the access tokens of a `jwt-auth` server without calling it
//! per request, and still refuses a token within the second its session is revoked: the
//! verifier of `jwt-auth-verifier` finds the issuer's keys by RFC 8414 discovery and follows
//! its revocation feed with a service client's credentials.
//!
//! - `GET /stocks/{symbol}`: any signed-in user.
//! - `POST /admin/stocks/refresh`: role `admin`.
//! - `GET /ready`: 503 until the keys and the revocations are loaded; the verifier's status.
//! - `GET /health`.
//!
//! Settings (environment): `JWT_AUTH_URL` (the issuer: its `PUBLIC_URL`), `JWT_AUDIENCE`
//! (default `api`), `CLIENT_ID` and `CLIENT_SECRET` (from `jwt-auth clients add`),
//! `BIND_ADDRESS` (default `127.0.0.1:8081`), `PUBLIC_URL` (this service's URL as its clients
//! call it, which their DPoP proofs name; without it, `http://` and the request's `Host`), and
//! `CORS_ORIGINS` (comma-separated origins of browser apps allowed to call it across origins;
//! none without it). For an HS256 issuer, which publishes no key: `JWT_SECRET` (its secret) and
//! `JWT_ISSUER` (its `iss`, default `JWT_AUTH_URL`).

use actix_cors::Cors;
use actix_web::http::{Uri, header};
use actix_web::middleware::Condition;
use actix_web::{App, HttpResponse, HttpServer, web};
use jwt_auth_verifier::actix::{Authenticated, RequireRole};
use jwt_auth_verifier::{Admin, ClientSecret, FeedConfig, KeySource, NatsFeedConfig, Verifier};
use serde_json::json;

async fn stock(symbol: web::Path<String>, _caller: Authenticated) -> HttpResponse {
    // A made-up price: the point is who may ask.
    let symbol = symbol.into_inner().to_uppercase();
    let cents = symbol.bytes().fold(1_000u32, |acc, b| acc.wrapping_mul(31).wrapping_add(b.into()));
    HttpResponse::Ok().json(json!({"symbol": symbol, "price": f64::from(cents % 100_000) / 100.0}))
}

async fn refresh(admin: RequireRole<Admin>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"refreshed": true, "by": admin.caller.claims.sub}))
}

async fn ready(verifier: web::Data<Verifier>) -> HttpResponse {
    let status = verifier.status();
    if status.ready {
        HttpResponse::Ok().json(status)
    } else {
        HttpResponse::ServiceUnavailable().json(status)
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The origins of `CORS_ORIGINS` (exact origins such as `https://app.example.com`), checked.
fn cors_origins() -> Vec<String> {
    let origins = std::env::var("CORS_ORIGINS").unwrap_or_default();
    let origins: Vec<String> =
        origins.split(',').map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect();
    for origin in &origins {
        // `scheme://host[:port]` and nothing else: no `*` (name the apps), no path.
        let plain =
            origin.parse::<Uri>().is_ok_and(|uri| match (uri.scheme_str(), uri.authority()) {
                (Some(scheme @ ("http" | "https")), Some(host)) => {
                    *origin == format!("{scheme}://{host}")
                }
                _ => false,
            });
        if !plain {
            eprintln!(
                "resource-server: CORS_ORIGINS: `{origin}` is no origin (scheme://host[:port])"
            );
            std::process::exit(2)
        }
    }
    origins
}

/// Cross-origin calls from the browser apps of `origins` (the middleware is left out when there
/// are none): their tokens travel in the `Authorization` and `DPoP` headers, never in cookies,
/// so no credentials are allowed; the apps may read the challenge of a 401 and a `DPoP-Nonce`.
fn cors(origins: &[String]) -> Condition<Cors> {
    let cors = Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, DPOP])
        .expose_headers([header::WWW_AUTHENTICATE, DPOP_NONCE])
        .max_age(600);
    let cors = origins.iter().fold(cors, |cors, origin| cors.allowed_origin(origin));
    Condition::new(!origins.is_empty(), cors)
}

const DPOP: header::HeaderName = header::HeaderName::from_static("dpop");
const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("resource-server: {name} is required");
        std::process::exit(2)
    })
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let url = setting("JWT_AUTH_URL");
    let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "api".into());
    // An HS256 issuer publishes no key: the shared secret comes from here instead, and every
    // holder of it can mint tokens (prefer an asymmetric JWT_ALGORITHM at the issuer).
    let keys = match std::env::var("JWT_SECRET") {
        Ok(secret) => {
            let issuer = std::env::var("JWT_ISSUER").unwrap_or_else(|_| url.clone());
            let secret = jwt_core::Secret::new(secret.into_bytes()).unwrap_or_else(|e| {
                eprintln!("resource-server: JWT_SECRET: {e}");
                std::process::exit(2)
            });
            KeySource::hs256(issuer, secret)
        }
        Err(_) => KeySource::discover(url.clone()),
    };
    let builder = Verifier::builder(keys, audience);
    // The revocation feed: the change stream on NATS JetStream when NATS_URL is set (no load on
    // the issuer, no client credentials), else the issuer's feed as client CLIENT_ID.
    let mut builder = match std::env::var("NATS_URL") {
        Ok(nats) if !nats.trim().is_empty() => {
            let mut stream = NatsFeedConfig::new(nats.trim());
            if let Ok(name) = std::env::var("NATS_STREAM") {
                stream = stream.stream(name);
            }
            builder.nats_feed(stream)
        }
        _ => builder.feed(
            FeedConfig::new(setting("CLIENT_ID"), ClientSecret::new(setting("CLIENT_SECRET")))
                .server_url(&url),
        ),
    };
    if let Ok(public_url) = std::env::var("PUBLIC_URL") {
        builder = builder.public_url(public_url);
    }
    let verifier = builder.start().unwrap_or_else(|e| {
        eprintln!("resource-server: {e}");
        std::process::exit(2)
    });
    let verifier = web::Data::new(verifier);
    let bind = std::env::var("BIND_ADDRESS").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let origins = cors_origins();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(cors(&origins))
            .app_data(verifier.clone())
            .route("/stocks/{symbol}", web::get().to(stock))
            .route("/admin/stocks/refresh", web::post().to(refresh))
            .route("/ready", web::get().to(ready))
            .route("/health", web::get().to(health))
    })
    .bind(bind)?;
    for addr in server.addrs() {
        println!("listening on {addr}");
    }
    server.run().await
}
