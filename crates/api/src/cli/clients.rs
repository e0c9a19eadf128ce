//! `clients add|list|remove`: service clients (OAuth client credentials), as the service
//! makes, lists and removes them; the secret is printed once.

use clap::Subcommand;
use jwt_auth_service::clients;
use jwt_auth_store::ServiceClient;

use super::context::{given_lifetimes, now};
use crate::config::StorageArgs;
use crate::database::open_store;
use crate::failure::CliError;

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a service client; prints its client_id and client_secret once (only a
    /// digest of the secret is stored).
    Add {
        /// A name for people, unique.
        name: String,
        /// A role of its tokens (repeat for several; `service` when none is given).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Print one JSON object instead of two lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List the service clients: id, name, roles, created.
    List {
        /// Print a JSON array of objects instead of lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Remove a service client: its tokens are refused everywhere within a second.
    Remove {
        /// The client's id, as `clients list` shows it, or its name (names are unique).
        #[arg(value_name = "CLIENT")]
        client: String,
        /// The servers' access-token lifetime, if longer than any they recorded in the
        /// database: how long the revocation matters (the longest is taken; 30m when no
        /// server ever recorded one).
        #[arg(long = "token-expiry", env = "TOKEN_EXPIRY")]
        token_expiry: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

pub(super) async fn run(command: ClientsCommand) -> Result<(), CliError> {
    match command {
        ClientsCommand::Add { name, roles, json, storage } => {
            add(&name, &roles, json, &storage).await
        }
        ClientsCommand::List { json, storage } => list(json, &storage).await,
        ClientsCommand::Remove { client, token_expiry, storage } => {
            remove(&client, token_expiry, &storage).await
        }
    }
}

async fn add(
    name: &str,
    roles: &[String],
    json: bool,
    storage: &StorageArgs,
) -> Result<(), CliError> {
    let new = clients::new_client(name, roles, now())?;
    clients::add(&open_store(storage).await?, &new).await?;
    let (id, secret) = (&new.client.id, new.secret.expose());
    if json {
        let printed = serde_json::json!({
            "client_id": id,
            "client_secret": secret,
            "name": new.client.name,
            "roles": new.client.roles,
        });
        println!("{printed}");
    } else {
        println!("client_id: {id}");
        println!("client_secret: {secret}");
    }
    Ok(())
}

async fn list(json: bool, storage: &StorageArgs) -> Result<(), CliError> {
    let clients = clients::list(&open_store(storage).await?).await?;
    if json {
        let listed: Vec<_> = clients.iter().map(client_json).collect();
        println!("{}", serde_json::Value::from(listed));
        return Ok(());
    }
    for client in clients {
        println!(
            "{}  {}  {}  {}",
            client.id,
            client.name,
            client.roles.join(","),
            client.created_at.to_rfc3339()
        );
    }
    Ok(())
}

/// A client as `clients list --json` prints it: never its secret's digest.
fn client_json(client: &ServiceClient) -> serde_json::Value {
    serde_json::json!({
        "client_id": client.id,
        "name": client.name,
        "roles": client.roles,
        "created": client.created_at.to_rfc3339(),
    })
}

async fn remove(
    client: &str,
    token_expiry: Option<String>,
    storage: &StorageArgs,
) -> Result<(), CliError> {
    let (given, _) = given_lifetimes(token_expiry, None)?;
    let store = open_store(storage).await?;
    let removed = clients::remove_named(&store, client, given, now()).await?;
    println!(
        "removed client {} ({}): running servers refuse its tokens within a second",
        removed.id, removed.name
    );
    Ok(())
}
