//! Cross-origin calls from browsers (CORS) to the few endpoints a single-page app calls:
//!
//! - the token, revocation and UserInfo endpoints and `/api/me` answer the origins of
//!   registered redirect URIs ([`jwt_auth_service::web_origins`]), one origin at a time, never
//!   with credentials (the tokens travel in headers and forms, not cookies);
//! - discovery documents and the JWKS are public: `Access-Control-Allow-Origin: *`.
//!
//! An origin that is not allowed gets the answer it would get without CORS, with no CORS
//! header, so the browser keeps it from the page; its preflight gets the resource's usual
//! 405. No other endpoint answers CORS: the sign-in pages, the console and the admin API are
//! used from the server's own origin only.
//!
//! Written here rather than with a CORS crate because the allowed origins change at run time
//! and are checked against the store asynchronously when one is unknown.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use crate::state::AppState;

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: &str = "600";
/// The request headers an app may send beyond the simple ones (`DPoP`: RFC 9449 proofs).
const ALLOWED_HEADERS: &str = "authorization, content-type, dpop";
/// The answer headers an app may read beyond the simple ones: the challenge of a 401 or 403,
/// how long to wait after a 429, and the DPoP nonce to use.
const EXPOSED_HEADERS: &str = "www-authenticate, retry-after, dpop-nonce";

#[derive(Clone, Copy)]
enum Policy {
    /// The origins of registered redirect URIs, with the resource's methods.
    Registered(&'static str),
    /// Any origin: a public document.
    Public,
}

/// The registered origins, on a resource that takes POST.
pub(crate) async fn registered_post(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    cors(req, next, Policy::Registered("POST")).await
}

/// The registered origins, on a resource that takes GET and HEAD.
pub(crate) async fn registered_get(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    cors(req, next, Policy::Registered("GET, HEAD")).await
}

/// Any origin, on a public document (GET and HEAD).
pub(crate) async fn public(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    cors(req, next, Policy::Public).await
}

async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    policy: Policy,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, Error> {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let allowed = match policy {
        Policy::Public => Some(HeaderValue::from_static("*")),
        Policy::Registered(_) => {
            let state = req.app_data::<web::Data<AppState>>();
            let ok = match (origin.to_str(), state) {
                (Ok(text), Some(state)) => state.origins.allows(text).await,
                _ => false,
            };
            ok.then_some(origin)
        }
    };
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (true, Some(allow_origin)) = (preflight, &allowed) {
        let methods = match policy {
            Policy::Registered(methods) => methods,
            Policy::Public => "GET, HEAD",
        };
        let answer = HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin.clone()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
            .insert_header((
                header::VARY,
                "origin, access-control-request-method, access-control-request-headers",
            ))
            .finish();
        return Ok(req.into_response(answer));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    if let Policy::Registered(_) = policy {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    if let Some(allow_origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    Ok(response)
}
