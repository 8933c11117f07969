//! Every method of the protocol, with its params and result types.
//!
//! Each method is a zero-sized type implementing [`Method`], so the daemon's dispatch and the
//! clients share one definition of the name and both shapes.

use crate::sensitive::Sensitive;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A protocol method: its wire name, the shapes of its params and result, and what a call
/// needs before it may run. A method that declares nothing is an audited admin operation:
/// forgetting the declaration fails closed.
pub trait Method {
    /// The JSON-RPC method name.
    const NAME: &'static str;
    /// The `params` object.
    type Params: Serialize + DeserializeOwned;
    /// The `result` value.
    type Result: Serialize + DeserializeOwned;
    /// Whether every call goes to the audit log (refused calls always do).
    const AUDITED: bool = true;
    /// What a call with `p` needs: the daemon authorizes this, and nothing else.
    fn need(_p: &Self::Params) -> Need<'_> {
        Need::Admin(None)
    }
}

/// What a call needs before it may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need<'a> {
    /// Nothing: the handshake, status, events.
    Open,
    /// Reading names and metadata, never a secret value.
    Read,
    /// A credential: `op` on the named account or entry.
    Use(Operation, &'a str),
    /// A one-time code of the named entry for a chosen time: the `otp` rule, and admin on top
    /// when the time lies more than one period ahead (codes for later are minted, not used).
    CodeAt(&'a str, u64),
    /// A change to the agent, on the named item if any.
    Admin(Option<&'a str>),
    /// Narrowing access (locking, stopping): an admin operation that works while locked.
    Narrow,
    /// Widening access (a new agent key): admin, and a person's yes every time; `detail` is
    /// exactly what the person is asked. An agent key provisioning unattended reaches no
    /// account beyond its own.
    Widen {
        /// The item created (for the audit log).
        subject: &'a str,
        /// The accounts the new access reaches.
        accounts: &'a [String],
        /// The operations it allows.
        ops: &'a [Operation],
        /// Its lifetime in seconds; none means until revoked.
        ttl_secs: Option<u64>,
        /// The question, as the person reads it.
        detail: String,
    },
    /// An account made from another account's ID token (an exchanging exec plugin, which
    /// sends that token to an endpoint the new account names): admin on the new account, and,
    /// as for any widening, a person's yes every time; an agent key only within the source's
    /// `id_token` it holds itself.
    Derive {
        /// The account added.
        account: &'a str,
        /// The account whose ID token it takes.
        source: &'a str,
        /// The question, as the person reads it.
        detail: String,
    },
    /// Answering approval prompts.
    Approver,
    /// Unlocking the agent.
    Unlock,
}

impl Need<'_> {
    /// The account or item a call concerns, for the audit log.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Need::Use(_, s) | Need::CodeAt(s, _) | Need::Admin(Some(s)) => Some(s),
            Need::Widen { subject, .. } => Some(subject),
            Need::Derive { account, .. } => Some(account),
            _ => None,
        }
    }

    /// Whether the call hands out a credential (a token, code, secret or seed).
    pub fn is_credential(&self) -> bool {
        matches!(self, Need::Use(..) | Need::CodeAt(..))
    }
}

/// Declares a method. `need = |p| …` says what a call needs (default: admin) and
/// `audited = false` keeps routine reads out of the audit log (default: audited).
macro_rules! method {
    (
        $(#[$doc:meta])* $ty:ident, $name:literal, $params:ty, $result:ty
        $(, need = |$p:ident| $need:expr)? $(, audited = $audited:expr)? $(,)?
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;
        impl Method for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
            $(const AUDITED: bool = $audited;)?
            $(fn need($p: &Self::Params) -> Need<'_> {
                $need
            })?
        }
    };
}

/// Calls the macro `$m` with every method type, in one list: the registry the daemon routes
/// by and tests enumerate. A method missing here is unknown to the daemon.
#[macro_export]
macro_rules! for_each_method {
    ($m:ident) => {
        $m! {
            Hello, Subscribe, Status, Stop,
            OtpAdd, OtpImport, OtpCode, OtpList, OtpRemove, OtpUri, RecoveryAdd, RecoveryTake,
            SecretSet, SecretGet, SecretList, SecretRemove,
            AuditTail, AuditVerify,
            AccountAdd, AccountList, AccountShow, AccountRemove,
            LoginStart, LoginWait, TokenGet, Logout,
            ApprovalListen, ApprovalDecide, ApprovalList, ApprovalRevoke,
            KeyCreate, KeyList, KeyRevoke, Lock, Unlock
        }
    };
}

macro_rules! names {
    ($($ty:ident),*) => {
        /// Every method's wire name, in registry order.
        pub const NAMES: &[&str] = &[$($ty::NAME),*];
    };
}
for_each_method!(names);

/// An empty params object or result (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

mod access;
pub use access::*;

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
    /// A scoped agent key (`kfk_…`): the connection gets what the key allows, without approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Sensitive>,
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
    Hello, "hello", HelloParams, HelloResult,
    need = |_p| Need::Open,
    audited = false
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
    Subscribe, "subscribe", SubscribeParams, Empty,
    need = |_p| Need::Open,
    audited = false
);

// ---- daemon ----

/// Which store holds the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// Whether the agent is locked.
    #[serde(default)]
    pub locked: bool,
    /// Approvers connected (the tray, `keyfob approve`).
    #[serde(default)]
    pub approvers: usize,
    /// Requests waiting for a person's decision.
    #[serde(default)]
    pub approvals_waiting: usize,
    /// Accounts whose rotated refresh token could not be stored yet (held in memory only).
    #[serde(default)]
    pub unsaved: Vec<UnsavedGrant>,
}

/// A rotated refresh token the daemon holds in memory only, because storing it failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UnsavedGrant {
    /// The account.
    pub account: String,
    /// Why the store failed.
    pub cause: String,
}

method!(
    /// Reports on the running daemon.
    Status, "daemon.status", Empty, StatusResult,
    need = |_p| Need::Open,
    audited = false
);
method!(
    /// Asks the daemon to stop (after answering).
    Stop, "daemon.stop", Empty, Empty,
    need = |_p| Need::Narrow
);

// ---- OTP ----

/// The HMAC hash of an OTP entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum OtpKind {
    /// RFC 6238.
    #[default]
    Totp,
    /// RFC 4226.
    Hotp,
}

/// `otp.add` params: either `uri`, or `secret` with optional parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    OtpAdd, "otp.add", OtpAddParams, OtpInfo,
    need = |p| Need::Admin(Some(&p.name))
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
    OtpCode, "otp.code", OtpCodeParams, OtpCodeResult,
    need = |p| match p.at { Some(at) => Need::CodeAt(&p.name, at), None => Need::Use(Operation::Otp, &p.name) }
);
method!(
    /// Lists OTP entries, without secrets.
    OtpList, "otp.list", Empty, Vec<OtpInfo>,
    need = |_p| Need::Read,
    audited = false
);
method!(
    /// Removes an OTP entry and its recovery codes.
    OtpRemove, "otp.rm", NameParams, Empty,
    need = |p| Need::Admin(Some(&p.name))
);

/// `otp.uri` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtpUriResult {
    /// The entry as an `otpauth://` URI (contains the secret).
    pub uri: Sensitive,
}

method!(
    /// Exports one entry as an otpauth URI (for a QR code).
    OtpUri, "otp.uri", NameParams, OtpUriResult,
    need = |p| Need::Use(Operation::Secret, &p.name)
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
    RecoveryAdd, "otp.recovery.add", RecoveryAddParams, RecoveryAddResult,
    need = |p| Need::Admin(Some(&p.name))
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
    RecoveryTake, "otp.recovery.take", NameParams, RecoveryTakeResult,
    need = |p| Need::Use(Operation::Secret, &p.name)
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
    /// A description that is not secret (listed without reading the value; the docker helper
    /// keeps a registry's URL and username here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
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
    /// Its description, if it has one (never the value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

method!(
    /// Stores a static secret.
    SecretSet, "secret.set", SecretSetParams, SecretSetResult,
    need = |p| Need::Admin(Some(&p.name))
);
method!(
    /// Reads a static secret.
    SecretGet, "secret.get", NameParams, SecretGetResult,
    need = |p| Need::Use(Operation::Secret, &p.name)
);
method!(
    /// Lists static secrets, without values.
    SecretList, "secret.list", Empty, Vec<SecretInfo>,
    need = |_p| Need::Read,
    audited = false
);
method!(
    /// Deletes a static secret.
    SecretRemove, "secret.rm", NameParams, Empty,
    need = |p| Need::Admin(Some(&p.name))
);

// ---- audit ----

/// `audit.tail` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditTailParams {
    /// At most this many of the latest lines (default 50).
    #[serde(default)]
    pub lines: Option<usize>,
    /// Only lines with a larger `seq` (for following).
    #[serde(default)]
    pub after_seq: Option<u64>,
}

/// `audit.verify` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditVerifyResult {
    /// Lines checked.
    pub lines: u64,
    /// Whether the chain is intact.
    pub intact: bool,
    /// The file with the first problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its 1-based line number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

method!(
    /// The latest audit records (JSON objects as stored).
    AuditTail, "audit.tail", AuditTailParams, Vec<serde_json::Value>,
    need = |_p| Need::Read,
    audited = false
);
method!(
    /// Checks the audit log's hash chain.
    AuditVerify, "audit.verify", Empty, AuditVerifyResult,
    need = |_p| Need::Read,
    audited = false
);

// ---- accounts, sign-in, tokens ----

/// Whether an account can produce tokens now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Never signed in, or signed out.
    SignedOut,
    /// Holds a grant.
    SignedIn,
    /// The grant is dead: `keyfob login NAME`.
    NeedsLogin,
}

/// What kind of grant an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AccountGrant {
    /// A person signs in (device or browser); refresh tokens keep it going.
    #[default]
    User,
    /// A service account: client credentials, no person, no refresh token.
    ClientCredentials,
}

/// `account.add` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountAddParams {
    /// The account's name.
    pub name: String,
    /// A plugin id (`github`, `oidc`, ...).
    pub provider: String,
    /// The issuer, for providers whose issuer is a parameter.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret, for confidential clients.
    #[serde(default)]
    pub client_secret: Option<Sensitive>,
    /// Scopes; empty means the provider's defaults.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Audience / resource to request, where the provider supports it.
    #[serde(default)]
    pub audience: Option<String>,
    /// Other plugin parameters (`tenant=...`).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    /// User sign-in (default) or client credentials.
    #[serde(default)]
    pub grant: AccountGrant,
}

/// An account as listed: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AccountInfo {
    /// The name.
    pub name: String,
    /// The plugin id.
    pub provider: String,
    /// The issuer, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The client id.
    pub client_id: String,
    /// User sign-in or client credentials.
    #[serde(default)]
    pub grant: AccountGrant,
    /// Whether a client secret is stored.
    pub confidential: bool,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Audience requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Sign-in state.
    pub state: AccountState,
    /// Why the state is what it is (e.g. the provider's refusal), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the cached access token expires (Unix seconds), if one is cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<u64>,
    /// What `account.add` found at the provider (only in its result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<ProviderCheck>,
    /// Environment variables tools read this provider's token from (`GITHUB_TOKEN`, …): the
    /// names `keyfob exec` uses by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Git hosts whose credentials come from this provider: what `keyfob setup git` sets up
    /// by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub git_hosts: Vec<String>,
}

/// What `account.add` found at the provider before storing the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProviderCheck {
    /// The issuer its discovery document names (for OpenID providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The sign-in flows both the plugin and the provider offer.
    pub flows: Vec<LoginFlow>,
    /// Whether the provider can revoke tokens at sign-out.
    pub revocation: bool,
    /// Why the provider could not be reached now, when it could not (the account is added;
    /// the first sign-in checks again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

method!(
    /// Adds an account (no sign-in yet).
    AccountAdd, "account.add", AccountAddParams, AccountInfo,
    // An account that exchanges another's ID token (`--param source=…`) hands that token,
    // on every exchange, to a plugin and an endpoint of the adder's choosing.
    need = |p| match p.params.get("source") {
        Some(source) => Need::Derive {
            account: &p.name,
            source,
            detail: format!(
                "add account {:?} ({}), which sends the ID token of {source:?} to {}",
                p.name,
                p.provider,
                p.params
                    .get("endpoint")
                    .map_or("the plugin's default endpoint", String::as_str)
            ),
        },
        None => Need::Admin(Some(&p.name)),
    }
);
method!(
    /// Lists accounts.
    AccountList, "account.list", Empty, Vec<AccountInfo>,
    need = |_p| Need::Read,
    audited = false
);
method!(
    /// Shows one account.
    AccountShow, "account.show", NameParams, AccountInfo,
    need = |_p| Need::Read,
    audited = false
);
method!(
    /// Removes an account and its secrets (without revoking; see `logout`).
    AccountRemove, "account.rm", NameParams, Empty,
    need = |p| Need::Admin(Some(&p.name))
);

/// A sign-in flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LoginFlow {
    /// RFC 8628 device authorization.
    Device,
    /// Authorization code + PKCE on a loopback redirect.
    Browser,
    /// An exec plugin's own `login` method.
    Plugin,
}

/// `login.start` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginStartParams {
    /// The account.
    pub name: String,
    /// The flow; default: the provider's first.
    #[serde(default)]
    pub flow: Option<LoginFlow>,
}

/// `login.start` result: what the person must do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoginStarted {
    /// Pass to `login.wait`.
    pub login_id: String,
    /// The flow in use.
    pub flow: LoginFlow,
    /// Device flow: the code to enter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    /// Device flow: where to enter it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri: Option<String>,
    /// Device flow: the URI with the code filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// Browser flow: the URL to open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// Seconds until the sign-in expires.
    pub expires_in: u64,
}

/// `login.wait` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginWaitParams {
    /// From `login.start`.
    pub login_id: String,
}

method!(
    /// Starts a sign-in (at most one per account at a time).
    LoginStart, "login.start", LoginStartParams, LoginStarted,
    need = |p| Need::Admin(Some(&p.name))
);
method!(
    /// Waits for a sign-in to finish.
    LoginWait, "login.wait", LoginWaitParams, AccountInfo,
    need = |_p| Need::Read,
    audited = false
);

/// `token.get` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenParams {
    /// The account.
    pub name: String,
    /// The token must stay valid at least this long (seconds); default 60.
    #[serde(default)]
    pub min_ttl: Option<u64>,
    /// Also return the latest validated ID token.
    #[serde(default)]
    pub id_token: bool,
    /// A narrower set of scopes than the account's (a downscoped token, cached apart).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Another audience than the account's (sent as `audience`), cached apart.
    #[serde(default)]
    pub audience: Option<String>,
    /// If the account needs a sign-in, wait (up to 10 minutes) for a person to complete one
    /// instead of failing at once. Keyfob never opens a browser for a token request.
    #[serde(default)]
    pub wait: bool,
    /// Also return claims: the validated ID token's, else the access token's (unverified).
    #[serde(default)]
    pub claims: bool,
    /// A token a server refused (git's `erase` after a 401): when it is the one cached, a new
    /// one is fetched instead of handing it out again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Sensitive>,
}

/// `token.get` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResult {
    /// The access token.
    pub access_token: Sensitive,
    /// Usually "Bearer".
    pub token_type: String,
    /// Unix seconds when it expires (None: the provider gave no lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Scopes granted, when the provider said.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The ID token, when asked for and available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Sensitive>,
    /// Claims, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Value>,
    /// True when `claims` come from an access token whose signature Keyfob did not verify.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claims_unverified: bool,
    /// Further named parts of a credential that is more than one token (an exec plugin's,
    /// such as AWS keys).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fields: std::collections::BTreeMap<String, Sensitive>,
}

method!(
    /// A fresh access token for an account (cached; refreshed once for all waiters).
    TokenGet, "token.get", TokenParams, TokenResult,
    need = |p| if p.id_token || p.claims { Need::Use(Operation::IdToken, &p.name) } else { Need::Use(Operation::Token, &p.name) }
);

/// `logout` result: what happened at the provider and locally.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LogoutResult {
    /// Whether the provider confirmed the revocation of the refresh token.
    pub revoked: bool,
    /// Why it was not revoked, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_detail: Option<String>,
    /// Whether local secrets (refresh token, cached access token) were deleted.
    pub deleted_local: bool,
}

method!(
    /// Revokes the account's grant at the provider when it can, then deletes local tokens.
    Logout, "logout", NameParams, LogoutResult,
    need = |p| Need::Admin(Some(&p.name))
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_method_is_in_the_registry_once() {
        let declared = [
            include_str!("methods.rs"),
            include_str!("methods/access.rs"),
        ]
        .iter()
        .map(|src| src.matches("\nmethod!(").count())
        .sum::<usize>();
        assert_eq!(
            declared,
            NAMES.len(),
            "a method! is missing from for_each_method!"
        );
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            NAMES.len(),
            "a method name is registered twice"
        );
    }

    method!(
        /// A method that declares nothing.
        Undeclared, "test.undeclared", NameParams, Empty
    );

    #[test]
    fn a_method_that_declares_nothing_is_an_audited_admin_operation() {
        let p = NameParams { name: "x".into() };
        assert_eq!(Undeclared::need(&p), Need::Admin(None));
        const { assert!(Undeclared::AUDITED) };
    }

    #[test]
    fn a_code_for_a_chosen_time_is_not_a_plain_use() {
        let p = OtpCodeParams {
            name: "gh".into(),
            at: Some(10),
        };
        assert_eq!(OtpCode::need(&p), Need::CodeAt("gh", 10));
        let p = TokenParams {
            name: "gh".into(),
            id_token: true,
            ..Default::default()
        };
        assert_eq!(TokenGet::need(&p), Need::Use(Operation::IdToken, "gh"));
    }
}
