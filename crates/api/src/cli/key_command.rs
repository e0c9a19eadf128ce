//! How a key command starts: the key settings read, the store opened, and the settings
//! checked against the stored keys, before anything is changed.

use std::sync::Arc;

use jwt_auth_service::keys::Keys;
use jwt_auth_store::Store;

use super::context::now;
use crate::config::{KeyArgs, StorageArgs};
use crate::database::open_store;
use crate::failure::CliError;
use crate::key_settings::KeySettings;

/// The keys service of a key command, and the store, once the settings are checked against
/// the stored keys (see [`Keys::check`]); a command `changing` the algorithm is not held to
/// the current one.
pub(super) async fn open_keys(
    args: &KeyArgs,
    storage: &StorageArgs,
    changing: bool,
) -> Result<(Keys, Arc<Store>), CliError> {
    let settings = KeySettings::read(args, storage.database_url.expose())?;
    let store = Arc::new(open_store(storage).await?);
    let keys = settings.keys(store.clone(), &storage.data_dir);
    let keys = if changing { keys.wanting(None) } else { keys };
    keys.check(now()).await?;
    Ok((keys, store))
}
