//! The integration tests of the server, one test binary: `http` holds the HTTP contract
//! against the server in-process, `processes` the `jwt-auth` binary as operators run it,
//! `chaos` crashes under load, `outage` and `disk_full` a database that goes away or fills up,
//! and `doc_pages` and `docs` the documentation to what the code does; `common` is what they
//! share. Filter by module, e.g.
//! `cargo nextest run -p jwt-auth-api --test main -E 'test(/^processes::/)'`.
//! (`password_memory.rs` is a binary of its own: see Cargo.toml.)

mod common;

// `crate::http_tests!(...)` in the HTTP suites: each test once on SQLite and once on PostgreSQL.
use jwt_auth_testdb::backend_tests as http_tests;

mod chaos;
mod disk_full;
mod doc_pages;
mod docs;
mod http;
mod outage;
mod processes;
