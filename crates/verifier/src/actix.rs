//! actix-web extractors: [`Authenticated`] for any valid access token, [`RequireRole`] for a
//! role. They read the [`Verifier`] from `web::Data<Verifier>` and answer refusals as the
//! `jwt-auth` server does ([`AuthError`]).
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

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, AUTHORIZATION, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use jwt_core::AccessClaims;

use crate::error::{AuthError, bearer_token};
use crate::{Role, Verifier};

/// The caller, proven by a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: AccessClaims,
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, AuthError> {
    let Some(verifier) = req.app_data::<web::Data<Verifier>>() else {
        // A mistake in the app's set-up, not the caller's: said loudly, with the route.
        tracing::error!(
            method = %req.method(),
            path = %req.path(),
            "this route takes an Authenticated or a RequireRole, but no web::Data<Verifier> is \
             registered: add .app_data(web::Data::new(verifier)) to the App"
        );
        return Err(AuthError::Internal("no web::Data<Verifier> registered with the app"));
    };
    let token = bearer_token(req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes))?;
    let claims = verifier.verify(token).map_err(|e| {
        tracing::debug!(reason = %e, "refused an access token");
        AuthError::from(e)
    })?;
    Ok(Authenticated { claims })
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
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

impl<R: Role> FromRequest for RequireRole<R> {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|caller| {
            if caller.claims.has_role(R::NAME) {
                Ok(Self { caller, role: PhantomData })
            } else {
                Err(AuthError::InsufficientRole(R::NAME))
            }
        }))
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
