//! The users in the database while measuring: the database made afresh (PostgreSQL), then
//! filled through the store's user import with copies of the one user registered through
//! HTTP.

use std::time::Duration;

use jwt_auth_benches::fail;
use jwt_auth_store::{ExistingEmails, NewUser, Store, StoreError, StoreOptions};

/// Users in the database while measuring: the report's own registered user and the seeded ones.
pub const USERS: u64 = 100_000;
/// The seeded accounts' addresses, numbered from 1 to `USERS - 1` (the flow's `FLOW_EMAIL`).
pub const SEED_EMAIL: &str = "seed-{}@example.com";

/// The users seeded before measuring: how many the database holds, and how long it took.
pub struct Seeding {
    pub users: u64,
    pub seconds: f64,
}

/// The address of seeded account `n`.
pub fn seeded_email(n: usize) -> String {
    SEED_EMAIL.replace("{}", &n.to_string())
}

/// The database a PostgreSQL URL names.
pub fn database_name(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.split_once('/').map_or("", |(_, path)| path);
    path.split(['?', '#']).next().unwrap_or("")
}

/// Drops the report's database and creates it afresh, from the server's `postgres` database
/// (a database cannot drop itself): what the last run left goes with it, and the server
/// migrates the new one. The store has no call that creates or drops a database; its own
/// tests make theirs the same way.
pub async fn recreate_postgres(url: &str) {
    let name = database_name(url);
    let (client, connection) = tokio_postgres::connect(
        &jwt_auth_store::postgres_url_with_database(url, "postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap_or_else(|e| fail(format!("REPORT_POSTGRES_URL: {e}")));
    tokio::spawn(connection);
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    // One statement a call: neither may run inside a transaction block.
    for statement in [
        format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"),
        format!("CREATE DATABASE {quoted}"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .unwrap_or_else(|e| fail(format!("recreating {name}: {e}")));
    }
}

/// Fills the database up to `USERS` users through the store's user import (what `jwt-auth
/// user import` calls): copies of the registered user `email` (its password hash and roles,
/// created at its time) at the addresses of `SEED_EMAIL`, in one transaction. No password is
/// hashed here: every copy has the registered user's hash. Returns how many users the
/// database then holds.
pub async fn seed(database: &str, email: &str) -> u64 {
    let failed = |e: StoreError| -> ! { fail(format!("seed: {e}")) };
    // The server has the database open too: wait up to 10 s for its locks (SQLite).
    let options = StoreOptions { busy_timeout: Duration::from_secs(10), ..StoreOptions::default() };
    let store = Store::connect_with(database, options).await.unwrap_or_else(|e| failed(e));
    let registered = store
        .user_by_email(email)
        .await
        .unwrap_or_else(|e| failed(e))
        .unwrap_or_else(|| fail(format!("seed: {email} is not registered")));
    let users: Vec<NewUser> = (1..USERS as usize)
        .map(|n| NewUser {
            email: seeded_email(n),
            password_hash: registered.password_hash.clone(),
            roles: registered.user.roles.clone(),
        })
        .collect();
    store
        .import_users(&users, registered.user.created_at, ExistingEmails::Refuse)
        .await
        .unwrap_or_else(|e| failed(e));
    store.list_users(1, 0).await.unwrap_or_else(|e| failed(e)).total
}
