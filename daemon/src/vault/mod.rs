//! Where secrets live: the [`Vault`] trait, its backends, and the thread that owns the store.
//!
//! Backends are synchronous (the keyring API is), so one dedicated thread owns the chosen
//! backend and the async side talks to it through [`VaultHandle`]; no runtime thread ever
//! blocks on the keychain or on an fsync of the vault file.

pub mod file;
#[cfg(target_os = "linux")]
pub mod keychain;
pub mod memory;
mod select;

pub use keyfob_proto::methods::VaultKind;
pub use select::{OpenedVault, open_vault, passphrase_from_env_or_file};

use secrecy::{ExposeSecret, SecretBox};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The store cannot be reached (no Secret Service, locked keychain, vault thread gone).
    #[error("{0}")]
    Unavailable(String),
    /// Writing failed (disk full, permissions); the stored data is unchanged.
    #[error("{0}")]
    Storage(String),
    /// The vault file is damaged, tampered with, or the passphrase is wrong.
    #[error("{0}")]
    Integrity(String),
    /// The vault file needs a passphrase and none was given.
    #[error(
        "the vault file needs a passphrase: set KEYFOB_PASSPHRASE, set key_file under [file_vault] in the config, or run `keyfob daemon start` in a terminal to be asked"
    )]
    NeedsPassphrase,
    /// The agent is locked: secrets are out of memory until `keyfob unlock`.
    #[error("the agent is locked: run `keyfob unlock`")]
    Locked,
}

/// Secret bytes read from a vault.
pub type SecretBytes = Zeroizing<Vec<u8>>;

/// A synchronous secret store keyed by short ASCII names (`otp:github`, `secret:npm`).
///
/// Implementations MUST make `set` and `delete` durable before returning `Ok`, MUST leave
/// stored data unchanged when they return `Err`, and MUST NOT log secret values.
pub trait Vault: Send {
    /// Which kind of store this is.
    fn kind(&self) -> VaultKind;
    /// Reads a secret; `Ok(None)` when there is no such key.
    fn get(&mut self, key: &str) -> Result<Option<SecretBytes>, VaultError>;
    /// Stores a secret, replacing any previous value.
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), VaultError>;
    /// Deletes a secret; `Ok(false)` when there was none.
    fn delete(&mut self, key: &str) -> Result<bool, VaultError>;
    /// `key` is about to be written: a store whose daemon answers slowly after idling (the
    /// Secret Service) is woken now. Errors are left to the write; does nothing by default.
    fn warm(&mut self, _key: &str) {}
    /// Drops every decrypted secret and all key material from memory. Stores that hold
    /// none (the keychain, which keeps its own lock) need do nothing.
    fn lock(&mut self) {}
    /// Opens the store again after [`Vault::lock`]; `passphrase` is for stores that need one.
    fn unlock(&mut self, _passphrase: Option<&[u8]>) -> Result<(), VaultError> {
        Ok(())
    }
    /// Whether [`Vault::unlock`] needs a passphrase.
    fn unlock_needs_passphrase(&self) -> bool {
        false
    }
}

type Job = Box<dyn FnOnce(&mut dyn Vault) + Send>;

/// The async face of the vault: a handle to the thread that owns the backend, plus a
/// memory cache so a hot read (an OTP code) does not cross to the keychain each time.
#[derive(Clone)]
pub struct VaultHandle {
    tx: std::sync::mpsc::Sender<Job>,
    kind: VaultKind,
    cache: Arc<Mutex<HashMap<String, SecretBox<[u8]>>>>,
    locked: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for VaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultHandle")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl VaultHandle {
    /// Moves `vault` onto its own thread.
    pub fn spawn(vault: Box<dyn Vault>) -> std::io::Result<Self> {
        let kind = vault.kind();
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("keyfob-vault".into())
            .spawn(move || {
                let mut vault = vault;
                while let Ok(job) = rx.recv() {
                    job(vault.as_mut());
                }
            })?;
        Ok(Self {
            tx,
            kind,
            cache: Arc::default(),
            locked: Arc::default(),
        })
    }

    /// Which store is in use.
    pub fn kind(&self) -> VaultKind {
        self.kind
    }

    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Vault) -> Result<R, VaultError> + Send + 'static,
    ) -> Result<R, VaultError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |v| {
            let _ = tx.send(f(v));
        });
        self.tx
            .send(job)
            .map_err(|_| VaultError::Unavailable("the vault thread has stopped".into()))?;
        rx.await
            .map_err(|_| VaultError::Unavailable("the vault thread has stopped".into()))?
    }

    fn is_locked(&self) -> bool {
        self.locked.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Locks: no read or write succeeds, and no secret stays cached, until [`Self::unlock`].
    pub async fn lock(&self) {
        self.locked.store(true, std::sync::atomic::Ordering::SeqCst);
        self.clear_cache();
        let _ = self
            .run(|v| {
                v.lock();
                Ok(())
            })
            .await;
    }

    /// Unlocks, giving the store `passphrase` if it needs one.
    pub async fn unlock(&self, passphrase: Option<SecretBytes>) -> Result<(), VaultError> {
        self.run(move |v| v.unlock(passphrase.as_ref().map(|p| p.as_slice())))
            .await?;
        self.locked
            .store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Whether unlocking needs a passphrase.
    pub async fn unlock_needs_passphrase(&self) -> bool {
        self.run(|v| Ok(v.unlock_needs_passphrase()))
            .await
            .unwrap_or(false)
    }

    /// Reads a secret (from the cache when it holds it).
    pub async fn get(&self, key: &str) -> Result<Option<SecretBytes>, VaultError> {
        if self.is_locked() {
            return Err(VaultError::Locked);
        }
        if let Some(hit) = self.cached(key) {
            return Ok(Some(hit));
        }
        let k = key.to_owned();
        let value = self.run(move |v| v.get(&k)).await?;
        if let Some(v) = &value {
            self.remember(key, v);
        }
        Ok(value)
    }

    /// [`Vault::warm`] on the vault's thread, without waiting: a write queued after it runs
    /// once it is done.
    pub fn warm(&self, key: &str) {
        if self.is_locked() {
            return;
        }
        let k = key.to_owned();
        let _ = self.tx.send(Box::new(move |v| v.warm(&k)));
    }

    /// Stores a secret durably, then caches it.
    pub async fn set(&self, key: &str, value: SecretBytes) -> Result<(), VaultError> {
        if self.is_locked() {
            return Err(VaultError::Locked);
        }
        let k = key.to_owned();
        let value = Arc::new(value);
        let v2 = Arc::clone(&value);
        self.run(move |v| v.set(&k, &v2)).await?;
        self.remember(key, &value);
        Ok(())
    }

    /// Deletes a secret durably and drops it from the cache.
    pub async fn delete(&self, key: &str) -> Result<bool, VaultError> {
        if self.is_locked() {
            return Err(VaultError::Locked);
        }
        self.forget(key);
        let k = key.to_owned();
        self.run(move |v| v.delete(&k)).await
    }

    /// Drops every cached secret from memory.
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    fn cached(&self, key: &str) -> Option<SecretBytes> {
        let c = self.cache.lock().ok()?;
        c.get(key)
            .map(|s| Zeroizing::new(s.expose_secret().to_vec()))
    }

    fn remember(&self, key: &str, value: &[u8]) {
        // A read that finishes after a lock must not refill the cache.
        if self.is_locked() {
            return;
        }
        if let Ok(mut c) = self.cache.lock() {
            c.insert(
                key.to_owned(),
                SecretBox::new(value.to_vec().into_boxed_slice()),
            );
        }
    }

    fn forget(&self, key: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handle_round_trips_through_the_thread() {
        let h = VaultHandle::spawn(Box::new(memory::MemoryVault::default())).unwrap();
        assert!(h.get("a").await.unwrap().is_none());
        h.set("a", Zeroizing::new(b"x".to_vec())).await.unwrap();
        h.clear_cache();
        assert_eq!(h.get("a").await.unwrap().unwrap().as_slice(), b"x");
        assert!(h.delete("a").await.unwrap());
        assert!(h.get("a").await.unwrap().is_none());
        assert!(!h.delete("a").await.unwrap());
    }

    /// A memory vault that records the order of `warm` and `set`.
    #[derive(Default)]
    struct Recording(memory::MemoryVault, Arc<Mutex<Vec<String>>>);

    impl Vault for Recording {
        fn kind(&self) -> VaultKind {
            self.0.kind()
        }
        fn get(&mut self, key: &str) -> Result<Option<SecretBytes>, VaultError> {
            self.0.get(key)
        }
        fn set(&mut self, key: &str, value: &[u8]) -> Result<(), VaultError> {
            self.1.lock().unwrap().push(format!("set {key}"));
            self.0.set(key, value)
        }
        fn delete(&mut self, key: &str) -> Result<bool, VaultError> {
            self.0.delete(key)
        }
        fn warm(&mut self, key: &str) {
            self.1.lock().unwrap().push(format!("warm {key}"));
        }
    }

    #[tokio::test]
    async fn a_warmed_store_is_woken_before_the_write_and_not_while_locked() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let v = Recording(memory::MemoryVault::default(), Arc::clone(&log));
        let h = VaultHandle::spawn(Box::new(v)).unwrap();
        h.warm("refresh:w");
        h.set("refresh:w", Zeroizing::new(b"r1".to_vec()))
            .await
            .unwrap();
        assert_eq!(*log.lock().unwrap(), ["warm refresh:w", "set refresh:w"]);
        h.lock().await;
        h.warm("refresh:w");
        h.unlock(None).await.unwrap();
        assert_eq!(log.lock().unwrap().len(), 2, "a locked vault was woken");
    }
}
