//! Requests for the targets of the server's extractors: actix-web's `TestRequest` with the
//! body limits the server configures, and a runtime to await the extractors' futures on.

use std::future::Future;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::rt::Runtime;
use actix_web::test::TestRequest;
use actix_web::{HttpRequest, web};
use jwt_auth_api::fuzzing::MAX_BODY_BYTES;

thread_local! {
    /// One runtime for the whole run: making one per input would dominate the run time.
    static RUNTIME: Runtime = Runtime::new().expect("a current-thread runtime starts");
}

/// Runs `future` to completion on the thread's runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// A `POST` with `headers` and `body`, and the server's body limits; `None` when a header
/// value is one no HTTP parser would let through (a control character), as the server could
/// never see it.
pub fn request(headers: &[(HeaderName, &[u8])], body: &[u8]) -> Option<(HttpRequest, Payload)> {
    let mut request = TestRequest::post()
        .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
        .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES));
    for (name, value) in headers {
        let value = HeaderValue::from_bytes(value).ok()?;
        request = request.insert_header((name.clone(), value));
    }
    Some(request.set_payload(body.to_vec()).to_http_parts())
}
