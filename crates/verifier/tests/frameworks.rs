//! The actix-web and axum integrations answer exactly as the `jwt-auth` server does: 401 with
//! `{"error", "message"}` and an RFC 6750 challenge, 403 `insufficient_role` without one, 503
//! before the verifier is ready. Each refusal beside a request that passes.

#![cfg(all(feature = "actix", feature = "axum"))]

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use jwt_auth_verifier::{Admin, KeySource, Verifier};
use jwt_core::{KeySet, ManualClock, Revocation, SigningKey, Subject, TokenPolicy, TokenService};

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
#[derive(Debug)]
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

mod with_actix {
    use super::*;
    use actix_web::{App, HttpResponse, test, web};
    use jwt_auth_verifier::actix::{Authenticated, RequireRole};

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

    #[actix_web::test]
    async fn a_missing_verifier_is_a_500_that_says_nothing() {
        let app = test::init_service(App::new().route("/me", web::get().to(me))).await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
        assert_eq!(response.status(), 500);
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(
            body,
            serde_json::json!({"error": "internal_error", "message": "internal error"})
        );
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

    #[tokio::test]
    async fn a_route_without_the_layer_is_a_500_that_says_nothing() {
        let response =
            app().oneshot(Request::get("/me").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 500);
        let body = ::axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "internal_error", "message": "internal error"})
        );
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
