//! The encrypted vault file: the embedded default where no keychain answers.
//!
//! One JSON document holds the KDF parameters, a key-check value and the AES-256-GCM
//! ciphertext of every secret. The key is Argon2id(passphrase, salt), split with HKDF into an
//! encryption key and a check key, so a wrong passphrase is told apart from a damaged file.
//! Every change rewrites the whole file atomically; a file that fails to open is never written.

use super::{SecretBytes, Vault, VaultError, VaultKind};
use crate::atomic::write_atomic;
use data_encoding::BASE64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const FORMAT: &str = "keyfob-vault";
const VERSION: u32 = 1;
const CHECK_MESSAGE: &[u8] = b"keyfob vault key check v1";

/// Argon2id cost; stored in the file so it can be raised later without breaking old files.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

/// The most a vault file may ask of the KDF: far above what keyfob writes (19 MiB, 2 passes,
/// 1 lane), far below what would exhaust the machine. A file asking for more was damaged or
/// tampered with, and running its KDF would abort or hang the daemon.
const MAX_M_COST: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 64;

impl KdfParams {
    /// The first parameter beyond the bounds above, if any.
    fn ruinous(&self) -> Option<&'static str> {
        if self.m_cost > MAX_M_COST {
            Some("m_cost")
        } else if self.t_cost > MAX_T_COST {
            Some("t_cost")
        } else if self.p_cost > MAX_P_COST {
            Some("p_cost")
        } else {
            None
        }
    }
}

impl Default for KdfParams {
    // OWASP's Argon2id baseline: about 50 ms here, paid once per daemon start.
    fn default() -> Self {
        Self {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    algorithm: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    version: u32,
    kdf: Kdf,
    check: String,
    nonce: String,
    ciphertext: String,
}

/// Secrets encrypted at rest in one file (mode 0600).
pub struct FileVault {
    path: PathBuf,
    /// None while locked.
    key: Option<LessSafeKey>,
    kdf_json: Kdf,
    check: String,
    entries: BTreeMap<String, SecretBytes>,
    rng: SystemRandom,
}

impl std::fmt::Debug for FileVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileVault")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct Keys {
    enc: LessSafeKey,
    check: hmac::Key,
}

fn derive(passphrase: &[u8], salt: &[u8], p: KdfParams) -> Result<Keys, VaultError> {
    let params = argon2::Params::new(p.m_cost, p.t_cost, p.p_cost, Some(32)).map_err(|e| {
        VaultError::Integrity(format!("the vault file's KDF parameters are invalid: {e}"))
    })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut master = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, master.as_mut())
        .map_err(|e| VaultError::Integrity(format!("cannot derive the vault key: {e}")))?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"keyfob-vault").extract(master.as_ref());
    let mut enc = Zeroizing::new([0u8; 32]);
    let mut chk = Zeroizing::new([0u8; 32]);
    let okm_err = |_| VaultError::Integrity("key expansion failed".into());
    prk.expand(&[b"enc"], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(enc.as_mut()))
        .map_err(okm_err)?;
    prk.expand(&[b"check"], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(chk.as_mut()))
        .map_err(okm_err)?;
    let enc = UnboundKey::new(&AES_256_GCM, enc.as_ref())
        .map_err(|_| VaultError::Integrity("bad key length".into()))?;
    Ok(Keys {
        enc: LessSafeKey::new(enc),
        check: hmac::Key::new(hmac::HMAC_SHA256, chk.as_ref()),
    })
}

fn aad(salt: &str) -> Vec<u8> {
    format!("{FORMAT}/{VERSION}/{salt}").into_bytes()
}

/// Standard base64 with canonical padding, as the file has always held. `BASE64` alone would
/// also take `=` inside the text (padded groups run together), which the format never had.
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    if text.trim_end_matches('=').contains('=') {
        return None;
    }
    BASE64.decode(text.as_bytes()).ok()
}

impl FileVault {
    /// Opens the vault at `path` with `passphrase`, creating an empty one if the file does
    /// not exist. A wrong passphrase and a damaged file are distinct errors.
    pub fn open(path: &Path, passphrase: &[u8], params: KdfParams) -> Result<Self, VaultError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::open_existing(path, &bytes, passphrase),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Self::create(path, passphrase, params)
            }
            Err(e) => Err(VaultError::Unavailable(format!(
                "cannot read the vault file {}: {e}",
                path.display()
            ))),
        }
    }

    /// Reads a vault file's bytes with `passphrase` exactly as opening it would, touching no
    /// file: for the fuzz target and the regression suite that replays its findings.
    #[doc(hidden)]
    pub fn check_bytes(bytes: &[u8], passphrase: &[u8]) -> Result<(), VaultError> {
        Self::open_existing(Path::new("(bytes)"), bytes, passphrase).map(drop)
    }

    fn create(path: &Path, passphrase: &[u8], params: KdfParams) -> Result<Self, VaultError> {
        if passphrase.is_empty() {
            return Err(VaultError::Unavailable(
                "the vault passphrase is empty: set KEYFOB_PASSPHRASE, or key_file in [file_vault]"
                    .into(),
            ));
        }
        let rng = SystemRandom::new();
        let mut salt = [0u8; 16];
        rng.fill(&mut salt)
            .map_err(|_| VaultError::Unavailable("the system random source failed".into()))?;
        let keys = derive(passphrase, &salt, params)?;
        let check = BASE64.encode(hmac::sign(&keys.check, CHECK_MESSAGE).as_ref());
        let mut this = Self {
            path: path.to_owned(),
            key: Some(keys.enc),
            kdf_json: Kdf {
                algorithm: "argon2id".into(),
                params,
                salt: BASE64.encode(&salt),
            },
            check,
            entries: BTreeMap::new(),
            rng,
        };
        if let Some(dir) = path.parent() {
            crate::atomic::ensure_private_dir(dir).map_err(|e| {
                VaultError::Storage(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        this.persist(&BTreeMap::new())?;
        Ok(this)
    }

    fn open_existing(path: &Path, bytes: &[u8], passphrase: &[u8]) -> Result<Self, VaultError> {
        let damaged = |why: &str| {
            VaultError::Integrity(format!(
                "the vault file {} is damaged or was modified ({why}); it has been left untouched: restore it from a backup",
                path.display()
            ))
        };
        let env: Envelope =
            serde_json::from_slice(bytes).map_err(|_| damaged("not a vault file"))?;
        if env.format != FORMAT || env.version != VERSION || env.kdf.algorithm != "argon2id" {
            return Err(damaged("unknown format or version"));
        }
        let salt = decode_b64(&env.kdf.salt).ok_or_else(|| damaged("bad salt"))?;
        if let Some(key) = env.kdf.params.ruinous() {
            return Err(damaged(&format!(
                "its KDF {key} is beyond any keyfob writes"
            )));
        }
        let keys = derive(passphrase, &salt, env.kdf.params)?;
        let check = decode_b64(&env.check).ok_or_else(|| damaged("bad key check"))?;
        if hmac::verify(&keys.check, CHECK_MESSAGE, &check).is_err() {
            return Err(VaultError::Integrity(format!(
                "wrong passphrase for the vault file {}: give the passphrase it was created with (KEYFOB_PASSPHRASE, key_file, or the prompt)",
                path.display()
            )));
        }
        let nonce: [u8; 12] = decode_b64(&env.nonce)
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| damaged("bad nonce"))?;
        let mut buf =
            Zeroizing::new(decode_b64(&env.ciphertext).ok_or_else(|| damaged("bad ciphertext"))?);
        let plain = keys
            .enc
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&env.kdf.salt)),
                &mut buf,
            )
            .map_err(|_| damaged("authentication failed"))?;
        let map: BTreeMap<String, String> =
            serde_json::from_slice(plain).map_err(|_| damaged("bad contents"))?;
        let mut entries = BTreeMap::new();
        for (k, v) in map {
            let v = Zeroizing::new(v);
            entries.insert(
                k,
                Zeroizing::new(decode_b64(&v).ok_or_else(|| damaged("bad entry"))?),
            );
        }
        Ok(Self {
            path: path.to_owned(),
            key: Some(keys.enc),
            kdf_json: env.kdf,
            check: env.check,
            entries,
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts `entries` and replaces the file; on error the file on disk is unchanged.
    fn persist(&mut self, entries: &BTreeMap<String, SecretBytes>) -> Result<(), VaultError> {
        let encoded: BTreeMap<&str, Zeroizing<String>> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), Zeroizing::new(BASE64.encode(v.as_slice()))))
            .collect();
        let plain: BTreeMap<&str, &str> = encoded.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut buf = Zeroizing::new(
            serde_json::to_vec(&plain).map_err(|e| VaultError::Storage(e.to_string()))?,
        );
        let mut nonce = [0u8; 12];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| VaultError::Storage("the system random source failed".into()))?;
        self.key
            .as_ref()
            .ok_or(VaultError::Locked)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&self.kdf_json.salt)),
                &mut *buf,
            )
            .map_err(|_| VaultError::Storage("encryption failed".into()))?;
        let env = Envelope {
            format: FORMAT.into(),
            version: VERSION,
            kdf: Kdf {
                algorithm: self.kdf_json.algorithm.clone(),
                params: self.kdf_json.params,
                salt: self.kdf_json.salt.clone(),
            },
            check: self.check.clone(),
            nonce: BASE64.encode(&nonce),
            ciphertext: BASE64.encode(buf.as_slice()),
        };
        let bytes =
            serde_json::to_vec_pretty(&env).map_err(|e| VaultError::Storage(e.to_string()))?;
        write_atomic(&self.path, &bytes, 0o600).map_err(|e| {
            VaultError::Storage(format!(
                "cannot write the vault file {}: {e} (nothing was changed)",
                self.path.display()
            ))
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every key held (for tests and maintenance).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

impl Vault for FileVault {
    fn kind(&self) -> VaultKind {
        VaultKind::File
    }

    fn get(&mut self, key: &str) -> Result<Option<SecretBytes>, VaultError> {
        if self.key.is_none() {
            return Err(VaultError::Locked);
        }
        Ok(self.entries.get(key).map(|v| Zeroizing::new(v.to_vec())))
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), VaultError> {
        if self.key.is_none() {
            return Err(VaultError::Locked);
        }
        // Build the new map aside so a failed write leaves memory and disk in agreement.
        let mut next: BTreeMap<String, SecretBytes> = self
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), Zeroizing::new(v.to_vec())))
            .collect();
        next.insert(key.to_owned(), Zeroizing::new(value.to_vec()));
        self.persist(&next)?;
        self.entries = next;
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<bool, VaultError> {
        if self.key.is_none() {
            return Err(VaultError::Locked);
        }
        if !self.entries.contains_key(key) {
            return Ok(false);
        }
        let mut next: BTreeMap<String, SecretBytes> = self
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), Zeroizing::new(v.to_vec())))
            .collect();
        next.remove(key);
        self.persist(&next)?;
        self.entries = next;
        Ok(true)
    }

    fn lock(&mut self) {
        // The entries are zeroized as they drop; the key leaves with them.
        self.entries.clear();
        self.key = None;
    }

    fn unlock(&mut self, passphrase: Option<&[u8]>) -> Result<(), VaultError> {
        if self.key.is_some() {
            return Ok(());
        }
        self.reopen(passphrase.ok_or(VaultError::NeedsPassphrase)?)
    }

    fn unlock_needs_passphrase(&self) -> bool {
        true
    }
}

impl FileVault {
    /// Re-reads the file with `passphrase`, as at start-up.
    fn reopen(&mut self, passphrase: &[u8]) -> Result<(), VaultError> {
        let bytes = std::fs::read(&self.path).map_err(|e| {
            VaultError::Unavailable(format!(
                "cannot read the vault file {}: {e}",
                self.path.display()
            ))
        })?;
        *self = Self::open_existing(&self.path, &bytes, passphrase)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };

    /// A vault file whose KDF parameters were changed (by damage, or by a program of the same
    /// user) to ask for terabytes of memory or endless passes: refused as damaged without
    /// running the KDF, and left as it was.
    #[test]
    fn a_vault_file_asking_for_a_ruinous_kdf_is_refused_without_running_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.kfv");
        FileVault::open(&p, b"pw", FAST).unwrap();
        let good = std::fs::read_to_string(&p).unwrap();
        for (key, value) in [
            ("m_cost", u32::MAX),
            ("t_cost", u32::MAX),
            ("p_cost", 0xFF_FFFF),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
            v["kdf"][key] = value.into();
            let bad = serde_json::to_string(&v).unwrap();
            std::fs::write(&p, &bad).unwrap();
            let err = FileVault::open(&p, b"pw", FAST).unwrap_err().to_string();
            assert!(err.contains("damaged") && err.contains(key), "{key}: {err}");
            assert_eq!(std::fs::read_to_string(&p).unwrap(), bad);
        }
    }

    #[test]
    fn round_trips_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.kfv");
        let mut v = FileVault::open(&p, b"pw", FAST).unwrap();
        v.set("a", b"secret-one").unwrap();
        v.set("b", b"two").unwrap();
        assert!(v.delete("b").unwrap());
        drop(v);
        let mut v = FileVault::open(&p, b"pw", FAST).unwrap();
        assert_eq!(v.get("a").unwrap().unwrap().as_slice(), b"secret-one");
        assert!(v.get("b").unwrap().is_none());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains("secret-one"));
    }

    #[test]
    fn lock_forgets_everything_and_unlock_needs_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.kfv");
        let mut v = FileVault::open(&path, b"pw", FAST).unwrap();
        v.set("a", b"secret").unwrap();
        v.lock();
        assert!(matches!(v.get("a"), Err(VaultError::Locked)));
        assert!(matches!(v.set("b", b"x"), Err(VaultError::Locked)));
        assert!(matches!(v.unlock(None), Err(VaultError::NeedsPassphrase)));
        assert!(matches!(
            v.unlock(Some(b"nope")),
            Err(VaultError::Integrity(_))
        ));
        v.unlock(Some(b"pw")).unwrap();
        assert_eq!(v.get("a").unwrap().unwrap().as_slice(), b"secret");
    }

    #[test]
    fn base64_must_be_canonical() {
        assert_eq!(decode_b64("").as_deref(), Some(&b""[..]));
        assert_eq!(decode_b64("QUI=").as_deref(), Some(&b"AB"[..]));
        assert_eq!(decode_b64("QUJD").as_deref(), Some(&b"ABC"[..]));
        for bad in [
            "QUI", "QQ=", "QR==", "QQ==QQ==", "QUJD=", "QUJD====", "QU-_",
        ] {
            assert_eq!(decode_b64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn wrong_passphrase_and_tampering_are_distinct_and_leave_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.kfv");
        FileVault::open(&p, b"pw", FAST)
            .unwrap()
            .set("a", b"x")
            .unwrap();
        let before = std::fs::read(&p).unwrap();
        let err = FileVault::open(&p, b"nope", FAST).unwrap_err().to_string();
        assert!(err.contains("wrong passphrase"), "{err}");

        let mut env: serde_json::Value = serde_json::from_slice(&before).unwrap();
        let ct = env["ciphertext"].as_str().unwrap().to_owned();
        let mut raw = BASE64.decode(ct.as_bytes()).unwrap();
        raw[0] ^= 1;
        env["ciphertext"] = BASE64.encode(&raw).into();
        let tampered = serde_json::to_vec(&env).unwrap();
        std::fs::write(&p, &tampered).unwrap();
        let err = FileVault::open(&p, b"pw", FAST).unwrap_err().to_string();
        assert!(err.contains("damaged or was modified"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), tampered);
    }
}
