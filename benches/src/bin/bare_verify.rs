//! The bare Actix-web reference of the load benchmark: one route, `GET /verify`, that checks an
//! HS256 bearer token with jsonwebtoken's own `decode` (signature, `exp`, `iss`, `aud`) and
//! answers a small JSON body. It is what a service with no framework of ours would do per
//! request, so `benches/load.sh` measures `jwt-auth`'s `GET /api/me` against it in the same run.
//!
//! Settings (environment): `BIND_ADDRESS` (default `127.0.0.1:18081`), `JWT_SECRET` (required,
//! the server's HS256 secret), `JWT_ISSUER` (default `jwt-auth`), `JWT_AUDIENCE` (default
//! `api`).

use actix_web::http::header::AUTHORIZATION;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
}

struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

async fn verify(req: HttpRequest, verifier: web::Data<Verifier>) -> HttpResponse {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else { return HttpResponse::Unauthorized().finish() };
    match decode::<Claims>(token, &verifier.key, &verifier.validation) {
        Ok(data) => {
            HttpResponse::Ok().json(json!({"id": data.claims.sub, "roles": data.claims.roles}))
        }
        Err(_) => HttpResponse::Unauthorized().finish(),
    }
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let Ok(secret) = std::env::var("JWT_SECRET") else {
        eprintln!("bare_verify: JWT_SECRET (the server's HS256 secret) is required");
        std::process::exit(2);
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[setting("JWT_ISSUER", "jwt-auth")]);
    validation.set_audience(&[setting("JWT_AUDIENCE", "api")]);
    let verifier =
        web::Data::new(Verifier { key: DecodingKey::from_secret(secret.as_bytes()), validation });
    let bind = setting("BIND_ADDRESS", "127.0.0.1:18081");
    HttpServer::new(move || {
        App::new().app_data(verifier.clone()).route("/verify", web::get().to(verify))
    })
    .bind(bind)?
    .run()
    .await
}
