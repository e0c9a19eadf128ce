//! `GET /docs` (contract v2): the API reference page and its embedded files, with a strict
//! Content-Security-Policy. That the page really renders the operations in a browser is the
//! Chromium test's (`tests/browser/test_docs.py`).

use reqwest::StatusCode;

use crate::common::{TestApp, TestDb, send};
use crate::http_tests;

http_tests!(
    the_docs_page_and_its_files_are_served_from_the_binary_with_a_strict_policy,
    a_trailing_slash_on_the_pages_redirects_to_them,
);

/// `/docs/` and `/console/`, typed or linked with a trailing slash, lead to the page rather
/// than to a JSON 404; other paths below them stay 404.
async fn a_trailing_slash_on_the_pages_redirects_to_them(db: TestDb) {
    let app = TestApp::start(db).await;
    let manual = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    for page in ["/docs", "/console"] {
        let moved = send(manual.get(app.url(&format!("{page}/")))).await;
        assert_eq!(moved.status, StatusCode::PERMANENT_REDIRECT, "{page}/: {}", moved.text);
        assert_eq!(moved.header("location"), Some(page), "{page}/");
        // Followed, as a browser does: the page itself.
        let followed = send(app.get(&format!("{page}/"))).await;
        assert_eq!(followed.status, StatusCode::OK, "{page}/");
        assert_eq!(followed.header("content-type"), Some("text/html; charset=utf-8"));
        // The control: the page without the slash answers at once, and a path below it that
        // names no file is still a 404.
        assert_eq!(send(manual.get(app.url(page))).await.status, StatusCode::OK, "{page}");
        let below = send(manual.get(app.url(&format!("{page}//")))).await;
        assert_ne!(below.status, StatusCode::OK, "{page}//");
    }
}

async fn the_docs_page_and_its_files_are_served_from_the_binary_with_a_strict_policy(db: TestDb) {
    let app = TestApp::start(db).await;
    let page = send(app.get("/docs")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let policy = page.header("content-security-policy").expect("a policy");
    for directive in ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("script-src 'self' 'unsafe"), "{policy}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

    // Every file the page names is served, from this origin, with its media type.
    let named: Vec<&str> = ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| page.text.match_indices(attr).map(move |(i, _)| i + attr.len()))
        .map(|start| {
            let rest = &page.text[start..];
            &rest[..rest.find('"').expect("a closing quote")]
        })
        // The empty icon, so that the browser does not ask for /favicon.ico.
        .filter(|path| *path != "data:,")
        .collect();
    assert_eq!(named.len(), 3, "{named:?}");
    for path in named {
        assert!(path.starts_with("docs/"), "a relative path on this origin: {path}");
        let file = send(app.get(&format!("/{path}"))).await;
        assert_eq!(file.status, StatusCode::OK, "{path}");
        let media = file.header("content-type").unwrap_or_default();
        let expected = if path.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(media.starts_with(expected), "{path}: {media}");
        assert!(file.text.len() > 100, "{path}");
        assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    }
    let bundle = send(app.get("/docs/swagger-ui-bundle.js")).await;
    assert!(bundle.text.contains("SwaggerUIBundle"));

    // HEAD answers like GET without a body; any other file is 404 in the JSON error format.
    let head = send(app.http.head(app.url("/docs"))).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.text.is_empty());
    for missing in ["/docs/LICENSE", "/docs/SOURCE", "/docs/..%2FCargo.toml", "/docs/index.html"] {
        send(app.get(missing)).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let post = send(app.post("/docs")).await;
    post.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
