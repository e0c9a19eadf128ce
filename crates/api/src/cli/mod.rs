//! The `jwt-auth` command line: `serve`, `migrate`, `user add|import|…`, `keys
//! rotate|list|revoke|rekey`, `clients add|list|remove`, `sessions revoke`, `events`, and
//! `completions` and `man`, generated from the same definitions. Each command parses its
//! settings once, then calls the services; each that changes data says what it did in one
//! line. One module per group of commands, each with its clap definitions.

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{ServeArgs, StorageArgs};
pub use crate::failure::CliError;

mod clients;
mod context;
mod events;
mod key_command;
mod keys;
mod manual;
mod rekey;
mod serve;
mod sessions;
mod users;

pub use clients::ClientsCommand;
pub use keys::KeysCommand;
pub use sessions::SessionsCommand;
pub use users::UserCommand;

/// JWT authentication server.
#[derive(Debug, Parser)]
#[command(name = "jwt-auth", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve(Box<ServeArgs>),
    /// Apply the database migrations.
    Migrate(StorageArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Incident response on sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage service clients (OAuth client credentials).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Read the security-event trail, newest first: logins and failures, refreshes, reuse
    /// detections, logouts, revocations and administrators' changes, with address and user
    /// agent.
    Events {
        /// Only this user's events (a user id).
        #[arg(long)]
        user: Option<String>,
        /// Only events of this kind (login_succeeded, login_failed, refresh_reuse_detected,
        /// logout, logout_all, admin_revoke, user_created, user_updated, token_revoked,
        /// tokens_voided, key_rotated, key_revoked, users_imported).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many (1 to 10000).
        #[arg(long, default_value = "50")]
        limit: u32,
        /// Print one JSON object a line instead of columns.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Print a completion script for SHELL to standard output, e.g.
    /// `jwt-auth completions bash > /etc/bash_completion.d/jwt-auth`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output (`jwt-auth man | man -l -`), or with
    /// `--dir` write one page per command into DIR (jwt-auth.1, jwt-auth-serve.1, …).
    Man {
        /// The directory to write the pages into (created if missing).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

/// Runs the command: the generated texts at once, the others on the server's runtime.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Completions { shell } => return manual::completions(Cli::command(), shell),
        Command::Man { dir } => return manual::man(Cli::command(), dir.as_deref()),
        _ => {}
    }
    let runtime = actix_web::rt::System::new();
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::serve(*args).await,
            Command::Migrate(storage) => serve::migrate(&storage).await,
            Command::User(command) => users::run(command).await,
            Command::Keys(command) => keys::run(command).await,
            Command::Sessions(command) => sessions::run(command).await,
            Command::Clients(command) => clients::run(command).await,
            Command::Events { user, kind, limit, json, storage } => {
                events::events(&storage, user, kind.as_deref(), limit, json).await
            }
            Command::Completions { .. } | Command::Man { .. } => unreachable!("handled above"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kid is base64url and may begin with `-`: it is still the key id, not a flag.
    #[test]
    fn a_kid_that_begins_with_a_hyphen_is_the_key_id() {
        let parsed = Cli::try_parse_from(["jwt-auth", "keys", "revoke", "-q1x3SaKX5U2JbKbJwaE_A"]);
        match parsed.map(|cli| cli.command) {
            Ok(Command::Keys(KeysCommand::Revoke { kid, .. })) => {
                assert_eq!(kid, "-q1x3SaKX5U2JbKbJwaE_A")
            }
            other => panic!("{other:?}"),
        }
        // Its flags still read as flags, before the kid or after it.
        let args = ["jwt-auth", "keys", "revoke", "--token-expiry", "1h", "-abc"];
        assert!(Cli::try_parse_from(args).is_ok());
        let missing = Cli::try_parse_from(["jwt-auth", "keys", "revoke"]);
        assert!(missing.is_err(), "a kid is required");
    }
}
