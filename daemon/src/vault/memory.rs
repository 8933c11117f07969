//! An in-memory vault for unit tests of logic; never chosen by configuration.

use super::{SecretBytes, Vault, VaultError, VaultKind};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// Secrets in a map, gone when the process ends.
#[derive(Default)]
pub struct MemoryVault {
    map: HashMap<String, SecretBytes>,
}

impl Vault for MemoryVault {
    fn kind(&self) -> VaultKind {
        VaultKind::Memory
    }
    fn get(&mut self, key: &str) -> Result<Option<SecretBytes>, VaultError> {
        Ok(self.map.get(key).map(|v| Zeroizing::new(v.to_vec())))
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), VaultError> {
        self.map
            .insert(key.to_owned(), Zeroizing::new(value.to_vec()));
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<bool, VaultError> {
        Ok(self.map.remove(key).is_some())
    }
}
