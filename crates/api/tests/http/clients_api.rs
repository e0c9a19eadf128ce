//! The clients over HTTP (`/api/admin/clients`, role `admin`, behind the console): listed as
//! `clients list --json` lists them, never with a secret or its digest; added with their
//! secret shown once, refused with 422 for what the service refuses and 409 for a taken name;
//! removed with their tokens refused here at once and on every instance within a second. Each
//! refusal beside its positive control, and no answer cacheable.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::apps::{App, Browser, authorize_query, code_for, exchange};
use crate::common::{Reply, TestApp, TestDb, send};

crate::http_tests!(
    clients_are_added_with_their_secret_shown_once_and_listed_without_it,
    what_the_service_refuses_is_422_a_taken_name_409_and_nothing_is_added,
    the_clients_api_is_for_administrators_only,
    removing_a_client_revokes_its_tokens_here_at_once_and_everywhere,
    a_removed_client_stops_authenticating_on_every_instance_within_the_feeds_bound,
);

/// What every client is shown with, and nothing more.
const VIEW: [&str; 9] = [
    "client_id",
    "created",
    "first_party",
    "name",
    "post_logout_redirect_uris",
    "public",
    "redirect_uris",
    "require_dpop",
    "roles",
];

async fn add(app: &TestApp, token: &str, body: &Value) -> Reply {
    send(app.post("/api/admin/clients").bearer_auth(token).json(body)).await
}

/// Adds a client and asserts 201.
async fn added(app: &TestApp, token: &str, body: &Value) -> Value {
    let reply = add(app, token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{body}: {}", reply.text);
    assert_private(&reply);
    reply.body
}

async fn list(app: &TestApp, token: &str) -> Reply {
    send(app.get("/api/admin/clients").bearer_auth(token)).await
}

/// The clients as listed, asserting 200.
async fn listed(app: &TestApp, token: &str) -> Vec<Value> {
    let reply = list(app, token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_private(&reply);
    reply.body["clients"].as_array().expect("clients").clone()
}

async fn remove(app: &TestApp, token: &str, id: &str) -> Reply {
    let path = format!("/api/admin/clients/{id}");
    send(app.http.delete(app.url(&path)).bearer_auth(token)).await
}

fn assert_private(reply: &Reply) {
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{}", reply.text);
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().expect("an object").keys().map(|k| &**k).collect();
    keys.sort_unstable();
    keys
}

async fn client_credentials(app: &TestApp, id: &str, secret: &str) -> Reply {
    let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let form = [("grant_type", "client_credentials")];
    send(app.post("/auth/token").header("authorization", basic).form(&form)).await
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("{field} in {value}"))
}

async fn clients_are_added_with_their_secret_shown_once_and_listed_without_it(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    assert_eq!(listed(&app, &admin.access).await, Vec::<Value>::new(), "none at first");

    // A public app: no secret, and what it was given.
    let spa = added(
        &app,
        &admin.access,
        &json!({
            "name": "Photo viewer",
            "redirect_uris": ["http://127.0.0.1/callback", "com.example.photos:/cb"],
            "post_logout_redirect_uris": ["http://127.0.0.1/"],
            "public": true,
            "first_party": true,
            "require_dpop": true,
        }),
    )
    .await;
    let mut expected_keys = VIEW.to_vec();
    expected_keys.push("client_secret");
    expected_keys.sort_unstable();
    assert_eq!(keys(&spa), expected_keys, "{spa}");
    assert_eq!(spa["client_secret"], Value::Null, "a public client has no secret");
    assert_eq!((&spa["public"], &spa["first_party"]), (&json!(true), &json!(true)));
    assert_eq!(spa["require_dpop"], json!(true), "{spa}");
    assert_eq!(
        spa["redirect_uris"],
        json!(["http://127.0.0.1/callback", "com.example.photos:/cb"])
    );
    assert_eq!(spa["post_logout_redirect_uris"], json!(["http://127.0.0.1/"]));
    assert_eq!(spa["roles"], json!(["service"]), "the default role");
    assert!(uuid::Uuid::parse_str(text(&spa, "client_id")).is_ok(), "{spa}");
    let created = chrono::DateTime::parse_from_rfc3339(text(&spa, "created")).expect("a time");
    assert_eq!(created, app.now(), "made at the server's time");

    // A confidential service client, a second later (clients made in the same instant are
    // listed in the order of their ids): its secret once, which gets it a token of its own.
    app.advance(1);
    let service =
        added(&app, &admin.access, &json!({"name": "billing", "roles": ["service", "reports"]}))
            .await;
    let secret = text(&service, "client_secret").to_owned();
    assert!(secret.starts_with("jas_"), "{secret}");
    assert_eq!((&service["public"], &service["first_party"]), (&json!(false), &json!(false)));
    assert_eq!(service["require_dpop"], json!(false), "not unless asked: {service}");
    assert_eq!(service["redirect_uris"], json!([]));
    let id = text(&service, "client_id").to_owned();
    let token = client_credentials(&app, &id, &secret).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    let (_, claims) = crate::common::decode(text(&token.body, "access_token"));
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["roles"], json!(["service", "reports"]));
    // The control of the secret: another one does not authenticate it.
    let wrong = client_credentials(&app, &id, "jas_wrong").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);

    // Both listed, oldest first, exactly as they were answered but for the secret, which is
    // nowhere, nor its digest.
    let reply = list(&app, &admin.access).await;
    assert!(!reply.text.contains(&secret), "the secret is shown once only");
    let clients = listed(&app, &admin.access).await;
    assert_eq!(clients.len(), 2, "{clients:?}");
    for (shown, made) in clients.iter().zip([&spa, &service]) {
        assert_eq!(keys(shown), VIEW, "{shown}");
        let mut made = made.clone();
        made.as_object_mut().expect("an object").remove("client_secret");
        assert_eq!(shown, &made);
    }
    // What the service stored is what was answered.
    let stored = app.state.store.client(&id).await.expect("read").expect("stored");
    assert_eq!((stored.name.as_str(), stored.roles.len()), ("billing", 2));
    assert!(!stored.require_dpop, "{stored:?}");
    let spa_id = text(&spa, "client_id");
    let stored_spa = app.state.store.client(spa_id).await.expect("read").expect("stored");
    assert!(stored_spa.require_dpop && stored_spa.first_party, "{stored_spa:?}");
    assert!(!stored.secret_digest.is_empty() && !reply.text.contains("digest"));
    assert!(!reply.text.contains(&stored.session_id), "the session id is not shown");
    // HEAD is GET without the body.
    let head = send(app.http.head(app.url("/api/admin/clients")).bearer_auth(&admin.access)).await;
    assert_eq!((head.status, head.text.as_str()), (StatusCode::OK, ""));
}

async fn what_the_service_refuses_is_422_a_taken_name_409_and_nothing_is_added(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    let refused = |body: Value, status: StatusCode, code: &'static str| {
        let (app, token) = (&app, admin.access.clone());
        async move {
            let reply = add(app, &token, &body).await;
            reply.assert_error(status, code);
            assert_private(&reply);
            reply
        }
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    // A redirect URI the service refuses (plain http off loopback), and its control.
    let web = |uri: &str| json!({"name": "web", "redirect_uris": [uri]});
    let reply = refused(web("http://app.example.com/cb"), unprocessable, "invalid_field").await;
    assert!(text(&reply.body, "message").contains("loopback"), "{}", reply.text);
    refused(web("https://app.example.com/cb#top"), unprocessable, "invalid_field").await;
    for (body, why) in [
        (json!({"name": "spa", "public": true}), "a public client needs"),
        (json!({"name": "spa", "first_party": true}), "a first-party client needs"),
        (json!({"name": "", "roles": []}), "the client name must be"),
        (json!({"name": "a\nb"}), "the client name must be"),
        (json!({"name": "x", "roles": ["two words"]}), "roles must be"),
        (json!({"name": "x", "secret": "mine"}), "unknown field"),
        (json!({"roles": ["service"]}), "missing field `name`"),
        (json!({"name": "x", "public": "yes"}), "invalid type"),
        (json!({"name": "x", "require_dpop": "yes"}), "invalid type"),
    ] {
        let reply = refused(body.clone(), unprocessable, "invalid_field").await;
        assert!(text(&reply.body, "message").contains(why), "{body}: {}", reply.text);
    }
    let many: Vec<String> = (0..33).map(|i| format!("https://app.example.com/{i}")).collect();
    refused(json!({"name": "web", "redirect_uris": many}), unprocessable, "invalid_field").await;
    assert!(listed(&app, &admin.access).await.is_empty(), "nothing refused was added");
    let first = added(&app, &admin.access, &web("https://app.example.com/cb")).await;
    assert!(first["client_secret"].is_string(), "a confidential app: {first}");

    // A taken name, beside another name (a second later, to be listed second).
    app.advance(1);
    let reply =
        refused(web("https://other.example.com/cb"), StatusCode::CONFLICT, "conflict").await;
    assert!(text(&reply.body, "message").contains("`web`"), "{}", reply.text);
    // A service client may require DPoP proofs: nothing goes with it to refuse.
    let bound = added(&app, &admin.access, &json!({"name": "web 2", "require_dpop": true})).await;
    assert_eq!(bound["require_dpop"], json!(true), "{bound}");

    // Bodies that are not the JSON object they should be, as every JSON endpoint refuses them.
    let raw = |media: &str, body: String| {
        let request = app.post("/api/admin/clients").bearer_auth(&admin.access);
        send(request.header("content-type", media).body(body))
    };
    raw("application/json", "{".into())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    raw("application/json", r#"{"name": "a"} {}"#.into())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    raw("text/plain", r#"{"name": "a"}"#.into())
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    raw("application/json", r#"["a"]"#.into())
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let big = json!({"name": "x".repeat(65 * 1024)}).to_string();
    raw("application/json", big)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let names: Vec<Value> =
        listed(&app, &admin.access).await.into_iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("web"), json!("web 2")], "only what was accepted");
}

async fn the_clients_api_is_for_administrators_only(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.create_user("alice@example.com", &["user"]).await;
    let alice = app.login("alice@example.com").await;
    let kept = added(&app, &admin.access, &json!({"name": "kept"})).await;
    let path = format!("/api/admin/clients/{}", text(&kept, "client_id"));
    let body = json!({"name": "mallory's"});
    let requests = |token: Option<&str>| {
        let mut requests = [
            app.get("/api/admin/clients"),
            app.post("/api/admin/clients").json(&body),
            app.http.delete(app.url(&path)),
        ];
        if let Some(token) = token {
            requests = requests.map(|r| r.bearer_auth(token));
        }
        requests
    };
    for request in requests(None) {
        send(request).await.assert_error(StatusCode::UNAUTHORIZED, "missing_token");
    }
    for request in requests(Some(&alice.access)) {
        send(request).await.assert_error(StatusCode::FORBIDDEN, "insufficient_role");
    }
    let names: Vec<Value> =
        listed(&app, &admin.access).await.into_iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("kept")], "nothing added or removed by those refused");
    // The control: the administrator's same three requests.
    let statuses = statuses_of(requests(Some(&admin.access))).await;
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED, StatusCode::NO_CONTENT]);

    // Other methods: 405 with what is allowed.
    for (method, path, allow) in [
        (Method::PUT, "/api/admin/clients", "GET, HEAD, POST"),
        (Method::DELETE, "/api/admin/clients", "GET, HEAD, POST"),
        (Method::GET, "/api/admin/clients/x", "DELETE"),
        (Method::POST, "/api/admin/clients/x", "DELETE"),
    ] {
        let reply = send(app.http.request(method.clone(), app.url(path))).await;
        reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
}

/// The statuses of `requests`, sent one after the other.
async fn statuses_of<const N: usize>(requests: [reqwest::RequestBuilder; N]) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(send(request).await.status);
    }
    statuses
}

async fn removing_a_client_revokes_its_tokens_here_at_once_and_everywhere(db: TestDb) {
    let app = TestApp::start(db).await;
    let sibling = app.sibling().await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;

    // A service client with a token of its own, and a public app that Alice signed in to.
    let service = added(&app, &admin.access, &json!({"name": "billing"})).await;
    let (service_id, secret) = (text(&service, "client_id"), text(&service, "client_secret"));
    let granted = client_credentials(&app, service_id, secret).await;
    let service_token = text(&granted.body, "access_token").to_owned();
    let spa = added(
        &app,
        &admin.access,
        &json!({"name": "spa", "redirect_uris": ["http://127.0.0.1/callback"], "public": true}),
    )
    .await;
    let spa = App {
        id: text(&spa, "client_id").to_owned(),
        secret: None,
        redirect_uri: "http://127.0.0.1/callback".to_owned(),
    };
    let mut browser = Browser::new(&app);
    let params = code_for(&mut browser, &authorize_query(&spa, &[]), "alice@example.com").await;
    let tokens = exchange(&app, &spa, &params["code"], &spa.redirect_uri).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let app_token = text(&tokens.body, "access_token").to_owned();
    let alice = app.login("alice@example.com").await;

    // Before: every token is accepted (a client's names no user: 404 rather than 401).
    for server in [&app, &sibling] {
        let reply = server.me(&service_token).await;
        reply.assert_error(StatusCode::NOT_FOUND, "not_found");
        server.assert_accepted(&app_token).await;
    }

    // An id that names no client changes nothing.
    for unknown in [uuid::Uuid::new_v4().to_string(), "billing".to_owned()] {
        let reply = remove(&app, &admin.access, &unknown).await;
        reply.assert_error(StatusCode::NOT_FOUND, "not_found");
        assert_private(&reply);
    }
    assert_eq!(client_credentials(&app, service_id, secret).await.status, StatusCode::OK);

    for id in [service_id, spa.id.as_str()] {
        let reply = remove(&app, &admin.access, id).await;
        assert_eq!((reply.status, reply.text.as_str()), (StatusCode::NO_CONTENT, ""));
        assert_private(&reply);
    }
    // Here at once: the client's own token, and the session Alice granted the app.
    app.me(&service_token).await.assert_token_refused("token_revoked");
    app.me(&app_token).await.assert_token_refused("token_revoked");
    let introspected = send(
        app.post("/auth/introspect").bearer_auth(&admin.access).form(&[("token", &service_token)]),
    )
    .await;
    assert_eq!(introspected.body, json!({"active": false}), "{}", introspected.text);
    // Alice's own login is not the app's: it goes on.
    app.assert_accepted(&alice.access).await;
    // The other instance within a second.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (service, granted) = (sibling.me(&service_token).await, sibling.me(&app_token).await);
        if service.status == StatusCode::UNAUTHORIZED && granted.status == StatusCode::UNAUTHORIZED
        {
            service.assert_token_refused("token_revoked");
            granted.assert_token_refused("token_revoked");
            break;
        }
        assert!(Instant::now() < deadline, "still accepted: {} {}", service.text, granted.text);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sibling.assert_accepted(&alice.access).await;

    // Gone: no new token, not listed, and removing it again is 404.
    let token = client_credentials(&app, service_id, secret).await;
    assert_eq!(token.status, StatusCode::UNAUTHORIZED, "{}", token.text);
    assert!(listed(&app, &admin.access).await.is_empty());
    remove(&app, &admin.access, service_id).await.assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// Instances keep the clients they authenticate in memory; a removal elsewhere reaches them
/// through the revocation of the client's own session, as fast as a token revocation.
async fn a_removed_client_stops_authenticating_on_every_instance_within_the_feeds_bound(
    db: TestDb,
) {
    let app = TestApp::start(db).await;
    let sibling = app.sibling().await;
    let admin = app.admin().await;
    let service = added(&app, &admin.access, &json!({"name": "billing"})).await;
    let (id, secret) = (text(&service, "client_id"), text(&service, "client_secret"));
    // Authenticated on both instances, so both remember the client.
    for server in [&app, &sibling] {
        assert_eq!(client_credentials(server, id, secret).await.status, StatusCode::OK);
        assert_eq!(client_credentials(server, id, secret).await.status, StatusCode::OK);
    }
    // A wrong secret is refused even so: the cache holds the digest, not a verdict.
    let wrong = client_credentials(&sibling, id, "jas_wrong").await;
    wrong.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");

    let reply = remove(&app, &admin.access, id).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let here = client_credentials(&app, id, secret).await;
    here.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let there = client_credentials(&sibling, id, secret).await;
        if there.status == StatusCode::UNAUTHORIZED {
            there.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");
            break;
        }
        assert_eq!(there.status, StatusCode::OK, "{}", there.text);
        assert!(Instant::now() < deadline, "the sibling still authenticates the removed client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
