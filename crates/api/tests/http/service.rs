//! The service around the tokens: health and readiness, RFC 8414 metadata, the OpenAPI
//! document, Prometheus metrics, the error format for unknown paths, wrong methods and bad
//! bodies, body limits, and login throttling (per IP, behind trusted proxies, per account and
//! IP).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Backend, PASSWORD, Pair, Reply, TestApp, TestDb, default_config, send};

crate::http_tests!(
    health_ready_and_authorization_server_metadata,
    public_url_prefixes_every_published_url_and_is_the_default_issuer,
    metadata_believes_forwarding_headers_only_from_trusted_proxies,
    openapi_documents_every_endpoint_of_the_contract,
    metrics_are_prometheus_text_with_the_named_series,
    unknown_paths_wrong_methods_and_bad_bodies_get_json_errors,
    bodies_over_64_kib_are_413_everywhere,
    login_and_token_endpoint_share_a_per_ip_quota,
    forwarded_for_is_believed_only_from_trusted_proxies,
    failed_logins_slow_down_only_their_account_and_ip,
);

/// `jwt-auth serve` with no settings has the contract's defaults (checked for every setting
/// the environment of the test run leaves unset), and the harness runs on the same ones but
/// for the login quota.
#[test]
fn serve_defaults_are_the_contract_defaults_and_the_harness_uses_them() {
    use clap::Parser;
    use jwt_auth_api::{Cli, Command};
    let Command::Serve(args) = Cli::try_parse_from(["jwt-auth", "serve"]).expect("parses").command
    else {
        panic!("`serve` parses as the serve command")
    };
    let parsed = args.validate().expect("the defaults are valid");
    let unset = |var: &str| std::env::var_os(var).is_none();
    let td = chrono::TimeDelta::seconds;
    if unset("BIND_ADDRESS") {
        assert_eq!(parsed.bind.to_string(), "127.0.0.1:8080");
    }
    if unset("DATABASE_URL") {
        assert_eq!(parsed.database_url.expose(), "sqlite://jwt-auth.db");
    }
    if unset("LOGIN_RATE_LIMIT") {
        assert_eq!(parsed.login_rate_limit, 10);
    }
    if unset("LOGIN_FAILURE_BACKOFF") {
        assert_eq!(parsed.login_failure_backoff, 5);
    }
    let ours = default_config(parsed.database_url.expose(), parsed.data_dir.clone());
    let checks: [(&str, bool, bool); 15] = [
        (
            "JWT_ALGORITHM",
            // Unset: a first key is HS256, later ones follow the stored keys.
            parsed.algorithm.is_none(),
            ours.algorithm == Some(jwt_core::Algorithm::HS256),
        ),
        ("JWT_ISSUER", parsed.issuer == "jwt-auth", ours.issuer == parsed.issuer),
        ("JWT_AUDIENCE", parsed.audience == "api", ours.audience == parsed.audience),
        ("TOKEN_EXPIRY", parsed.token_expiry == td(1800), ours.token_expiry == parsed.token_expiry),
        (
            "REFRESH_TOKEN_EXPIRY",
            parsed.refresh_token_expiry == td(7 * 86_400),
            ours.refresh_token_expiry == parsed.refresh_token_expiry,
        ),
        (
            "REFRESH_REUSE_GRACE",
            parsed.refresh_reuse_grace == td(10),
            ours.refresh_reuse_grace == parsed.refresh_reuse_grace,
        ),
        (
            "SESSION_MAX_AGE",
            parsed.session_max_age == td(30 * 86_400),
            ours.session_max_age == parsed.session_max_age,
        ),
        (
            "TRUSTED_PROXIES",
            parsed.trusted_proxies.is_empty(),
            ours.trusted_proxies == parsed.trusted_proxies,
        ),
        ("COOKIE_SECURE", parsed.cookie_secure, ours.cookie_secure == parsed.cookie_secure),
        (
            "ALLOW_REGISTRATION",
            parsed.allow_registration,
            ours.allow_registration == parsed.allow_registration,
        ),
        ("ADMIN_EMAIL", parsed.admin.is_none(), ours.admin == parsed.admin),
        (
            "LOGIN_FAILURE_BACKOFF",
            parsed.login_failure_backoff == 5,
            ours.login_failure_backoff == parsed.login_failure_backoff,
        ),
        ("PUBLIC_URL", parsed.public_url.is_none(), ours.public_url == parsed.public_url),
        (
            "TOKEN_INCLUDE_EMAIL",
            !parsed.token_include_email,
            ours.token_include_email == parsed.token_include_email,
        ),
        (
            "LOG_FORMAT",
            parsed.log_format == jwt_auth_api::LogFormat::Pretty,
            ours.log_format == parsed.log_format,
        ),
    ];
    for (var, contract_default, harness_same) in checks {
        if unset(var) {
            assert!(contract_default, "{var}: not the contract's default");
            assert!(harness_same, "{var}: the harness differs from `jwt-auth serve`");
        }
    }
}

async fn health_ready_and_authorization_server_metadata(db: TestDb) {
    let app = TestApp::start(db).await;
    let health = send(app.get("/health")).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = send(app.get("/ready")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);

    let meta = send(app.get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(meta.status, StatusCode::OK);
    assert_eq!(meta.body["issuer"], "jwt-auth");
    for (member, path) in [
        ("token_endpoint", "/auth/token"),
        ("revocation_endpoint", "/auth/revoke"),
        ("introspection_endpoint", "/auth/introspect"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(meta.body[member], app.url(path), "{member}");
    }
    let jwks = send(app.http.get(meta.body["jwks_uri"].as_str().expect("jwks_uri"))).await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert!(jwks.body["keys"].is_array());

    // The operators' guide says what the metadata says, every grant type and every client
    // authentication method by name, and none it does not list.
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md"))
            .expect("docs/operations.md");
    let start = guide.find("The metadata says what the server does").expect("the paragraph");
    let paragraph = &guide[start..start + guide[start..].find("\n\n").unwrap_or(0)];
    let listed = |member: &str| -> Vec<String> {
        meta.body[member]
            .as_array()
            .expect(member)
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    for member in [
        "grant_types_supported",
        "response_types_supported",
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        for value in listed(member) {
            assert!(paragraph.contains(&format!("`{value}`")), "{member} {value}: {paragraph}");
        }
    }
    for grant in ["password", "refresh_token", "client_credentials", "authorization_code"] {
        let named = paragraph.contains(&format!("`{grant}`"));
        assert_eq!(named, listed("grant_types_supported").contains(&grant.to_owned()), "{grant}");
    }

    // A client cannot make the metadata point elsewhere with forwarding headers ...
    let spoofed = send(
        app.get("/.well-known/oauth-authorization-server")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "host=evil.example;proto=https"),
    )
    .await;
    assert_eq!(spoofed.body["token_endpoint"], app.url("/auth/token"), "{}", spoofed.text);
    // ... nor with a Host header that is not a plain host name.
    let odd =
        send(app.get("/.well-known/oauth-authorization-server").header("host", "a/b@c")).await;
    let token_endpoint = odd.body["token_endpoint"].as_str().unwrap_or_default();
    assert!(token_endpoint.starts_with("http://127.0.0.1:"), "{}", odd.text);
    assert!(token_endpoint.ends_with("/auth/token"), "{}", odd.text);
}

async fn public_url_prefixes_every_published_url_and_is_the_default_issuer(db: TestDb) {
    let app = TestApp::start_with(db, |c| {
        c.public_url = Some("https://auth.example.com".into());
        c.issuer = "https://auth.example.com".into();
    })
    .await;
    let meta = send(app.get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.text);
    assert_eq!(meta.body["issuer"], "https://auth.example.com");
    for (member, path) in [
        ("authorization_endpoint", "/auth/authorize"),
        ("token_endpoint", "/auth/token"),
        ("userinfo_endpoint", "/auth/userinfo"),
        ("end_session_endpoint", "/auth/end-session"),
        ("revocation_endpoint", "/auth/revoke"),
        ("introspection_endpoint", "/auth/introspect"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(meta.body[member], format!("https://auth.example.com{path}"), "{member}");
    }
    // The code grant's one response type. No client authentication by signed JWT is
    // offered, so no algorithm for it.
    assert_eq!(meta.body["response_types_supported"], json!(["code"]));
    let discovery = send(app.get("/.well-known/openid-configuration")).await;
    assert_eq!(discovery.body["authorization_endpoint"], "https://auth.example.com/auth/authorize");
    assert!(meta.body.get("token_endpoint_auth_signing_alg_values_supported").is_none());
    // Forwarding headers from an untrusted client change nothing.
    let spoofed = send(
        app.get("/.well-known/oauth-authorization-server")
            .header("x-forwarded-host", "evil.example"),
    )
    .await;
    assert_eq!(spoofed.body, meta.body);
    // Tokens carry the issuer.
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    assert_eq!(crate::common::decode(&pair.access).1["iss"], "https://auth.example.com");
}

/// `JWT_ISSUER` defaults to `PUBLIC_URL` when it is set, and stays `jwt-auth` otherwise.
#[test]
fn issuer_defaults_to_public_url() {
    use clap::Parser;
    use jwt_auth_api::{Cli, Command};
    let parse = |args: &[&str]| {
        let Command::Serve(serve) = Cli::try_parse_from(args).expect("parses").command else {
            panic!("serve")
        };
        serve.validate()
    };
    if std::env::var_os("JWT_ISSUER").is_some() || std::env::var_os("PUBLIC_URL").is_some() {
        return;
    }
    let config =
        parse(&["jwt-auth", "serve", "--public-url", "https://auth.example.com/"]).expect("valid");
    assert_eq!(config.issuer, "https://auth.example.com");
    assert_eq!(config.public_url.as_deref(), Some("https://auth.example.com"));
    let pinned =
        parse(&["jwt-auth", "serve", "--public-url", "https://a.example", "--jwt-issuer", "me"])
            .expect("valid");
    assert_eq!(pinned.issuer, "me");
    assert_eq!(parse(&["jwt-auth", "serve"]).expect("valid").issuer, "jwt-auth");
    let bad = parse(&["jwt-auth", "serve", "--public-url", "auth.example.com"]).unwrap_err();
    assert_eq!(bad.setting, "PUBLIC_URL");
}

/// Behind a trusted proxy, the metadata names the public URL the proxy reports.
async fn metadata_believes_forwarding_headers_only_from_trusted_proxies(db: TestDb) {
    let app = TestApp::start_with(db, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
    })
    .await;
    let meta = send(
        app.get("/.well-known/oauth-authorization-server")
            .header("x-forwarded-host", "auth.example.com")
            .header("x-forwarded-proto", "https"),
    )
    .await;
    assert_eq!(meta.body["token_endpoint"], "https://auth.example.com/auth/token", "{}", meta.text);
    assert_eq!(meta.body["jwks_uri"], "https://auth.example.com/.well-known/jwks.json");
}

/// Every endpoint of the contract's table.
const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/token"),
    ("post", "/auth/refresh"),
    ("post", "/auth/logout"),
    ("post", "/auth/logout-all"),
    ("post", "/auth/revoke"),
    ("post", "/auth/introspect"),
    ("get", "/auth/revocations"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/api/me"),
    ("get", "/api/users"),
    ("get", "/api/admin/users/{id}/sessions"),
    ("post", "/api/admin/users/{id}/revoke"),
    ("patch", "/api/admin/users/{id}"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/auth/authorize"),
    ("get", "/auth/userinfo"),
    ("get", "/auth/end-session"),
    ("get", "/.well-known/openid-configuration"),
    // Beyond the contract's table: the forms of the sign-in and consent pages, which post
    // back to the authorization endpoint.
    ("post", "/auth/authorize"),
    // The confirmation of a sign-out without an ID token.
    ("post", "/auth/end-session"),
    // Beyond the contract's table: the administrators' API behind the console.
    ("get", "/api/admin/users/{id}"),
    ("post", "/api/admin/users/{id}/sessions/{session_id}/revoke"),
    ("get", "/api/admin/keys"),
    ("post", "/api/admin/keys/rotate"),
    ("post", "/api/admin/keys/{kid}/revoke"),
    ("get", "/api/admin/events"),
    ("get", "/api/admin/clients"),
    ("post", "/api/admin/clients"),
    ("delete", "/api/admin/clients/{id}"),
];

async fn openapi_documents_every_endpoint_of_the_contract(db: TestDb) {
    let app = TestApp::start(db).await;
    let doc = send(app.get("/openapi.json")).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.header("content-type").unwrap_or_default().starts_with("application/json"));
    assert!(
        doc.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc.body["openapi"]
    );
    for (method, path) in ENDPOINTS {
        let operation = &doc.body["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(operation["responses"].is_object(), "{method} {path} has no responses");
    }
    // And every endpoint it documents exists.
    for (path, item) in doc.body["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                assert!(
                    ENDPOINTS.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} is documented but not in the contract"
                );
            }
        }
    }
    // Protected operations say so.
    assert!(doc.body["paths"]["/api/me"]["get"]["security"].is_array());
}

/// The value of the sample `name` (with its labels exactly as written), if present.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        (series == name).then(|| value.parse().ok()).flatten()
    })
}

async fn metrics_are_prometheus_text_with_the_named_series(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    let failed = app.try_login("alice@example.com", "wrong password").await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let next = Pair::from_reply(&app.refresh(&pair.refresh).await);
    assert_eq!(
        send(app.post("/auth/logout").bearer_auth(&next.access)).await.status,
        StatusCode::NO_CONTENT
    );
    let id = uuid::Uuid::new_v4();
    let path = format!("/api/admin/users/{id}/sessions");
    let missing = send(app.get(&path).bearer_auth(&admin.access)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let reply = send(app.get("/metrics")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let media = reply.header("content-type").unwrap_or_default();
    assert!(
        media.starts_with("text/plain") || media.starts_with("application/openmetrics-text"),
        "{media}"
    );
    let text = &reply.text;
    for family in [
        "# TYPE jwt_auth_http_requests counter",
        "# TYPE jwt_auth_http_request_duration_seconds histogram",
        "# TYPE jwt_auth_logins counter",
        "# TYPE jwt_auth_refreshes counter",
        "# TYPE jwt_auth_refresh_reuse_detections counter",
        "# TYPE jwt_auth_session_revocations counter",
        "# TYPE jwt_auth_password_hash_queue_depth gauge",
    ] {
        assert!(text.lines().any(|l| l == family), "{family} missing:\n{text}");
    }
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(text, series), Some(value), "{series}:\n{text}");
    };
    expect(r#"jwt_auth_logins_total{outcome="ok"}"#, 2.0);
    expect(r#"jwt_auth_logins_total{outcome="failed"}"#, 1.0);
    expect(r#"jwt_auth_refreshes_total{outcome="ok"}"#, 1.0);
    expect("jwt_auth_session_revocations_total", 1.0);
    expect("jwt_auth_refresh_reuse_detections_total", 0.0);
    expect("jwt_auth_password_hash_queue_depth", 0.0);
    expect(r#"jwt_auth_http_requests_total{method="POST",route="/auth/login",status="200"}"#, 2.0);
    expect(r#"jwt_auth_http_requests_total{method="POST",route="/auth/login",status="401"}"#, 1.0);
    expect(
        r#"jwt_auth_http_requests_total{method="GET",route="/api/admin/users/{id}/sessions",status="404"}"#,
        1.0,
    );
    assert!(!text.contains(&id.to_string()), "raw paths never become labels");
    assert!(
        text.lines().any(|l| l.starts_with("jwt_auth_http_request_duration_seconds_bucket{")
            && l.contains(r#"route="/auth/login""#)),
        "latency buckets per route:\n{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "a complete exposition");
}

async fn unknown_paths_wrong_methods_and_bad_bodies_get_json_errors(db: TestDb) {
    let app = TestApp::start(db).await;
    for path in ["/nope", "/auth", "/api/me/extra", "/api/admin/users", "/.well-known/jwks"] {
        send(app.get(path)).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    for (method, path, allow) in [
        (Method::GET, "/auth/login", "POST"),
        (Method::HEAD, "/auth/login", "POST"),
        (Method::PUT, "/auth/register", "POST"),
        (Method::DELETE, "/api/me", "GET, HEAD"),
        (Method::POST, "/api/me", "GET, HEAD"),
        (Method::POST, "/health", "GET, HEAD"),
        (Method::GET, "/auth/token", "POST"),
        (Method::DELETE, "/api/admin/users/x", "GET, HEAD, PATCH"),
        (Method::POST, "/.well-known/jwks.json", "GET, HEAD"),
    ] {
        let reply = send(app.http.request(method.clone(), app.url(path))).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {}", reply.text);
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        if method != Method::HEAD {
            reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        }
    }
    // HEAD is GET without the body.
    for path in ["/health", "/ready", "/.well-known/jwks.json", "/openapi.json", "/metrics"] {
        let get = send(app.get(path)).await;
        let head = send(app.http.head(app.url(path))).await;
        assert_eq!((head.status, get.status), (StatusCode::OK, StatusCode::OK), "HEAD {path}");
        assert!(head.text.is_empty(), "HEAD {path} has no body: {}", head.text);
        assert_eq!(head.header("content-type"), get.header("content-type"), "HEAD {path}");
    }
    let head_me = send(app.http.head(app.url("/api/me"))).await;
    assert_eq!(head_me.status, StatusCode::UNAUTHORIZED, "HEAD is checked like GET");
    // Bodies: malformed 400, wrong type 415, invalid fields 422, each in the error format.
    let cases: [(&str, Option<&str>, &str, StatusCode); 6] = [
        ("/auth/login", Some("application/json"), "{", StatusCode::BAD_REQUEST),
        ("/auth/login", Some("application/json"), "\u{0}\u{1}", StatusCode::BAD_REQUEST),
        ("/auth/login", Some("text/plain"), "{}", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("/auth/login", None, "{}", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            "/auth/login",
            Some("application/json"),
            r#"{"username": 1, "password": 2}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/auth/register", Some("application/json"), "{}", StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (path, media, body, status) in cases {
        let mut request = app.post(path).body(body.to_owned());
        if let Some(media) = media {
            request = request.header("content-type", media);
        }
        let reply = send(request).await;
        let code = reply.body["error"].as_str().unwrap_or_default().to_owned();
        reply.assert_error(status, &code);
    }
}

async fn bodies_over_64_kib_are_413_everywhere(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    let big = "x".repeat(65 * 1024);
    let json = json!({"email": big, "password": big, "username": big, "refresh_token": big});
    let form = [("grant_type", "password"), ("username", big.as_str()), ("token", big.as_str())];
    let requests = [
        ("register", app.post("/auth/register").json(&json)),
        ("login", app.post("/auth/login").json(&json)),
        ("refresh", app.post("/auth/refresh").json(&json)),
        ("logout", app.post("/auth/logout").json(&json)),
        ("token", app.post("/auth/token").form(&form)),
        ("revoke", app.post("/auth/revoke").form(&form)),
        ("introspect", app.post("/auth/introspect").bearer_auth(&admin.access).form(&form)),
        (
            "patch",
            app.http.patch(app.url("/api/admin/users/x")).bearer_auth(&admin.access).json(&json),
        ),
    ];
    for (what, request) in requests {
        let reply = send(request).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{what}: {}", reply.text);
        if ["token", "revoke", "introspect"].contains(&what) {
            // The OAuth endpoints answer in RFC 6749's format.
            reply.assert_oauth_error_status(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
        } else {
            reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        }
    }
    // Just under the limit is read (and refused for its content, not its size).
    let fits = "x".repeat(60 * 1024);
    let reply = send(app.post("/auth/refresh").json(&json!({"refresh_token": fits}))).await;
    reply.assert_token_refused("invalid_token");
}

fn assert_rate_limited(reply: &Reply) {
    reply.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = reply
        .header("retry-after")
        .expect("Retry-After on a 429")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
}

async fn login_from(app: &TestApp, email: &str, password: &str, forwarded: Option<&str>) -> Reply {
    let mut request =
        app.post("/auth/login").json(&json!({"username": email, "password": password}));
    if let Some(ip) = forwarded {
        request = request.header("x-forwarded-for", ip);
    }
    send(request).await
}

async fn login_and_token_endpoint_share_a_per_ip_quota(db: TestDb) {
    let app = TestApp::start_with(db, |c| c.login_rate_limit = 3).await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    assert_eq!(app.try_login("bob@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    let token = send(app.post("/auth/token").form(&[
        ("grant_type", "password"),
        ("username", "alice@example.com"),
        ("password", PASSWORD),
    ]))
    .await;
    Pair::from_reply(&token);

    // The quota is spent: login, both grants of the token endpoint, whatever the header says.
    assert_rate_limited(&app.try_login("alice@example.com", PASSWORD).await);
    assert_rate_limited(
        &login_from(&app, "alice@example.com", PASSWORD, Some("203.0.113.9")).await,
    );
    assert_rate_limited(
        &send(app.post("/auth/token").form(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", PASSWORD),
        ]))
        .await,
    );
    assert_rate_limited(
        &send(
            app.post("/auth/token")
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &pair.refresh)]),
        )
        .await,
    );
    // Other endpoints are not throttled by it.
    app.assert_accepted(&pair.access).await;
    Pair::from_reply(&app.refresh(&pair.refresh).await);
}

async fn forwarded_for_is_believed_only_from_trusted_proxies(db: TestDb) {
    let app = TestApp::start_with(db, |c| {
        c.login_rate_limit = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
    })
    .await;
    app.register("alice@example.com").await;
    let a = Some("203.0.113.7");
    for _ in 0..2 {
        assert_eq!(login_from(&app, "alice@example.com", PASSWORD, a).await.status, StatusCode::OK);
    }
    assert_rate_limited(&login_from(&app, "alice@example.com", PASSWORD, a).await);
    // Another client behind the same proxy has its own quota, and so has the proxy itself.
    let b = Some("198.51.100.4, 127.0.0.1");
    let reply = login_from(&app, "alice@example.com", PASSWORD, b).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(login_from(&app, "alice@example.com", PASSWORD, None).await.status, StatusCode::OK);

    // Sessions record the client, not the proxy.
    let id = app.me(Pair::from_reply(&reply).access.as_str()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let sessions = app.state.store.sessions_of_user(&id, app.now()).await.expect("sessions");
    let mut ips: Vec<_> = sessions.iter().filter_map(|s| s.client.ip.clone()).collect();
    ips.sort();
    assert_eq!(ips, ["127.0.0.1", "198.51.100.4", "203.0.113.7", "203.0.113.7"]);
}

async fn failed_logins_slow_down_only_their_account_and_ip(db: TestDb) {
    let app = TestApp::start_with(db, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
    })
    .await;
    app.register("alice@example.com").await;
    let attacker = Some("203.0.113.66");
    let mut slowed = None;
    for attempt in 1..=8 {
        let reply = login_from(&app, "alice@example.com", "guess", attacker).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            slowed = Some((attempt, reply));
            break;
        }
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let (attempt, reply) = slowed.expect("repeated failures of one account and IP are slowed down");
    assert!(attempt > 1, "the first failure is free");
    assert_rate_limited(&reply);
    // Even the right password waits, from that IP ...
    assert_rate_limited(&login_from(&app, "alice@example.com", PASSWORD, attacker).await);
    // ... but the owner elsewhere is not locked out, and other accounts from that IP go on.
    let owner = login_from(&app, "alice@example.com", PASSWORD, Some("198.51.100.1")).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.text);
    let other = login_from(&app, "bob@example.com", "guess", attacker).await;
    other.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

/// PostgreSQL only: an embedded SQLite file cannot become unreachable under an open connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ready_is_503_once_the_database_is_gone() {
    let Some(db) = TestDb::open(Backend::Postgres).await else { return };
    let mut app = TestApp::start(db).await;
    app.drop_database();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let reply = loop {
        let reply = send(app.get("/ready")).await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            break reply;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert!(tokio::time::Instant::now() < deadline, "still ready without a database");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reply.body.is_object(), "{}", reply.text);
    assert_eq!(send(app.get("/health")).await.status, StatusCode::OK, "the process is still up");
    // A login needs the database: 503, in the error format, never a dropped connection.
    let login = app.try_login("alice@example.com", PASSWORD).await;
    let code = login.body["error"].as_str().unwrap_or_default().to_owned();
    login.assert_error(StatusCode::SERVICE_UNAVAILABLE, &code);
}
