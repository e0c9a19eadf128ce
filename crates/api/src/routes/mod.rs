//! HTTP handlers, one module per resource. Routes are wired in `startup::configure`.

pub mod account;
pub mod body;
pub mod docs;
pub mod meta;
pub mod oauth;
pub mod pair;
pub mod revocations;
pub mod users;
