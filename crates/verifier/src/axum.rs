//! axum integration: [`VerifierLayer`] hands the [`Verifier`] to every request, and the
//! extractors [`Authenticated`] and [`RequireRole`] check the bearer token, answering
//! refusals as the `jwt-auth` server does ([`AuthError`]).
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

use std::marker::PhantomData;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::header::{self, AUTHORIZATION, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use jwt_core::AccessClaims;

use crate::error::{AuthError, bearer_token};
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

/// The caller, proven by a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: AccessClaims,
}

fn authenticate(parts: &Parts) -> Result<Authenticated, AuthError> {
    let Some(verifier) = parts.extensions.get::<Verifier>() else {
        // A mistake in the app's set-up, not the caller's: said once per request, loudly,
        // with the route, so that it is found at the first request rather than in a 500.
        tracing::error!(
            method = %parts.method,
            path = %parts.uri.path(),
            "this route takes an Authenticated or a RequireRole, but no VerifierLayer is in \
             front of it: add .layer(VerifierLayer::new(verifier)) to the router (after the \
             routes it protects)"
        );
        return Err(AuthError::Internal("no VerifierLayer in front of this route"));
    };
    let token = bearer_token(parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes))?;
    let claims = verifier.verify(token).map_err(|e| {
        tracing::debug!(reason = %e, "refused an access token");
        AuthError::from(e)
    })?;
    Ok(Authenticated { claims })
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthError> {
        authenticate(parts)
    }
}

/// The caller, authenticated and holding role `R` (401 without a valid token, 403
/// `insufficient_role` without the role).
#[derive(Debug)]
pub struct RequireRole<R: Role> {
    /// The caller.
    pub caller: Authenticated,
    role: PhantomData<R>,
}

impl<S: Send + Sync, R: Role> FromRequestParts<S> for RequireRole<R> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthError> {
        let caller = authenticate(parts)?;
        if caller.claims.has_role(R::NAME) {
            Ok(Self { caller, role: PhantomData })
        } else {
            Err(AuthError::InsufficientRole(R::NAME))
        }
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
