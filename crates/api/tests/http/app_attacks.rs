//! A catalogue of attacks on sign-in for apps (the authorization code grant with PKCE), each
//! test named after its attack, each refusal beside its positive control (the same request,
//! faithful, succeeds). No answer is ever a 500. Covered:
//!
//! - redirect URIs: another port, a longer path, another case, an added query or fragment,
//!   user information, percent-encoding tricks, a scheme downgrade, `localhost` for a loopback
//!   URI: an error page of this server, never a redirect (RFC 9700 §4.1);
//! - PKCE: no challenge, `plain`, a wrong verifier, one of a length outside RFC 7636's, none;
//! - codes: replayed after a success (the first exchange's tokens are revoked), replayed at
//!   the same moment, injected into another client, exchanged after 60 s, exchanged with
//!   another redirect URI;
//! - `state` echoed exactly, whatever its characters, and `iss` (RFC 9207) on every answer;
//! - the pages: login and consent CSRF, clickjacking, anything loaded from elsewhere, markup
//!   in what a page echoes;
//! - `prompt=none` with no sign-in session, or with a token of another kind as the cookie;
//! - a refresh token of one client presented by another, by none, or at `/auth/refresh`;
//! - oversized and repeated parameters (RFC 6749 §3.1).
//!
//! Found here and fixed: on PostgreSQL, a code exchanged twice at the same moment was
//! redeemed twice (the store read the code, then marked it, at read committed without locking
//! its row); each step of a redemption is now an update that takes the row's lock first.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;

use jwt_auth_service::clients::SignIn;

use super::apps::{
    App, Browser, VERIFIER, add_app, allow, authorize_query, code_for, csrf_of, exchange,
    redirected, sign_in, token,
};
use crate::common::{PASSWORD, Reply, TestApp, TestDb};

crate::http_tests!(
    unregistered_redirect_uris_get_an_error_page_never_a_redirect,
    loopback_redirect_uris_match_on_any_port_and_nothing_else,
    pkce_downgrades_and_wrong_verifiers_are_refused,
    a_replayed_code_is_refused_and_revokes_the_tokens_of_its_first_exchange,
    a_code_exchanged_twice_at_the_same_moment_leaves_no_live_session,
    a_code_injected_into_another_client_is_refused,
    a_code_older_than_60_seconds_is_refused,
    a_code_exchanged_with_another_redirect_uri_is_refused,
    state_is_echoed_exactly_and_iss_names_the_issuer_against_mix_up,
    login_and_consent_csrf_are_refused,
    the_pages_cannot_be_framed_and_load_nothing_from_elsewhere,
    prompt_none_without_a_sign_in_session_shows_no_page,
    a_refresh_token_is_refreshed_by_its_own_client_only,
    oversized_and_repeated_parameters_are_refused,
);

const EMAIL: &str = "alice@example.com";
/// The registered web redirect URI.
const WEB: &str = "https://app.example.com/cb";
/// The registered loopback redirect URI (any port matches it).
const LOOPBACK: &str = "http://127.0.0.1/cb";
/// The `state` of `authorize_query`.
const STATE: &str = "st-1 /?&=+";
/// The issuer of the default settings.
const ISSUER: &str = "jwt-auth";
/// The sign-in session cookie.
const SIGN_IN_COOKIE: &str = "__Host-jwt-auth-sign-in";
/// The CSRF cookie of the pages.
const CSRF_COOKIE: &str = "__Host-jwt-auth-csrf";

/// A server with alice registered.
async fn start(db: TestDb) -> TestApp {
    let app = TestApp::start(db).await;
    app.register(EMAIL).await;
    app
}

/// A client registered with [`WEB`] (its `redirect_uri`) and [`LOOPBACK`]; `public` ones get
/// no secret. Not first-party: its users see the consent page.
async fn client(app: &TestApp, name: &str, public: bool) -> App {
    let sign_in =
        SignIn { redirect_uris: vec![WEB.into(), LOOPBACK.into()], public, ..SignIn::default() };
    add_app(app, name, sign_in).await
}

/// A fresh code for `client` and the request changed by `extra`, in `browser` (which signs in
/// and allows the client the first time).
async fn new_code(browser: &mut Browser, client: &App, extra: &[(&str, Option<&str>)]) -> String {
    let params = code_for(browser, &authorize_query(client, extra), EMAIL).await;
    params.get("code").unwrap_or_else(|| panic!("a code: {params:?}")).clone()
}

/// The S256 challenge of `verifier`.
fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// Exchanges `code` as the public client `client` with `verifier`, or none.
async fn exchange_with(
    app: &TestApp,
    client: &App,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> Reply {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", client.id.as_str()),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    token(app, &form, None).await
}

/// The access and refresh tokens of a 200 exchange.
fn tokens_of(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let access = reply.body["access_token"].as_str().expect("an access token");
    let refresh = reply.body["refresh_token"].as_str().expect("a refresh token");
    (access.to_owned(), refresh.to_owned())
}

/// `grant_type=refresh_token` at `/auth/token` as the public client `client`.
async fn refresh_as(app: &TestApp, client: &App, refresh: &str) -> Reply {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", client.id.as_str()),
    ];
    token(app, &form, None).await
}

/// `query` with `name=value` added at its end, whether or not it has one already.
fn and(query: &str, name: &str, value: &str) -> String {
    let pair =
        url::form_urlencoded::Serializer::new(String::new()).append_pair(name, value).finish();
    format!("{query}&{pair}")
}

/// The parameters of a redirect's `Location`, in order, repeats kept.
fn location_pairs(reply: &Reply) -> (String, Vec<(String, String)>) {
    assert_eq!(reply.status, StatusCode::FOUND, "a redirect: {}", reply.text);
    let location = reply.header("location").expect("a Location");
    let (base, query) = location.split_once('?').expect("a query");
    (base.to_owned(), url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
}

/// Asserts the sign-in page.
fn assert_sign_in_page(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.text);
    assert!(reply.text.contains("name=\"password\""), "{what}: not the sign-in page");
}

/// Asserts the error page of a request whose client or redirect URI cannot be trusted: 400,
/// HTML, no form, and no redirect anywhere.
fn assert_error_page(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}: {}", reply.text);
    assert_eq!(reply.header("location"), None, "{what}: never a redirect");
    let media = reply.header("content-type").unwrap_or_default();
    assert!(media.starts_with("text/html"), "{what}: an HTML page, got `{media}`");
    assert!(!reply.text.contains("<form"), "{what}: no form on the error page");
}

/// Asserts a redirect to `redirect_uri` with `error`, `iss` and no code; returns its `state`.
fn assert_error_redirect(
    reply: &Reply,
    redirect_uri: &str,
    error: &str,
    what: &str,
) -> Option<String> {
    assert_eq!(reply.status, StatusCode::FOUND, "{what}: {}", reply.text);
    let (base, params) = redirected(reply);
    assert_eq!(base, redirect_uri, "{what}");
    assert_eq!(params.get("error").map(String::as_str), Some(error), "{what}: {params:?}");
    assert_eq!(params.get("iss").map(String::as_str), Some(ISSUER), "{what}: RFC 9207");
    assert!(!params.contains_key("code"), "{what}: no code with an error");
    params.get("state").cloned()
}

/// Asserts the 403 page of a form posted without its CSRF token: nothing signed in.
fn assert_forbidden(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {}", reply.text);
    let media = reply.header("content-type").unwrap_or_default();
    assert!(media.starts_with("text/html"), "{what}: an HTML page, got `{media}`");
    assert_eq!(reply.header("location"), None, "{what}: no redirect");
    let cookies = reply.set_cookies();
    assert!(
        !cookies.iter().any(|c| c.starts_with(SIGN_IN_COOKIE)),
        "{what}: no sign-in cookie: {cookies:?}"
    );
}

/// The redirect URIs of a request that must not be answered with a redirect: each a page.
async fn unregistered_redirect_uris_get_an_error_page_never_a_redirect(db: TestDb) {
    let app = start(db).await;
    let attacks = [
        ("another port", "https://app.example.com:8443/cb"),
        ("the default port spelled out", "https://app.example.com:443/cb"),
        ("a longer path", "https://app.example.com/cb/extra"),
        ("a trailing slash", "https://app.example.com/cb/"),
        ("a path prefix of another", "https://app.example.com/cbx"),
        ("an upper-case host", "https://APP.example.com/cb"),
        ("an upper-case path", "https://app.example.com/CB"),
        ("an added query", "https://app.example.com/cb?x=1"),
        ("a fragment", "https://app.example.com/cb#x"),
        ("the host as user information", "https://app.example.com@evil.example/cb"),
        ("a percent-encoded path letter", "https://app.example.com/c%62"),
        ("an encoded dot-dot back to the path", "https://app.example.com/x/%2e%2e/cb"),
        ("an encoded dot-dot after the path", "https://app.example.com/cb/%2e%2e/cb"),
        ("an encoded @ in the host", "https://app.example.com%40evil.example/cb"),
        ("an encoded slash then @", "https://app.example.com%2F@evil.example/cb"),
        ("the whole URI percent-encoded", "https%3A%2F%2Fapp.example.com%2Fcb"),
        ("a NUL after the path", "https://app.example.com/cb\0"),
        ("a trailing space", "https://app.example.com/cb "),
        ("a scheme downgrade", "http://app.example.com/cb"),
        ("another host", "https://evil.example/cb"),
    ];
    for public in [false, true] {
        let app_client = client(&app, if public { "Viewer" } else { "Intranet" }, public).await;
        let kind = if public { "public" } else { "confidential" };
        let mut browser = Browser::new(&app);
        // The positive control: the registered URI, byte for byte.
        let page = browser.get(&authorize_query(&app_client, &[])).await;
        assert_sign_in_page(&page, kind);
        for (what, uri) in attacks {
            let reply =
                browser.get(&authorize_query(&app_client, &[("redirect_uri", Some(uri))])).await;
            assert_error_page(&reply, &format!("{kind}: {what} ({uri:?})"));
        }
    }
}

/// A loopback redirect URI: any port is the native app's, but not another host or path.
async fn loopback_redirect_uris_match_on_any_port_and_nothing_else(db: TestDb) {
    let app = start(db).await;
    let native = client(&app, "Desktop", true).await;
    let mut browser = Browser::new(&app);
    for uri in [
        LOOPBACK,
        "http://127.0.0.1:1/cb",
        "http://127.0.0.1:49152/cb",
        "http://127.0.0.1:65535/cb",
    ] {
        let page = browser.get(&authorize_query(&native, &[("redirect_uri", Some(uri))])).await;
        assert_sign_in_page(&page, uri);
    }
    // The control goes all the way: the code comes back to the port asked for.
    let port = "http://127.0.0.1:49152/cb";
    let query = authorize_query(&native, &[("redirect_uri", Some(port))]);
    let page = browser.get(&query).await;
    let consent = sign_in(&mut browser, &query, &page, EMAIL).await;
    let (base, params) = redirected(&allow(&mut browser, &query, &consent).await);
    assert_eq!(base, port);
    assert!(params.contains_key("code"));

    for (what, uri) in [
        ("localhost with a port", "http://localhost:49152/cb"),
        ("localhost", "http://localhost/cb"),
        ("another loopback address", "http://127.0.0.2:49152/cb"),
        ("IPv6 loopback, not registered", "http://[::1]:49152/cb"),
        ("another path", "http://127.0.0.1:49152/other"),
        ("a longer path", "http://127.0.0.1:49152/cb/extra"),
        ("a path prefix of another", "http://127.0.0.1:49152/cbx"),
        ("an added query", "http://127.0.0.1:49152/cb?x=1"),
        ("https", "https://127.0.0.1:49152/cb"),
        ("port zero", "http://127.0.0.1:0/cb"),
        ("a port past 65535", "http://127.0.0.1:65536/cb"),
        ("the address as user information", "http://127.0.0.1:49152@evil.example/cb"),
    ] {
        let reply = browser.get(&authorize_query(&native, &[("redirect_uri", Some(uri))])).await;
        assert_error_page(&reply, &format!("{what} ({uri})"));
    }
}

/// PKCE cannot be dropped nor downgraded, and only the verifier of the challenge, of a length
/// RFC 7636 allows, redeems a code.
async fn pkce_downgrades_and_wrong_verifiers_are_refused(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let mut browser = Browser::new(&app);

    // At the authorization endpoint: the control, then no challenge and `plain`.
    assert_sign_in_page(&browser.get(&authorize_query(&spa, &[])).await, "the control");
    for (what, extra) in [
        ("no code_challenge", vec![("code_challenge", None)]),
        (
            "no code_challenge and no method",
            vec![("code_challenge", None), ("code_challenge_method", None)],
        ),
        (
            "plain",
            vec![("code_challenge", Some(VERIFIER)), ("code_challenge_method", Some("plain"))],
        ),
        ("no method (plain by default)", vec![("code_challenge_method", None)]),
    ] {
        let reply = browser.get(&authorize_query(&spa, &extra)).await;
        let state = assert_error_redirect(&reply, WEB, "invalid_request", what);
        assert_eq!(state.as_deref(), Some(STATE), "{what}: state echoed");
    }

    // At the exchange. The control: the right verifier.
    let code = new_code(&mut browser, &spa, &[]).await;
    let granted = exchange_with(&app, &spa, &code, WEB, Some(VERIFIER)).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);

    // A wrong verifier (43 characters, one changed); the guess uses the code up, so the right
    // verifier cannot follow it.
    let code = new_code(&mut browser, &spa, &[]).await;
    let wrong = format!("{}A", &VERIFIER[..42]);
    assert_ne!(wrong, VERIFIER);
    exchange_with(&app, &spa, &code, WEB, Some(&wrong)).await.assert_oauth_error("invalid_grant");
    exchange_with(&app, &spa, &code, WEB, Some(VERIFIER)).await.assert_oauth_error("invalid_grant");

    // No verifier: a missing parameter, refused before the code is looked at, so the faithful
    // request still redeems it.
    let code = new_code(&mut browser, &spa, &[]).await;
    exchange_with(&app, &spa, &code, WEB, None).await.assert_oauth_error("invalid_request");
    let granted = exchange_with(&app, &spa, &code, WEB, Some(VERIFIER)).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);

    // Verifiers whose challenge matches but whose length RFC 7636 §4.1 forbids, each beside
    // one of the nearest allowed length.
    let material = VERIFIER.repeat(3);
    let (short, shortest, longest) = (&material[..42], &material[..43], &material[..128]);
    let long = format!("{longest}A");
    for (verifier, allowed) in
        [(short, false), (shortest, true), (longest, true), (long.as_str(), false)]
    {
        let challenge = challenge_of(verifier);
        let code = new_code(&mut browser, &spa, &[("code_challenge", Some(&challenge))]).await;
        let reply = exchange_with(&app, &spa, &code, WEB, Some(verifier)).await;
        if allowed {
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{} characters: {}",
                verifier.len(),
                reply.text
            );
        } else {
            reply.assert_oauth_error("invalid_grant");
        }
    }
}

/// A code presented again, after its exchange succeeded: refused, and the tokens of that
/// exchange stop working (RFC 6749 §4.1.2: whoever replays it may have stolen it).
async fn a_replayed_code_is_refused_and_revokes_the_tokens_of_its_first_exchange(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let mut browser = Browser::new(&app);

    // The control: a code exchanged once, its tokens used and refreshed.
    let code = new_code(&mut browser, &spa, &[]).await;
    let (access, refresh) = tokens_of(&exchange(&app, &spa, &code, WEB).await);
    app.assert_accepted(&access).await;
    assert_eq!(refresh_as(&app, &spa, &refresh).await.status, StatusCode::OK);

    let code = new_code(&mut browser, &spa, &[]).await;
    let (access, refresh) = tokens_of(&exchange(&app, &spa, &code, WEB).await);
    app.assert_accepted(&access).await;
    exchange(&app, &spa, &code, WEB).await.assert_oauth_error("invalid_grant");
    app.me(&access).await.assert_token_refused("token_revoked");
    refresh_as(&app, &spa, &refresh).await.assert_oauth_error("invalid_grant");
    // A third time: still refused.
    exchange(&app, &spa, &code, WEB).await.assert_oauth_error("invalid_grant");
}

/// The same code exchanged twice at once (a replay racing the first exchange): at most one
/// exchange answers with tokens, and no session it started stays alive.
async fn a_code_exchanged_twice_at_the_same_moment_leaves_no_live_session(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let mut browser = Browser::new(&app);
    for round in 0..5 {
        let code = new_code(&mut browser, &spa, &[]).await;
        let (a, b) =
            tokio::join!(exchange(&app, &spa, &code, WEB), exchange(&app, &spa, &code, WEB));
        let granted: Vec<&Reply> =
            [&a, &b].into_iter().filter(|r| r.status == StatusCode::OK).collect();
        for reply in [&a, &b].into_iter().filter(|r| r.status != StatusCode::OK) {
            reply.assert_oauth_error("invalid_grant");
        }
        // Not "exactly one": when the replay lands while the first exchange is starting its
        // session, the server refuses both (code_grant::exchange, by design); either way no
        // session survives.
        assert!(granted.len() <= 1, "round {round}: the code was redeemed twice");
        for reply in granted {
            let (access, refresh) = tokens_of(reply);
            app.me(&access).await.assert_token_refused("token_revoked");
            refresh_as(&app, &spa, &refresh).await.assert_oauth_error("invalid_grant");
        }
    }
    // The control: a code exchanged once keeps its session.
    let code = new_code(&mut browser, &spa, &[]).await;
    let (access, _) = tokens_of(&exchange(&app, &spa, &code, WEB).await);
    app.assert_accepted(&access).await;
}

/// Code injection: another client, public or confidential, presents a code issued to this
/// one, with the right verifier and redirect URI.
async fn a_code_injected_into_another_client_is_refused(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let other = client(&app, "Other viewer", true).await;
    let web = client(&app, "Intranet", false).await;
    let web_secret = web.secret.clone().expect("a secret");
    let mut browser = Browser::new(&app);

    // The control: the client the code was issued to.
    let code = new_code(&mut browser, &spa, &[]).await;
    assert_eq!(exchange(&app, &spa, &code, WEB).await.status, StatusCode::OK);

    // A public client by its own client_id.
    let code = new_code(&mut browser, &spa, &[]).await;
    exchange(&app, &other, &code, WEB).await.assert_oauth_error("invalid_grant");
    // The attempt used the code up: its own client cannot redeem it any more.
    exchange(&app, &spa, &code, WEB).await.assert_oauth_error("invalid_grant");

    // A confidential client with its own, right, secret.
    let code = new_code(&mut browser, &spa, &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", WEB),
        ("code_verifier", VERIFIER),
    ];
    let reply = token(&app, &form, Some((&web.id, &web_secret))).await;
    reply.assert_oauth_error("invalid_grant");
    // …whose own codes it does redeem.
    let code = new_code(&mut browser, &web, &[]).await;
    assert_eq!(
        token(&app, &form_with(&form, &code), Some((&web.id, &web_secret))).await.status,
        StatusCode::OK
    );
}

/// `form` with its `code` replaced.
fn form_with<'a>(form: &[(&'a str, &'a str)], code: &'a str) -> Vec<(&'a str, &'a str)> {
    form.iter().map(|&(n, v)| if n == "code" { (n, code) } else { (n, v) }).collect()
}

/// A code lives 60 s: at 59 s it is redeemed, at 60 s it is not.
async fn a_code_older_than_60_seconds_is_refused(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let mut browser = Browser::new(&app);
    let early = new_code(&mut browser, &spa, &[]).await;
    let late = new_code(&mut browser, &spa, &[]).await;
    app.advance(59);
    let control = exchange(&app, &spa, &early, WEB).await;
    assert_eq!(control.status, StatusCode::OK, "at 59 s: {}", control.text);
    app.advance(1);
    exchange(&app, &spa, &late, WEB).await.assert_oauth_error("invalid_grant");
}

/// A code exchanged with a redirect URI other than its request's, even one registered for the
/// same client, or the same loopback URI on another port.
async fn a_code_exchanged_with_another_redirect_uri_is_refused(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let mut browser = Browser::new(&app);
    let native = "http://127.0.0.1:49152/cb";
    for (asked, presented) in [
        (WEB, LOOPBACK),
        (WEB, "https://app.example.com/cb/"),
        (WEB, "https://APP.example.com/cb"),
        (WEB, "https://evil.example/cb"),
        (native, "http://127.0.0.1:49153/cb"),
        (native, LOOPBACK),
        (LOOPBACK, native),
    ] {
        let code = new_code(&mut browser, &spa, &[("redirect_uri", Some(asked))]).await;
        let reply = exchange(&app, &spa, &code, presented).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{asked} then {presented}: {}",
            reply.text
        );
        reply.assert_oauth_error("invalid_grant");
    }
    // The controls: the very URI of the request.
    for uri in [WEB, native, LOOPBACK] {
        let code = new_code(&mut browser, &spa, &[("redirect_uri", Some(uri))]).await;
        let reply = exchange(&app, &spa, &code, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text);
    }
}

/// `state` comes back exactly as sent, whatever its characters, as one parameter that adds
/// none; `iss` names the issuer on success and on error, so a client talking to several
/// servers can tell which one answered (RFC 9207, mix-up).
async fn state_is_echoed_exactly_and_iss_names_the_issuer_against_mix_up(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let mut browser = Browser::new(&app);
    new_code(&mut browser, &spa, &[]).await;
    let states = [
        "a&b=c+d e",
        "x=1&state=forged&code=forged&iss=evil",
        "100% %41 %zz %2B+",
        "ünïcödé ✓ 日本語 🦀",
        "  spaces  around  ",
        "#?/\\'\"<>;",
        "x\r\nSet-Cookie: evil=1",
    ];
    for state in states {
        let success = browser.get(&authorize_query(&spa, &[("state", Some(state))])).await;
        let (base, pairs) = location_pairs(&success);
        assert_eq!(base, WEB);
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["code", "state", "iss"], "{state:?}");
        assert_eq!(pairs[1].1, state, "echoed exactly");
        assert_eq!(pairs[2].1, ISSUER, "RFC 9207");
        assert!(success.set_cookies().iter().all(|c| !c.starts_with("evil")), "{state:?}");

        let scope = [("state", Some(state)), ("scope", Some("email admin"))];
        let error = browser.get(&authorize_query(&spa, &scope)).await;
        let (base, pairs) = location_pairs(&error);
        assert_eq!(base, WEB);
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["error", "error_description", "state", "iss"], "{state:?}");
        assert_eq!(pairs[0].1, "invalid_scope");
        assert_eq!(pairs[2].1, state, "echoed exactly");
        assert_eq!(pairs[3].1, ISSUER, "RFC 9207");
    }
    // A request without a state gets none back, and still the issuer.
    let (_, params) = redirected(&browser.get(&authorize_query(&spa, &[("state", None)])).await);
    assert!(!params.contains_key("state"), "{params:?}");
    assert_eq!(params["iss"], ISSUER);
}

/// Login CSRF (another site signs the browser in to an account of its own) and consent CSRF:
/// a form without the token of the browser's own CSRF cookie changes nothing.
async fn login_and_consent_csrf_are_refused(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let query = authorize_query(&spa, &[]);
    let mut victim = Browser::new(&app);
    let page = victim.get(&query).await;
    assert_sign_in_page(&page, "the sign-in page");
    let token = csrf_of(&page);

    // No CSRF cookie at all (a cross-site post does not carry the SameSite=Strict one).
    let mut bare = Browser::new(&app);
    assert_forbidden(&bare.post(&query, &sign_in_form(&token)).await, "no cookie");
    // The cookie, and another token: the attacker's own, from its own visit.
    let mut attacker = Browser::new(&app);
    let theirs = csrf_of(&attacker.get(&query).await);
    assert_ne!(theirs, token);
    assert_forbidden(&victim.post(&query, &sign_in_form(&theirs)).await, "another token");
    // The cookie, and an empty token, or none.
    assert_forbidden(&victim.post(&query, &sign_in_form("")).await, "an empty token");
    let no_field = [("action", "sign_in"), ("username", EMAIL), ("password", PASSWORD)];
    assert_forbidden(&victim.post(&query, &no_field).await, "no csrf field");
    // An empty cookie and an empty token: equal, but empty.
    let mut blank = Browser::new(&app);
    blank.cookies.insert(CSRF_COOKIE.into(), String::new());
    assert_forbidden(&blank.post(&query, &sign_in_form("")).await, "an empty cookie and token");
    assert!(!victim.cookies.contains_key(SIGN_IN_COOKIE), "still signed out");

    // The control: the matching token signs in.
    let consent = sign_in(&mut victim, &query, &page, EMAIL).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text);
    assert!(consent.set_cookies().iter().any(|c| c.starts_with(SIGN_IN_COOKIE)));
    assert!(consent.text.contains("value=\"allow\""), "the consent page");

    // Consent CSRF: allowing with another token (or none) is refused, and no code is sent.
    let allow_with = [("csrf", theirs.as_str()), ("action", "allow")];
    assert_forbidden(&victim.post(&query, &allow_with).await, "allow, another token");
    assert_forbidden(&victim.post(&query, &[("action", "allow")]).await, "allow, no token");
    let page = victim.get(&query).await;
    assert!(page.text.contains("value=\"allow\""), "not allowed yet: {}", page.text);
    // The control.
    let (_, params) = redirected(&allow(&mut victim, &query, &page).await);
    assert!(params.contains_key("code"));
}

/// The sign-in form with `csrf`.
fn sign_in_form(csrf: &str) -> [(&str, &str); 4] {
    [("csrf", csrf), ("action", "sign_in"), ("username", EMAIL), ("password", PASSWORD)]
}

/// Clickjacking and outside content: every page refuses to be framed, runs no script, and
/// loads nothing from another host; what a page echoes is escaped.
async fn the_pages_cannot_be_framed_and_load_nothing_from_elsewhere(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer <b>\"", true).await;
    let query = authorize_query(&spa, &[("login_hint", Some("<script>alert(1)</script>"))]);
    let mut browser = Browser::new(&app);
    let mut pages: Vec<(&str, Reply)> = Vec::new();

    let sign_in_page = browser.get(&query).await;
    assert_sign_in_page(&sign_in_page, "the sign-in page");
    let csrf = csrf_of(&sign_in_page);
    let wrong = [
        ("csrf", csrf.as_str()),
        ("action", "sign_in"),
        ("username", EMAIL),
        ("password", "wrong"),
    ];
    let again = browser.post(&query, &wrong).await;
    assert_sign_in_page(&again, "the sign-in page after a wrong password");
    let forbidden = browser.post(&query, &[("csrf", "forged"), ("action", "sign_in")]).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let malformed = browser.post(&query, &[("csrf", csrf.as_str()), ("action", "bogus")]).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{}", malformed.text);
    let unregistered = browser
        .get(&authorize_query(&spa, &[("redirect_uri", Some("https://evil.example/cb"))]))
        .await;
    assert_error_page(&unregistered, "an unregistered redirect URI");
    let unknown = browser
        .get(&authorize_query(&spa, &[("client_id", Some("<script>alert(1)</script>"))]))
        .await;
    assert_error_page(&unknown, "an unknown client");
    let consent = sign_in(&mut browser, &query, &sign_in_page, EMAIL).await;
    assert!(consent.text.contains("value=\"allow\""), "the consent page: {}", consent.text);
    let redirect = allow(&mut browser, &query, &consent).await;
    assert_eq!(redirect.status, StatusCode::FOUND);
    pages.extend([
        ("sign-in", sign_in_page),
        ("sign-in after a wrong password", again),
        ("403", forbidden),
        ("malformed form", malformed),
        ("unregistered redirect URI", unregistered),
        ("unknown client", unknown),
        ("consent", consent),
        ("redirect", redirect),
    ]);

    // The scan below sees the page's own references: the style sheet and the form.
    let own = outside_references(&pages[0].1.text.replace("=\"/", "=\"https://evil.example/"));
    assert!(own.iter().any(|v| v.contains("sign-in.css")), "{own:?}");
    assert!(own.iter().any(|v| v.contains("/auth/authorize?")), "{own:?}");
    for (what, page) in &pages {
        assert_eq!(page.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"), "{what}");
        let policy = page.header("content-security-policy").unwrap_or_default();
        assert!(policy.contains("frame-ancestors 'none'"), "{what}: {policy}");
        assert!(policy.contains("default-src 'none'"), "{what}: {policy}");
        for loose in ["script-src", "'unsafe-inline'", "'unsafe-eval'", "*"] {
            assert!(!policy.contains(loose), "{what}: {loose} in {policy}");
        }
        let html = page.text.to_ascii_lowercase();
        for active in
            ["<script", "<iframe", "<object", "<embed", "javascript:", " onload=", " onclick="]
        {
            assert!(!html.contains(active), "{what}: {active} in {}", page.text);
        }
        let outside = outside_references(&page.text);
        assert!(outside.is_empty(), "{what}: loads from elsewhere: {outside:?}");
    }
}

/// The values of the `src`, `href`, `action` and `formaction` attributes of `html` that are
/// not a path on this origin (another host, another scheme, a relative reference).
fn outside_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=", "href=", "action=", "srcset=", "formaction="] {
        for (at, _) in html.match_indices(attribute) {
            let rest = html[at + attribute.len()..].trim_start_matches(['"', '\'']);
            let value = rest.split(['"', '\'', ' ', '>']).next().unwrap_or_default();
            let here =
                value.starts_with('/') && !value.starts_with("//") && !value.starts_with("/\\");
            if !here {
                found.push(value.to_owned());
            }
        }
    }
    found
}

/// `prompt=none` must not show a page: with no sign-in session, or with a token of another
/// kind (or a forged one) in the sign-in cookie, it is `login_required` and nothing else.
async fn prompt_none_without_a_sign_in_session_shows_no_page(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let quiet = authorize_query(&spa, &[("prompt", Some("none"))]);
    let login = app.login(EMAIL).await;
    let mut browser = Browser::new(&app);
    let strangers = [
        ("no cookie", None),
        ("a forged cookie", Some("forged".to_owned())),
        ("an access token as the cookie", Some(login.access.clone())),
        ("a refresh token as the cookie", Some(login.refresh.clone())),
    ];
    for (what, cookie) in strangers {
        let mut stranger = Browser::new(&app);
        if let Some(cookie) = cookie {
            stranger.cookies.insert(SIGN_IN_COOKIE.into(), cookie);
        }
        let reply = stranger.get(&quiet).await;
        let state = assert_error_redirect(&reply, WEB, "login_required", what);
        assert_eq!(state.as_deref(), Some(STATE), "{what}");
        assert!(!reply.text.contains("<form"), "{what}: no page");
        assert!(reply.set_cookies().is_empty(), "{what}: no cookie: {:?}", reply.set_cookies());
    }
    // The control: signed in and allowed, prompt=none gets a code.
    new_code(&mut browser, &spa, &[]).await;
    let (_, params) = redirected(&browser.get(&quiet).await);
    assert!(params.contains_key("code"), "{params:?}");
    assert_eq!(params["state"], STATE);
    assert_eq!(params["iss"], ISSUER);
}

/// A refresh token of one client's session, presented by another client (public, or
/// confidential with its secret), by no client, or at `/auth/refresh`: refused, and its own
/// client still refreshes it after. A first-party login's refresh token is no client's.
async fn a_refresh_token_is_refreshed_by_its_own_client_only(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let other = client(&app, "Other viewer", true).await;
    let web = client(&app, "Intranet", false).await;
    let web_secret = web.secret.clone().expect("a secret");
    let mut browser = Browser::new(&app);
    let code = new_code(&mut browser, &spa, &[]).await;
    let (access, refresh) = tokens_of(&exchange(&app, &spa, &code, WEB).await);

    refresh_as(&app, &other, &refresh).await.assert_oauth_error("invalid_grant");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    token(&app, &form, Some((&web.id, &web_secret))).await.assert_oauth_error("invalid_grant");
    token(&app, &form, None).await.assert_oauth_error("invalid_grant");
    let reply = app.refresh(&refresh).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    reply.assert_token_refused("invalid_token");

    // Nothing changed: the session lives, and its client refreshes the very same token.
    app.assert_accepted(&access).await;
    let refreshed = refresh_as(&app, &spa, &refresh).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);

    // A login's refresh token cannot be adopted by a client; it refreshes as it is.
    let login = app.login(EMAIL).await;
    refresh_as(&app, &spa, &login.refresh).await.assert_oauth_error("invalid_grant");
    assert_eq!(app.refresh(&login.refresh).await.status, StatusCode::OK);
}

/// Oversized parameters and parameters given twice (RFC 6749 §3.1): towards the redirect URI
/// when it is known, as a page when the client or the redirect URI is the one in doubt.
async fn oversized_and_repeated_parameters_are_refused(db: TestDb) {
    let app = start(db).await;
    let spa = client(&app, "Viewer", true).await;
    let mut browser = Browser::new(&app);
    let big = "a".repeat(3000);

    // The controls: the request as it is, and a state at the limit (2048 bytes).
    assert_sign_in_page(&browser.get(&authorize_query(&spa, &[])).await, "the control");
    let limit = "s".repeat(2048);
    assert_sign_in_page(
        &browser.get(&authorize_query(&spa, &[("state", Some(&limit))])).await,
        "2048",
    );

    // Oversized: the redirect URI is known, the error goes back to it.
    let scope = "email ".repeat(500);
    for (name, value) in
        [("state", big.as_str()), ("nonce", big.as_str()), ("scope", scope.as_str())]
    {
        let reply = browser.get(&authorize_query(&spa, &[(name, Some(value))])).await;
        assert_error_redirect(
            &reply,
            WEB,
            "invalid_request",
            &format!("{name} of {} bytes", value.len()),
        );
    }
    // Oversized where it decides where the answer goes: a page.
    let long_uri = format!("{WEB}?{big}");
    for (name, value) in [("redirect_uri", long_uri.as_str()), ("client_id", big.as_str())] {
        let reply = browser.get(&authorize_query(&spa, &[(name, Some(value))])).await;
        assert_error_page(&reply, &format!("{name} of {} bytes", value.len()));
    }

    // Repeated, even with the same value.
    let query = authorize_query(&spa, &[]);
    for (name, value) in [
        ("scope", "email"),
        ("scope", "email offline_access"),
        ("state", STATE),
        ("state", "other"),
    ] {
        let reply = browser.get(&and(&query, name, value)).await;
        assert_error_redirect(&reply, WEB, "invalid_request", &format!("{name} twice"));
    }
    for (name, value) in [
        ("client_id", spa.id.as_str()),
        ("client_id", "other"),
        ("redirect_uri", WEB),
        ("redirect_uri", "https://evil.example/cb"),
    ] {
        let reply = browser.get(&and(&query, name, value)).await;
        assert_error_page(&reply, &format!("{name} twice ({value})"));
    }
}
