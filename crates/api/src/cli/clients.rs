//! `clients add|list|remove`: clients, as the service makes, lists and removes them: service
//! clients (OAuth client credentials), and apps that sign users in with the authorization
//! code grant (`--redirect-uri`). A secret is printed once; a public client has none.

use clap::{Args, Subcommand};
use jwt_auth_service::clients::{self, SignIn};

use super::context::{given_lifetimes, now};
use crate::clients::{AddedClient, ClientView};
use crate::config::StorageArgs;
use crate::database::open_store;
use crate::failure::CliError;

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its client_id and, unless it is public, its client_secret
    /// once (only a digest of the secret is stored).
    Add {
        /// A name for people, unique.
        name: String,
        /// A role of its tokens (repeat for several; `service` when none is given).
        #[arg(long = "role")]
        roles: Vec<String>,
        #[command(flatten)]
        sign_in: SignInArgs,
        /// Its token requests must carry a DPoP proof (RFC 9449): its tokens are always bound
        /// to a key. For a service client and an app alike.
        #[arg(long)]
        require_dpop: bool,
        /// Print one JSON object instead of two lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List the clients: id, name, roles, created, how each signs users in, and whether it
    /// must send DPoP proofs.
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

/// How an app client signs users in (none of these: a service client).
#[derive(Debug, Args)]
pub struct SignInArgs {
    /// Where the authorization code grant may send users back (repeat for several): an
    /// `https` URI, a loopback `http` URI (`http://127.0.0.1/callback`; any port matches),
    /// or a private-use scheme (`com.example.app:/callback`). Matched exactly.
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Where `GET /auth/end-session` may send users after signing out (repeat for several).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// No secret: a single-page, mobile or desktop app, identified by its client_id alone.
    #[arg(long)]
    public: bool,
    /// Users are never asked to consent to this client (an app of the same operator).
    #[arg(long)]
    first_party: bool,
}

impl From<SignInArgs> for SignIn {
    fn from(args: SignInArgs) -> Self {
        SignIn {
            redirect_uris: args.redirect_uris,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            public: args.public,
            first_party: args.first_party,
            // Not how it signs users in: `clients add --require-dpop` sets it.
            require_dpop: false,
        }
    }
}

pub(super) async fn run(command: ClientsCommand) -> Result<(), CliError> {
    match command {
        ClientsCommand::Add { name, roles, sign_in, require_dpop, json, storage } => {
            let sign_in = SignIn { require_dpop, ..sign_in.into() };
            add(&name, &roles, sign_in, json, &storage).await
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
    sign_in: SignIn,
    json: bool,
    storage: &StorageArgs,
) -> Result<(), CliError> {
    let new = clients::new_app_client(name, roles, &sign_in, now())?;
    clients::add(&open_store(storage).await?, &new).await?;
    let (id, secret) = (&new.client.id, new.secret.as_ref().map(|s| s.expose()));
    if json {
        println!("{}", to_json(&AddedClient::from(&new))?);
    } else {
        println!("client_id: {id}");
        match secret {
            Some(secret) => println!("client_secret: {secret}"),
            None => println!("a public client: it has no secret"),
        }
    }
    Ok(())
}

async fn list(json: bool, storage: &StorageArgs) -> Result<(), CliError> {
    let clients = clients::list(&open_store(storage).await?).await?;
    if json {
        let listed: Vec<_> = clients.iter().map(ClientView::from).collect();
        println!("{}", to_json(&listed)?);
        return Ok(());
    }
    for client in clients {
        let mut line = format!(
            "{}  {}  {}  {}",
            client.id,
            client.name,
            client.roles.join(","),
            client.created_at.to_rfc3339()
        );
        // An app: how it signs users in, after what every client has; then whether its token
        // requests must carry a DPoP proof (a service client's too).
        let dpop = if client.require_dpop { ", DPoP required" } else { "" };
        if !client.redirect_uris.is_empty() {
            let kind = if client.public { "public" } else { "confidential" };
            let party = if client.first_party { ", first-party" } else { "" };
            line.push_str(&format!("  {kind}{party}{dpop}  {}", client.redirect_uris.join(" ")));
        } else if client.require_dpop {
            line.push_str("  DPoP required");
        }
        println!("{line}");
    }
    Ok(())
}

/// One line of JSON: a client as the admin API shows it too (everything but its secret's
/// digest).
fn to_json(value: &impl serde::Serialize) -> Result<String, CliError> {
    Ok(serde_json::to_string(value).map_err(std::io::Error::from)?)
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
