//! The `jwt-auth` server: Actix-web routes over the services (`jwt-auth-service`), its
//! configuration and its command line. Thin glue: what the server does lives in the service
//! crate, the rules a library user also needs in `jwt-core`, the data in `jwt-auth-store`.

mod audit;
mod background;
mod caller;
mod cli;
mod clients;
mod config;
mod config_values;
mod cors;
mod database;
mod error;
mod extract;
mod failure;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod key_settings;
mod oauth_error;
mod openapi;
mod request_body;
mod responses;
mod route_table;
mod routes;
mod server;
mod startup;
mod state;
mod telemetry;

// What the binary, the tests and an embedding program use: the command line, the
// configuration, and the server built from it.
pub use cli::{Cli, Command, run};
pub use config::{Config, KeyArgs, LogFormat, NatsSettings};
pub use routes::revocations::HEARTBEAT;
pub use startup::{Application, CLIENT_BODY_TIMEOUT, CLIENT_REQUEST_TIMEOUT, KEEP_ALIVE};
pub use state::AppState;
