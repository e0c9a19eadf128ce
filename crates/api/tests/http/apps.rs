//! Sign-in for apps (contract v3): the authorization code grant with PKCE through the server's
//! own pages, as a browser drives them (cookies kept, redirects not followed), then the code
//! exchange and the refresh of the session it starts, for public and confidential clients.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;

use jwt_auth_service::clients::{self, SignIn};

use crate::common::{PASSWORD, Reply, TestApp, TestDb, decode, send};

crate::http_tests!(
    a_public_client_signs_a_user_in_through_the_pages_and_refreshes_as_itself,
    a_confidential_client_authenticates_with_basic_or_its_secret_in_the_form,
    a_resource_becomes_the_access_tokens_audience,
    prompt_and_max_age_decide_when_the_sign_in_page_shows,
    ending_the_users_sessions_ends_the_browser_sign_in_everywhere,
    openid_connect_signs_in_with_an_id_token_userinfo_and_end_session,
    without_a_url_issuer_openid_is_off_and_the_code_grant_still_works,
    a_sign_out_without_an_id_token_is_confirmed_by_the_user_first,
    the_id_token_key_beside_an_hs256_secret_is_shared_and_rotated,
);

/// The verifier of RFC 7636 Appendix B and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A registered client application.
pub struct App {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

/// Registers a client application; `public` ones get no secret.
pub async fn add_app(app: &TestApp, name: &str, sign_in: SignIn) -> App {
    let new = clients::new_app_client(name, &[], &sign_in, app.now()).expect("a client");
    app.state.store.add_client(&new.client).await.expect("stored");
    app.state.clients_changed().await;
    App {
        id: new.client.id.clone(),
        secret: new.secret.map(|s| s.expose().to_owned()),
        redirect_uri: sign_in.redirect_uris[0].clone(),
    }
}

/// A public client on a loopback redirect URI, not first-party.
pub async fn public_app(app: &TestApp, name: &str) -> App {
    let sign_in = SignIn {
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        public: true,
        ..SignIn::default()
    };
    add_app(app, name, sign_in).await
}

/// A browser: its own cookies, and redirects answered, not followed.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a client");
        Self { http, base: app.url(""), cookies: HashMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, reply: &Reply) {
        for set in reply.set_cookies() {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || set.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    /// `GET path_and_query`.
    pub async fn get(&mut self, path_and_query: &str) -> Reply {
        let request = self.http.get(format!("{}{path_and_query}", self.base));
        let reply = send(request.header("cookie", self.cookie_header())).await;
        self.keep_cookies(&reply);
        reply
    }

    /// Posts `form` to `path_and_query`.
    pub async fn post(&mut self, path_and_query: &str, form: &[(&str, &str)]) -> Reply {
        let request = self.http.post(format!("{}{path_and_query}", self.base)).form(form);
        let reply = send(request.header("cookie", self.cookie_header())).await;
        self.keep_cookies(&reply);
        reply
    }
}

/// The query of an authorization request of `client` with `extra` parameters (a `None`
/// value drops a default one).
pub fn authorize_query(client: &App, extra: &[(&str, Option<&str>)]) -> String {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("scope", "email offline_access"),
        ("state", "st-1 /?&=+"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        if let Some(value) = value {
            params.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in &params {
        query.append_pair(name, value);
    }
    format!("/auth/authorize?{}", query.finish())
}

/// The value of the `csrf` field of a page.
pub fn csrf_of(page: &Reply) -> String {
    let at = page.text.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page.text[at..].split('"').next().expect("its value").to_owned()
}

/// The parameters of a redirect's `Location`, and the URI before them.
pub fn redirected(reply: &Reply) -> (String, HashMap<String, String>) {
    assert_eq!(reply.status, StatusCode::FOUND, "a redirect: {}", reply.text);
    let location = reply.header("location").expect("a Location");
    let (base, query) = location.split_once('?').expect("a query");
    let params = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    (base.to_owned(), params)
}

/// Signs `email` in on the sign-in page that `page` is.
pub async fn sign_in(browser: &mut Browser, query: &str, page: &Reply, email: &str) -> Reply {
    assert_eq!(page.status, StatusCode::OK, "the sign-in page: {}", page.text);
    assert!(page.text.contains("name=\"password\""), "the sign-in page: {}", page.text);
    let csrf = csrf_of(page);
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "sign_in"),
        ("username", email),
        ("password", PASSWORD),
    ];
    browser.post(query, &form).await
}

/// Allows the client on the consent page `page`.
pub async fn allow(browser: &mut Browser, query: &str, page: &Reply) -> Reply {
    assert_eq!(page.status, StatusCode::OK, "the consent page: {}", page.text);
    assert!(page.text.contains("value=\"allow\""), "the consent page: {}", page.text);
    let csrf = csrf_of(page);
    browser.post(query, &[("csrf", csrf.as_str()), ("action", "allow")]).await
}

/// Runs the pages for `email` from a fresh request of `query` to its code: signs in if asked,
/// allows if asked; returns the redirect's parameters.
pub async fn code_for(browser: &mut Browser, query: &str, email: &str) -> HashMap<String, String> {
    let mut reply = browser.get(query).await;
    if reply.status == StatusCode::OK && reply.text.contains("name=\"password\"") {
        reply = sign_in(browser, query, &reply, email).await;
    }
    if reply.status == StatusCode::OK && reply.text.contains("value=\"allow\"") {
        reply = allow(browser, query, &reply).await;
    }
    redirected(&reply).1
}

/// `POST /auth/token` with `form` (and HTTP Basic when `basic` is given).
pub async fn token(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let mut request = app.post("/auth/token").form(form);
    if let Some((id, secret)) = basic {
        request = request.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    send(request).await
}

/// Exchanges `code` as the public client `client`.
pub async fn exchange(app: &TestApp, client: &App, code: &str, redirect_uri: &str) -> Reply {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", VERIFIER),
        ("client_id", client.id.as_str()),
    ];
    token(app, &form, None).await
}

async fn a_public_client_signs_a_user_in_through_the_pages_and_refreshes_as_itself(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let spa = public_app(&app, "Photo viewer").await;
    let mut browser = Browser::new(&app);
    // Any port on a loopback redirect URI (RFC 8252 §7.3).
    let redirect_uri = "http://127.0.0.1:49152/callback";
    let query = authorize_query(&spa, &[("redirect_uri", Some(redirect_uri))]);

    let page = browser.get(&query).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"));
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(
        policy.contains("frame-ancestors 'none'") && !policy.contains("script-src"),
        "{policy}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.text.contains("Photo viewer"), "the page names the client");
    let csrf_cookie =
        page.set_cookies().into_iter().find(|c| c.starts_with("__Host-jwt-auth-csrf="));
    let csrf_cookie = csrf_cookie.expect("a CSRF cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(csrf_cookie.contains(attribute), "{csrf_cookie}");
    }

    let consent = sign_in(&mut browser, &query, &page, "alice@example.com").await;
    let session_cookie =
        consent.set_cookies().into_iter().find(|c| c.starts_with("__Host-jwt-auth-sign-in="));
    let session_cookie = session_cookie.expect("the sign-in cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(!session_cookie.contains("Domain"), "a __Host- cookie has no Domain");
    assert!(consent.text.contains("<code>email</code>"), "the consent page names the scopes");
    let done = allow(&mut browser, &query, &consent).await;
    let (base, params) = redirected(&done);
    assert_eq!(base, redirect_uri);
    assert_eq!(params["state"], "st-1 /?&=+", "state echoed exactly");
    assert_eq!(params["iss"], "jwt-auth", "RFC 9207");
    let code = &params["code"];
    assert_eq!(URL_SAFE_NO_PAD.decode(code).expect("base64url").len(), 32);

    let tokens = exchange(&app, &spa, code, redirect_uri).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    assert_eq!(tokens.body["scope"], "email offline_access");
    assert_eq!(tokens.body["token_type"], "Bearer");
    let access = tokens.body["access_token"].as_str().expect("an access token");
    let (header, claims) = decode(access);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["client_id"], spa.id.as_str(), "RFC 9068 client_id");
    assert_eq!(claims["scope"], "email offline_access");
    assert_eq!(claims["aud"], "api");
    assert_eq!(app.me(access).await.body["email"], "alice@example.com");

    // Signed in and allowed already: the next request comes straight back with a code.
    let again = browser.get(&authorize_query(&spa, &[])).await;
    let (_, params) = redirected(&again);
    assert!(params.contains_key("code"), "no page the second time: {params:?}");

    // Its refresh token is refreshed by its client only.
    let refresh = tokens.body["refresh_token"].as_str().expect("a refresh token");
    let alone =
        token(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], None).await;
    alone.assert_oauth_error("invalid_grant");
    app.refresh(refresh).await.assert_token_refused("invalid_token");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", spa.id.as_str()),
    ];
    let refreshed = token(&app, &form, None).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let (_, claims) = decode(refreshed.body["access_token"].as_str().expect("a token"));
    assert_eq!(claims["client_id"], spa.id.as_str(), "a refresh keeps the grant");
    assert_eq!(claims["scope"], "email offline_access");
}

async fn a_confidential_client_authenticates_with_basic_or_its_secret_in_the_form(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let registration = SignIn {
        redirect_uris: vec!["https://web.example.com/auth/callback".into()],
        first_party: true,
        ..SignIn::default()
    };
    let web = add_app(&app, "Intranet", registration).await;
    let secret = web.secret.clone().expect("a secret");
    let mut browser = Browser::new(&app);
    let query = authorize_query(&web, &[]);
    let page = browser.get(&query).await;
    let done = sign_in(&mut browser, &query, &page, "alice@example.com").await;
    // First-party: no consent page.
    let (_, params) = redirected(&done);
    let form = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", web.redirect_uri.clone()),
            ("code_verifier", VERIFIER.to_owned()),
        ]
    };

    // A wrong secret, and no authentication at all, are `invalid_client`.
    let fields = form(&params["code"]);
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let wrong = token(&app, &borrowed, Some((&web.id, "jas_wrong"))).await;
    wrong.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");
    let anonymous = token(&app, &borrowed, None).await;
    anonymous.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");
    let mut as_public = borrowed.clone();
    as_public.push(("client_id", web.id.as_str()));
    let no_secret = token(&app, &as_public, None).await;
    no_secret.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");
    // The code was not used by those: HTTP Basic gets the pair.
    let granted = token(&app, &borrowed, Some((&web.id, &secret))).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);

    // `client_secret_post`, on a new code; both methods at once is `invalid_request`.
    let (_, params) = redirected(&browser.get(&query).await);
    let fields = form(&params["code"]);
    let mut posted: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    posted.push(("client_id", web.id.as_str()));
    posted.push(("client_secret", secret.as_str()));
    let both = token(&app, &posted, Some((&web.id, &secret))).await;
    both.assert_oauth_error("invalid_request");
    let granted = token(&app, &posted, None).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
}

async fn a_resource_becomes_the_access_tokens_audience(db: TestDb) {
    let app = TestApp::start_with(db, |config| {
        config.resources = vec!["https://reports.example.com".into()];
    })
    .await;
    app.register("alice@example.com").await;
    let spa = public_app(&app, "Reports").await;
    let mut browser = Browser::new(&app);
    let query = authorize_query(&spa, &[("resource", Some("https://reports.example.com"))]);
    let params = code_for(&mut browser, &query, "alice@example.com").await;
    let tokens = exchange(&app, &spa, &params["code"], &spa.redirect_uri).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let access = tokens.body["access_token"].as_str().expect("a token");
    assert_eq!(decode(access).1["aud"], "https://reports.example.com");
    // A token for another resource is not one for this server's API.
    app.me(access).await.assert_token_refused("invalid_token");

    let unknown =
        browser.get(&authorize_query(&spa, &[("resource", Some("https://other.example"))])).await;
    let (_, params) = redirected(&unknown);
    assert_eq!(params["error"], "invalid_request");
}

async fn prompt_and_max_age_decide_when_the_sign_in_page_shows(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let spa = public_app(&app, "Viewer").await;
    let mut browser = Browser::new(&app);

    // No sign-in session: prompt=none is `login_required`, and no page is shown.
    let quiet = authorize_query(&spa, &[("prompt", Some("none"))]);
    let (_, params) = redirected(&browser.get(&quiet).await);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "st-1 /?&=+");
    assert_eq!(params["iss"], "jwt-auth");

    // Signed in but not allowed yet: `consent_required`.
    let query = authorize_query(&spa, &[]);
    let page = browser.get(&query).await;
    let consent = sign_in(&mut browser, &query, &page, "alice@example.com").await;
    assert!(consent.text.contains("value=\"allow\""));
    let (_, params) = redirected(&browser.get(&quiet).await);
    assert_eq!(params["error"], "consent_required");
    // Refusing on the consent page is `access_denied`.
    let csrf = csrf_of(&consent);
    let denied = browser.post(&query, &[("csrf", csrf.as_str()), ("action", "deny")]).await;
    assert_eq!(redirected(&denied).1["error"], "access_denied");
    let page = browser.get(&query).await;
    let done = allow(&mut browser, &query, &page).await;
    assert!(redirected(&done).1.contains_key("code"));
    // Now prompt=none gets a code.
    let (_, params) = redirected(&browser.get(&quiet).await);
    assert!(params.contains_key("code"), "{params:?}");

    // prompt=login shows the sign-in page though the browser is signed in, and the login hint
    // fills it in; prompt=consent shows the consent page again.
    let hinted = authorize_query(
        &spa,
        &[("prompt", Some("login")), ("login_hint", Some("alice@example.com"))],
    );
    let page = browser.get(&hinted).await;
    assert!(page.text.contains("value=\"alice@example.com\""), "{}", page.text);
    let again = browser.get(&authorize_query(&spa, &[("prompt", Some("consent"))])).await;
    assert!(again.text.contains("value=\"allow\""), "{}", again.text);

    // max_age: a sign-in 10 s old is too old for max_age=5, young enough for max_age=60.
    app.advance(10);
    let old = browser.get(&authorize_query(&spa, &[("max_age", Some("5"))])).await;
    assert!(old.text.contains("name=\"password\""), "{}", old.text);
    let (_, params) =
        redirected(&browser.get(&authorize_query(&spa, &[("max_age", Some("60"))])).await);
    assert!(params.contains_key("code"));
}

async fn ending_the_users_sessions_ends_the_browser_sign_in_everywhere(db: TestDb) {
    let app = TestApp::start(db).await;
    let other = app.sibling().await;
    app.register("alice@example.com").await;
    let spa = public_app(&app, "Viewer").await;
    let mut browser = Browser::new(&app);
    let query = authorize_query(&spa, &[]);
    let params = code_for(&mut browser, &query, "alice@example.com").await;
    assert!(params.contains_key("code"));
    // The other instance honours the same cookie.
    let mut elsewhere = Browser::new(&other);
    elsewhere.cookies = browser.cookies.clone();
    assert!(
        redirected(&elsewhere.get(&query).await).1.contains_key("code"),
        "the positive control"
    );

    // Logout-all (with a token of a login) ends the browser's sign-in, here and there.
    let login = app.login("alice@example.com").await;
    let reply = send(app.post("/auth/logout-all").bearer_auth(&login.access)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let page = browser.get(&query).await;
    assert!(page.text.contains("name=\"password\""), "signed out here: {}", page.text);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let page = elsewhere.get(&query).await;
        if page.status == StatusCode::OK && page.text.contains("name=\"password\"") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the other instance still signs in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The issuer of the OpenID Connect tests: a URL, so that OpenID Connect is on.
const OIDC_ISSUER: &str = "https://auth.example.com";

async fn openid_connect_signs_in_with_an_id_token_userinfo_and_end_session(db: TestDb) {
    let app = TestApp::start_with(db, |config| config.issuer = OIDC_ISSUER.into()).await;
    app.register("alice@example.com").await;
    let discovery = send(app.get("/.well-known/openid-configuration")).await;
    assert_eq!(discovery.status, StatusCode::OK, "{}", discovery.text);
    let doc = &discovery.body;
    assert_eq!(doc["issuer"], OIDC_ISSUER);
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(doc["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "jwks_uri",
    ] {
        assert!(doc[endpoint].as_str().is_some_and(|u| u.starts_with("http")), "{endpoint}");
    }
    let rfc8414 = send(app.get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(rfc8414.body["userinfo_endpoint"], doc["userinfo_endpoint"], "the same endpoints");

    let registration = SignIn {
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        post_logout_redirect_uris: vec!["http://127.0.0.1/signed-out".into()],
        public: true,
        first_party: true,
        require_dpop: false,
    };
    let spa = add_app(&app, "Single-page app", registration).await;
    let mut browser = Browser::new(&app);
    let query =
        authorize_query(&spa, &[("scope", Some("openid email")), ("nonce", Some("n-0S6_WzA2Mj"))]);
    let params = code_for(&mut browser, &query, "alice@example.com").await;
    assert_eq!(params["iss"], OIDC_ISSUER);
    let tokens = exchange(&app, &spa, &params["code"], &spa.redirect_uri).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let id_token = tokens.body["id_token"].as_str().expect("an ID token");
    let (header, claims) = decode(id_token);
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("RS256"), Some("JWT")));
    // Its key is published, and it verifies the token.
    let jwks = send(app.get("/.well-known/jwks.json")).await;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.text).expect("a JWK set");
    let jwk =
        set.find(header["kid"].as_str().expect("a kid")).expect("the ID-token key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[spa.id.as_str()]);
    validation.set_issuer(&[OIDC_ISSUER]);
    jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &validation)
        .expect("the signature verifies");
    assert_eq!(claims["aud"], spa.id.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], false);
    assert!(claims["auth_time"].is_i64() && claims["sid"].is_string());
    // An ID token is never an access token.
    app.me(id_token).await.assert_token_refused("invalid_token");

    let access = tokens.body["access_token"].as_str().expect("an access token");
    let info = send(app.get("/auth/userinfo").bearer_auth(access)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["sub"], claims["sub"]);
    assert_eq!(info.body["email"], "alice@example.com");
    assert_eq!(info.body["email_verified"], false);
    // A token without scope `openid` (a login's) gets `insufficient_scope`.
    let login = app.login("alice@example.com").await;
    let refused = send(app.get("/auth/userinfo").bearer_auth(&login.access)).await;
    refused.assert_error(StatusCode::FORBIDDEN, "insufficient_scope");
    assert!(refused.header("www-authenticate").unwrap_or_default().contains("insufficient_scope"));

    // End-session: an unregistered post-logout URI ends nothing and goes nowhere.
    let hint = format!("/auth/end-session?id_token_hint={id_token}");
    let elsewhere =
        browser.get(&format!("{hint}&post_logout_redirect_uri=https://evil.example/")).await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST, "{}", elsewhere.text);
    assert!(elsewhere.header("location").is_none());
    app.assert_accepted(access).await;
    // The registered one: signed out, back with the state; the sessions it started end.
    let out = browser
        .get(&format!("{hint}&post_logout_redirect_uri=http://127.0.0.1/signed-out&state=bye"))
        .await;
    let (base, params) = redirected(&out);
    assert_eq!((base.as_str(), params["state"].as_str()), ("http://127.0.0.1/signed-out", "bye"));
    assert!(
        out.set_cookies().iter().any(|c| c.starts_with("__Host-jwt-auth-sign-in=;")),
        "{:?}",
        out.set_cookies()
    );
    app.me(access).await.assert_token_refused("token_revoked");
    assert_eq!(
        app.me(&login.access).await.status,
        StatusCode::OK,
        "a login's session is not the browser's"
    );
    let quiet = authorize_query(&spa, &[("prompt", Some("none"))]);
    let (_, params) = redirected(&browser.get(&quiet).await);
    assert_eq!(params["error"], "login_required");
}

async fn without_a_url_issuer_openid_is_off_and_the_code_grant_still_works(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    send(app.get("/.well-known/openid-configuration"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let spa = public_app(&app, "Viewer").await;
    let mut browser = Browser::new(&app);
    let (_, params) =
        redirected(&browser.get(&authorize_query(&spa, &[("scope", Some("openid"))])).await);
    assert_eq!(params["error"], "invalid_scope");
    let params = code_for(&mut browser, &authorize_query(&spa, &[]), "alice@example.com").await;
    let tokens = exchange(&app, &spa, &params["code"], &spa.redirect_uri).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert!(tokens.body.get("id_token").is_none());
    let metadata = send(app.get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(metadata.body["scopes_supported"], serde_json::json!(["email", "offline_access"]));
}

/// Without `id_token_hint`, nothing shows that the request comes from an application the user
/// signed in to (any site can link to the endpoint): the user confirms on a page first.
async fn a_sign_out_without_an_id_token_is_confirmed_by_the_user_first(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let spa = public_app(&app, "Viewer").await;
    let mut browser = Browser::new(&app);
    let params = code_for(&mut browser, &authorize_query(&spa, &[]), "alice@example.com").await;
    assert!(params.contains_key("code"));
    let quiet = authorize_query(&spa, &[("prompt", Some("none"))]);

    let confirm = browser.get("/auth/end-session").await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    assert!(confirm.text.contains("action=\"/auth/end-session?\""), "{}", confirm.text);
    assert!(redirected(&browser.get(&quiet).await).1.contains_key("code"), "still signed in");
    // Posted without the page's token (from another site): nothing ends.
    let forged = browser.post("/auth/end-session", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(redirected(&browser.get(&quiet).await).1.contains_key("code"), "still signed in");
    let csrf = csrf_of(&confirm);
    let out = browser.post("/auth/end-session", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    assert!(out.text.contains("signed out"), "{}", out.text);
    assert_eq!(redirected(&browser.get(&quiet).await).1["error"], "login_required");
}

/// Beside an HS256 secret in the database, the RS256 key of ID tokens is stored there too,
/// sealed: every instance signs with the same key, and it turns with the signing keys,
/// published ahead.
async fn the_id_token_key_beside_an_hs256_secret_is_shared_and_rotated(db: TestDb) {
    use jwt_core::Algorithm;
    let kek = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let app = TestApp::start_with_stored_keys_and(db, Algorithm::HS256, kek, |config| {
        config.issuer = OIDC_ISSUER.into();
    })
    .await;
    let other = app.sibling().await;
    let kids = |app: &TestApp| {
        let keys = app.state.tokens().id_token_keys().expect("ID-token keys");
        let published: Vec<String> =
            keys.verifying_keys().iter().map(|k| k.kid().to_owned()).collect();
        (keys.active().map(|k| k.kid().to_owned()), published)
    };
    let (signing, published) = kids(&app);
    assert_eq!(kids(&other), (signing.clone(), published.clone()), "one key for every instance");
    let jwks = send(app.get("/.well-known/jwks.json")).await;
    let listed: Vec<&str> = jwks.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(listed, [signing.as_deref().expect("a key")], "published; no HMAC secret is");

    let admin = app.admin().await;
    let rotated = send(app.post("/api/admin/keys/rotate").bearer_auth(&admin.access)).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    app.state.reload_keys().await.expect("reloaded");
    let (still, now_published) = kids(&app);
    assert_eq!(still, signing, "the old key signs until the new one is published everywhere");
    assert_eq!(now_published.len(), 2, "the new key is published ahead: {now_published:?}");
    app.advance(jwt_core::PUBLISH_AHEAD.num_seconds());
    app.state.reload_keys().await.expect("reloaded");
    assert_ne!(kids(&app).0, signing, "the new key signs");
}
