//! The route table: every route, and the extractors' settings and errors (body limits, the
//! JSON error format of a bad query, path or form). The server and the tests both call
//! [`configure`].

use crate::extract::MAX_BODY_BYTES;

use actix_web::error::UrlencodedError;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, guard, web};

use crate::cors;
use crate::error::ApiError;
use crate::oauth_error::OAuthError;
use crate::routes::{
    account, admin, authorize, clients_api, console, docs, keys, meta, oauth, openid, revocations,
    users,
};

/// Forms are read only by the OAuth endpoints, so their failures take the RFC 6749 body.
fn form_error(err: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    let status = match &err {
        UrlencodedError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        UrlencodedError::Overflow { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let description = match &err {
        UrlencodedError::ContentType => "expected application/x-www-form-urlencoded".to_owned(),
        UrlencodedError::Overflow { .. } => {
            format!("the request body is larger than {MAX_BODY_BYTES} bytes")
        }
        other => format!("malformed form: {other}"),
    };
    OAuthError::InvalidRequest { status, description }.into()
}

fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidField(format!("bad query string: {err}")).into()
}

fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound(format!("bad path: {err}")).into()
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}

/// A resource whose methods other than `allow` answer 405 in the JSON error format, with
/// `Allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow))
    }))
}

fn post(path: &str) -> actix_web::Resource {
    resource(path, "POST")
}

/// A resource that takes GET and HEAD (RFC 9110 §9.3.2: the same answer without its body).
pub(crate) fn get(path: &str) -> actix_web::Resource {
    resource(path, "GET, HEAD")
}

/// The route of a `get` resource.
pub(crate) fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A permanent redirect to `path`, the canonical spelling of a page's address (`/docs/` is
/// `/docs`), so that a typed or linked trailing slash finds the page instead of a JSON 404.
fn moved_to(path: &'static str) -> actix_web::Route {
    get_or_head().to(move || async move {
        HttpResponse::PermanentRedirect().insert_header((header::LOCATION, path)).finish()
    })
}

/// Every route and extractor setting; the server and the tests both call it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(MAX_BODY_BYTES).error_handler(form_error))
        .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .service(post("/auth/register").route(web::post().to(account::register)))
        .service(post("/auth/login").route(web::post().to(account::login)))
        .service(
            post("/auth/token")
                .wrap(from_fn(cors::registered_post))
                .route(web::post().to(oauth::token)),
        )
        .service(
            resource("/auth/authorize", "GET, HEAD, POST")
                .route(get_or_head().to(authorize::authorize))
                .route(web::post().to(authorize::submit)),
        )
        .service(get("/auth/sign-in.css").route(get_or_head().to(authorize::style)))
        .service(
            get("/auth/userinfo")
                .wrap(from_fn(cors::registered_get))
                .route(get_or_head().to(openid::userinfo)),
        )
        .service(
            resource("/auth/end-session", "GET, HEAD, POST")
                .route(get_or_head().to(openid::end_session))
                .route(web::post().to(openid::confirm_end_session)),
        )
        .service(
            get("/.well-known/openid-configuration")
                .wrap(from_fn(cors::public))
                .route(get_or_head().to(meta::openid_configuration)),
        )
        .service(post("/auth/refresh").route(web::post().to(account::refresh)))
        .service(post("/auth/logout").route(web::post().to(account::logout)))
        .service(post("/auth/logout-all").route(web::post().to(account::logout_all)))
        .service(
            post("/auth/revoke")
                .wrap(from_fn(cors::registered_post))
                .route(web::post().to(oauth::revoke)),
        )
        .service(post("/auth/introspect").route(web::post().to(oauth::introspect)))
        .service(
            get("/.well-known/jwks.json")
                .wrap(from_fn(cors::public))
                .route(get_or_head().to(meta::jwks)),
        )
        .service(
            get("/.well-known/oauth-authorization-server")
                .wrap(from_fn(cors::public))
                .route(get_or_head().to(meta::metadata)),
        )
        .service(get("/auth/revocations").route(get_or_head().to(revocations::feed)))
        .service(
            get("/api/me").wrap(from_fn(cors::registered_get)).route(get_or_head().to(users::me)),
        )
        .service(get("/api/users").route(get_or_head().to(users::list)))
        .service(get("/api/admin/users/{id}/sessions").route(get_or_head().to(users::sessions)))
        .service(post("/api/admin/users/{id}/revoke").route(web::post().to(users::revoke)))
        .service(
            resource("/api/admin/users/{id}", "GET, HEAD, PATCH")
                .route(get_or_head().to(users::get))
                .route(web::patch().to(users::update)),
        )
        .service(
            post("/api/admin/users/{id}/sessions/{session_id}/revoke")
                .route(web::post().to(admin::revoke_session)),
        )
        .service(get("/api/admin/keys").route(get_or_head().to(keys::keys)))
        .service(post("/api/admin/keys/rotate").route(web::post().to(keys::rotate)))
        .service(post("/api/admin/keys/{kid}/revoke").route(web::post().to(keys::revoke_key)))
        .service(
            resource("/api/admin/clients", "GET, HEAD, POST")
                .route(get_or_head().to(clients_api::list))
                .route(web::post().to(clients_api::add)),
        )
        .service(
            resource("/api/admin/clients/{id}", "DELETE")
                .route(web::delete().to(clients_api::remove)),
        )
        .service(get("/api/admin/events").route(get_or_head().to(admin::events)))
        .service(get("/health").route(get_or_head().to(meta::health)))
        .service(get("/ready").route(get_or_head().to(meta::ready)))
        .service(get("/metrics").route(get_or_head().to(meta::metrics)))
        .service(get("/openapi.json").route(get_or_head().to(crate::openapi::document)))
        .service(get("/docs").route(get_or_head().to(docs::page)))
        .service(get("/docs/").route(moved_to("/docs")))
        .service(get("/docs/{file}").route(get_or_head().to(docs::asset)))
        .service(get("/console").route(get_or_head().to(console::page)))
        .service(get("/console/").route(moved_to("/console")))
        .service(get("/console/{file}").route(get_or_head().to(console::asset)))
        .default_service(web::to(not_found));
}
