//! `sessions revoke`: incident response, every token issued before a time voided, of one user
//! or of everyone.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use jwt_auth_service::users::{CutOff, Users};

use super::context::now;
use crate::config::StorageArgs;
use crate::database::open_store;
use crate::failure::CliError;

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Void every token issued before TIME, for one user or for everyone. Running servers
    /// honour it within seconds; the users log in again.
    Revoke {
        /// Void the tokens issued before this time: RFC 3339 (2026-11-23T10:00:00Z) or a date
        /// (2026-11-23, midnight UTC); not later than now.
        #[arg(long = "issued-before", value_name = "TIME", value_parser = parse_cut_off)]
        issued_before: DateTime<Utc>,
        /// Only this user's tokens (a user id); without it, everyone's.
        #[arg(long, value_name = "ID")]
        user: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// `--issued-before`: an RFC 3339 time, or a date (midnight UTC).
fn parse_cut_off(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .ok_or_else(|| {
            "expected an RFC 3339 time (2026-11-23T10:00:00Z) or a date (2026-11-23)".to_owned()
        })
}

pub(super) async fn run(command: SessionsCommand) -> Result<(), CliError> {
    match command {
        SessionsCommand::Revoke { issued_before, user, storage } => {
            revoke(&storage, issued_before, user).await
        }
    }
}

/// `sessions revoke`: every token issued before the cut-off is void, of one user or of all.
async fn revoke(
    storage: &StorageArgs,
    issued_before: DateTime<Utc>,
    user: Option<String>,
) -> Result<(), CliError> {
    let cut_off = CutOff::new(issued_before, now())?;
    let store = open_store(storage).await?;
    let users = Users::command(&store, "jwt-auth sessions revoke");
    users.void_issued_before(user.as_deref(), cut_off, now()).await?;
    let whom = user.map_or_else(|| "every user".to_owned(), |id| format!("user {id}"));
    println!(
        "voided every token issued to {whom} before {}; running servers refuse them within \
         seconds",
        issued_before.to_rfc3339()
    );
    Ok(())
}
