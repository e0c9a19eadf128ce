//! HTTP handlers, one module per resource. Routes are wired in `startup::configure`.

pub mod account;
pub mod admin;
pub mod body;
pub mod console;
pub mod docs;
pub mod meta;
pub mod oauth;
pub mod pages;
pub mod pair;
pub mod revocations;
pub mod users;
