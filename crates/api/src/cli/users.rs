//! `user add|set-password|disable|enable|delete|list|import`: user administration as the
//! service does it, a user named by id or by the email they log in with; passwords come from
//! standard input, never the command line.

use std::io::{Read, Write};
use std::path::Path;

use clap::Subcommand;
use jwt_auth_service::import;
use jwt_auth_service::page::{MAX_OFFSET, Page};
use jwt_auth_service::passwords::{MAX_PASSWORD_BYTES, check_new_password};
use jwt_auth_service::users::{self, ImportReport, Users};
use jwt_auth_store::{ExistingEmails, UserPage};

use super::context::now;
use crate::config::StorageArgs;
use crate::database::open_store;
use crate::failure::CliError;

/// The largest page of `user list`.
const MAX_LISTED: u32 = 1000;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        /// The user's email address, which is also the name they log in with.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go on the
        /// command line).
        #[arg(long = "password-stdin", required = true)]
        password_stdin: bool,
        /// Give the user the `admin` role.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Set a user's password, read from standard input, and end every session of theirs:
    /// their tokens are refused everywhere within seconds, and they log in with the new one.
    SetPassword {
        /// The user: an id, or the email they log in with.
        user: String,
        /// Read the password from standard input (required: passwords never go on the
        /// command line).
        #[arg(long = "password-stdin", required = true)]
        password_stdin: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Disable a user: their sessions end, and their logins fail as a wrong password does.
    Disable {
        /// The user: an id, or the email they log in with.
        user: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Enable a disabled user again: they can log in.
    Enable {
        /// The user: an id, or the email they log in with.
        user: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Delete a user: every session and token of theirs is revoked everywhere within seconds,
    /// then the account is gone (the security-event trail keeps what it recorded).
    Delete {
        /// The user: an id, or the email they log in with.
        user: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List users, oldest first: id, email, roles, disabled, created.
    List {
        /// Only the users whose email contains this text, without regard to case.
        #[arg(long)]
        email: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value = "100")]
        limit: u32,
        /// Skip this many first.
        #[arg(long, default_value = "0")]
        offset: u64,
        /// Print one JSON object a line instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Create users from FILE (`-` for standard input): one JSON object a line,
    /// `{"email", "password_hash", "roles"?}`, the hash made by another system (argon2, bcrypt,
    /// scrypt, PBKDF2, Django, passlib and Werkzeug forms; see docs/migrating-users.md). All or
    /// nothing: a bad line fails the import with its number, and so does an email that is
    /// registered already, unless --skip-existing. Each hash is replaced by an argon2id hash at
    /// the user's first login.
    Import {
        /// The JSON-lines file, or `-` for standard input.
        file: std::path::PathBuf,
        /// Skip (and count) the users whose email is registered already, instead of failing
        /// the import.
        #[arg(long)]
        skip_existing: bool,
        /// Print one JSON object instead of a line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

pub(super) async fn run(command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Add { email, admin, storage, .. } => add(&storage, email, admin).await,
        UserCommand::Import { file, skip_existing, json, storage } => {
            import(&storage, &file, skip_existing, json).await
        }
        UserCommand::SetPassword { user, storage, .. } => set_password(&storage, &user).await,
        UserCommand::Disable { user, storage } => set_disabled(&storage, &user, true).await,
        UserCommand::Enable { user, storage } => set_disabled(&storage, &user, false).await,
        UserCommand::Delete { user, storage } => delete(&storage, &user).await,
        UserCommand::List { email, limit, offset, json, storage } => {
            list(&storage, email.as_deref(), limit, offset, json).await
        }
    }
}

/// A new password from standard input (its last line break left out), checked.
fn read_new_password() -> Result<String, CliError> {
    let mut password = String::new();
    std::io::stdin().take(MAX_PASSWORD_BYTES as u64 + 2).read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    check_new_password(&password).map_err(|e| CliError::Usage(format!("the {e}")))?;
    Ok(password)
}

async fn add(storage: &StorageArgs, email: String, admin: bool) -> Result<(), CliError> {
    let email = jwt_auth_service::email::checked(&email)
        .map_err(|e| CliError::Usage(format!("--email `{email}`: {e}")))?;
    let password = read_new_password()?;
    let store = open_store(storage).await?;
    let users = Users::command(&store, "jwt-auth user add");
    let user = users.add(email, password, admin, now()).await?;
    println!("created user {} <{}> with roles {:?}", user.id, user.email, user.roles);
    Ok(())
}

async fn set_password(storage: &StorageArgs, who: &str) -> Result<(), CliError> {
    let password = read_new_password()?;
    let store = open_store(storage).await?;
    let users = Users::command(&store, "jwt-auth user set-password");
    let user = users.set_password(who, password, now()).await?;
    println!(
        "set the password of user {} <{}> and ended every session of theirs; running servers \
         refuse their tokens within seconds",
        user.id, user.email
    );
    Ok(())
}

async fn set_disabled(storage: &StorageArgs, who: &str, disabled: bool) -> Result<(), CliError> {
    let store = open_store(storage).await?;
    let command = if disabled { "jwt-auth user disable" } else { "jwt-auth user enable" };
    let user = Users::command(&store, command).set_disabled(who, disabled, now()).await?;
    if disabled {
        println!(
            "disabled user {} <{}>: every session ended, and running servers refuse their \
             tokens within seconds",
            user.id, user.email
        );
    } else {
        println!("enabled user {} <{}>: they can log in again", user.id, user.email);
    }
    Ok(())
}

async fn delete(storage: &StorageArgs, who: &str) -> Result<(), CliError> {
    let store = open_store(storage).await?;
    let user = Users::command(&store, "jwt-auth user delete").delete(who, now()).await?;
    println!(
        "deleted user {} <{}>: every session and token of theirs is revoked, and running \
         servers refuse their tokens within seconds",
        user.id, user.email
    );
    Ok(())
}

async fn list(
    storage: &StorageArgs,
    email: Option<&str>,
    limit: u32,
    offset: u64,
    json: bool,
) -> Result<(), CliError> {
    // Past the largest offset the database counts, there is no user either.
    let page = Page::new(limit, MAX_LISTED, offset.min(MAX_OFFSET))?;
    let store = open_store(storage).await?;
    let found = users::list(&store, email, page).await?;
    print_users(&found, json)
}

/// One line a user (a JSON object, or columns), then how many were found of how many.
fn print_users(found: &UserPage, json: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    for user in &found.users {
        let line = if json {
            serde_json::json!({
                "id": user.id,
                "email": user.email,
                "roles": user.roles,
                "disabled": user.disabled,
                "created_at": user.created_at.to_rfc3339(),
            })
            .to_string()
        } else {
            let state = if user.disabled { "disabled" } else { "enabled" };
            format!(
                "{}  {}  {}  {state}  {}",
                user.id,
                user.email,
                user.roles.join(","),
                user.created_at.to_rfc3339()
            )
        };
        writeln!(out, "{line}")?;
    }
    if !json {
        writeln!(out, "{} of {} users", found.users.len(), found.total)?;
    }
    Ok(())
}

async fn import(
    storage: &StorageArgs,
    file: &Path,
    skip_existing: bool,
    json: bool,
) -> Result<(), CliError> {
    let name = file.display().to_string();
    let text = if file.as_os_str() == "-" {
        let mut text = Vec::new();
        std::io::stdin().read_to_end(&mut text)?;
        text
    } else {
        std::fs::read(file).map_err(|e| CliError::Usage(format!("{name}: {e}")))?
    };
    let batch = import::parse(&text).map_err(|e| CliError::unreadable_import(&name, e))?;
    let store = open_store(storage).await?;
    let existing = if skip_existing { ExistingEmails::Skip } else { ExistingEmails::Refuse };
    let users = Users::command(&store, "jwt-auth user import");
    let report = users.import(&batch, &name, existing, now()).await;
    let report = report.map_err(|e| CliError::refused_import(&name, e))?;
    print_import(&name, report, json);
    Ok(())
}

/// What an import did, in one line.
fn print_import(name: &str, ImportReport { imported, families }: ImportReport, json: bool) {
    let skipped = imported.skipped.len();
    if json {
        let printed = serde_json::json!({
            "created": imported.created,
            "skipped": skipped,
            "skipped_emails": imported.skipped,
            "families": families,
        });
        println!("{printed}");
        return;
    }
    let families: Vec<String> =
        families.iter().map(|(family, n)| format!("{family} {n}")).collect();
    println!(
        "imported {name}: created {} users, skipped {skipped} whose email exists already \
         (hashes: {}); each hash becomes argon2id at the user's first login",
        imported.created,
        families.join(", ")
    );
}
