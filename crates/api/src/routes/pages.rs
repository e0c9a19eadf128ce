//! What the pages served to browsers (`/docs`, `/console`) share: files embedded in the
//! binary, answered with headers that keep the page to this origin (a Content-Security-Policy,
//! no framing, no sniffing, no referrer).

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};

/// A file embedded in the binary, served under its page's path.
pub struct Asset {
    pub name: &'static str,
    pub media: &'static str,
    pub bytes: &'static [u8],
}

/// `response` with the page headers: `policy` as its Content-Security-Policy, and `cache` as
/// its `Cache-Control`.
pub fn secured(
    mut response: HttpResponse,
    policy: &'static str,
    cache: &'static str,
) -> HttpResponse {
    let headers = response.headers_mut();
    let mut set = |name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, policy);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CACHE_CONTROL, cache);
    response
}

/// The HTML page itself.
pub fn page(html: &'static str, policy: &'static str, cache: &'static str) -> HttpResponse {
    let page = HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html);
    secured(page, policy, cache)
}

/// The asset of `assets` named `file`, or 404 in the JSON error format.
pub fn asset(
    assets: &[Asset],
    file: &str,
    policy: &'static str,
    cache: &'static str,
) -> HttpResponse {
    match assets.iter().find(|asset| asset.name == file) {
        Some(asset) => {
            let answer = HttpResponse::Ok().content_type(asset.media).body(asset.bytes);
            secured(answer, policy, cache)
        }
        None => {
            let missing = crate::error::ApiError::NotFound("no such file".into());
            actix_web::ResponseError::error_response(&missing)
        }
    }
}
