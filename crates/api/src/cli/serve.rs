//! `serve` and `migrate`: the server's start (waiting for a PostgreSQL that is down, serving
//! `/health` meanwhile) on a listening socket of its own backlog, and the migrations alone.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use jwt_auth_store::BackendKind;
use jwt_core::SystemClock;

use crate::config::{Config, ConfigError, KeyArgs, ServeArgs, StorageArgs};
use crate::database::open_store;
use crate::failure::CliError;
use crate::key_settings;
use crate::startup::Application;

/// `migrate`: the pending migrations applied.
pub(super) async fn migrate(storage: &StorageArgs) -> Result<(), CliError> {
    open_store(storage).await?;
    println!("migrations applied");
    Ok(())
}

pub(super) async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let config = args.validate()?;
    crate::telemetry::init(config.log_format);
    let listener = listen(config.bind).map_err(|e| {
        CliError::Config(ConfigError {
            setting: "BIND_ADDRESS",
            problem: format!("cannot listen on {}: {e}", config.bind),
        })
    })?;
    let address = listener.local_addr()?;
    let app = match Application::build(config.clone(), &args.keys, Arc::new(SystemClock)).await {
        Ok(app) => app,
        // A SQLite file that cannot be opened will not mend by waiting: only a PostgreSQL
        // server that is down (or still starting) is waited for.
        Err(e) if e.is_unreachable() && backend_of(&config) == BackendKind::Postgres => {
            tracing::error!(error = %e, "the database is unreachable; serving /health and a 503 /ready while retrying");
            let Some(app) = wait_for_the_database(&listener, address, &config, &args.keys).await?
            else {
                tracing::info!("jwt-auth stopped before the database answered");
                return Ok(());
            };
            app
        }
        Err(e) => return Err(e),
    };
    log_listening(&app, address);
    let server = app.run(listener)?;
    server.await?;
    tracing::info!("jwt-auth stopped");
    Ok(())
}

/// Says that `app` listens on `address`: on which database, signing with which key.
fn log_listening(app: &Application, address: SocketAddr) {
    let state = app.state();
    let keys = state.tokens().keys();
    let signing = keys.active().map(|k| (k.algorithm().as_str(), k.kid()));
    let (algorithm, kid) = signing.unwrap_or(("-", "-"));
    tracing::info!(address = %address, database = %format!("{:?}", state.store.backend()), algorithm, kid, "jwt-auth listening");
}

/// Serves on `listener` while the database is unreachable, building the application until it
/// answers: `Some` of it then, `None` if the server is asked to stop first.
async fn wait_for_the_database(
    listener: &TcpListener,
    address: SocketAddr,
    config: &Config,
    keys: &KeyArgs,
) -> Result<Option<Application>, CliError> {
    // Start anyway, so that an orchestrator needs no start-up order: /health answers,
    // /ready says 503, and the rest 503 with a JSON error, until the database answers.
    let starting = crate::startup::starting(listener.try_clone()?)?;
    tracing::info!(address = %address, database = %format!("{:?}", backend_of(config)), "jwt-auth listening");
    let built = tokio::select! {
        built = build_with_retries(config, keys) => built,
        _ = crate::startup::stop_requested() => None,
    };
    // In-flight answers finish first; connections arriving meanwhile wait in the listening
    // socket's queue for the real server.
    starting.stop(true).await;
    built.transpose()
}

/// The backend `config` names, for the log line.
fn backend_of(config: &Config) -> BackendKind {
    if key_settings::is_postgres(config.database_url.expose()) {
        BackendKind::Postgres
    } else {
        BackendKind::Sqlite
    }
}

/// Builds the application again and again while the database is unreachable, waiting 250 ms
/// after the first failure and doubling up to 10 s, with a tenth of jitter so that instances
/// restarted together do not knock in step. `Some` of the first answer that is not "the
/// database is unreachable": the application, or an error that retrying would not mend.
async fn build_with_retries(
    config: &Config,
    keys: &KeyArgs,
) -> Option<Result<Application, CliError>> {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(250);
    const MOST: std::time::Duration = std::time::Duration::from_secs(10);
    let mut wait = FIRST;
    let mut attempts = 1u32;
    loop {
        let random = (uuid::Uuid::new_v4().as_u128() & 0xffff) as f64 / 65_536.0;
        let jitter = wait.mul_f64(random / 10.0);
        tokio::time::sleep(wait + jitter).await;
        attempts += 1;
        match Application::build(config.clone(), keys, Arc::new(SystemClock)).await {
            Err(e) if e.is_unreachable() => {
                tracing::warn!(error = %e, attempts, next_in_ms = (wait * 2).min(MOST).as_millis() as u64, "the database is still unreachable");
                wait = (wait * 2).min(MOST);
            }
            Ok(app) => {
                tracing::info!(attempts, "the database answered; serving");
                return Some(Ok(app));
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// How many connections the kernel may queue before the server accepts them. `std` listens
/// with 128: a burst of thousands of new connections then overflows the queue and the
/// dropped SYNs are retried a second later, which is a second of latency for those clients.
/// The kernel caps this at `net.core.somaxconn` (4096 by default since Linux 5.4).
pub const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, so a restart
/// does not wait for the old connections' `TIME_WAIT`).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}
