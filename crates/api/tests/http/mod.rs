//! The HTTP contract (`http-api.md`) held against the real server: started in-process on an
//! ephemeral port with a manual clock, spoken to over TCP with reqwest, once on SQLite and once
//! on PostgreSQL. One module per area of the contract.

mod admin;
mod app_attacks;
mod apps;
mod attacks;
mod auth;
mod backoff;
mod bodies;
mod change_stream;
mod clients;
mod clients_api;
mod console_api;
mod cors;
mod docs;
mod dpop;
mod edge;
mod enumeration;
mod faults;
mod feed;
mod imported;
mod instances;
mod keys;
mod openapi;
mod race;
mod refresh;
mod relying_party;
mod service;
mod tokens;
