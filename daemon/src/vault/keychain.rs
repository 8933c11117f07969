//! The OS keychain through keyring-core: the Secret Service (gnome-keyring, KWallet) on Linux.

use super::{SecretBytes, Vault, VaultError, VaultKind};
use keyring_core::Error as KError;
use keyring_core::api::CredentialStoreApi;
use std::sync::Arc;
use zbus_secret_service_keyring_store::Store;
use zeroize::Zeroizing;

/// The keychain "service" attribute every Keyfob item carries.
pub const SERVICE: &str = "keyfob";
/// An item written at start-up to prove the keychain answers and is unlocked.
const PROBE_KEY: &str = "keyfob-probe";

/// Secrets as Secret Service items (`service=keyfob`, `username=<key>`).
pub struct KeychainVault {
    // One store, so one D-Bus connection and one encrypted session for the daemon's life:
    // opening a session per call is slow and makes gnome-keyring grow without bound.
    store: Arc<Store>,
}

impl KeychainVault {
    /// Connects and probes; fails with a message naming the fix when the keychain is missing
    /// or locked.
    pub fn open() -> Result<Self, VaultError> {
        let store = Store::new().map_err(|e| VaultError::Unavailable(describe(&e)))?;
        let this = Self { store };
        // A read of a missing item succeeds even on a locked keyring; a write does not, so
        // the probe writes (on a desktop, this is when the unlock prompt appears).
        this.entry(PROBE_KEY)?
            .set_secret(b"keyfob keychain probe")
            .map_err(|e| VaultError::Unavailable(describe(&e)))?;
        Ok(this)
    }

    fn entry(&self, key: &str) -> Result<keyring_core::Entry, VaultError> {
        self.store
            .build(SERVICE, key, None)
            .map_err(|e| VaultError::Unavailable(describe(&e)))
    }
}

/// A one-line reason for a keyring error, with the fix; never includes secret bytes.
fn describe(e: &KError) -> String {
    match e {
        KError::NoStorageAccess(inner) => format!(
            "the keychain is locked ({inner}): unlock your login keyring, or set vault = \"file\" in the Keyfob config"
        ),
        KError::PlatformFailure(inner) => {
            let text = inner.to_string();
            if text.contains("ServiceUnknown") || text.contains("org.freedesktop.secrets") {
                "no Secret Service is running on the session bus: start gnome-keyring (or KWallet), or set vault = \"file\" in the Keyfob config".into()
            } else if text.contains("No such file")
                || text.contains("DBUS_SESSION_BUS_ADDRESS")
                || text.contains("Address")
            {
                format!(
                    "no D-Bus session bus ({text}): log in to a desktop session, or set vault = \"file\" in the Keyfob config"
                )
            } else {
                format!("the keychain failed: {text}")
            }
        }
        // Bad data formats would echo bytes: name the problem only.
        KError::BadEncoding(_) | KError::BadDataFormat(..) => {
            "a keychain item has an unexpected format".into()
        }
        other => format!("the keychain failed: {other}"),
    }
}

impl Vault for KeychainVault {
    fn kind(&self) -> VaultKind {
        VaultKind::Keychain
    }

    fn get(&mut self, key: &str) -> Result<Option<SecretBytes>, VaultError> {
        match self.entry(key)?.get_secret() {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(KError::NoEntry) => Ok(None),
            Err(e) => Err(VaultError::Unavailable(describe(&e))),
        }
    }

    fn warm(&mut self, key: &str) {
        // One round trip that reads no secret: the item's lookup (SearchItems), which the
        // write then repeats on an awake Secret Service. Measured here: a store 3 s after the
        // keychain's last call took ~45 ms, and ~8–10 ms when this ran 50–200 ms before it.
        if let Ok(entry) = self.entry(key) {
            let _ = entry.get_credential();
        }
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), VaultError> {
        self.entry(key)?
            .set_secret(value)
            .map_err(|e| VaultError::Storage(describe(&e)))
    }

    fn delete(&mut self, key: &str) -> Result<bool, VaultError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(KError::NoEntry) => Ok(false),
            Err(e) => Err(VaultError::Storage(describe(&e))),
        }
    }
}
