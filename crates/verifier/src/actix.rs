//! actix-web extractors: [`Authenticated`] for any valid access token, [`RequireRole`] for a
//! role, [`AuthenticatedWith`] for a token with your own claims, and [`MaybeAuthenticated`]
//! for a route that also serves anonymous callers. A role chosen at run time is
//! [`Authenticated::require_any_role`]. They read the [`Verifier`] from `web::Data<Verifier>`
//! and answer refusals as the `jwt-auth` server does ([`AuthError`]), DPoP-bound tokens
//! included (see [`Authenticated`]; behind a proxy, set
//! [`VerifierBuilder::public_url`](crate::VerifierBuilder::public_url)). The caller types are
//! `axum`'s too, written once for both frameworks; what is here is how actix-web takes them
//! from a request.
//!
//! ```
//! use actix_web::{App, HttpResponse, test, web};
//! use jwt_auth_verifier::actix::{Authenticated, RequireRole};
//! use jwt_auth_verifier::{Admin, KeySource, Verifier};
//!
//! async fn me(caller: Authenticated) -> HttpResponse {
//!     HttpResponse::Ok().body(caller.claims.sub)
//! }
//!
//! async fn admin_only(_: RequireRole<Admin>) -> HttpResponse {
//!     HttpResponse::NoContent().finish()
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let secret = jwt_core::Secret::generate();
//! let verifier = Verifier::builder(KeySource::hs256("https://auth.example", secret), "api")
//!     .start()?;
//! let app = test::init_service(
//!     App::new()
//!         .app_data(web::Data::new(verifier))
//!         .route("/me", web::get().to(me))
//!         .route("/admin", web::get().to(admin_only)),
//! )
//! .await;
//! let response = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
//! assert_eq!(response.status(), 401);
//! let challenge = response.headers().get("www-authenticate").unwrap();
//! assert_eq!(challenge, r#"Bearer realm="jwt-auth""#);
//! # Ok::<(), jwt_auth_verifier::ConfigError>(()) }).unwrap();
//! ```
//!
//! A role check for a whole scope is the same method in a middleware, through actix-web's
//! [`from_fn`](actix_web::middleware::from_fn), which takes extractors as handlers do:
//!
//! ```
//! use actix_web::body::MessageBody;
//! use actix_web::dev::{ServiceRequest, ServiceResponse};
//! use actix_web::middleware::{Next, from_fn};
//! use actix_web::{App, HttpResponse, web};
//! use jwt_auth_verifier::actix::Authenticated;
//!
//! async fn editors_only(
//!     caller: Authenticated,
//!     request: ServiceRequest,
//!     next: Next<impl MessageBody>,
//! ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
//!     caller.require_any_role(&["admin", "editor"])?;
//!     next.call(request).await
//! }
//!
//! let app = App::new().service(
//!     web::scope("/articles")
//!         .wrap(from_fn(editors_only))
//!         .route("/{id}", web::put().to(HttpResponse::NoContent)),
//! );
//! ```

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, AUTHORIZATION, HOST, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::de::DeserializeOwned;

pub use crate::caller::{Authenticated, AuthenticatedWith, RequireRole};
use crate::caller::{FromRequestView, RequestView};
use crate::error::AuthError;
use crate::{Role, Verifier};

/// The `web::Data<Verifier>` of the app; its absence is a mistake in the app's set-up, not
/// the caller's: said loudly, with the route, and answered 500.
fn verifier(req: &HttpRequest) -> Result<&Verifier, AuthError> {
    match req.app_data::<web::Data<Verifier>>() {
        Some(verifier) => Ok(verifier),
        None => {
            tracing::error!(
                method = %req.method(),
                path = %req.path(),
                "this route takes an extractor of jwt_auth_verifier (Authenticated, \
                 RequireRole, ...), but no web::Data<Verifier> is registered: add \
                 .app_data(web::Data::new(verifier)) to the App"
            );
            Err(AuthError::Internal("no web::Data<Verifier> registered with the app"))
        }
    }
}

/// The caller of `req` as `T`: the app's verifier first, then the request's headers.
fn extract<T: FromRequestView>(req: &HttpRequest) -> Result<T, AuthError> {
    let verifier = verifier(req)?;
    T::from_request_view(verifier, req)
}

impl RequestView for HttpRequest {
    fn authorization(&self) -> Option<&[u8]> {
        self.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes)
    }

    fn dpop_headers(&self) -> impl Iterator<Item = &[u8]> {
        self.headers().get_all("dpop").map(HeaderValue::as_bytes)
    }

    fn method(&self) -> &str {
        HttpRequest::method(self).as_str()
    }

    fn host(&self) -> Option<&[u8]> {
        match self.headers().get(HOST) {
            Some(host) => Some(host.as_bytes()),
            None => self.uri().authority().map(|authority| authority.as_str().as_bytes()),
        }
    }

    fn path(&self) -> &str {
        HttpRequest::path(self)
    }
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract(req))
    }
}

impl<R: Role> FromRequest for RequireRole<R> {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract(req))
    }
}

impl<X: DeserializeOwned> FromRequest for AuthenticatedWith<X> {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract(req))
    }
}

/// The caller if an access token is presented, `None` if not: for a route that serves
/// anonymous callers too, and more to an authenticated one.
///
/// Only the absence of an access token is anonymous (no `Authorization` header, or one of
/// another scheme than `Bearer` and `DPoP`, which [`Authenticated`] answers `missing_token`).
/// A token that is presented is verified as [`Authenticated`] verifies it and refused as it
/// refuses it: an invalid, expired or revoked token, or a DPoP-bound one without a proof of
/// its key, is a 401, never a silent `None`, and before the verifier is ready a token is a
/// 503.
///
/// Not `Option<Authenticated>`: actix-web's `Option<T>` turns every refusal into `None`, so a
/// revoked token would be served as an anonymous caller.
///
/// ```
/// use actix_web::HttpResponse;
/// use jwt_auth_verifier::actix::MaybeAuthenticated;
///
/// async fn greeting(MaybeAuthenticated(caller): MaybeAuthenticated) -> HttpResponse {
///     match caller {
///         Some(caller) => HttpResponse::Ok().body(format!("hello {}", caller.claims.sub)),
///         None => HttpResponse::Ok().body("hello stranger"),
///     }
/// }
/// # let _ = actix_web::App::new().route("/", actix_web::web::get().to(greeting));
/// ```
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<Authenticated>);

impl FromRequest for MaybeAuthenticated {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract(req).map(MaybeAuthenticated))
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.log_fault();
        let mut response = HttpResponse::build(self.status_code());
        if let Some(challenge) = self.www_authenticate() {
            let value = HeaderValue::from_str(&challenge)
                .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer realm="jwt-auth""#));
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        response.content_type("application/json").body(self.body())
    }
}
