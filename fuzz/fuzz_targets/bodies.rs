//! The JSON request bodies of the API, through the parser the `Json` extractor uses
//! (`extract::parse_json`): `RegisterBody` (`POST /auth/register`), `LoginBody` (`POST
//! /auth/login`) and `PatchUser` (`PATCH /api/admin/users/{id}`), all on every input. (The
//! body of `POST /auth/refresh` is read by its own extractor: the `headers` target.)
//!
//! Asserted: the contract's order of refusals (400 `MalformedBody` for anything but exactly one
//! JSON value, then 422 `InvalidField` for a value that is not an object or a field that is
//! wrong), each refusal rendering as the error response of its status; a parsed body holds
//! the values of its JSON; `PatchUser` takes no unknown field; a registration's email, once
//! checked, checks again to itself, and the password rules hold at their documented bounds.
#![no_main]

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use jwt_auth_api::fuzzing::{ApiError, LoginBody, PatchUser, RegisterBody, parse_json};
use jwt_auth_service::passwords::{
    MAX_NEW_PASSWORD_CHARS, MAX_PASSWORD_BYTES, MIN_NEW_PASSWORD_CHARS, check_password,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// What the body is as JSON, by `serde_json::Value`.
#[derive(Debug, Clone)]
enum Json {
    /// Not exactly one JSON value.
    Invalid,
    /// JSON by RFC 8259's grammar, with a `\u` escape of a lone surrogate, which no Rust
    /// string holds: whether it is refused, and how, depends on the field it is in.
    LoneSurrogate,
    /// JSON by RFC 8259's grammar, with a number beyond the range of an `f64` (`1e400`), which
    /// `Value` cannot hold (§6 lets a parser limit the range): well-formed, so never 400;
    /// `object` tells whether it is an object, which may parse (the number in a field that is
    /// ignored) or be refused as 422.
    OutOfRange {
        object: bool,
    },
    /// One JSON value, not an object.
    NotObject,
    Object(Map<String, Value>),
}

fn as_json(body: &[u8]) -> Json {
    // RFC 8259 §8.1: JSON text is UTF-8, in strings too.
    if std::str::from_utf8(body).is_err() {
        return Json::Invalid;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Json::Object(object),
        Ok(_) => Json::NotObject,
        // serde_json's words for a `\u` escape of a surrogate that is not half of a pair.
        // Out of range, and the rest well-formed (serde's `IgnoredAny` reads the grammar
        // without making numbers).
        Err(e)
            if e.to_string().starts_with("number out of range")
                && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() =>
        {
            Json::OutOfRange {
                object: body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
            }
        }
        Err(e)
            if ["surrogate", "end of hex escape", "code point"]
                .iter()
                .any(|words| e.to_string().contains(words)) =>
        {
            Json::LoneSurrogate
        }
        Err(_) => Json::Invalid,
    }
}

/// `parse_json::<T>`, checked against the contract; the parsed body and its JSON object if it
/// parsed (`None` for the object when it holds a lone surrogate).
fn parse<'j, T: DeserializeOwned>(
    body: &[u8],
    json: &'j Json,
) -> Option<(T, Option<&'j Map<String, Value>>)> {
    match (parse_json::<T>(body), json) {
        (Ok(parsed), Json::Object(object)) => Some((parsed, Some(object))),
        (Ok(parsed), Json::LoneSurrogate | Json::OutOfRange { object: true }) => {
            Some((parsed, None))
        }
        (Ok(_), json) => panic!("parsed a body whose JSON is {json:?}"),
        (Err(e @ ApiError::MalformedBody(_)), Json::Invalid | Json::LoneSurrogate) => {
            refused(&e, StatusCode::BAD_REQUEST)
        }
        (
            Err(e @ ApiError::InvalidField(_)),
            Json::NotObject | Json::Object(_) | Json::LoneSurrogate | Json::OutOfRange { .. },
        ) => refused(&e, StatusCode::UNPROCESSABLE_ENTITY),
        (Err(e), json) => panic!("refused as {e:?} a body whose JSON is {json:?}"),
    }
}

fn refused<T>(error: &ApiError, status: StatusCode) -> Option<T> {
    assert_eq!(error.status_code(), status, "{error:?}");
    assert_eq!(error.error_response().status(), status, "{error:?}");
    None
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

fn check_password_bounds(password: &str, registering: bool) {
    let secret = jwt_auth_service::secret::SecretString::new(password);
    let len = password.len();
    let chars = password.chars().count();
    let fits = if registering {
        (MIN_NEW_PASSWORD_CHARS..=MAX_NEW_PASSWORD_CHARS).contains(&chars)
    } else {
        len <= MAX_PASSWORD_BYTES
    };
    assert_eq!(
        check_password(&secret, registering).is_ok(),
        fits,
        "{len} bytes, {chars} characters"
    );
}

fuzz_target!(|body: &[u8]| {
    let json = as_json(body);

    if let Some((register, object)) = parse::<RegisterBody>(body, &json) {
        if let Some(object) = object {
            assert_eq!(text(object, "email"), Some(register.email.as_str()));
            assert_eq!(text(object, "password"), Some(register.password.expose()));
        }
        check_password_bounds(register.password.expose(), true);
        match jwt_auth_service::email::checked(&register.email) {
            Ok(email) => {
                let again = jwt_auth_service::email::checked(&email).ok();
                assert_eq!(again.as_ref(), Some(&email), "a checked email checks to itself");
            }
            Err(e) => {
                let answer = ApiError::from(e).status_code();
                assert_eq!(answer, StatusCode::UNPROCESSABLE_ENTITY, "{answer:?}")
            }
        }
    }

    if let Some((login, object)) = parse::<LoginBody>(body, &json) {
        if let Some(object) = object {
            assert_eq!(text(object, "username"), Some(login.username.as_str()));
            assert_eq!(text(object, "password"), Some(login.password.expose()));
        }
        check_password_bounds(login.password.expose(), false);
    }

    if let Some((patch, Some(object))) = parse::<PatchUser>(body, &json) {
        for name in object.keys() {
            assert!(["roles", "disabled"].contains(&name.as_str()), "took unknown field {name}");
        }
        let roles = object.get("roles").filter(|v| !v.is_null());
        assert_eq!(roles, patch.roles.map(Value::from).as_ref(), "the roles of the body");
        let disabled = object.get("disabled").and_then(Value::as_bool);
        assert_eq!(disabled, patch.disabled, "the disabled flag of the body");
    }
});
