//! How a token pair is answered: the JSON body, never cached, and in cookie mode the refresh
//! token in an `HttpOnly; Secure; SameSite=Strict; Path=/auth` cookie instead of the body.

use actix_web::HttpResponse;
use actix_web::cookie::{Cookie, CookieBuilder, SameSite, time::Duration as CookieDuration};
use jwt_core::TokenPair;
use serde::Serialize;

use crate::extract::REFRESH_COOKIE;
use crate::oauth_error::token_no_store;
use crate::state::AppState;

#[derive(Serialize)]
struct CookieTokenBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    refresh_expires_in: i64,
}

/// 200 with the pair; in cookie mode the refresh token goes into the cookie instead of the
/// body.
pub fn token_response(state: &AppState, pair: &TokenPair, cookie: bool) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    token_no_store(&mut response);
    if !cookie {
        return response.json(pair);
    }
    let refresh = refresh_cookie(state, pair.refresh_token.expose().to_owned())
        .max_age(CookieDuration::seconds(pair.refresh_expires_in))
        .finish();
    response.cookie(refresh).json(CookieTokenBody {
        access_token: pair.access_token.expose(),
        token_type: pair.token_type,
        expires_in: pair.expires_in,
        refresh_expires_in: pair.refresh_expires_in,
    })
}

/// The refresh cookie with its fixed attributes (`Secure` unless `COOKIE_SECURE` is off).
fn refresh_cookie(state: &AppState, value: String) -> CookieBuilder<'static> {
    Cookie::build(REFRESH_COOKIE, value)
        .http_only(true)
        .secure(state.config.cookie_secure)
        .same_site(SameSite::Strict)
        .path("/auth")
}

/// The refresh cookie's removal, sent with every logout.
pub fn clear_cookie(state: &AppState) -> Cookie<'static> {
    let mut cookie = refresh_cookie(state, String::new()).finish();
    cookie.make_removal();
    cookie
}
