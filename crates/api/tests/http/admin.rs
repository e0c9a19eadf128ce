//! Role checks and the administrators' endpoints: users, sessions, revocation, updates, and
//! the OAuth revocation (RFC 7009) and introspection (RFC 7662) endpoints.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Pair, Reply, TestApp, TestDb, decode, send};

crate::http_tests!(
    admin_endpoints_refuse_callers_without_a_token_or_the_role,
    admin_lists_users_and_their_active_sessions,
    admin_revocation_ends_every_session_of_the_user,
    patch_changes_roles_and_disabling_shuts_the_user_out,
    unknown_or_odd_user_ids_are_404,
    introspection_speaks_rfc_7662,
    revocation_endpoint_speaks_rfc_7009,
);

/// A request to an admin endpoint, with `token` as bearer when given.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut request = app.http.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    send(request).await
}

async fn user_id(app: &TestApp, pair: &Pair) -> String {
    app.me(&pair.access).await.body["id"].as_str().expect("id").to_owned()
}

async fn admin_endpoints_refuse_callers_without_a_token_or_the_role(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;
    let id = user_id(&app, &alice).await;
    let patch = json!({"roles": ["user"]});
    let endpoints: Vec<(Method, String, Option<&Value>)> = vec![
        (Method::GET, "/api/users".into(), None),
        (Method::GET, format!("/api/admin/users/{id}/sessions"), None),
        (Method::POST, format!("/api/admin/users/{id}/revoke"), None),
        (Method::PATCH, format!("/api/admin/users/{id}"), Some(&patch)),
    ];
    for (method, path, body) in &endpoints {
        let none = call(&app, method.clone(), path, None, *body).await;
        none.assert_error(StatusCode::UNAUTHORIZED, "missing_token");
        assert_eq!(none.header("www-authenticate"), Some(r#"Bearer realm="jwt-auth""#));
        let user = call(&app, method.clone(), path, Some(&alice.access), *body).await;
        user.assert_error(StatusCode::FORBIDDEN, "insufficient_role");
        let forged = call(&app, method.clone(), path, Some("a.b.c"), *body).await;
        forged.assert_token_refused("invalid_token");
    }
    let introspect = |token: Option<&str>| {
        let mut request = app.post("/auth/introspect").form(&[("token", &alice.access)]);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send(request)
    };
    introspect(None).await.assert_error(StatusCode::UNAUTHORIZED, "missing_token");
    introspect(Some(&alice.access)).await.assert_error(StatusCode::FORBIDDEN, "insufficient_role");

    // The control: the administrator gets through every one.
    for (method, path, body) in &endpoints {
        let reply = call(&app, method.clone(), path, Some(&admin.access), *body).await;
        assert!(reply.status.is_success(), "{method} {path}: {}", reply.text);
    }
    assert_eq!(introspect(Some(&admin.access)).await.status, StatusCode::OK);
}

async fn admin_lists_users_and_their_active_sessions(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    app.register("bob@example.com").await;
    let token = Some(admin.access.as_str());

    let all = call(&app, Method::GET, "/api/users", token, None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.body["total"], 3);
    let users = all.body["users"].as_array().expect("users");
    assert_eq!(users.len(), 3);
    let mut emails: Vec<_> = users.iter().map(|u| u["email"].as_str().expect("email")).collect();
    emails.sort_unstable();
    assert_eq!(emails, ["admin@example.com", "alice@example.com", "bob@example.com"]);
    for user in users {
        assert!(user["id"].is_string() && user["roles"].is_array(), "{user}");
    }
    assert!(!all.text.contains("argon2"), "no password hash is listed");

    let page = call(&app, Method::GET, "/api/users?limit=2", token, None).await;
    assert_eq!(page.body["users"].as_array().expect("users").len(), 2);
    assert_eq!(page.body["total"], 3);
    let rest = call(&app, Method::GET, "/api/users?limit=2&offset=2", token, None).await;
    assert_eq!(rest.body["users"].as_array().expect("users").len(), 1);
    let first_ids: Vec<_> =
        page.body["users"].as_array().expect("users").iter().map(|u| &u["id"]).collect();
    assert!(!first_ids.contains(&&rest.body["users"][0]["id"]), "pages do not overlap");
    let max = call(&app, Method::GET, "/api/users?limit=100", token, None).await;
    assert_eq!(max.status, StatusCode::OK);
    let far = call(&app, Method::GET, "/api/users?offset=9223372036854775807", token, None).await;
    assert_eq!(far.status, StatusCode::OK, "{}", far.text);
    assert_eq!(far.body["users"], json!([]));
    assert_eq!(far.body["total"], 3);
    for query in ["limit=101", "limit=0", "limit=abc", "offset=-1"] {
        let reply = call(&app, Method::GET, &format!("/api/users?{query}"), token, None).await;
        assert!(reply.status.is_client_error(), "{query}: {}", reply.text);
        assert!(reply.body["error"].is_string() && reply.body["message"].is_string(), "{query}");
    }

    let first = app.login("alice@example.com").await;
    let second = app.login("alice@example.com").await;
    let id = user_id(&app, &first).await;
    let path = format!("/api/admin/users/{id}/sessions");
    let reply = call(&app, Method::GET, &path, token, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let sessions = reply.body["sessions"].as_array().expect("sessions");
    let mut ids: Vec<_> =
        sessions.iter().map(|s| s["id"].as_str().expect("id").to_owned()).collect();
    ids.sort();
    let mut expected = vec![first.sid(), second.sid()];
    expected.sort();
    assert_eq!(ids, expected);
    for session in sessions {
        for field in ["created_at", "last_used_at", "expires_at"] {
            let at = session[field].as_str().unwrap_or_else(|| panic!("{field}: {session}"));
            assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{field}: {at}");
        }
        assert_eq!(session["ip"], "127.0.0.1");
        assert_eq!(session["user_agent"], "jwt-auth-tests/1");
    }

    let out = send(app.post("/auth/logout").bearer_auth(&first.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let reply = call(&app, Method::GET, &path, token, None).await;
    let sessions = reply.body["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "only active sessions: {}", reply.text);
    assert_eq!(sessions[0]["id"], second.sid());
}

async fn admin_revocation_ends_every_session_of_the_user(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    app.register("bob@example.com").await;
    let a = app.login("alice@example.com").await;
    let b = app.login("alice@example.com").await;
    let bob = app.login("bob@example.com").await;
    let id = user_id(&app, &a).await;

    let reply = call(
        &app,
        Method::POST,
        &format!("/api/admin/users/{id}/revoke"),
        Some(&admin.access),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    for pair in [&a, &b] {
        app.me(&pair.access).await.assert_token_refused("token_revoked");
        app.refresh(&pair.refresh).await.assert_token_refused("token_revoked");
    }
    app.assert_accepted(&bob.access).await;
    app.assert_accepted(&admin.access).await;
    let sessions = call(
        &app,
        Method::GET,
        &format!("/api/admin/users/{id}/sessions"),
        Some(&admin.access),
        None,
    )
    .await;
    assert_eq!(sessions.body["sessions"], json!([]), "{}", sessions.text);
    // The user may log in again.
    let again = app.login("alice@example.com").await;
    app.assert_accepted(&again.access).await;
}

async fn patch_changes_roles_and_disabling_shuts_the_user_out(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;
    let id = user_id(&app, &alice).await;
    let path = format!("/api/admin/users/{id}");
    let token = Some(admin.access.as_str());
    assert_eq!(app.me(&alice.access).await.body["roles"], json!(["user"]));

    let promoted =
        call(&app, Method::PATCH, &path, token, Some(&json!({"roles": ["user", "admin"]}))).await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    assert_eq!(promoted.body["id"], id.as_str());
    assert_eq!(promoted.body["email"], "alice@example.com");
    assert_eq!(promoted.body["roles"], json!(["user", "admin"]));
    // `/api/me` answers from the record, not the token: the new roles at once, here.
    assert_eq!(app.me(&alice.access).await.body["roles"], json!(["user", "admin"]));
    let as_admin = app.login("alice@example.com").await;
    assert_eq!(decode(&as_admin.access).1["roles"], json!(["user", "admin"]));
    let list = call(&app, Method::GET, "/api/users", Some(&as_admin.access), None).await;
    assert_eq!(list.status, StatusCode::OK, "the new role is in force: {}", list.text);

    let disabled = call(&app, Method::PATCH, &path, token, Some(&json!({"disabled": true}))).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    assert_eq!(disabled.body["id"], id.as_str());
    for pair in [&alice, &as_admin] {
        let reply = app.me(&pair.access).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "a disabled user's token: {}",
            reply.text
        );
        reply.assert_token_refused("token_revoked");
        let reply = app.refresh(&pair.refresh).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    let login = app.try_login("alice@example.com", crate::common::PASSWORD).await;
    login.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    let enabled = call(&app, Method::PATCH, &path, token, Some(&json!({"disabled": false}))).await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text);
    app.assert_accepted(&app.login("alice@example.com").await.access).await;

    for body in [
        json!({"role": "admin"}),
        json!({"roles": "admin"}),
        json!({"disabled": "yes"}),
        json!({"roles": [""]}),
    ] {
        let reply = call(&app, Method::PATCH, &path, token, Some(&body)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", reply.text);
        assert!(reply.body["error"].is_string() && reply.body["message"].is_string());
    }
    let malformed = send(
        app.http
            .patch(app.url(&path))
            .bearer_auth(&admin.access)
            .header("content-type", "application/json")
            .body("{\"roles\": ["),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{}", malformed.text);
    let text = send(app.http.patch(app.url(&path)).bearer_auth(&admin.access).body("{}")).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", text.text);
}

async fn unknown_or_odd_user_ids_are_404(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    let token = Some(admin.access.as_str());
    let patch = json!({"disabled": true});
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".into(), "%00".into(), "%C3%A9".into()]
    {
        let cases: [(Method, String, Option<&Value>); 3] = [
            (Method::GET, format!("/api/admin/users/{id}/sessions"), None),
            (Method::POST, format!("/api/admin/users/{id}/revoke"), None),
            (Method::PATCH, format!("/api/admin/users/{id}"), Some(&patch)),
        ];
        for (method, path, body) in cases {
            let reply = call(&app, method.clone(), &path, token, body).await;
            reply.assert_error(StatusCode::NOT_FOUND, "not_found");
        }
    }
    app.assert_accepted(&admin.access).await;
}

async fn introspect(app: &TestApp, admin: &str, token: &str) -> Reply {
    let reply =
        send(app.post("/auth/introspect").bearer_auth(admin).form(&[("token", token)])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply
}

async fn introspection_speaks_rfc_7662(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;

    let active = introspect(&app, &admin.access, &alice.access).await.body;
    let (_, claims) = decode(&alice.access);
    assert_eq!(
        active,
        json!({
            "active": true, "sub": claims["sub"], "exp": claims["exp"], "iat": claims["iat"],
            "sid": claims["sid"], "jti": claims["jti"], "token_type": "access_token",
            "roles": ["user"],
        })
    );
    let refresh = introspect(&app, &admin.access, &alice.refresh).await.body;
    let (_, rclaims) = decode(&alice.refresh);
    assert_eq!(refresh["active"], true, "{refresh}");
    assert_eq!(refresh["token_type"], "refresh_token");
    for claim in ["sub", "exp", "iat", "sid", "jti"] {
        assert_eq!(refresh[claim], rclaims[claim], "{claim}");
    }

    // A rotated refresh token stays active while presenting it would still get a pair (the
    // reuse grace), and not after; introspecting it changes nothing.
    let rotated = Pair::from_reply(&app.refresh(&alice.refresh).await);
    assert_eq!(introspect(&app, &admin.access, &alice.refresh).await.body["active"], true);
    app.advance(11);
    let retired = introspect(&app, &admin.access, &alice.refresh).await.body;
    assert_eq!(retired, json!({"active": false}), "rotated beyond the grace");
    assert_eq!(introspect(&app, &admin.access, &rotated.refresh).await.body["active"], true);
    app.assert_accepted(&rotated.access).await;
    let next = Pair::from_reply(&app.refresh(&rotated.refresh).await);
    app.assert_accepted(&next.access).await;

    let inactive = json!({"active": false});
    for token in ["garbage", "a.b.c", ""] {
        assert_eq!(introspect(&app, &admin.access, token).await.body, inactive, "{token:?}");
    }
    let forged = app.resign(&alice.access, |_, c| c["aud"] = json!("other"));
    assert_eq!(introspect(&app, &admin.access, &forged).await.body, inactive);

    let out = send(app.post("/auth/logout").bearer_auth(&alice.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(introspect(&app, &admin.access, &alice.access).await.body, inactive, "revoked");
    assert_eq!(introspect(&app, &admin.access, &alice.refresh).await.body, inactive, "revoked");

    let later = app.login("alice@example.com").await;
    app.advance(30 * 60 + 31);
    let admin = app.login("admin@example.com").await;
    assert_eq!(introspect(&app, &admin.access, &later.access).await.body, inactive, "expired");

    let missing =
        send(app.post("/auth/introspect").bearer_auth(&admin.access).form(&[("x", "y")])).await;
    missing.assert_oauth_error("invalid_request");
}

async fn revoke(app: &TestApp, form: &[(&str, &str)]) -> Reply {
    send(app.post("/auth/revoke").form(form)).await
}

async fn revocation_endpoint_speaks_rfc_7009(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let by_refresh = app.login("alice@example.com").await;
    let by_access = app.login("alice@example.com").await;
    let untouched = app.login("alice@example.com").await;

    for (pair, token) in [(&by_refresh, &by_refresh.refresh), (&by_access, &by_access.access)] {
        let reply = revoke(&app, &[("token", token)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        app.me(&pair.access).await.assert_token_refused("token_revoked");
        app.refresh(&pair.refresh).await.assert_token_refused("token_revoked");
    }
    // Unknown, invalid or already revoked tokens are not an error (RFC 7009 §2.2).
    let foreign = app.resign(&untouched.access, |h, _| h["kid"] = json!("other"));
    for token in ["garbage", "", &foreign, &by_refresh.refresh] {
        let reply = revoke(&app, &[("token", token), ("token_type_hint", "refresh_token")]).await;
        assert_eq!(reply.status, StatusCode::OK, "{token:?}: {}", reply.text);
    }
    app.assert_accepted(&untouched.access).await;
    revoke(&app, &[("token_type_hint", "access_token")])
        .await
        .assert_oauth_error("invalid_request");
}
