//! Who is calling: the caller types the extractors hand to a handler, written once and free of
//! any web framework. [`Authenticated`] is any valid access token, [`AuthenticatedWith`] one
//! read with claims of your own, [`RequireRole`] one whose caller holds a role, and
//! `Option<Authenticated>` a caller who may also be anonymous; the role checks are theirs.
//!
//! How a caller is made from a request is here too ([`FromRequestView`]): the framework
//! modules find the [`Verifier`] in their own request type and show this module the request's
//! `Authorization` and `DPoP` headers, method, host and path ([`RequestView`]); the rest,
//! DPoP (RFC 9449) included, is done here once, so that actix-web and axum refuse the same
//! requests with the same [`AuthError`]. They re-export these types: with both features,
//! `actix::Authenticated` and `axum::Authenticated` are one type.

use std::marker::PhantomData;

use jwt_core::{AccessClaims, Confirmation, DpopRequest, TokenScheme};
use serde::de::DeserializeOwned;

use crate::error::{AuthError, VerifyError};
use crate::shared::Shared;
use crate::{Role, Verifier};

/// The caller, proven by a valid, unrevoked access token.
///
/// Without one the request is refused: 401 with an RFC 6750 challenge (`missing_token`,
/// `invalid_token`, `token_expired`, `token_revoked`), or 503 `unavailable` until the
/// verifier is ready.
///
/// A token bound to a DPoP key (RFC 9449, a `cnf` claim) is accepted only as
/// `Authorization: DPoP` with a `DPoP` proof of that key for this request's method and URL
/// (see [`VerifierBuilder::public_url`](crate::VerifierBuilder::public_url)), each proof once;
/// a token bound to none only as `Authorization: Bearer`. Those refusals, and every refusal
/// of a token presented with the `DPoP` scheme, are 401 with RFC 9449's challenge
/// ([`AuthError::Dpop`]), exactly as the server answers them.
///
/// A route that also serves anonymous callers takes `Option<Authenticated>` with axum, and
/// `MaybeAuthenticated` with actix-web (whose own `Option<T>` turns every refusal into `None`).
/// Either is `None` only when no access token is presented (no `Authorization` header, or one
/// of another scheme than `Bearer` and `DPoP`, which `Authenticated` answers `missing_token`).
/// A token that is presented is verified and refused exactly as `Authenticated` does: an
/// invalid, expired or revoked token, or a bound one without its proof, is a 401, never a
/// silent `None`, and before the verifier is ready a token is a 503.
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

/// A request as the extractors read it, whatever its framework: the framework modules
/// implement it on their own request type, and [`FromRequestView`] reads only what a check
/// needs (the `DPoP` headers, the method, the host and the path only for a token presented
/// with the `DPoP` scheme or bound to a key).
pub(crate) trait RequestView {
    /// The value of the `Authorization` header, if the request has one.
    fn authorization(&self) -> Option<&[u8]>;
    /// The values of the request's `DPoP` headers.
    fn dpop_headers(&self) -> impl Iterator<Item = &[u8]>;
    /// The HTTP method.
    fn method(&self) -> &str;
    /// The host the client addressed: the `Host` header, or without one the authority of the
    /// request's URI (HTTP/2's `:authority`).
    fn host(&self) -> Option<&[u8]>;
    /// The path of the request's URI as sent (not percent-decoded), without the query.
    fn path(&self) -> &str;
}

/// A caller made from a request, once its framework has found the [`Verifier`]: what every
/// extractor of `actix` and `axum` does after that.
pub(crate) trait FromRequestView: Sized {
    /// The caller of `request`, or the refusal to answer.
    fn from_request_view(
        verifier: &Verifier,
        request: &impl RequestView,
    ) -> Result<Self, AuthError>;
}

impl FromRequestView for Authenticated {
    fn from_request_view(
        verifier: &Verifier,
        request: &impl RequestView,
    ) -> Result<Self, AuthError> {
        authenticate(verifier, request).map(|claims| Authenticated { claims })
    }
}

impl<X: DeserializeOwned> FromRequestView for AuthenticatedWith<X> {
    fn from_request_view(
        verifier: &Verifier,
        request: &impl RequestView,
    ) -> Result<Self, AuthError> {
        authenticate(verifier, request).map(|claims| AuthenticatedWith { claims })
    }
}

impl<R: Role> FromRequestView for RequireRole<R> {
    fn from_request_view(
        verifier: &Verifier,
        request: &impl RequestView,
    ) -> Result<Self, AuthError> {
        let caller = Authenticated::from_request_view(verifier, request)?;
        caller.require_any_role(&[R::NAME])?;
        Ok(Self { caller, role: PhantomData })
    }
}

/// The caller who may be anonymous (axum's `Option<Authenticated>`, actix-web's
/// `MaybeAuthenticated`): `None` only without an access token (no `Authorization` header, or
/// one of another scheme than `Bearer` and `DPoP`); a token that is presented is verified and
/// refused as [`Authenticated`] refuses it.
impl FromRequestView for Option<Authenticated> {
    fn from_request_view(
        verifier: &Verifier,
        request: &impl RequestView,
    ) -> Result<Self, AuthError> {
        match presented_token(request.authorization())? {
            None => Ok(None),
            Some((scheme, token)) => verify(verifier, request, scheme, token)
                .map(|claims| Some(Authenticated { claims })),
        }
    }
}

fn authenticate<X: DeserializeOwned>(
    verifier: &Verifier,
    request: &impl RequestView,
) -> Result<AccessClaims<X>, AuthError> {
    let (scheme, token) =
        presented_token(request.authorization())?.ok_or(AuthError::MissingToken)?;
    verify(verifier, request, scheme, token)
}

/// The access token of an `Authorization` header value and its scheme, as the server reads
/// it: `None` without one; a `DPoP` header that holds no token is refused with the DPoP
/// challenge, a `Bearer` one with the bearer challenge.
fn presented_token(authorization: Option<&[u8]>) -> Result<Option<(TokenScheme, &str)>, AuthError> {
    jwt_core::presented_token(authorization).map_err(|e| {
        let dpop =
            authorization.is_some_and(|h| h.len() >= 5 && h[..5].eq_ignore_ascii_case(b"dpop "));
        if dpop { AuthError::Dpop(e) } else { AuthError::Token(e) }
    })
}

/// The claims of `token`, presented with `scheme` in `request`: verified, then checked for how
/// they were presented (DPoP). What is refused of a token presented with the `DPoP` scheme is
/// answered with the DPoP challenge.
fn verify<X: DeserializeOwned>(
    verifier: &Verifier,
    request: &impl RequestView,
    scheme: TokenScheme,
    token: &str,
) -> Result<AccessClaims<X>, AuthError> {
    let claims = verifier.verify_with(token).map_err(|e| {
        tracing::debug!(reason = %e, "refused an access token");
        match e {
            VerifyError::Token(e) if scheme == TokenScheme::Dpop && e.is_token_rejection() => {
                AuthError::Dpop(e)
            }
            e => AuthError::from(e),
        }
    })?;
    check_presentation(verifier.shared(), request, scheme, token, claims.cnf.as_ref())?;
    Ok(claims)
}

/// The DPoP side of a verified token (RFC 9449 §7), as the server checks it: a token bound to
/// a key (`cnf`) only with the `DPoP` scheme and a fresh proof of that key for this request's
/// method and URL, naming the token in `ath`; a token bound to none only with the `Bearer`
/// scheme. A bearer token bound to no key, the common case, returns at once: no header is read
/// and no URL built.
fn check_presentation(
    shared: &Shared,
    request: &impl RequestView,
    scheme: TokenScheme,
    token: &str,
    cnf: Option<&Confirmation>,
) -> Result<(), AuthError> {
    if scheme == TokenScheme::Bearer && cnf.is_none() {
        return Ok(());
    }
    let refused = |e: AuthError| {
        tracing::debug!(reason = %e, "refused a DPoP presentation");
        e
    };
    let proof =
        jwt_core::dpop_proof(request.dpop_headers()).map_err(|e| refused(AuthError::Dpop(e)))?;
    // Only a proof of a bound token presented as DPoP is held against the URL: a request
    // without one is refused below as the server refuses it, whatever its host.
    let url = match request_url(shared.public_url.as_deref(), request) {
        Ok(url) => url,
        Err(e) if scheme == TokenScheme::Dpop && cnf.is_some() && proof.is_some() => {
            return Err(refused(e));
        }
        Err(_) => String::new(),
    };
    let target = DpopRequest { method: request.method(), url: &url, access_token: Some(token) };
    match shared.dpop.check_presented(scheme, cnf, proof, &target) {
        Ok(_) => Ok(()),
        Err(e) => Err(refused(dpop_refusal(e))),
    }
}

/// The answer to what [`jwt_core::DpopVerifier::check_presented`] refused: a full replay
/// cache is the server's 503; a URL it cannot compare (a path that is no URL path: the
/// public URL was checked at start) is the request's; the rest is RFC 9449's 401.
fn dpop_refusal(error: jwt_core::Error) -> AuthError {
    match error {
        jwt_core::Error::Unavailable(cause) => {
            tracing::warn!(%cause, "refused a DPoP proof that could not be remembered");
            AuthError::Unavailable
        }
        jwt_core::Error::InvalidConfig(_) => AuthError::RequestUrl(NO_URL_PATH),
        error => AuthError::Dpop(error),
    }
}

const NO_HOST: &str = "the request has no Host header naming a plain host[:port] to check its \
                       `htu` against (behind a proxy, set the verifier's public URL)";
const NO_URL_PATH: &str = "the request's path is no URL path to check its `htu` against";

/// The URL the client addressed `request` to, as a proof's `htu` names it: the public URL
/// and the path, or without one `http://`, the request's host and the path (as the server
/// does without `PUBLIC_URL`, for a peer that is no trusted proxy).
fn request_url(public_url: Option<&str>, request: &impl RequestView) -> Result<String, AuthError> {
    let path = request.path();
    if let Some(base) = public_url {
        return Ok(format!("{base}{path}"));
    }
    let plain = |host: &&str| {
        !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    };
    let host = request.host().and_then(|host| std::str::from_utf8(host).ok()).filter(plain);
    match host {
        Some(host) => Ok(format!("http://{host}{path}")),
        None => Err(AuthError::RequestUrl(NO_HOST)),
    }
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

    /// A request of fixed parts; `touched` counts the reads of anything but `Authorization`.
    #[derive(Default)]
    struct Fixed {
        authorization: Option<&'static str>,
        dpop: Vec<&'static str>,
        host: Option<&'static str>,
        path: &'static str,
        touched: std::cell::Cell<usize>,
    }

    impl Fixed {
        fn touch(&self) {
            self.touched.set(self.touched.get() + 1);
        }
    }

    impl RequestView for Fixed {
        fn authorization(&self) -> Option<&[u8]> {
            self.authorization.map(str::as_bytes)
        }
        fn dpop_headers(&self) -> impl Iterator<Item = &[u8]> {
            self.touch();
            self.dpop.iter().map(|v| v.as_bytes())
        }
        fn method(&self) -> &str {
            self.touch();
            "GET"
        }
        fn host(&self) -> Option<&[u8]> {
            self.touch();
            self.host.map(str::as_bytes)
        }
        fn path(&self) -> &str {
            self.touch();
            self.path
        }
    }

    fn verifier() -> (Verifier, jwt_core::TokenService) {
        let secret = jwt_core::Secret::generate();
        let signer = jwt_core::TokenService::new(
            jwt_core::TokenPolicy::new("https://auth.example", "api"),
            jwt_core::KeySet::new(jwt_core::SigningKey::from_secret(secret.clone()).unwrap()),
        )
        .unwrap();
        let verifier =
            Verifier::builder(crate::KeySource::hs256("https://auth.example", secret), "api")
                .start()
                .unwrap();
        (verifier, signer)
    }

    /// The common case, a bearer token bound to no key, reads nothing but `Authorization`:
    /// no `DPoP` header, no host, no URL. The control: the same token as DPoP reads them.
    #[tokio::test]
    async fn a_bearer_token_bound_to_no_key_reads_no_other_header() {
        let (verifier, signer) = verifier();
        let alice = jwt_core::Subject { id: "alice".into(), roles: vec![], email: None };
        let token = signer.issue_access(&alice, "s1", None).unwrap().token.into_string();
        let bearer: &'static str = format!("Bearer {token}").leak();
        let request = Fixed { authorization: Some(bearer), ..Fixed::default() };
        let caller = Authenticated::from_request_view(&verifier, &request).unwrap();
        assert_eq!(caller.claims.sub, "alice");
        assert_eq!(request.touched.get(), 0);

        let dpop: &'static str = format!("DPoP {token}").leak();
        let request = Fixed { authorization: Some(dpop), ..Fixed::default() };
        let refused = Authenticated::from_request_view(&verifier, &request).unwrap_err();
        assert!(
            matches!(refused, AuthError::Dpop(jwt_core::Error::UnboundTokenAsDpop)),
            "{refused:?}"
        );
        assert!(request.touched.get() > 0);
    }

    #[test]
    fn the_url_is_the_public_one_or_the_hosts_over_plain_http() {
        let request =
            |host: Option<&'static str>| Fixed { host, path: "/orders/7", ..Fixed::default() };
        let url = |public: Option<&str>, host| request_url(public, &request(host));
        assert_eq!(
            url(Some("https://api.example"), Some("127.0.0.1:8080")).unwrap(),
            "https://api.example/orders/7"
        );
        assert_eq!(
            url(None, Some("api.example:8080")).unwrap(),
            "http://api.example:8080/orders/7"
        );
        assert_eq!(url(None, Some("[::1]:8080")).unwrap(), "http://[::1]:8080/orders/7");
        for host in [None, Some(""), Some("api.example/x"), Some("user@api.example"), Some("a b")] {
            let refused = url(None, host).unwrap_err();
            assert!(matches!(refused, AuthError::RequestUrl(NO_HOST)), "{host:?}: {refused:?}");
            assert_eq!((refused.status(), refused.code()), (401, "invalid_dpop_proof"));
        }
    }

    #[test]
    fn a_full_replay_cache_is_503_and_a_url_that_cannot_be_compared_the_requests() {
        let full = jwt_core::Error::unavailable(jwt_core::ReplayCacheFull { capacity: 1 });
        let answer = dpop_refusal(full);
        assert!(matches!(answer, AuthError::Unavailable), "{answer:?}");
        assert_eq!((answer.status(), answer.retry_after()), (503, Some(1)));
        let answer = dpop_refusal(jwt_core::Error::InvalidConfig("url".into()));
        assert_eq!((answer.status(), answer.code()), (401, "invalid_dpop_proof"));
        assert_eq!(
            answer.message(),
            "DPoP proof refused: the request's path is no URL path to check its `htu` against"
        );
        let answer = dpop_refusal(jwt_core::Error::BoundTokenAsBearer);
        assert!(matches!(answer, AuthError::Dpop(jwt_core::Error::BoundTokenAsBearer)));
    }

    #[test]
    fn a_dpop_header_without_a_token_gets_the_dpop_challenge() {
        for header in ["DPoP ", "dpop  "] {
            let refused = presented_token(Some(header.as_bytes())).unwrap_err();
            assert!(matches!(refused, AuthError::Dpop(_)), "{header:?}: {refused:?}");
        }
        let refused = presented_token(Some(b"Bearer ")).unwrap_err();
        assert!(matches!(refused, AuthError::Token(_)), "{refused:?}");
        assert!(presented_token(Some(b"Basic abc")).unwrap().is_none());
        assert!(presented_token(Some(b"DPoPx abc")).unwrap().is_none());
    }
}
