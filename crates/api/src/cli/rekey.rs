//! `keys rekey`: every stored key re-sealed under a new key-encryption key, read from a file or
//! from standard input, in one transaction.

use std::io::Read;
use std::path::Path;

use jwt_core::KeyEncryptionKey;

use super::key_command::open_keys;
use crate::config::{ConfigError, KeyArgs, StorageArgs};
use crate::failure::CliError;
use crate::key_settings;

pub(super) async fn rekey(
    new_file: Option<&Path>,
    args: &KeyArgs,
    storage: &StorageArgs,
) -> Result<(), CliError> {
    let new = new_kek(new_file)?;
    let Some(current) = key_settings::key_encryption_key(args)? else {
        return Err(CliError::Config(ConfigError {
            setting: "KEY_ENCRYPTION_KEY",
            problem: "`keys rekey` needs the key-encryption key the stored keys are sealed under \
                      now (KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE)"
                .into(),
        }));
    };
    let (_, store) = open_keys(args, storage, false).await?;
    let count = jwt_auth_service::keys::reseal(&store, &current, &new).await?;
    println!(
        "re-sealed {count} signing keys under the new key-encryption key; give every instance \
         KEY_ENCRYPTION_KEY=<new> (and KEY_ENCRYPTION_KEY_PREVIOUS=<old> until all have \
         restarted)"
    );
    Ok(())
}

/// The new key-encryption key: of `file`, or else of standard input.
fn new_kek(file: Option<&Path>) -> Result<KeyEncryptionKey, CliError> {
    let (setting, text) = match file {
        Some(path) => (
            "--new-key-encryption-key-file",
            zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                CliError::Usage(format!("--new-key-encryption-key-file {}: {e}", path.display()))
            })?),
        ),
        None => {
            let mut text = zeroize::Zeroizing::new(String::new());
            std::io::stdin().take(4096).read_to_string(&mut text)?;
            ("--new-key-encryption-key-stdin", text)
        }
    };
    Ok(key_settings::parse_kek(setting, &text)?)
}
