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
//! `BIND_ADDRESS` (default `127.0.0.1:8081`). For an HS256 issuer, which publishes no key:
//! `JWT_SECRET` (its secret) and `JWT_ISSUER` (its `iss`, default `JWT_AUTH_URL`).

use actix_web::{App, HttpResponse, HttpServer, web};
use jwt_auth_verifier::actix::{Authenticated, RequireRole};
use jwt_auth_verifier::{Admin, ClientSecret, FeedConfig, KeySource, Verifier};
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
    let feed = FeedConfig::new(setting("CLIENT_ID"), ClientSecret::new(setting("CLIENT_SECRET")))
        .server_url(&url);
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
    let verifier = Verifier::builder(keys, audience).feed(feed).start().unwrap_or_else(|e| {
        eprintln!("resource-server: {e}");
        std::process::exit(2)
    });
    let verifier = web::Data::new(verifier);
    let bind = std::env::var("BIND_ADDRESS").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let server = HttpServer::new(move || {
        App::new()
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
