//! Opening the store as the settings say, migrated, with one-line failures that name the
//! setting and tell an unreachable database from a bad setting.

use jwt_auth_store::{Store, StoreOptions};

use crate::config::{ConfigError, StorageArgs};
use crate::failure::CliError;
use jwt_auth_service::secret::DatabaseUrl;

/// Opens the store and applies pending migrations.
pub(crate) async fn open_store(storage: &StorageArgs) -> Result<Store, CliError> {
    open_store_with(&storage.database_url, storage.store_options()?).await
}

/// [`open_store`] with the settings already read. A database that cannot be reached within
/// the connect timeout is [`CliError::Unreachable`], one line naming the server.
pub(crate) async fn open_store_with(
    database_url: &DatabaseUrl,
    options: StoreOptions,
) -> Result<Store, CliError> {
    // Connections are made lazily: an unreachable database shows at the first migration.
    let unreachable = |e: jwt_auth_store::StoreError| match e {
        jwt_auth_store::StoreError::Unavailable(_) => {
            CliError::Unreachable(ConfigError { setting: "DATABASE_URL", problem: e.to_string() })
        }
        jwt_auth_store::StoreError::InvalidUrl(_) | jwt_auth_store::StoreError::Refused(_) => {
            CliError::Config(ConfigError { setting: "DATABASE_URL", problem: e.to_string() })
        }
        other => other.into(),
    };
    let store = Store::connect_with(database_url.expose(), options).await.map_err(unreachable)?;
    store.migrate().await.map_err(unreachable)?;
    Ok(store)
}
