//! Who is calling: the caller types the extractors hand to a handler, written once and free of
//! any web framework. [`Authenticated`] is any valid access token, [`AuthenticatedWith`] one
//! read with claims of your own, [`RequireRole`] one whose caller holds a role, and
//! `Option<Authenticated>` a caller who may also be anonymous; the role checks are theirs.
//!
//! How a caller is made from a request is here too ([`FromAuthorization`]): the framework
//! modules find the [`Verifier`] and the `Authorization` header in their own request type and
//! leave the rest to this module, so that actix-web and axum refuse the same requests with the
//! same [`AuthError`]. They re-export these types: with both features,
//! `actix::Authenticated` and `axum::Authenticated` are one type.

use std::marker::PhantomData;

use jwt_core::AccessClaims;
use serde::de::DeserializeOwned;

use crate::error::{AuthError, bearer_token};
use crate::{Role, Verifier};

/// The caller, proven by a valid, unrevoked access token.
///
/// Without one the request is refused: 401 with an RFC 6750 challenge (`missing_token`,
/// `invalid_token`, `token_expired`, `token_revoked`), or 503 `unavailable` until the
/// verifier is ready.
///
/// A route that also serves anonymous callers takes `Option<Authenticated>` with axum, and
/// `MaybeAuthenticated` with actix-web (whose own `Option<T>` turns every refusal into `None`).
/// Either is `None` only when no bearer token is presented (no `Authorization` header, or one
/// of another scheme, which `Authenticated` answers `missing_token`). A token that is
/// presented is verified and refused exactly as `Authenticated` does: an invalid, expired or
/// revoked token is a 401, never a silent `None`, and before the verifier is ready a token is
/// a 503.
///
/// ```
/// use jwt_auth_verifier::axum::Authenticated;
///
/// async fn greeting(caller: Option<Authenticated>) -> String {
///     match caller {
///         Some(caller) => format!("hello {}", caller.claims.sub),
///         None => "hello stranger".to_owned(),
///     }
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(greeting));
/// ```
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: AccessClaims,
}

impl Authenticated {
    /// Passes when the caller holds at least one of `roles`; otherwise the refusal of
    /// [`RequireRole`]: 403 `insufficient_role` (one role answers exactly as `RequireRole`
    /// does; the message of several names them all). An empty `roles` passes no one: it is
    /// the application's mistake, answered 500 and logged.
    ///
    /// For roles known only at run time (from configuration, per resource); `&'static str`
    /// because the refusal names one. With `?` in a handler that returns
    /// `Result<_, AuthError>` (or, with actix-web, `actix_web::Error`), the refusal is the
    /// answer. With actix-web:
    ///
    /// ```
    /// use actix_web::HttpResponse;
    /// use jwt_auth_verifier::AuthError;
    /// use jwt_auth_verifier::actix::Authenticated;
    ///
    /// async fn publish(caller: Authenticated) -> Result<HttpResponse, AuthError> {
    ///     caller.require_any_role(&["admin", "editor"])?;
    ///     Ok(HttpResponse::NoContent().finish())
    /// }
    /// # let _ = actix_web::App::new().route("/", actix_web::web::post().to(publish));
    /// ```
    ///
    /// With axum:
    ///
    /// ```
    /// use jwt_auth_verifier::AuthError;
    /// use jwt_auth_verifier::axum::Authenticated;
    ///
    /// async fn publish(caller: Authenticated) -> Result<&'static str, AuthError> {
    ///     caller.require_any_role(&["admin", "editor"])?;
    ///     Ok("published")
    /// }
    /// # let _: axum::Router = axum::Router::new().route("/", axum::routing::post(publish));
    /// ```
    pub fn require_any_role(&self, roles: &[&'static str]) -> Result<(), AuthError> {
        require_any_role(&self.claims, roles)
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

/// The caller, proven by a valid, unrevoked access token that also carries the issuer's extra
/// claims `X` ([`Verifier::verify_with`]): [`Authenticated`] with typed claims.
///
/// Every refusal is [`Authenticated`]'s, and a token whose claims do not deserialize into
/// `X` (a claim missing, or of another type) is one more invalid token: 401
/// `invalid_token`, "token claims are invalid". With actix-web:
///
/// ```
/// use actix_web::HttpResponse;
/// use jwt_auth_verifier::actix::AuthenticatedWith;
///
/// #[derive(serde::Deserialize)]
/// struct Tenant {
///     tenant: String,
/// }
///
/// async fn invoices(caller: AuthenticatedWith<Tenant>) -> HttpResponse {
///     let tenant = &caller.claims.extra.tenant;
///     HttpResponse::Ok().body(format!("invoices of {tenant} for {}", caller.claims.sub))
/// }
/// # let _ = actix_web::App::new().route("/", actix_web::web::get().to(invoices));
/// ```
///
/// With axum:
///
/// ```
/// use jwt_auth_verifier::axum::AuthenticatedWith;
///
/// #[derive(serde::Deserialize)]
/// struct Tenant {
///     tenant: String,
/// }
///
/// async fn invoices(caller: AuthenticatedWith<Tenant>) -> String {
///     format!("invoices of {} for {}", caller.claims.extra.tenant, caller.claims.sub)
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(invoices));
/// ```
#[derive(Debug, Clone)]
pub struct AuthenticatedWith<X> {
    /// The token's claims, the extra ones in `claims.extra`.
    pub claims: AccessClaims<X>,
}

impl<X> AuthenticatedWith<X> {
    /// [`Authenticated::require_any_role`], with the same answers. With actix-web:
    ///
    /// ```
    /// use actix_web::HttpResponse;
    /// use jwt_auth_verifier::AuthError;
    /// use jwt_auth_verifier::actix::AuthenticatedWith;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Tenant {
    ///     tenant: String,
    /// }
    ///
    /// async fn close(caller: AuthenticatedWith<Tenant>) -> Result<HttpResponse, AuthError> {
    ///     caller.require_any_role(&["admin", "accountant"])?;
    ///     Ok(HttpResponse::Ok().body(format!("closed {}", caller.claims.extra.tenant)))
    /// }
    /// # let _ = actix_web::App::new().route("/", actix_web::web::post().to(close));
    /// ```
    ///
    /// With axum:
    ///
    /// ```
    /// use jwt_auth_verifier::AuthError;
    /// use jwt_auth_verifier::axum::AuthenticatedWith;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Tenant {
    ///     tenant: String,
    /// }
    ///
    /// async fn close(caller: AuthenticatedWith<Tenant>) -> Result<String, AuthError> {
    ///     caller.require_any_role(&["admin", "accountant"])?;
    ///     Ok(format!("closed {}", caller.claims.extra.tenant))
    /// }
    /// # let _: axum::Router = axum::Router::new().route("/", axum::routing::post(close));
    /// ```
    pub fn require_any_role(&self, roles: &[&'static str]) -> Result<(), AuthError> {
        require_any_role(&self.claims, roles)
    }
}

/// A caller made from a request, once its framework has found the [`Verifier`] and the
/// `Authorization` header value: what every extractor of `actix` and `axum` does after that.
pub(crate) trait FromAuthorization: Sized {
    /// The caller presenting `authorization`, or the refusal to answer.
    fn from_authorization(
        verifier: &Verifier,
        authorization: Option<&[u8]>,
    ) -> Result<Self, AuthError>;
}

impl FromAuthorization for Authenticated {
    fn from_authorization(
        verifier: &Verifier,
        authorization: Option<&[u8]>,
    ) -> Result<Self, AuthError> {
        authenticate(verifier, authorization).map(|claims| Authenticated { claims })
    }
}

impl<X: DeserializeOwned> FromAuthorization for AuthenticatedWith<X> {
    fn from_authorization(
        verifier: &Verifier,
        authorization: Option<&[u8]>,
    ) -> Result<Self, AuthError> {
        authenticate(verifier, authorization).map(|claims| AuthenticatedWith { claims })
    }
}

impl<R: Role> FromAuthorization for RequireRole<R> {
    fn from_authorization(
        verifier: &Verifier,
        authorization: Option<&[u8]>,
    ) -> Result<Self, AuthError> {
        let caller = Authenticated::from_authorization(verifier, authorization)?;
        caller.require_any_role(&[R::NAME])?;
        Ok(Self { caller, role: PhantomData })
    }
}

/// The caller who may be anonymous (axum's `Option<Authenticated>`, actix-web's
/// `MaybeAuthenticated`): `None` only without a bearer token; a token that is presented is
/// verified and refused as [`Authenticated`] refuses it.
impl FromAuthorization for Option<Authenticated> {
    fn from_authorization(
        verifier: &Verifier,
        authorization: Option<&[u8]>,
    ) -> Result<Self, AuthError> {
        match bearer_token(authorization) {
            Err(AuthError::MissingToken) => Ok(None),
            Err(refused) => Err(refused),
            Ok(token) => verify(verifier, token).map(|claims| Some(Authenticated { claims })),
        }
    }
}

fn authenticate<X: DeserializeOwned>(
    verifier: &Verifier,
    authorization: Option<&[u8]>,
) -> Result<AccessClaims<X>, AuthError> {
    let token = bearer_token(authorization)?;
    verify(verifier, token)
}

fn verify<X: DeserializeOwned>(
    verifier: &Verifier,
    token: &str,
) -> Result<AccessClaims<X>, AuthError> {
    verifier.verify_with(token).map_err(|e| {
        tracing::debug!(reason = %e, "refused an access token");
        AuthError::from(e)
    })
}

/// The one role check of the extractors: `RequireRole<R>` asks it for `[R::NAME]`, and the
/// `require_any_role` methods for the roles their caller names. Holding any one of `roles`
/// passes; otherwise the refusal is [`AuthError::InsufficientRole`] for one role (exactly as
/// `RequireRole` answers) and [`AuthError::InsufficientRoles`], naming them all, for several.
/// No roles at all is the application's mistake, not the caller's: a 500 whose cause is
/// logged when it is answered.
fn require_any_role<X>(claims: &AccessClaims<X>, roles: &[&'static str]) -> Result<(), AuthError> {
    match roles {
        [] => Err(AuthError::Internal("require_any_role was given no roles")),
        _ if roles.iter().any(|role| claims.has_role(role)) => Ok(()),
        [only] => Err(AuthError::InsufficientRole(only)),
        several => Err(AuthError::InsufficientRoles(several.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use jwt_core::{Audience, NoExtra};

    use super::*;
    use crate::Admin;

    fn claims(roles: &[&str]) -> AccessClaims {
        AccessClaims {
            iss: "https://auth.example".into(),
            sub: "alice".into(),
            aud: Audience::One("api".into()),
            exp: 2,
            nbf: 1,
            iat: 1,
            jti: "j".into(),
            sid: "s".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            email: None,
            client_id: None,
            scope: None,
            cnf: None,
            extra: NoExtra {},
        }
    }

    #[test]
    fn any_one_of_the_roles_passes_and_the_refusal_names_them() {
        let editor = claims(&["user", "editor"]);
        assert!(require_any_role(&editor, &["admin", "editor"]).is_ok());
        assert!(require_any_role(&editor, &["editor"]).is_ok());
        let refused = require_any_role(&claims(&["user"]), &["admin"]).unwrap_err();
        assert_eq!(refused.body(), AuthError::InsufficientRole(Admin::NAME).body());
        let refused = require_any_role(&claims(&["user"]), &["admin", "editor"]).unwrap_err();
        assert_eq!((refused.status(), refused.code()), (403, "insufficient_role"));
        assert_eq!(
            refused.message(),
            "this endpoint requires one of the roles `admin`, `editor`",
            "{refused:?}"
        );
        let refused = require_any_role(&claims(&[]), &["editor"]).unwrap_err();
        assert!(matches!(refused, AuthError::InsufficientRole("editor")), "{refused:?}");
    }

    #[test]
    fn no_roles_at_all_is_the_applications_mistake() {
        let refused = require_any_role(&claims(&["admin"]), &[]).unwrap_err();
        assert_eq!((refused.status(), refused.code()), (500, "internal_error"));
    }
}
