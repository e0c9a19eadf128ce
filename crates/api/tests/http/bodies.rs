//! What the server does with the bodies it is sent: a JSON body that is not exactly one JSON
//! value is 400 before any field is looked at, a well-formed body with a bad field is 422, an
//! email must pass the contract's rule. Each refusal beside the request that passes. (The
//! refresh cookie's CSRF refusal is in `auth.rs`, with the rest of the cookie mode.)

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, Reply, TestApp, TestDb, send};

crate::http_tests!(
    json_bodies_must_be_exactly_one_value_before_any_field_is_checked,
    emails_follow_the_contract_rule,
);

async fn post_raw(app: &TestApp, path: &str, body: &str) -> Reply {
    send(app.post(path).header("content-type", "application/json").body(body.to_owned())).await
}

async fn json_bodies_must_be_exactly_one_value_before_any_field_is_checked(db: TestDb) {
    let app = TestApp::start(db).await;
    let good = json!({"email": "alice@example.com", "password": PASSWORD}).to_string();
    for body in [
        r#"{"a":1} trailing"#.to_owned(),
        format!("{good} trailing"),
        format!("{good} {good}"),
        format!("{good},"),
        "{".to_owned(),
        String::new(),
        "   ".to_owned(),
    ] {
        post_raw(&app, "/auth/register", &body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        post_raw(&app, "/auth/login", &body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Nothing was created by the refused bodies: the good one registers now.
    let created = post_raw(&app, "/auth/register", &format!("  {good}\n")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    // One JSON value with missing or mistyped fields: 422.
    for body in ["{}", "[1]", r#"{"email": 1, "password": "x"}"#, "null"] {
        post_raw(&app, "/auth/register", body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    // The same order at /auth/refresh and the admin PATCH.
    post_raw(&app, "/auth/refresh", r#"{"refresh_token":"x"} x"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    post_raw(&app, "/auth/refresh", "{}")
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    post_raw(&app, "/auth/refresh", r#"{"refresh_token":"x"}"#)
        .await
        .assert_token_refused("invalid_token");
    let admin = app.admin().await;
    let id = created.body["id"].as_str().expect("id");
    let patch = |body: &'static str| {
        send(
            app.http
                .patch(app.url(&format!("/api/admin/users/{id}")))
                .bearer_auth(&admin.access)
                .header("content-type", "application/json")
                .body(body),
        )
    };
    patch(r#"{"disabled":false} []"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    patch(r#"{"disabled":"no"}"#)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let ok = patch(r#"{"disabled":false}"#).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
}

async fn emails_follow_the_contract_rule(db: TestDb) {
    let app = TestApp::start(db).await;
    let register = |email: String| {
        send(app.post("/auth/register").json(&json!({"email": email, "password": PASSWORD})))
    };
    for bad in [
        "a@example..com",
        "a\u{202E}b@example.com",
        "a@exa\u{200B}mple.com",
        "a@example.com\u{0007}",
        ".a@example.com",
        "a.@example.com",
        "a..b@example.com",
        "a@localhost",
        "a@-example.com",
        "a@example-.com",
        "a@exa_mple.com",
        "a@b@example.com",
        "@example.com",
        " a@example.com",
        "a b@example.com",
        "a@example.com.",
    ] {
        register(bad.to_owned())
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    let long_local = "a".repeat(254 - "@example.com".len());
    register(format!("{long_local}x@example.com"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    for good in
        ["a.b@example.com", "a+tag@sub.example-1.com", format!("{long_local}@example.com").as_str()]
    {
        let reply = register(good.to_owned()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{good}: {}", reply.text);
        assert_eq!(reply.body["email"], good);
    }
}
