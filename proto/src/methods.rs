//! Every method of the protocol, with its params and result types.
//!
//! Each method is a zero-sized type implementing [`Method`], so the daemon's dispatch and the
//! clients share one definition of the name and both shapes.

use crate::sensitive::Sensitive;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A protocol method: its wire name and the shapes of its params and result.
pub trait Method {
    /// The JSON-RPC method name.
    const NAME: &'static str;
    /// The `params` object.
    type Params: Serialize + DeserializeOwned;
    /// The `result` value.
    type Result: Serialize + DeserializeOwned;
}

macro_rules! method {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty, $result:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;
        impl Method for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
        }
    };
}

/// An empty params object or result (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

// ---- session ----

/// `hello` params: the first request on every connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloParams {
    /// The client's [`crate::PROTOCOL_VERSION`].
    pub version: u32,
    /// A short name of the client program, for logs ("keyfob", "keyfob-tray").
    #[serde(default)]
    pub client: Option<String>,
}

/// `hello` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloResult {
    /// The daemon's protocol version.
    pub version: u32,
    /// The daemon's package version.
    pub daemon_version: String,
    /// The daemon's process id.
    pub pid: u32,
}

method!(
    /// Opens a session; must come first.
    Hello, "hello", HelloParams, HelloResult
);

/// `subscribe` params: which events this connection wants.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// Event names (see [`crate::events::EVENT_NAMES`]); empty means all.
    #[serde(default)]
    pub events: Vec<String>,
}

method!(
    /// Starts `event` notifications on this connection.
    Subscribe, "subscribe", SubscribeParams, Empty
);

// ---- daemon ----

/// Which store holds the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultKind {
    /// The OS keychain (Secret Service on Linux).
    Keychain,
    /// Keyfob's encrypted vault file.
    File,
    /// In memory only (tests).
    Memory,
}

/// `daemon.status` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResult {
    /// The daemon's process id.
    pub pid: u32,
    /// The daemon's package version.
    pub version: String,
    /// The protocol version.
    pub protocol: u32,
    /// The socket it listens on.
    pub socket: String,
    /// The store in use.
    pub vault: VaultKind,
    /// A sentence on the store and why it was chosen.
    pub vault_detail: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Open connections, this one included.
    pub connections: usize,
    /// Number of OTP entries.
    pub otp_entries: usize,
    /// Number of static secrets.
    pub secrets: usize,
}

method!(
    /// Reports on the running daemon.
    Status, "daemon.status", Empty, StatusResult
);
method!(
    /// Asks the daemon to stop (after answering).
    Stop, "daemon.stop", Empty, Empty
);

// ---- OTP ----

/// The HMAC hash of an OTP entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OtpAlgorithm {
    /// HMAC-SHA1, the common default.
    #[default]
    SHA1,
    /// HMAC-SHA256.
    SHA256,
    /// HMAC-SHA512.
    SHA512,
}

/// Time-based or counter-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OtpKind {
    /// RFC 6238.
    #[default]
    Totp,
    /// RFC 4226.
    Hotp,
}

/// `otp.add` params: either `uri`, or `secret` with optional parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpAddParams {
    /// The entry's name (letters, digits, `._@+-`, at most 128 characters).
    pub name: String,
    /// Base32 secret (spaces and padding allowed).
    #[serde(default)]
    pub secret: Option<Sensitive>,
    /// An `otpauth://totp/...` or `otpauth://hotp/...` URI instead of `secret`.
    #[serde(default)]
    pub uri: Option<Sensitive>,
    /// TOTP or HOTP (default TOTP).
    #[serde(default)]
    pub kind: Option<OtpKind>,
    /// 6, 7 or 8 (default 6).
    #[serde(default)]
    pub digits: Option<u8>,
    /// TOTP period in seconds (default 30).
    #[serde(default)]
    pub period: Option<u64>,
    /// Hash (default SHA1).
    #[serde(default)]
    pub algorithm: Option<OtpAlgorithm>,
    /// HOTP starting counter (default 0).
    #[serde(default)]
    pub counter: Option<u64>,
    /// Replace an existing entry of that name.
    #[serde(default)]
    pub replace: bool,
}

/// An OTP entry as listed: no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpInfo {
    /// The entry's name.
    pub name: String,
    /// TOTP or HOTP.
    pub kind: OtpKind,
    /// Hash.
    pub algorithm: OtpAlgorithm,
    /// Code length.
    pub digits: u8,
    /// TOTP period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// HOTP: the counter the next code will use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<u64>,
    /// The issuer, from an imported URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The account label, from an imported URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Unused recovery codes stored with the entry.
    pub recovery_codes_left: usize,
}

method!(
    /// Adds an OTP entry.
    OtpAdd, "otp.add", OtpAddParams, OtpInfo
);

/// `otp.import` params: lines of a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpImportParams {
    /// `otpauth://` and `otpauth-migration://offline?data=` URIs; blank lines and `#` comments
    /// are skipped.
    pub lines: Vec<Sensitive>,
    /// Replace entries that already exist instead of skipping them.
    #[serde(default)]
    pub replace: bool,
}

/// One line of an import that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProblem {
    /// 1-based line number.
    pub line: usize,
    /// Why (never containing the secret).
    pub reason: String,
}

/// `otp.import` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpImportResult {
    /// Names of the entries added.
    pub added: Vec<String>,
    /// Lines skipped, with the reason.
    pub skipped: Vec<ImportProblem>,
}

method!(
    /// Imports otpauth and Google Authenticator export URIs.
    OtpImport, "otp.import", OtpImportParams, OtpImportResult
);

/// Params naming one entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameParams {
    /// The entry's name.
    pub name: String,
}

/// `otp.code` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpCodeParams {
    /// The entry's name.
    pub name: String,
    /// TOTP: compute for this Unix time instead of now. HOTP: ignored.
    #[serde(default)]
    pub at: Option<u64>,
}

/// `otp.code` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtpCodeResult {
    /// The code.
    pub code: Sensitive,
    /// TOTP: seconds until the code changes (relative to `at` when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u64>,
    /// TOTP: the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// HOTP: the counter this code used (already persisted as used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<u64>,
}

method!(
    /// Computes a code (HOTP: advances and persists the counter first).
    OtpCode, "otp.code", OtpCodeParams, OtpCodeResult
);
method!(
    /// Lists OTP entries, without secrets.
    OtpList, "otp.list", Empty, Vec<OtpInfo>
);
method!(
    /// Removes an OTP entry and its recovery codes.
    OtpRemove, "otp.rm", NameParams, Empty
);

/// `otp.uri` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtpUriResult {
    /// The entry as an `otpauth://` URI (contains the secret).
    pub uri: Sensitive,
}

method!(
    /// Exports one entry as an otpauth URI (for a QR code).
    OtpUri, "otp.uri", NameParams, OtpUriResult
);

/// `otp.recovery.add` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryAddParams {
    /// The OTP entry's name.
    pub name: String,
    /// The codes, one per item; blanks are ignored.
    pub codes: Vec<Sensitive>,
}

/// `otp.recovery.add` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryAddResult {
    /// Codes newly stored.
    pub added: usize,
    /// Unused codes now stored.
    pub unused: usize,
}

method!(
    /// Stores a site's recovery (backup) codes with an OTP entry.
    RecoveryAdd, "otp.recovery.add", RecoveryAddParams, RecoveryAddResult
);

/// `otp.recovery.take` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryTakeResult {
    /// One unused code, now marked used.
    pub code: Sensitive,
    /// Unused codes left after this one.
    pub unused: usize,
}

method!(
    /// Hands out one unused recovery code and marks it used before answering.
    RecoveryTake, "otp.recovery.take", NameParams, RecoveryTakeResult
);

// ---- static secrets ----

/// `secret.set` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSetParams {
    /// The secret's name.
    pub name: String,
    /// The value.
    pub value: Sensitive,
}

/// `secret.set` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretSetResult {
    /// Whether an existing value was replaced.
    pub replaced: bool,
}

/// `secret.get` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretGetResult {
    /// The value.
    pub value: Sensitive,
}

/// A static secret as listed: no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// The name.
    pub name: String,
    /// When it was last set (Unix seconds).
    pub updated: u64,
}

method!(
    /// Stores a static secret.
    SecretSet, "secret.set", SecretSetParams, SecretSetResult
);
method!(
    /// Reads a static secret.
    SecretGet, "secret.get", NameParams, SecretGetResult
);
method!(
    /// Lists static secrets, without values.
    SecretList, "secret.list", Empty, Vec<SecretInfo>
);
method!(
    /// Deletes a static secret.
    SecretRemove, "secret.rm", NameParams, Empty
);
