//! The urlencoded inputs of the API: the forms of `POST /auth/token` (`TokenForm`) and of
//! `POST /auth/revoke` and `/auth/introspect` (`TokenParam`) through actix-web's `Form`
//! extractor with the server's body limit, and the query strings of `GET /api/users` (`Page`),
//! `?cookie=` (`CookieQuery`) and the revocation feed (`FeedQuery`, its cursor then through
//! `jwt_core::feed_position`), all on every input.
//!
//! Asserted: a form is read only with its content type; a parsed form or query holds exactly
//! the value its text gives each field (one at most), and nothing for a field it does not
//! name; numbers and flags are the ones written.
#![no_main]

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, web};
use jwt_auth_api::fuzzing::{CookieQuery, FeedQuery, Page, TokenForm, TokenParam};
use jwt_auth_service::secret::SecretString;
use jwt_core::feed_position;
use jwt_auth_fuzz::http::{block_on, request};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

const FORM: &[u8] = b"application/x-www-form-urlencoded";

/// The values `text` gives `name`, decoded as `application/x-www-form-urlencoded`.
fn values(text: &[u8], name: &str) -> Vec<String> {
    form_urlencoded::parse(text).filter(|(key, _)| key == name).map(|(_, v)| v.into()).collect()
}

/// The field `name` of a form parsed from `text` holds what `text` gives it.
fn same(text: &[u8], name: &str, field: Option<&str>) {
    let given = values(text, name);
    assert!(given.len() <= 1, "parsed a form giving `{name}` {} values", given.len());
    assert_eq!(field, given.first().map(String::as_str), "the field `{name}`");
}

fn secret(field: &Option<SecretString>) -> Option<&str> {
    field.as_ref().map(SecretString::expose)
}

/// `web::Form<T>` on `body`, as the server reads a form; `None` if refused. Without the form
/// content type, it must be refused.
fn form<T: DeserializeOwned + 'static>(body: &[u8]) -> Option<T> {
    if let Some((req, mut payload)) = request(&[], body) {
        let read = block_on(web::Form::<T>::from_request(&req, &mut payload));
        assert!(read.is_err(), "read a form without its content type");
    }
    let (req, mut payload) = request(&[(CONTENT_TYPE, FORM)], body).expect("a valid header");
    match block_on(web::Form::<T>::from_request(&req, &mut payload)) {
        Ok(form) => Some(form.into_inner()),
        Err(e) => {
            assert!(e.as_response_error().status_code().is_client_error(), "{e:?}");
            None
        }
    }
}

fuzz_target!(|body: &[u8]| {
    if let Some(token) = form::<TokenForm>(body) {
        same(body, "grant_type", token.grant_type.as_deref());
        same(body, "username", token.username.as_deref());
        same(body, "password", secret(&token.password));
        same(body, "refresh_token", secret(&token.refresh_token));
    }
    if let Some(param) = form::<TokenParam>(body) {
        same(body, "token", secret(&param.token));
    }

    let Ok(query) = std::str::from_utf8(body) else { return };
    if let Ok(page) = web::Query::<Page>::from_query(query) {
        let limit = values(body, "limit").first().map(|v| v.parse::<u32>().ok());
        assert_eq!(limit, page.limit.map(Some), "the limit written");
        let offset = values(body, "offset").first().map(|v| v.parse::<u64>().ok());
        assert_eq!(offset, page.offset.map(Some), "the offset written");
    }
    if let Ok(cookie) = web::Query::<CookieQuery>::from_query(query) {
        let given = values(body, "cookie");
        assert_eq!(cookie.cookie, given.first().is_some_and(|v| v == "true"), "{given:?}");
    }
    if let Ok(feed) = web::Query::<FeedQuery>::from_query(query) {
        same(body, "after", feed.after.as_deref());
        if let Some(after) = &feed.after
            && let Some(cursor) = feed_position(after)
        {
            assert!(cursor >= 0, "cursor {cursor} from {after:?}");
        }
    }
});
