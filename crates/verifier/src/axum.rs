//! axum integration: [`VerifierLayer`] hands the [`Verifier`] to every request, and the
//! extractors check the access token (and the DPoP proof of a bound one, see
//! [`Authenticated`]), answering refusals as the `jwt-auth` server does
//! ([`AuthError`]): [`Authenticated`] for any valid access token (and `Option<Authenticated>`
//! for a route that also serves anonymous callers), [`RequireRole`] for a role,
//! [`AuthenticatedWith`] for a token with your own claims. A role chosen at run time is
//! [`Authenticated::require_any_role`]. The caller types are `actix`'s too, written once for
//! both frameworks; what is here is the layer, and how axum takes them from a request.
//!
//! ```
//! use axum::Router;
//! use axum::routing::get;
//! use jwt_auth_verifier::axum::{Authenticated, RequireRole, VerifierLayer};
//! use jwt_auth_verifier::{Admin, KeySource, Verifier};
//!
//! async fn me(caller: Authenticated) -> String {
//!     caller.claims.sub
//! }
//!
//! async fn admin_only(_: RequireRole<Admin>) -> &'static str {
//!     "ok"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = jwt_core::Secret::generate();
//! let verifier = Verifier::builder(KeySource::hs256("https://auth.example", secret), "api")
//!     .start()?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/admin", get(admin_only))
//!     .layer(VerifierLayer::new(verifier));
//!
//! use tower::ServiceExt;
//! let request = axum::http::Request::get("/me").body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="jwt-auth""#);
//! # Ok(()) }
//! ```
//!
//! A role check for a group of routes is the same method in a middleware, through axum's
//! [`from_fn`](axum::middleware::from_fn), which takes extractors as handlers do; the
//! `VerifierLayer` goes outside it:
//!
//! ```
//! use axum::extract::Request;
//! use axum::middleware::{Next, from_fn};
//! use axum::response::Response;
//! use axum::routing::put;
//! use axum::Router;
//! use jwt_auth_verifier::AuthError;
//! use jwt_auth_verifier::axum::{Authenticated, VerifierLayer};
//! # use jwt_auth_verifier::{KeySource, Verifier};
//!
//! async fn editors_only(
//!     caller: Authenticated,
//!     request: Request,
//!     next: Next,
//! ) -> Result<Response, AuthError> {
//!     caller.require_any_role(&["admin", "editor"])?;
//!     Ok(next.run(request).await)
//! }
//!
//! # fn app(verifier: Verifier) -> Router {
//! Router::new()
//!     .route("/articles/{id}", put(|| async { "saved" }))
//!     .route_layer(from_fn(editors_only))
//!     .layer(VerifierLayer::new(verifier))
//! # }
//! ```

use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::OriginalUri;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::{self, AUTHORIZATION, HOST, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub use crate::caller::{Authenticated, AuthenticatedWith, RequireRole};
use crate::caller::{FromRequestView, RequestView};
use crate::error::AuthError;
use crate::{Role, Verifier};

/// A layer that puts the [`Verifier`] into every request's extensions, where the extractors
/// find it.
#[derive(Debug, Clone)]
pub struct VerifierLayer {
    verifier: Verifier,
}

impl VerifierLayer {
    /// A layer handing out `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl<S> tower_layer::Layer<S> for VerifierLayer {
    type Service = VerifierService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifierService { inner, verifier: self.verifier.clone() }
    }
}

/// The service of [`VerifierLayer`].
#[derive(Debug, Clone)]
pub struct VerifierService<S> {
    inner: S,
    verifier: Verifier,
}

impl<S, B> tower_service::Service<Request<B>> for VerifierService<S>
where
    S: tower_service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.verifier.clone());
        self.inner.call(request)
    }
}

/// The [`Verifier`] the layer put in; its absence is a mistake in the app's set-up, not the
/// caller's: said once per request, loudly, with the route, so that it is found at the first
/// request rather than in a 500.
fn verifier(parts: &Parts) -> Result<&Verifier, AuthError> {
    match parts.extensions.get::<Verifier>() {
        Some(verifier) => Ok(verifier),
        None => {
            tracing::error!(
                method = %parts.method,
                path = %parts.uri.path(),
                "this route takes an extractor of jwt_auth_verifier (Authenticated, \
                 RequireRole, ...), but no VerifierLayer is in front of it: add \
                 .layer(VerifierLayer::new(verifier)) to the router (after the routes it \
                 protects)"
            );
            Err(AuthError::Internal("no VerifierLayer in front of this route"))
        }
    }
}

/// The caller of `parts` as `T`: the layer's verifier first, then the request's headers.
fn extract<T: FromRequestView>(parts: &Parts) -> Result<T, AuthError> {
    let verifier = verifier(parts)?;
    T::from_request_view(verifier, parts)
}

/// The URI the client sent: inside a nested router, `parts.uri` has lost the prefix the
/// router was nested at; the router kept the whole one.
fn original_uri(parts: &Parts) -> &Uri {
    parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |original| &original.0)
}

impl RequestView for Parts {
    fn authorization(&self) -> Option<&[u8]> {
        self.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes)
    }

    fn dpop_headers(&self) -> impl Iterator<Item = &[u8]> {
        self.headers.get_all("dpop").into_iter().map(HeaderValue::as_bytes)
    }

    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn host(&self) -> Option<&[u8]> {
        match self.headers.get(HOST) {
            Some(host) => Some(host.as_bytes()),
            None => original_uri(self).authority().map(|authority| authority.as_str().as_bytes()),
        }
    }

    fn path(&self) -> &str {
        original_uri(self).path()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthError> {
        extract(parts)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, AuthError> {
        extract(parts)
    }
}

impl<S: Send + Sync, R: Role> FromRequestParts<S> for RequireRole<R> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthError> {
        extract(parts)
    }
}

impl<S: Send + Sync, X: DeserializeOwned> FromRequestParts<S> for AuthenticatedWith<X> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthError> {
        extract(parts)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.log_fault();
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Body::from(self.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.www_authenticate() {
            let value = HeaderValue::from_str(&challenge)
                .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer realm="jwt-auth""#));
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
