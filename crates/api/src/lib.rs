//! The `jwt-auth` server: Actix-web routes over `jwt-core` and the SQL store, its
//! configuration and its command line. Thin glue: the rules live in `jwt-core`, the data in
//! `jwt-auth-store`.

pub mod accounts;
pub mod audit;
pub mod cli;
pub mod client;
pub mod clients;
pub mod config;
pub mod email;
pub mod error;
pub mod extract;
pub mod feed;
pub mod grants;
pub mod import;
pub mod keys;
pub mod legacy_hash;
pub mod metrics;
pub mod openapi;
pub mod passwords;
pub mod rate_limit;
pub mod routes;
pub mod secret;
pub mod startup;
pub mod state;
pub mod stored_keys;
pub mod telemetry;
pub mod user_cache;
