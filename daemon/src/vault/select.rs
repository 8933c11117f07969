//! Choosing the store: `vault = "auto" | "keychain" | "file"`, and saying which was chosen.

use super::file::{FileVault, KdfParams};
use super::{Vault, VaultError, VaultKind};
use crate::config::{Config, VaultChoice};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The opened store and a sentence for `keyfob daemon status` on what it is and why.
pub struct OpenedVault {
    /// The backend.
    pub vault: Box<dyn Vault>,
    /// Why this store: shown to the user.
    pub detail: String,
}

/// Opens the configured store. `remembered` is the kind an earlier `auto` run chose: `auto`
/// sticks to it so secrets never silently move between stores. `passphrase` is called only
/// when the vault file is used.
pub fn open_vault(
    config: &Config,
    remembered: Option<VaultKind>,
    passphrase: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, VaultError>,
    kdf: KdfParams,
) -> Result<OpenedVault, VaultError> {
    let file_path = config
        .vault_file()
        .map_err(|e| VaultError::Unavailable(e.to_string()))?;
    let open_file = |why: String| -> Result<OpenedVault, VaultError> {
        let pass = passphrase()?;
        let v = FileVault::open(&file_path, &pass, kdf)?;
        Ok(OpenedVault {
            detail: format!("encrypted vault file {} ({why})", file_path.display()),
            vault: Box::new(v),
        })
    };
    match (config.vault, remembered) {
        (VaultChoice::File, _) => open_file("vault = \"file\"".into()),
        (VaultChoice::Keychain, _) => open_keychain("vault = \"keychain\""),
        (VaultChoice::Auto, Some(VaultKind::Keychain)) => open_keychain(
            "vault = \"auto\"; the keychain was chosen on first run and is kept so no secret is left behind",
        ),
        (VaultChoice::Auto, Some(VaultKind::File)) => open_file(
            "vault = \"auto\"; chosen on first run because no keychain answered, and kept so no secret is left behind".into(),
        ),
        (VaultChoice::Auto, _) => match open_keychain("vault = \"auto\"; the keychain answered") {
            Ok(v) => Ok(v),
            Err(VaultError::Unavailable(why)) => {
                open_file(format!("vault = \"auto\" and no keychain answered: {why}"))
            }
            Err(e) => Err(e),
        },
    }
}

#[cfg(target_os = "linux")]
fn open_keychain(why: &str) -> Result<OpenedVault, VaultError> {
    let v = super::keychain::KeychainVault::open()?;
    Ok(OpenedVault {
        vault: Box::new(v),
        detail: format!("OS keychain via the Secret Service ({why})"),
    })
}

#[cfg(not(target_os = "linux"))]
fn open_keychain(_why: &str) -> Result<OpenedVault, VaultError> {
    Err(VaultError::Unavailable(
        "the keychain backend for this OS is not built yet: set vault = \"file\"".into(),
    ))
}

/// Reads the passphrase from `KEYFOB_PASSPHRASE`, then the configured key file.
pub fn passphrase_from_env_or_file(config: &Config) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if let Some(p) = std::env::var_os(crate::config::PASSPHRASE_ENV).filter(|p| !p.is_empty()) {
        return Ok(Zeroizing::new(p.into_encoded_bytes()));
    }
    let key_file: Option<PathBuf> = std::env::var_os(crate::config::KEY_FILE_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| config.file_vault.key_file.clone());
    if let Some(path) = key_file {
        let mut bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| {
            VaultError::Unavailable(format!("cannot read the key file {}: {e}", path.display()))
        })?);
        // A trailing newline from an editor is not part of the key.
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        return Ok(bytes);
    }
    Err(VaultError::NeedsPassphrase)
}
