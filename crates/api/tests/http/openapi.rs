//! `/openapi.json` tells the whole truth: every status each operation can answer, with its
//! headers, and the constraints of every field and parameter; and the server holds to the
//! document where it once did not (page bounds, bodies that are not objects, a logout body
//! sent with a bearer token).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, Reply, TestApp, TestDb, send};

crate::http_tests!(
    every_operation_lists_exactly_the_statuses_it_can_answer,
    answers_name_their_headers_and_error_bodies,
    fields_and_parameters_carry_their_constraints,
    user_pages_refuse_limits_and_offsets_out_of_range,
    json_bodies_must_be_objects,
    logout_with_a_bearer_token_still_refuses_a_bad_body,
);

async fn document(app: &TestApp) -> Value {
    let reply = send(app.get("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let operation = &doc["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    operation
}

/// `$ref`s resolved against the document's components.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().expect("a component name");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The statuses of every operation: the extractors' refusals (a body that cannot be read:
/// 400, 413, 415, 422; a token: 401, 403), the database's absence (503), the throttles (429)
/// and each handler's own answers.
const STATUSES: &[(&str, &str, &[u16])] = &[
    ("post", "/auth/register", &[201, 400, 403, 409, 413, 415, 422, 503]),
    ("post", "/auth/login", &[200, 400, 401, 413, 415, 422, 429, 503]),
    ("post", "/auth/token", &[200, 400, 401, 413, 415, 429, 503]),
    ("get", "/auth/authorize", &[200, 302, 400, 503]),
    ("get", "/auth/userinfo", &[200, 401, 403, 404, 503]),
    ("get", "/auth/end-session", &[200, 302, 400, 503]),
    ("post", "/auth/end-session", &[200, 302, 400, 403, 413, 503]),
    ("get", "/.well-known/openid-configuration", &[200, 404]),
    ("post", "/auth/authorize", &[200, 302, 400, 403, 413, 415, 429, 503]),
    ("post", "/auth/refresh", &[200, 400, 401, 403, 413, 415, 422, 503]),
    ("post", "/auth/logout", &[204, 400, 401, 403, 413, 415, 422, 503]),
    ("post", "/auth/logout-all", &[204, 401, 503]),
    ("post", "/auth/revoke", &[200, 400, 413, 415, 503]),
    ("post", "/auth/introspect", &[200, 400, 401, 403, 413, 415, 503]),
    ("get", "/.well-known/jwks.json", &[200]),
    ("get", "/.well-known/oauth-authorization-server", &[200]),
    ("get", "/auth/revocations", &[200, 401, 403, 410, 422, 429, 503]),
    ("get", "/api/me", &[200, 401, 404, 503]),
    ("get", "/api/users", &[200, 401, 403, 422, 503]),
    ("get", "/api/admin/users/{id}/sessions", &[200, 401, 403, 404, 503]),
    ("post", "/api/admin/users/{id}/revoke", &[204, 401, 403, 404, 503]),
    ("patch", "/api/admin/users/{id}", &[200, 400, 401, 403, 404, 413, 415, 422, 503]),
    ("get", "/health", &[200]),
    ("get", "/ready", &[200, 503]),
    ("get", "/metrics", &[200]),
    ("get", "/openapi.json", &[200]),
    ("get", "/docs", &[200]),
    ("get", "/api/admin/users/{id}", &[200, 401, 403, 404, 503]),
    ("post", "/api/admin/users/{id}/sessions/{session_id}/revoke", &[204, 401, 403, 404, 503]),
    ("get", "/api/admin/keys", &[200, 401, 403, 503]),
    ("post", "/api/admin/keys/rotate", &[200, 401, 403, 409, 422, 503]),
    ("post", "/api/admin/keys/{kid}/revoke", &[200, 401, 403, 404, 409, 503]),
    ("get", "/api/admin/events", &[200, 401, 403, 422, 503]),
    ("get", "/api/admin/clients", &[200, 401, 403, 503]),
    ("post", "/api/admin/clients", &[201, 400, 401, 403, 409, 413, 415, 422, 503]),
    ("delete", "/api/admin/clients/{id}", &[204, 401, 403, 404, 503]),
];

async fn every_operation_lists_exactly_the_statuses_it_can_answer(db: TestDb) {
    let app = TestApp::start(db).await;
    let doc = document(&app).await;
    for (method, path, expected) in STATUSES {
        let responses = operation(&doc, method, path)["responses"].as_object().expect("responses");
        let mut listed: Vec<u16> =
            responses.keys().map(|s| s.parse().expect("a numeric status")).collect();
        listed.sort_unstable();
        assert_eq!(listed, *expected, "{method} {path}");
    }
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().expect("a path item").len())
        .sum();
    assert_eq!(operations, STATUSES.len(), "an operation the table above does not know");
}

/// Every `$ref` below `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference.clone());
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

async fn answers_name_their_headers_and_error_bodies(db: TestDb) {
    let app = TestApp::start(db).await;
    let doc = document(&app).await;
    let mut found = Vec::new();
    references(&doc, &mut found);
    assert!(!found.is_empty());
    for reference in found {
        let name = reference.strip_prefix("#/components/schemas/").expect("a local schema");
        assert!(doc["components"]["schemas"][name].is_object(), "{reference} does not resolve");
    }
    let response = |method: &str, path: &str, status: u16| {
        operation(&doc, method, path)["responses"][status.to_string()].clone()
    };
    let body_schema = |response: &Value| {
        response["content"]["application/json"]["schema"]["$ref"].as_str().map(str::to_owned)
    };
    for (method, path, statuses) in STATUSES {
        for status in *statuses {
            let answer = response(method, path, *status);
            let header = |name: &str| answer["headers"][name].is_object();
            match status {
                401 => assert!(header("WWW-Authenticate"), "{method} {path} {status}"),
                429 => assert!(header("Retry-After"), "{method} {path} {status}"),
                503 if *path != "/ready" => {
                    assert!(header("Retry-After"), "{method} {path} {status}")
                }
                _ => {}
            }
            // RFC 6749's body for what the OAuth endpoints refuse themselves (the token
            // endpoint's `invalid_client` included); the JSON error format for the rest, the
            // shared 401/403/429/503 of those endpoints included.
            // The pages of the authorization endpoint answer HTML, but for a body too large
            // to read.
            let pages = ["/auth/authorize", "/auth/end-session"];
            if pages.contains(path) && *status != 413 && *status >= 400 {
                assert!(answer["content"]["text/html"].is_object(), "{method} {path} {status}");
                continue;
            }
            if (400..500).contains(status) || (*status == 503 && *path != "/ready") {
                let oauth = ["/auth/token", "/auth/revoke", "/auth/introspect"].contains(path)
                    && [400, 413, 415].contains(status)
                    || (*path == "/auth/token" && *status == 401);
                let expected = if oauth { "OAuthErrorBody" } else { "ErrorBody" };
                assert_eq!(
                    body_schema(&answer).as_deref(),
                    Some(format!("#/components/schemas/{expected}").as_str()),
                    "{method} {path} {status}"
                );
            }
        }
    }
    for (path, status) in [("/auth/login", 200), ("/auth/refresh", 200), ("/auth/token", 200)] {
        let answer = response("post", path, status);
        assert!(answer["headers"]["Cache-Control"].is_object(), "{path}: {answer}");
        assert!(answer["headers"]["Pragma"].is_object(), "{path}: {answer}");
    }
    for (path, status) in [("/auth/login", 200), ("/auth/refresh", 200), ("/auth/logout", 204)] {
        assert!(response("post", path, status)["headers"]["Set-Cookie"].is_object(), "{path}");
    }
}

async fn fields_and_parameters_carry_their_constraints(db: TestDb) {
    let app = TestApp::start(db).await;
    let doc = document(&app).await;
    let body = |method: &str, path: &str, media: &str| {
        let body = &operation(&doc, method, path)["requestBody"];
        resolve(&doc, &body["content"][media]["schema"]).clone()
    };

    let register = body("post", "/auth/register", "application/json");
    assert_eq!(register["required"], json!(["email", "password"]));
    let password = &register["properties"]["password"];
    // Characters (Unicode code points), as the server counts them: the rule stated exactly.
    assert_eq!((&password["minLength"], &password["maxLength"]), (&json!(8), &json!(256)));
    let email = &register["properties"]["email"];
    assert_eq!((&email["format"], &email["maxLength"]), (&json!("email"), &json!(254)));

    let login = body("post", "/auth/login", "application/json");
    assert_eq!(login["required"], json!(["username", "password"]));
    assert_eq!(login["properties"]["password"]["maxLength"], 1024);
    assert!(login["properties"]["password"]["minLength"].is_null(), "no lower bound at login");

    // The token endpoint: one of two grants, each with the fields it requires.
    let token = body("post", "/auth/token", "application/x-www-form-urlencoded");
    let grants = token["oneOf"].as_array().expect("one of the grants");
    let password_grant = grants
        .iter()
        .find(|g| g["properties"]["grant_type"]["enum"] == json!(["password"]))
        .expect("the password grant");
    assert_eq!(password_grant["properties"]["password"]["maxLength"], 1024);
    for field in ["grant_type", "username", "password"] {
        assert!(password_grant["required"].as_array().expect("required").contains(&json!(field)));
    }
    assert!(
        grants.iter().any(|g| g["properties"]["grant_type"]["enum"] == json!(["refresh_token"])
            && g["required"].as_array().is_some_and(|r| r.contains(&json!("refresh_token"))))
    );
    for path in ["/auth/revoke", "/auth/introspect"] {
        let form = body("post", path, "application/x-www-form-urlencoded");
        assert_eq!(form["required"], json!(["token"]), "{path}");
    }

    // `{}` is not a refresh request; the logout body is optional (a bearer token names the
    // session), but when sent it is the same object.
    let refresh = body("post", "/auth/refresh", "application/json");
    assert_eq!(refresh["required"], json!(["refresh_token"]));
    assert_eq!(operation(&doc, "post", "/auth/refresh")["requestBody"]["required"], true);
    let logout = operation(&doc, "post", "/auth/logout");
    assert_eq!(logout["requestBody"]["required"], false);
    assert_eq!(body("post", "/auth/logout", "application/json"), refresh);
    assert!(logout["description"].as_str().is_some_and(|d| d.contains("X-Requested-With")));
    assert!(
        operation(&doc, "post", "/auth/refresh")["description"]
            .as_str()
            .is_some_and(|d| d.contains("X-Requested-With")),
        "the browser mode is described"
    );

    // Roles: non-empty, at most 64 characters, no whitespace; no field but roles and disabled.
    let patch = body("patch", "/api/admin/users/{id}", "application/json");
    assert_eq!(patch["additionalProperties"], false);
    let role = &patch["properties"]["roles"]["items"];
    assert_eq!((&role["minLength"], &role["maxLength"]), (&json!(1), &json!(64)));
    let pattern = role["pattern"].as_str().expect("a pattern");
    assert!(pattern.starts_with("^[^") && pattern.ends_with("]+$"), "{pattern}");
    for space in [r"\u0009-\u000D", r"\u0020", r"\u0085", r"\u00A0", r"\u3000"] {
        assert!(pattern.contains(space), "{space} in {pattern}");
    }

    let parameters = operation(&doc, "get", "/api/users")["parameters"].as_array().expect("some");
    let parameter = |name: &str| {
        parameters.iter().find(|p| p["name"] == name).expect("documented")["schema"].clone()
    };
    let limit = parameter("limit");
    assert_eq!((limit["minimum"].as_u64(), limit["maximum"].as_u64()), (Some(1), Some(100)));
    let offset = parameter("offset");
    assert_eq!(offset["minimum"].as_u64(), Some(0));
    assert_eq!(offset["maximum"].as_u64(), Some(i64::MAX as u64), "exactly i64::MAX");
}

async fn user_pages_refuse_limits_and_offsets_out_of_range(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    let page =
        |query: &str| send(app.get(&format!("/api/users?{query}")).bearer_auth(&admin.access));
    for query in ["limit=0", "limit=101", "limit=-1", "offset=-1", "offset=9223372036854775808"] {
        page(query).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    for query in ["limit=1", "limit=100", "offset=0", "offset=9223372036854775807"] {
        let reply = page(query).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
    }
    let last = page("offset=9223372036854775807").await;
    assert_eq!(last.body["users"], json!([]));
    assert_eq!(last.body["total"], 1);
}

async fn json(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: &str) -> Reply {
    let mut request = app
        .http
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

async fn json_bodies_must_be_objects(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    let user = app.register("alice@example.com").await;
    let id = user["id"].as_str().expect("id");
    let patch = format!("/api/admin/users/{id}");
    let arrays = [
        (Method::POST, "/auth/register", format!(r#"["bob@example.com", "{PASSWORD}"]"#)),
        (Method::POST, "/auth/login", format!(r#"["alice@example.com", "{PASSWORD}"]"#)),
        (Method::POST, "/auth/refresh", r#"["a.b.c"]"#.to_owned()),
        (Method::PATCH, patch.as_str(), "[null, true]".to_owned()),
        (Method::PATCH, patch.as_str(), r#""admin""#.to_owned()),
    ];
    for (method, path, body) in arrays {
        let reply = json(&app, method, path, Some(&admin.access), &body).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    // Nothing changed: Bob was not registered, Alice is not disabled.
    let bob = app.try_login("bob@example.com", PASSWORD).await;
    bob.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    app.login("alice@example.com").await;
}

async fn logout_with_a_bearer_token_still_refuses_a_bad_body(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    let refusals = [
        ("application/json", "{", StatusCode::BAD_REQUEST, "invalid_request"),
        ("application/json", "{} {}", StatusCode::BAD_REQUEST, "invalid_request"),
        ("text/plain", "refresh", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("application/json", "{}", StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (
            "application/json",
            r#"{"refresh_token": 5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ];
    for (media, body, status, code) in refusals {
        let request = app
            .post("/auth/logout")
            .bearer_auth(&pair.access)
            .header("content-type", media)
            .body(body);
        send(request).await.assert_error(status, code);
    }
    let big = json!({"refresh_token": "x".repeat(65 * 1024)});
    let reply = send(app.post("/auth/logout").bearer_auth(&pair.access).json(&big)).await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // Refused, so the session lives on.
    app.assert_accepted(&pair.access).await;

    // A valid body, or none, with the bearer token: the bearer token's session ends.
    let body = json!({"refresh_token": pair.refresh});
    let reply = send(app.post("/auth/logout").bearer_auth(&pair.access).json(&body)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    app.me(&pair.access).await.assert_token_refused("token_revoked");
    let second = app.login("alice@example.com").await;
    let reply = send(app.post("/auth/logout").bearer_auth(&second.access)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
}
