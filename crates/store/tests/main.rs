//! The integration tests of the store, one test binary: `store` for the behaviour both
//! backends share, `changes` for the pushed change feed, `durability` across a SIGKILL,
//! `outage` for PostgreSQL going away and coming back, and `outbox` for the change stream's
//! outbox and its relay's leadership; `common` is what they share. Filter by module,
//! e.g. `cargo nextest run -p jwt-auth-store --test main -E 'test(/^store::/)'`.

mod common;

mod changes;
mod durability;
mod outage;
mod outbox;
mod store;
