//! HTTP handlers, one module per resource. Routes are wired in `startup::configure`.

pub mod auth;
pub mod meta;
pub mod users;
