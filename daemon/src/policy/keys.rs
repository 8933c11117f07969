//! Scoped agent keys (`kfk_…`): 32 random bytes shown once; only their SHA-256 is stored,
//! and a presented key is compared against every stored hash in constant time.

use crate::ids::sha256_hex;
use data_encoding::BASE64URL_NOPAD;
use keyfob_proto::Sensitive;
use keyfob_proto::methods::{KeyInfo, Operation};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Every agent key starts with this.
pub const KEY_PREFIX: &str = "kfk_";
/// Characters of a key shown in listings (the prefix included).
const SHOWN: usize = 12;

/// A stored key: what `key list` shows, plus the hash; never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Name, prefix, scope and times.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// SHA-256 of the whole key, hex.
    pub sha256: String,
}

impl KeyRecord {
    /// Whether the key has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.info.expires.is_some_and(|e| now >= e)
    }

    /// Whether the key allows `op` on `account`.
    pub fn allows(&self, op: Operation, account: &str) -> bool {
        self.info.ops.contains(&op) && self.info.accounts.iter().any(|a| a == account)
    }
}

/// A new key and its record.
pub fn generate(
    name: &str,
    accounts: Vec<String>,
    ops: Vec<Operation>,
    created: u64,
    expires: Option<u64>,
) -> Result<(Sensitive, KeyRecord), String> {
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| "the system random source failed".to_owned())?;
    let key = format!("{KEY_PREFIX}{}", BASE64URL_NOPAD.encode(raw.as_ref()));
    let record = KeyRecord {
        info: KeyInfo {
            name: name.to_owned(),
            prefix: key[..SHOWN].to_owned(),
            accounts,
            ops,
            created,
            last_used: None,
            expires,
        },
        sha256: sha256_hex(key.as_bytes()),
    };
    Ok((Sensitive::new(key), record))
}

/// The index of the record matching `presented`, comparing with every record in constant time.
pub fn find(records: &[KeyRecord], presented: &str) -> Option<usize> {
    let want = sha256_hex(presented.as_bytes());
    let mut found = None;
    for (i, r) in records.iter().enumerate() {
        if bool::from(r.sha256.as_bytes().ct_eq(want.as_bytes())) {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_hash_only_and_scopes_hold() {
        let (key, rec) = generate("ci", vec!["gh".into()], vec![Operation::Token], 1, Some(10))
            .expect("generate");
        let k = key.expose();
        assert!(k.starts_with(KEY_PREFIX) && k.len() == 4 + 43, "{k}");
        assert!(!serde_json::to_string(&rec).unwrap().contains(&k[4..]));
        let (_, other) = generate("x", vec![], vec![], 1, None).expect("generate");
        let records = vec![other, rec];
        assert_eq!(find(&records, k), Some(1));
        assert_eq!(find(&records, "kfk_wrong"), None);
        let r = &records[1];
        assert!(r.allows(Operation::Token, "gh"));
        assert!(!r.allows(Operation::Otp, "gh"));
        assert!(!r.allows(Operation::Token, "gl"));
        assert!(!r.expired(9) && r.expired(10));
    }
}
