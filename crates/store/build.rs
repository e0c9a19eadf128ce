//! Rebuilds the crate when a migration changes: `embed_migrations!` reads the top-level
//! `migrations/` folder at compile time, which cargo does not watch on its own.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
