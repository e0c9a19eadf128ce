//! The request headers the server parses itself: HTTP Basic client credentials
//! (`clients::basic_credentials`, RFC 6749 §2.3.1) and the refresh cookie, read by the
//! `PresentedRefreshToken` extractor beside a JSON body (`{"refresh_token"}`) under its CSRF
//! rule.
//!
//! Input: a header value, a NUL, and a body. The value is sent as `Authorization`, and as
//! `Cookie` with the body, with and without `Content-Type: application/json` and
//! `X-Requested-With`.
//!
//! Asserted: credentials that are read have a non-empty id and both parts within 256 bytes,
//! and, written back the RFC's way, read as the same pair; a malformed header is a 401. A
//! refresh token is taken from a JSON body when it has one (exactly the body's string), else
//! from the cookie only with `X-Requested-With` (exactly the cookie's value); the refusals are
//! the documented ones: 415 for a body that is not JSON, 403 for the cookie without the
//! header, 400 when there is neither.
#![no_main]

use actix_web::FromRequest;
use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderName};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jwt_auth_api::fuzzing::{ApiError, PresentedRefreshToken, REFRESH_COOKIE, basic_credentials};
use jwt_auth_fuzz::http::{block_on, request};
use jwt_auth_fuzz::split_once;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The longest client id or secret the server reads from a Basic header.
const MAX_CREDENTIAL_BYTES: usize = 256;

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn check_basic(value: &[u8]) {
    let Some((req, _)) = request(&[(AUTHORIZATION, value)], b"") else { return };
    match basic_credentials(&req) {
        Ok(Some((id, secret))) => {
            assert!(!id.is_empty() && id.len() <= MAX_CREDENTIAL_BYTES, "id of {}", id.len());
            assert!(secret.len() <= MAX_CREDENTIAL_BYTES, "secret of {} bytes", secret.len());
            let joined = format!("{}:{}", form_encode(&id), form_encode(secret.expose()));
            let header = format!("Basic {}", STANDARD.encode(joined));
            let (again, _) = request(&[(AUTHORIZATION, header.as_bytes())], b"").expect("ASCII");
            let read = basic_credentials(&again).expect("written back, it reads");
            let (id_again, secret_again) = read.expect("and is present");
            assert_eq!((id_again.as_str(), secret_again.expose()), (id.as_str(), secret.expose()));
        }
        Ok(None) => panic!("an Authorization header read as no credentials"),
        Err(e) => assert_eq!(e.status_code(), StatusCode::UNAUTHORIZED, "{e:?}"),
    }
}

fn check_refresh(cookie_header: &[u8], body: &[u8], json: bool, requested_with: bool) {
    let mut headers = vec![(COOKIE, cookie_header)];
    if json {
        headers.push((CONTENT_TYPE, b"application/json".as_slice()));
    }
    if requested_with {
        headers.push((HeaderName::from_static("x-requested-with"), b"fetch".as_slice()));
    }
    let Some((req, mut payload)) = request(&headers, body) else { return };
    let cookie = req.cookie(REFRESH_COOKIE);
    if let Some(cookie) = &cookie {
        assert_eq!(cookie.name(), REFRESH_COOKIE);
    }
    let body_token = || match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object.get("refresh_token").cloned(),
        _ => None,
    };
    match block_on(PresentedRefreshToken::from_request(&req, &mut payload)) {
        Ok(presented) if presented.from_cookie => {
            assert!(requested_with, "the cookie without X-Requested-With");
            assert_eq!(Some(presented.token.expose()), cookie.as_ref().map(|c| c.value()));
            let in_body = body_token();
            assert!(in_body.as_ref().is_none_or(Value::is_null), "the cookie over {in_body:?}");
        }
        Ok(presented) => {
            assert!(json && !body.is_empty(), "a token from a body that is not JSON");
            let in_body = body_token();
            assert_eq!(in_body.as_ref().and_then(Value::as_str), Some(presented.token.expose()));
        }
        Err(e) => {
            let expected = match (body.is_empty(), json, &cookie, requested_with) {
                (false, false, _, _) => Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                (true, _, None, _) => Some(StatusCode::BAD_REQUEST),
                (true, _, Some(_), false) => Some(StatusCode::FORBIDDEN),
                (true, _, Some(_), true) => panic!("refused the cookie with the header: {e:?}"),
                // A JSON body: its own refusals (400, 422), or the cookie's.
                (false, true, _, _) => None,
            };
            match expected {
                Some(status) => assert_eq!(e.status_code(), status, "{e:?}"),
                None => assert!(e.status_code().is_client_error(), "{e:?}"),
            }
            assert!(!matches!(e, ApiError::PayloadTooLarge(_)), "a small body is too large");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (value, body) = split_once(data);
    check_basic(value);
    for (json, requested_with) in [(true, true), (true, false), (false, true), (false, false)] {
        check_refresh(value, body, json, requested_with);
    }
});
