//! The `jwt-auth` server: Actix-web routes over `jwt-core` and the SQL store, its
//! configuration and its command line. Thin glue: the rules live in `jwt-core`, the data in
//! `jwt-auth-store`.

pub mod audit;
mod background;
pub mod caller;
pub mod cli;
pub mod clients;
pub mod config;
mod config_values;
pub mod database;
pub mod error;
pub mod extract;
pub mod failure;
pub mod grants;
pub mod key_settings;
pub mod oauth_error;
pub mod openapi;
mod request_body;
pub mod responses;
pub mod route_table;
pub mod routes;
mod server;
pub mod startup;
pub mod state;
pub mod telemetry;

// The services the adapters call, under the names they had in this crate.
pub use jwt_auth_service::throttle as rate_limit;
pub use jwt_auth_service::{
    accounts, email, feed, import, legacy_hash, metrics, passwords, secret, user_cache,
};
