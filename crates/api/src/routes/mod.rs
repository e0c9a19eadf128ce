//! HTTP handlers, one module per resource. Routes are wired in `route_table::configure`.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod bodies;
pub mod clients_api;
pub mod console;
pub mod docs;
pub mod keys;
pub mod meta;
pub mod oauth;
pub mod openid;
pub mod pages;
pub mod revocations;
pub mod token_answer;
pub mod users;

/// An answer of admin data, which no browser or proxy cache keeps.
pub(crate) fn no_store(
    mut response: actix_web::HttpResponseBuilder,
) -> actix_web::HttpResponseBuilder {
    response.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    response
}
