//! The actix-web and axum integrations answer exactly as the `jwt-auth` server does: 401 with
//! `{"error", "message"}` and an RFC 6750 challenge, 403 `insufficient_role` without one, 503
//! before the verifier is ready. Each refusal beside a request that passes.
//!
//! The role check chosen at run time, the typed claims and the optional caller are served on
//! 127.0.0.1 by each framework, against a local issuer followed through its revocation feed,
//! and each of their refusals is compared with `Authenticated`'s (or `RequireRole`'s) answer
//! to the same request.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, Issuer};
use chrono::{TimeDelta, Utc};
use jwt_auth_verifier::{Admin, ClientSecret, FeedConfig, KeySource, Verifier};
use jwt_core::{
    Algorithm, FeedChange, KeySet, ManualClock, Revocation, SigningKey, Subject, TokenPolicy,
    TokenService,
};

const ISSUER: &str = "https://auth.example";

struct Fixture {
    verifier: Verifier,
    /// A verifier that never gets ready (its issuer does not answer).
    not_ready: Verifier,
    user: String,
    admin: String,
    expired: String,
    revoked: String,
}

/// What a response should be.
struct Expected {
    name: &'static str,
    path: &'static str,
    token: Option<String>,
    not_ready: bool,
    status: u16,
    body: Option<serde_json::Value>,
    challenge: Option<&'static str>,
}

/// A response as seen by a client.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    body: String,
    challenge: Option<String>,
    cache_control: Option<String>,
    retry_after: Option<String>,
    content_type: Option<String>,
}

fn fixture() -> Fixture {
    let secret = jwt_core::Secret::generate();
    let keys = KeySet::new(SigningKey::from_secret(secret.clone()).unwrap());
    let tokens = TokenService::new(TokenPolicy::new(ISSUER, "api"), keys.clone()).unwrap();
    let past = Arc::new(ManualClock::new(Utc::now() - TimeDelta::hours(2)));
    let old_tokens =
        TokenService::new(TokenPolicy::new(ISSUER, "api"), keys).unwrap().with_clock(past);
    let subject = |id: &str, roles: &[&str]| Subject {
        id: id.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        email: None,
    };
    let issue = |service: &TokenService, s: &Subject, sid: &str| {
        service.issue_access(s, sid, None).unwrap().token.into_string()
    };
    let verifier = Verifier::builder(KeySource::hs256(ISSUER, secret), "api").start().unwrap();
    verifier.revocations().apply(&[Revocation::Session {
        id: "revoked-session".into(),
        expires_at: Utc::now() + TimeDelta::hours(1),
    }]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let not_ready = Verifier::builder(KeySource::discover(url), "api").start().unwrap();
    Fixture {
        user: issue(&tokens, &subject("alice", &["user"]), "s1"),
        admin: issue(&tokens, &subject("root", &["admin"]), "s2"),
        expired: issue(&old_tokens, &subject("alice", &["user"]), "s3"),
        revoked: issue(&tokens, &subject("alice", &["user"]), "revoked-session"),
        verifier,
        not_ready,
    }
}

fn expectations(f: &Fixture) -> Vec<Expected> {
    let refusal =
        |code: &str, message: &str| Some(serde_json::json!({"error": code, "message": message}));
    vec![
        Expected {
            name: "valid token",
            path: "/me",
            token: Some(f.user.clone()),
            not_ready: false,
            status: 200,
            body: None,
            challenge: None,
        },
        Expected {
            name: "no token",
            path: "/me",
            token: None,
            not_ready: false,
            status: 401,
            body: refusal("missing_token", "a bearer token is required"),
            challenge: Some(r#"Bearer realm="jwt-auth""#),
        },
        Expected {
            name: "malformed token",
            path: "/me",
            token: Some("not-a-jwt".into()),
            not_ready: false,
            status: 401,
            body: refusal(
                "invalid_token",
                "token is malformed: expected three dot-separated parts",
            ),
            challenge: Some(
                r#"Bearer realm="jwt-auth", error="invalid_token", error_description="token is malformed: expected three dot-separated parts""#,
            ),
        },
        Expected {
            name: "expired token",
            path: "/me",
            token: Some(f.expired.clone()),
            not_ready: false,
            status: 401,
            body: refusal("token_expired", "token has expired"),
            challenge: Some(
                r#"Bearer realm="jwt-auth", error="invalid_token", error_description="token has expired""#,
            ),
        },
        Expected {
            name: "revoked token",
            path: "/me",
            token: Some(f.revoked.clone()),
            not_ready: false,
            status: 401,
            body: refusal("token_revoked", "token has been revoked"),
            challenge: Some(
                r#"Bearer realm="jwt-auth", error="invalid_token", error_description="token has been revoked""#,
            ),
        },
        Expected {
            name: "admin with the role",
            path: "/admin",
            token: Some(f.admin.clone()),
            not_ready: false,
            status: 200,
            body: None,
            challenge: None,
        },
        Expected {
            name: "user without the role",
            path: "/admin",
            token: Some(f.user.clone()),
            not_ready: false,
            status: 403,
            body: refusal("insufficient_role", "this endpoint requires the `admin` role"),
            challenge: None,
        },
        Expected {
            name: "no token for the admin route",
            path: "/admin",
            token: None,
            not_ready: false,
            status: 401,
            body: refusal("missing_token", "a bearer token is required"),
            challenge: Some(r#"Bearer realm="jwt-auth""#),
        },
        Expected {
            name: "verifier not ready",
            path: "/me",
            token: Some(f.user.clone()),
            not_ready: true,
            status: 503,
            body: refusal("unavailable", "the service is temporarily unavailable"),
            challenge: None,
        },
    ]
}

fn check(framework: &str, expected: &Expected, seen: &Seen) {
    let what = format!("{framework}, {}: {seen:?}", expected.name);
    assert_eq!(seen.status, expected.status, "{what}");
    assert_eq!(seen.challenge.as_deref(), expected.challenge, "{what}");
    match &expected.body {
        Some(body) => {
            let parsed: serde_json::Value = serde_json::from_str(&seen.body).expect(&what);
            assert_eq!(&parsed, body, "{what}");
            assert_eq!(seen.cache_control.as_deref(), Some("no-store"), "{what}");
            assert_eq!(seen.content_type.as_deref(), Some("application/json"), "{what}");
        }
        None => assert!(seen.body == "alice" || seen.body == "root", "{what}"),
    }
    let retry_after = (expected.status == 503).then_some("1");
    assert_eq!(seen.retry_after.as_deref(), retry_after, "{what}");
}

/// The roles of the any-of routes (`/editors` by a handler, `/articles/{id}` by a middleware).
const EDITORS: &[&str] = &["admin", "editor"];

/// The issuer's extra claims read by `/tenant`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Tenant {
    tenant: String,
    seats: u32,
}

/// The routes both frameworks serve on 127.0.0.1:
///
/// - `/me` (`Authenticated`) and `/admin` (`RequireRole<Admin>`): the answers to compare with;
/// - `/editors`: `Authenticated` then `require_any_role(EDITORS)`; `/nobody`: the same with no
///   roles at all; `/articles/{id}`: the same check in a middleware;
/// - `/tenant`: `AuthenticatedWith<Tenant>`, answering `"{sub} {tenant} {seats}"`;
/// - `/maybe`: the optional caller, answering the subject or `anonymous`.
///
/// `url` is served with a ready verifier, `not_ready_url` with one that never gets ready.
struct Served {
    url: String,
    not_ready_url: String,
    client: reqwest::Client,
}

impl Served {
    fn new(url: String, not_ready_url: String) -> Self {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Self { url, not_ready_url, client }
    }

    /// `GET path` with this `Authorization` header, if any.
    async fn get(&self, path: &str, authorization: Option<&str>) -> Seen {
        fetch(&self.client, format!("{}{path}", self.url), authorization).await
    }

    /// The same, from the app whose verifier is not ready.
    async fn get_not_ready(&self, path: &str, authorization: Option<&str>) -> Seen {
        fetch(&self.client, format!("{}{path}", self.not_ready_url), authorization).await
    }
}

async fn fetch(client: &reqwest::Client, url: String, authorization: Option<&str>) -> Seen {
    let mut request = client.get(&url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (challenge, cache_control, retry_after, content_type) = (
        header("www-authenticate"),
        header("cache-control"),
        header("retry-after"),
        header("content-type"),
    );
    let status = response.status().as_u16();
    Seen {
        status,
        body: response.text().await.unwrap(),
        challenge,
        cache_control,
        retry_after,
        content_type,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A verifier of `issuer`'s tokens that follows its revocation feed, ready.
async fn following(issuer: &Issuer) -> Verifier {
    let verifier = Verifier::builder(KeySource::discover(&issuer.url), AUDIENCE)
        .feed(FeedConfig::new(CLIENT_ID, ClientSecret::new(CLIENT_SECRET)))
        .start()
        .unwrap();
    assert!(
        verifier.wait_ready(Duration::from_secs(10)).await,
        "not ready: {:?}",
        verifier.status()
    );
    verifier
}

/// A verifier whose issuer does not answer: it never gets ready.
fn never_ready() -> Verifier {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    Verifier::builder(KeySource::discover(url), AUDIENCE).start().unwrap()
}

/// Asserts a refusal: its status, JSON body, challenge and the headers every refusal carries.
fn assert_refusal(what: &str, seen: &Seen, status: u16, code: &str, message: &str) {
    assert_eq!(seen.status, status, "{what}: {seen:?}");
    let body: serde_json::Value =
        serde_json::from_str(&seen.body).unwrap_or_else(|e| panic!("{what}: {e}: {seen:?}"));
    assert_eq!(body, serde_json::json!({"error": code, "message": message}), "{what}");
    let challenge = match (status, code) {
        (401, "missing_token") => Some(r#"Bearer realm="jwt-auth""#.to_owned()),
        (401, _) => Some(format!(
            r#"Bearer realm="jwt-auth", error="invalid_token", error_description="{message}""#
        )),
        _ => None,
    };
    assert_eq!(seen.challenge, challenge, "{what}: {seen:?}");
    assert_eq!(seen.cache_control.as_deref(), Some("no-store"), "{what}: {seen:?}");
    assert_eq!(seen.content_type.as_deref(), Some("application/json"), "{what}: {seen:?}");
    let retry_after = (status == 503).then_some("1");
    assert_eq!(seen.retry_after.as_deref(), retry_after, "{what}: {seen:?}");
}

/// Asserts a 200 with this body.
fn assert_ok(what: &str, seen: &Seen, body: &str) {
    assert_eq!((seen.status, seen.body.as_str()), (200, body), "{what}: {seen:?}");
}

/// A token with a role in `EDITORS` passes `/editors` and `/articles/{id}`; one with none gets
/// `RequireRole`'s 403, naming both roles; no token and a verifier not ready get
/// `Authenticated`'s answer, to the byte.
async fn any_of_the_roles(framework: &str, served: &Served, issuer: &Issuer) {
    let editor = bearer(&issuer.token("ed", "s-ed", &["editor"]));
    let admin = bearer(&issuer.token("root", "s-root", &["admin"]));
    let user = bearer(&issuer.token("alice", "s-alice", &["user", "reader"]));
    let refused_by_require_role = served.get("/admin", Some(&user)).await;
    assert_refusal(
        &format!("{framework}: RequireRole<Admin> without the role"),
        &refused_by_require_role,
        403,
        "insufficient_role",
        "this endpoint requires the `admin` role",
    );
    let no_token_at_me = served.get("/me", None).await;
    let not_ready_at_me = served.get_not_ready("/me", Some(&editor)).await;
    assert_refusal(
        &format!("{framework}: /me, not ready"),
        &not_ready_at_me,
        503,
        "unavailable",
        "the service is temporarily unavailable",
    );
    for (path, passed) in [("/editors", None), ("/articles/7", Some("article 7"))] {
        let what = |case: &str| format!("{framework}: {path}, {case}");
        let seen = served.get(path, Some(&editor)).await;
        assert_ok(&what("the editor role"), &seen, passed.unwrap_or("ed"));
        let seen = served.get(path, Some(&admin)).await;
        assert_ok(&what("the admin role"), &seen, passed.unwrap_or("root"));
        let seen = served.get(path, Some(&user)).await;
        assert_refusal(
            &what("none of the roles"),
            &seen,
            403,
            "insufficient_role",
            "this endpoint requires one of the roles `admin`, `editor`",
        );
        // Headers and status as RequireRole's refusal; only the message names both roles.
        let same = |s: &Seen| (s.status, s.challenge.clone(), s.cache_control.clone());
        assert_eq!(same(&seen), same(&refused_by_require_role), "{}", what("none"));
        let seen = served.get(path, None).await;
        assert_refusal(
            &what("no token"),
            &seen,
            401,
            "missing_token",
            "a bearer token is required",
        );
        assert_eq!(seen, no_token_at_me, "{}", what("no token"));
        let seen = served.get_not_ready(path, Some(&editor)).await;
        assert_eq!(seen, not_ready_at_me, "{}", what("not ready"));
    }
    // No roles at all is the application's mistake: a 500 that says nothing, even to an admin.
    let seen = served.get("/nobody", Some(&admin)).await;
    assert_eq!(seen.status, 500, "{framework}: /nobody: {seen:?}");
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body, serde_json::json!({"error": "internal_error", "message": "internal error"}));
}

/// A token carrying `Tenant` comes out typed; a token that is valid but whose claims do not fit
/// `Tenant` is an invalid token (while `/me` takes it); every other refusal is `/me`'s.
async fn typed_claims(framework: &str, served: &Served, issuer: &Issuer) {
    let subject = Subject { id: "alice".into(), roles: vec!["user".into()], email: None };
    let issue = |sid: &str, extra: serde_json::Value| {
        let issued = issuer.state.tokens.issue_access_with(&subject, sid, None, extra).unwrap();
        bearer(issued.token.expose())
    };
    let typed = issue("s-typed", serde_json::json!({"tenant": "acme", "seats": 12}));
    let seen = served.get("/tenant", Some(&typed)).await;
    assert_ok(&format!("{framework}: /tenant, typed claims"), &seen, "alice acme 12");

    let misfits = [
        ("without the claims", bearer(&issuer.token("alice", "s-plain", &["user"]))),
        (
            "seats not a number",
            issue("s-text", serde_json::json!({"tenant": "acme", "seats": "12"})),
        ),
        ("no tenant", issue("s-half", serde_json::json!({"seats": 12}))),
    ];
    for (case, token) in &misfits {
        let what = format!("{framework}: /tenant, {case}");
        assert_ok(&format!("{what}, at /me"), &served.get("/me", Some(token)).await, "alice");
        let seen = served.get("/tenant", Some(token)).await;
        assert_refusal(&what, &seen, 401, "invalid_token", "token claims are invalid");
    }

    // Every other refusal is `Authenticated`'s answer to the same request.
    let past = Arc::new(ManualClock::new(Utc::now() - TimeDelta::hours(2)));
    let old = TokenService::new(
        TokenPolicy::new(&issuer.url, AUDIENCE),
        issuer.state.tokens.keys().as_ref().clone(),
    )
    .unwrap()
    .with_clock(past);
    let expired = old
        .issue_access_with(&subject, "s-old", None, Tenant { tenant: "acme".into(), seats: 12 })
        .unwrap();
    let expired = bearer(expired.token.expose());
    for (case, authorization) in [
        ("no token", None),
        ("malformed token", Some(bearer("not-a-jwt"))),
        ("expired token", Some(expired)),
    ] {
        let what = format!("{framework}: /tenant, {case}");
        let seen = served.get("/tenant", authorization.as_deref()).await;
        assert_eq!(seen.status, 401, "{what}: {seen:?}");
        assert_eq!(seen, served.get("/me", authorization.as_deref()).await, "{what}");
    }
    let seen = served.get_not_ready("/tenant", Some(&typed)).await;
    assert_eq!(seen.status, 503, "{framework}: /tenant, not ready: {seen:?}");
    assert_eq!(seen, served.get_not_ready("/me", Some(&typed)).await, "{framework}: not ready");
}

/// No bearer token is an anonymous caller; a valid one is the caller; an invalid, expired or
/// logged-out one is refused exactly as `Authenticated` refuses it, each beside a token that
/// passes; before the verifier is ready a token is a 503, no token still anonymous.
async fn optional_caller(framework: &str, served: &Served, issuer: &Issuer) {
    let what = |case: &str| format!("{framework}: /maybe, {case}");
    assert_ok(&what("no header"), &served.get("/maybe", None).await, "anonymous");
    // Another scheme is no bearer token: `Authenticated` says `missing_token` to it.
    let basic = Some("Basic YWxpY2U6c2VjcmV0");
    assert_ok(&what("Basic credentials"), &served.get("/maybe", basic).await, "anonymous");
    let seen = served.get("/me", basic).await;
    assert_refusal("/me, Basic", &seen, 401, "missing_token", "a bearer token is required");

    let alice = bearer(&issuer.token("alice", "s-alice", &["user"]));
    assert_ok(&what("valid token"), &served.get("/maybe", Some(&alice)).await, "alice");

    let malformed = bearer("not-a-jwt");
    let seen = served.get("/maybe", Some(&malformed)).await;
    assert_refusal(
        &what("malformed token"),
        &seen,
        401,
        "invalid_token",
        "token is malformed: expected three dot-separated parts",
    );
    assert_eq!(seen, served.get("/me", Some(&malformed)).await, "{}", what("malformed token"));
    let stranger = TokenService::new(
        TokenPolicy::new(&issuer.url, AUDIENCE),
        KeySet::new(SigningKey::generate(Algorithm::EdDSA).unwrap()),
    )
    .unwrap();
    let subject = Subject { id: "alice".into(), roles: vec![], email: None };
    let forged = bearer(stranger.issue_access(&subject, "s-alice", None).unwrap().token.expose());
    let seen = served.get("/maybe", Some(&forged)).await;
    assert_refusal(&what("unknown key"), &seen, 401, "invalid_token", "token key id is unknown");
    assert_eq!(seen, served.get("/me", Some(&forged)).await, "{}", what("unknown key"));

    // A logout at the issuer: the same token passes before, and is refused after.
    let leaving = bearer(&issuer.token("bob", "s-logout", &["user"]));
    assert_ok(&what("before the logout"), &served.get("/maybe", Some(&leaving)).await, "bob");
    issuer.publish(FeedChange::Session { sid: "s-logout".into() });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while served.get("/me", Some(&leaving)).await.status != 401 {
        assert!(tokio::time::Instant::now() < deadline, "{}", what("logout never applied"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = served.get("/maybe", Some(&leaving)).await;
    assert_refusal(
        &what("after the logout"),
        &seen,
        401,
        "token_revoked",
        "token has been revoked",
    );
    assert_eq!(seen, served.get("/me", Some(&leaving)).await, "{}", what("after the logout"));
    assert_ok(&what("another session"), &served.get("/maybe", Some(&alice)).await, "alice");

    let seen = served.get_not_ready("/maybe", Some(&alice)).await;
    assert_refusal(
        &what("not ready"),
        &seen,
        503,
        "unavailable",
        "the service is temporarily unavailable",
    );
    assert_eq!(seen, served.get_not_ready("/me", Some(&alice)).await, "{}", what("not ready"));
    let seen = served.get_not_ready("/maybe", None).await;
    assert_ok(&what("not ready, no header"), &seen, "anonymous");
}

mod with_actix {
    use super::*;
    use actix_web::{App, HttpResponse, test, web};
    use jwt_auth_verifier::actix::{Authenticated, MaybeAuthenticated, RequireRole};

    async fn me(caller: Authenticated) -> HttpResponse {
        HttpResponse::Ok().body(caller.claims.sub)
    }

    async fn admin(caller: RequireRole<Admin>) -> HttpResponse {
        HttpResponse::Ok().body(caller.caller.claims.sub)
    }

    #[actix_web::test]
    async fn refusals_match_the_server() {
        let f = fixture();
        for expected in expectations(&f) {
            let verifier = if expected.not_ready { &f.not_ready } else { &f.verifier };
            let app = test::init_service(
                App::new()
                    .app_data(web::Data::new(verifier.clone()))
                    .route("/me", web::get().to(me))
                    .route("/admin", web::get().to(admin)),
            )
            .await;
            let mut request = test::TestRequest::get().uri(expected.path);
            if let Some(token) = &expected.token {
                request = request.insert_header(("Authorization", format!("Bearer {token}")));
            }
            let response = test::call_service(&app, request.to_request()).await;
            let header =
                |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
            let (challenge, cache_control, retry_after, content_type) = (
                header("www-authenticate"),
                header("cache-control"),
                header("retry-after"),
                header("content-type"),
            );
            let status = response.status().as_u16();
            let body = test::read_body(response).await;
            let seen = Seen {
                status,
                body: String::from_utf8(body.to_vec()).unwrap(),
                challenge,
                cache_control,
                retry_after,
                content_type,
            };
            check("actix", &expected, &seen);
        }
    }

    /// Without `web::Data<Verifier>`, a route answers 500; one that takes an optional caller
    /// too, even to a request without a token, rather than serving it as anonymous forever.
    #[actix_web::test]
    async fn a_missing_verifier_is_a_500_that_says_nothing() {
        async fn maybe(MaybeAuthenticated(caller): MaybeAuthenticated) -> HttpResponse {
            HttpResponse::Ok().body(caller.map_or("anonymous".to_owned(), |c| c.claims.sub))
        }
        let app = test::init_service(
            App::new().route("/me", web::get().to(me)).route("/maybe", web::get().to(maybe)),
        )
        .await;
        for path in ["/me", "/maybe"] {
            let response =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(response.status(), 500, "{path}");
            let body: serde_json::Value = test::read_body_json(response).await;
            assert_eq!(
                body,
                serde_json::json!({"error": "internal_error", "message": "internal error"}),
                "{path}"
            );
        }
    }

    mod served {
        use super::super::*;
        use actix_web::body::MessageBody;
        use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
        use actix_web::middleware::{Next, from_fn};
        use actix_web::{App, HttpResponse, HttpServer, web};
        use jwt_auth_verifier::AuthError;
        use jwt_auth_verifier::actix::{
            Authenticated, AuthenticatedWith, MaybeAuthenticated, RequireRole,
        };

        async fn me(caller: Authenticated) -> HttpResponse {
            HttpResponse::Ok().body(caller.claims.sub)
        }

        async fn admin(caller: RequireRole<Admin>) -> HttpResponse {
            HttpResponse::Ok().body(caller.caller.claims.sub)
        }

        async fn editors(caller: Authenticated) -> Result<HttpResponse, AuthError> {
            caller.require_any_role(EDITORS)?;
            Ok(HttpResponse::Ok().body(caller.claims.sub))
        }

        async fn nobody(caller: Authenticated) -> Result<HttpResponse, AuthError> {
            caller.require_any_role(&[])?;
            Ok(HttpResponse::Ok().body(caller.claims.sub))
        }

        async fn editors_only(
            caller: Authenticated,
            request: ServiceRequest,
            next: Next<impl MessageBody>,
        ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
            caller.require_any_role(EDITORS)?;
            next.call(request).await
        }

        async fn article(id: web::Path<u32>) -> HttpResponse {
            HttpResponse::Ok().body(format!("article {id}"))
        }

        async fn tenant(caller: AuthenticatedWith<Tenant>) -> HttpResponse {
            let claims = caller.claims;
            let Tenant { tenant, seats } = claims.extra;
            HttpResponse::Ok().body(format!("{} {tenant} {seats}", claims.sub))
        }

        async fn maybe(MaybeAuthenticated(caller): MaybeAuthenticated) -> HttpResponse {
            HttpResponse::Ok().body(caller.map_or("anonymous".to_owned(), |c| c.claims.sub))
        }

        fn routes(config: &mut web::ServiceConfig) {
            config
                .route("/me", web::get().to(me))
                .route("/admin", web::get().to(admin))
                .route("/editors", web::get().to(editors))
                .route("/nobody", web::get().to(nobody))
                .route("/tenant", web::get().to(tenant))
                .route("/maybe", web::get().to(maybe))
                .service(
                    web::scope("/articles")
                        .wrap(from_fn(editors_only))
                        .route("/{id}", web::get().to(article)),
                );
        }

        fn start(verifier: Verifier) -> (String, ServerHandle) {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let verifier = web::Data::new(verifier);
            let server =
                HttpServer::new(move || App::new().app_data(verifier.clone()).configure(routes))
                    .workers(1)
                    .disable_signals()
                    .listen(listener)
                    .unwrap()
                    .run();
            let handle = server.handle();
            actix_web::rt::spawn(server);
            (url, handle)
        }

        /// A local issuer, and the routes served on 127.0.0.1 with a verifier that follows it
        /// and with one that never gets ready.
        async fn serve() -> (Issuer, Served, [ServerHandle; 2]) {
            let issuer = Issuer::start(Algorithm::EdDSA).await;
            let (url, ready) = start(following(&issuer).await);
            let (not_ready_url, not_ready) = start(never_ready());
            (issuer, Served::new(url, not_ready_url), [ready, not_ready])
        }

        async fn stop(handles: [ServerHandle; 2]) {
            for handle in handles {
                handle.stop(false).await;
            }
        }

        #[actix_web::test]
        async fn any_of_the_roles_passes_and_none_is_refused_as_require_role_refuses() {
            let (issuer, served, handles) = serve().await;
            any_of_the_roles("actix", &served, &issuer).await;
            stop(handles).await;
        }

        #[actix_web::test]
        async fn typed_claims_come_out_typed_and_a_misfit_is_an_invalid_token() {
            let (issuer, served, handles) = serve().await;
            typed_claims("actix", &served, &issuer).await;
            stop(handles).await;
        }

        #[actix_web::test]
        async fn an_optional_caller_is_anonymous_only_without_a_token() {
            let (issuer, served, handles) = serve().await;
            optional_caller("actix", &served, &issuer).await;
            stop(handles).await;
        }
    }
}

mod with_axum {
    use super::*;
    use ::axum::Router;
    use ::axum::body::Body;
    use ::axum::http::Request;
    use ::axum::routing::get;
    use jwt_auth_verifier::axum::{Authenticated, RequireRole, VerifierLayer};
    use tower::ServiceExt;

    async fn me(caller: Authenticated) -> String {
        caller.claims.sub
    }

    async fn admin(caller: RequireRole<Admin>) -> String {
        caller.caller.claims.sub
    }

    fn app() -> Router {
        Router::new().route("/me", get(me)).route("/admin", get(admin))
    }

    #[tokio::test]
    async fn refusals_match_the_server() {
        let f = fixture();
        for expected in expectations(&f) {
            let verifier = if expected.not_ready { &f.not_ready } else { &f.verifier };
            let app = app().layer(VerifierLayer::new(verifier.clone()));
            let mut request = Request::get(expected.path);
            if let Some(token) = &expected.token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
            let header =
                |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
            let (challenge, cache_control, retry_after, content_type) = (
                header("www-authenticate"),
                header("cache-control"),
                header("retry-after"),
                header("content-type"),
            );
            let status = response.status().as_u16();
            let body = ::axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let seen = Seen {
                status,
                body: String::from_utf8(body.to_vec()).unwrap(),
                challenge,
                cache_control,
                retry_after,
                content_type,
            };
            check("axum", &expected, &seen);
        }
    }

    /// Without the layer, a route answers 500; one that takes an optional caller too, even to a
    /// request without a token, rather than serving it as anonymous forever.
    #[tokio::test]
    async fn a_route_without_the_layer_is_a_500_that_says_nothing() {
        async fn maybe(caller: Option<Authenticated>) -> String {
            caller.map_or("anonymous".to_owned(), |c| c.claims.sub)
        }
        for path in ["/me", "/maybe"] {
            let app = app().route("/maybe", get(maybe));
            let response =
                app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(response.status(), 500, "{path}");
            let body = ::axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"error": "internal_error", "message": "internal error"}),
                "{path}"
            );
        }
    }

    mod served {
        use super::super::*;
        use ::axum::Router;
        use ::axum::extract::{Path, Request};
        use ::axum::middleware::{Next, from_fn};
        use ::axum::response::Response;
        use ::axum::routing::get;
        use jwt_auth_verifier::AuthError;
        use jwt_auth_verifier::axum::{
            Authenticated, AuthenticatedWith, RequireRole, VerifierLayer,
        };

        async fn me(caller: Authenticated) -> String {
            caller.claims.sub
        }

        async fn admin(caller: RequireRole<Admin>) -> String {
            caller.caller.claims.sub
        }

        async fn editors(caller: Authenticated) -> Result<String, AuthError> {
            caller.require_any_role(EDITORS)?;
            Ok(caller.claims.sub)
        }

        async fn nobody(caller: Authenticated) -> Result<String, AuthError> {
            caller.require_any_role(&[])?;
            Ok(caller.claims.sub)
        }

        async fn editors_only(
            caller: Authenticated,
            request: Request,
            next: Next,
        ) -> Result<Response, AuthError> {
            caller.require_any_role(EDITORS)?;
            Ok(next.run(request).await)
        }

        async fn article(Path(id): Path<u32>) -> String {
            format!("article {id}")
        }

        async fn tenant(caller: AuthenticatedWith<Tenant>) -> String {
            let claims = caller.claims;
            let Tenant { tenant, seats } = claims.extra;
            format!("{} {tenant} {seats}", claims.sub)
        }

        async fn maybe(caller: Option<Authenticated>) -> String {
            caller.map_or("anonymous".to_owned(), |c| c.claims.sub)
        }

        async fn start(verifier: Verifier) -> (String, tokio::task::JoinHandle<()>) {
            let articles = Router::new()
                .route("/articles/{id}", get(article))
                .route_layer(from_fn(editors_only));
            let app = Router::new()
                .route("/me", get(me))
                .route("/admin", get(admin))
                .route("/editors", get(editors))
                .route("/nobody", get(nobody))
                .route("/tenant", get(tenant))
                .route("/maybe", get(maybe))
                .merge(articles)
                .layer(VerifierLayer::new(verifier));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let server = tokio::spawn(async move { ::axum::serve(listener, app).await.unwrap() });
            (url, server)
        }

        /// A local issuer, and the routes served on 127.0.0.1 with a verifier that follows it
        /// and with one that never gets ready.
        async fn serve() -> (Issuer, Served, [tokio::task::JoinHandle<()>; 2]) {
            let issuer = Issuer::start(Algorithm::EdDSA).await;
            let (url, ready) = start(following(&issuer).await).await;
            let (not_ready_url, not_ready) = start(never_ready()).await;
            (issuer, Served::new(url, not_ready_url), [ready, not_ready])
        }

        fn stop(servers: [tokio::task::JoinHandle<()>; 2]) {
            servers.iter().for_each(tokio::task::JoinHandle::abort);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn any_of_the_roles_passes_and_none_is_refused_as_require_role_refuses() {
            let (issuer, served, servers) = serve().await;
            any_of_the_roles("axum", &served, &issuer).await;
            stop(servers);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn typed_claims_come_out_typed_and_a_misfit_is_an_invalid_token() {
            let (issuer, served, servers) = serve().await;
            typed_claims("axum", &served, &issuer).await;
            stop(servers);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_optional_caller_is_anonymous_only_without_a_token() {
            let (issuer, served, servers) = serve().await;
            optional_caller("axum", &served, &issuer).await;
            stop(servers);
        }
    }
}

/// A log sink for one test.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A route that takes `Authenticated` without the `VerifierLayer` in front of it answers 500,
/// and says so at ERROR with the route, so that the mistake shows at the first request; the
/// control: the same route behind the layer.
#[tokio::test(flavor = "current_thread")]
async fn a_route_outside_the_verifier_layer_is_named_in_an_error_line() {
    use axum::routing::get;
    use jwt_auth_verifier::axum::{Authenticated, VerifierLayer};
    use tower::ServiceExt;

    async fn me(caller: Authenticated) -> String {
        caller.claims.sub
    }
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::ERROR)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fixture = fixture();
    let request = |token: &str| {
        axum::http::Request::get("/stocks/ACME")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let bare: axum::Router = axum::Router::new().route("/stocks/{symbol}", get(me));
    let response = bare.oneshot(request(&fixture.user)).await.unwrap();
    assert_eq!(response.status(), 500);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("ERROR") && log.contains("no VerifierLayer"), "{log}");
    assert!(log.contains("path=/stocks/ACME") && log.contains("method=GET"), "{log}");

    let layered: axum::Router = axum::Router::new()
        .route("/stocks/{symbol}", get(me))
        .layer(VerifierLayer::new(fixture.verifier.clone()));
    let response = layered.oneshot(request(&fixture.user)).await.unwrap();
    assert_eq!(response.status(), 200);
}
