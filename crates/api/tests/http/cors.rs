//! Calls from a browser on another origin (CORS): a single-page app on the origin of one of
//! its registered redirect URIs may call the token, revocation and UserInfo endpoints and
//! `/api/me`, and read the answers; any other origin gets the same answers without a CORS
//! header, so its browser keeps them from it. Discovery and the JWKS are public. The pages,
//! the login and the admin API answer no origin. Each refusal beside its positive control.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::apps::{add_app, public_app};
use crate::common::{Reply, TestApp, TestDb, send};
use jwt_auth_service::clients::SignIn;

crate::http_tests!(
    the_origins_of_registered_redirect_uris_may_call_the_token_endpoint,
    an_allowed_origin_reads_me_and_userinfo_others_get_no_cors_header,
    discovery_and_the_jwks_are_public_and_the_rest_answers_no_origin,
    a_client_added_or_removed_elsewhere_changes_the_origins_of_every_instance,
);

const LOOPBACK_SPA: &str = "http://127.0.0.1:5173";
const WEB_SPA: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example";

/// A preflight for `method` on `path` from `origin`.
async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Reply {
    send(
        app.http
            .request(Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization, content-type"),
    )
    .await
}

/// Asserts a preflight answered for `origin`, with `methods`.
fn assert_preflight_allowed(reply: &Reply, origin: &str, methods: &str) {
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{origin}: {}", reply.text);
    assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
    assert_eq!(reply.header("access-control-allow-methods"), Some(methods));
    let headers = reply.header("access-control-allow-headers").unwrap_or_default();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    assert!(reply.header("access-control-max-age").is_some());
    assert_eq!(reply.header("access-control-allow-credentials"), None, "never credentials");
}

/// Asserts a preflight refused: the resource's usual 405, and no CORS header.
fn assert_preflight_refused(reply: &Reply, origin: &str) {
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{origin}: {}", reply.text);
    assert_no_cors(reply, origin);
}

fn assert_no_cors(reply: &Reply, origin: &str) {
    for name in ["access-control-allow-origin", "access-control-allow-methods"] {
        assert_eq!(reply.header(name), None, "{origin}: {name}");
    }
}

/// A public app on a loopback redirect URI and on an `https` one.
async fn spa(app: &TestApp) {
    let sign_in = SignIn {
        redirect_uris: vec![
            "http://127.0.0.1/callback".into(),
            "https://app.example.com/callback".into(),
            "com.example.app:/callback".into(),
        ],
        public: true,
        ..SignIn::default()
    };
    add_app(app, "spa", sign_in).await;
}

async fn the_origins_of_registered_redirect_uris_may_call_the_token_endpoint(db: TestDb) {
    let app = TestApp::start(db).await;

    // Before any client registers the origin, its preflight is refused.
    assert_preflight_refused(&preflight(&app, "/auth/token", LOOPBACK_SPA, "POST").await, "none");
    spa(&app).await;

    // The loopback host on any port, and the https origin exactly.
    for origin in [LOOPBACK_SPA, "http://127.0.0.1:40123", WEB_SPA] {
        for path in ["/auth/token", "/auth/revoke"] {
            let reply = preflight(&app, path, origin, "POST").await;
            assert_preflight_allowed(&reply, origin, "POST");
        }
    }
    for origin in [
        EVIL,
        "https://app.example.com:8443",
        "http://app.example.com",
        "https://app.example.com.evil.example",
        "https://evil.example/https://app.example.com",
        "http://[::1]:5173",
        "http://127.0.0.1:0",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:5173/",
        "null",
        "com.example.app://callback",
    ] {
        assert_preflight_refused(&preflight(&app, "/auth/token", origin, "POST").await, origin);
    }

    // The actual request: the same answer either way, readable by the allowed origin only.
    let bad_grant = |origin: &str| {
        app.post("/auth/token")
            .header("origin", origin)
            .form(&[("grant_type", "authorization_code"), ("code", "nope")])
    };
    let allowed = send(bad_grant(LOOPBACK_SPA)).await;
    allowed.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(allowed.header("access-control-allow-origin"), Some(LOOPBACK_SPA));
    let exposed = allowed.header("access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    assert!(allowed.headers.get_all("vary").iter().any(|v| v == "origin"));
    let refused = send(bad_grant(EVIL)).await;
    refused.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_no_cors(&refused, EVIL);
    assert_eq!(refused.body, allowed.body, "CORS changes no answer");
}

async fn an_allowed_origin_reads_me_and_userinfo_others_get_no_cors_header(db: TestDb) {
    let app = TestApp::start_at_own_url(db, |_| {}).await;
    spa(&app).await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;

    for path in ["/api/me", "/auth/userinfo"] {
        assert_preflight_allowed(
            &preflight(&app, path, WEB_SPA, "GET").await,
            WEB_SPA,
            "GET, HEAD",
        );
        assert_preflight_refused(&preflight(&app, path, EVIL, "GET").await, EVIL);
    }

    let me = |origin: Option<&str>| {
        let request = app.get("/api/me").bearer_auth(&alice.access);
        match origin {
            Some(origin) => request.header("origin", origin),
            None => request,
        }
    };
    let allowed = send(me(Some(WEB_SPA))).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(WEB_SPA));
    for (origin, reply) in [(EVIL, send(me(Some(EVIL))).await), ("none", send(me(None)).await)] {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body, allowed.body);
        assert_no_cors(&reply, origin);
    }

    // A refusal is readable too, with its challenge: the app learns why.
    let refused =
        send(app.get("/auth/userinfo").bearer_auth("not-a-token").header("origin", WEB_SPA)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    assert_eq!(refused.header("access-control-allow-origin"), Some(WEB_SPA));
    assert!(refused.header("www-authenticate").is_some());
}

async fn discovery_and_the_jwks_are_public_and_the_rest_answers_no_origin(db: TestDb) {
    let app = TestApp::start_at_own_url(db, |_| {}).await;
    spa(&app).await;
    let admin = app.admin().await;

    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ] {
        let reply = send(app.get(path).header("origin", EVIL)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"), "{path}");
        let bare = send(app.get(path)).await;
        assert_eq!(bare.header("access-control-allow-origin"), None, "{path}: no Origin");
        assert_preflight_allowed(&preflight(&app, path, EVIL, "GET").await, "*", "GET, HEAD");
    }

    // The login, the pages and the admin API answer no origin, not even a registered one.
    let login = send(
        app.post("/auth/login")
            .header("origin", WEB_SPA)
            .json(&json!({"username": "admin@example.com", "password": crate::common::PASSWORD})),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_no_cors(&login, WEB_SPA);
    let clients =
        send(app.get("/api/admin/clients").bearer_auth(&admin.access).header("origin", WEB_SPA))
            .await;
    assert_eq!(clients.status, StatusCode::OK, "{}", clients.text);
    assert_no_cors(&clients, WEB_SPA);
    for (path, method) in [
        ("/auth/login", "POST"),
        ("/auth/refresh", "POST"),
        ("/auth/authorize", "POST"),
        ("/auth/introspect", "POST"),
        ("/api/admin/clients", "POST"),
        ("/api/users", "GET"),
    ] {
        let reply = preflight(&app, path, WEB_SPA, method).await;
        assert_preflight_refused(&reply, path);
    }
}

async fn a_client_added_or_removed_elsewhere_changes_the_origins_of_every_instance(db: TestDb) {
    let app = TestApp::start(db).await;
    let sibling = app.sibling().await;
    let admin = app.admin().await;
    let origin = "https://spa.example.org";
    for server in [&app, &sibling] {
        assert_preflight_refused(&preflight(server, "/auth/token", origin, "POST").await, origin);
    }

    let added = send(app.post("/api/admin/clients").bearer_auth(&admin.access).json(&json!({
        "name": "spa",
        "redirect_uris": ["https://spa.example.org/callback"],
        "public": true,
    })))
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let id = added.body["client_id"].as_str().expect("client_id").to_owned();

    // At once where it was added; on the other instance as soon as the origin asks, once its
    // set is a second old.
    assert_preflight_allowed(&preflight(&app, "/auth/token", origin, "POST").await, origin, "POST");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = preflight(&sibling, "/auth/token", origin, "POST").await;
        if reply.status == StatusCode::NO_CONTENT {
            assert_preflight_allowed(&reply, origin, "POST");
            break;
        }
        assert_preflight_refused(&reply, origin);
        assert!(Instant::now() < deadline, "the sibling never allowed the new origin");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Removed: refused at once where it was removed.
    let removed = send(
        app.http.delete(app.url(&format!("/api/admin/clients/{id}"))).bearer_auth(&admin.access),
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert_preflight_refused(&preflight(&app, "/auth/token", origin, "POST").await, origin);

    // Another client's origin still answers: the reload kept the rest.
    public_app(&app, "native").await;
    let loopback = "http://127.0.0.1:8123";
    assert_preflight_allowed(
        &preflight(&app, "/auth/token", loopback, "POST").await,
        loopback,
        "POST",
    );
}
