//! The daemon's configuration file and the directories it uses.

use keyfob_proto::methods::{Approval, Operation};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Environment variable naming the config file to use instead of the default.
pub const CONFIG_ENV: &str = "KEYFOB_CONFIG";
/// Environment variable that overrides `vault` from the config file.
pub const VAULT_ENV: &str = "KEYFOB_VAULT";
/// Environment variable carrying the vault-file passphrase.
pub const PASSPHRASE_ENV: &str = "KEYFOB_PASSPHRASE";
/// Environment variable naming a key file for the vault file.
pub const KEY_FILE_ENV: &str = "KEYFOB_KEY_FILE";

/// Which store the daemon keeps secrets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VaultChoice {
    /// The keychain when one answers, else the vault file; remembered after the first run.
    #[default]
    Auto,
    /// The OS keychain only; start-up fails if it is unavailable.
    Keychain,
    /// The encrypted vault file only.
    File,
}

impl std::str::FromStr for VaultChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "keychain" => Ok(Self::Keychain),
            "file" => Ok(Self::File),
            other => Err(format!(
                "unknown vault {other:?}: use \"auto\", \"keychain\" or \"file\""
            )),
        }
    }
}

/// `[file_vault]` settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileVaultConfig {
    /// Where the vault file lives (default: the data directory's `vault.kfv`).
    pub path: Option<PathBuf>,
    /// A file whose contents are the passphrase (instead of `KEYFOB_PASSPHRASE` or a prompt).
    pub key_file: Option<PathBuf>,
}

/// `[limits]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per second one client may make on average.
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    /// Requests one client may make in a burst.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rate() -> u32 {
    1000
}

fn default_burst() -> u32 {
    5000
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests_per_second: default_rate(),
            burst: default_burst(),
        }
    }
}

/// Approval policy for one operation on one account, or the default for every account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpPolicy {
    /// Access tokens.
    pub token: Option<Approval>,
    /// ID tokens and their claims.
    pub id_token: Option<Approval>,
    /// One-time and recovery codes.
    pub otp: Option<Approval>,
    /// Static secrets and OTP seeds.
    pub secret: Option<Approval>,
    /// Changes to the agent.
    pub admin: Option<Approval>,
}

impl OpPolicy {
    fn get(&self, op: Operation) -> Option<Approval> {
        match op {
            Operation::Token => self.token,
            Operation::IdToken => self.id_token,
            Operation::Otp => self.otp,
            Operation::Secret => self.secret,
            Operation::Admin => self.admin,
        }
    }
}

/// `[policy]`: when a person must approve a client's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Default for access tokens.
    pub token: Option<Approval>,
    /// Default for ID tokens.
    pub id_token: Option<Approval>,
    /// Default for one-time codes.
    pub otp: Option<Approval>,
    /// Default for static secrets.
    pub secret: Option<Approval>,
    /// Default for changes to the agent.
    pub admin: Option<Approval>,
    /// Operations that widen access (creating an agent key): `always` (built in) asks a
    /// person every time, never remembered; `never` does not ask.
    pub widen_access: Option<Approval>,
    /// Per-account overrides: `[policy.account.NAME]`.
    #[serde(default)]
    pub account: std::collections::BTreeMap<String, OpPolicy>,
    /// How long a request waits for a decision.
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_secs: u64,
    /// Approval prompts one client may cause per minute (bursts included).
    #[serde(default = "default_prompts")]
    pub prompts_per_minute: u32,
}

fn default_approval_timeout() -> u64 {
    60
}

fn default_prompts() -> u32 {
    10
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            token: None,
            id_token: None,
            otp: None,
            secret: None,
            admin: None,
            widen_access: None,
            account: Default::default(),
            approval_timeout_secs: default_approval_timeout(),
            prompts_per_minute: default_prompts(),
        }
    }
}

impl Policy {
    /// The approval rule for `op` on `account`: the account's own, else the default, else
    /// the built-in (ask new clients for tokens and secrets; never for codes and admin).
    pub fn rule(&self, account: &str, op: Operation) -> Approval {
        self.account
            .get(account)
            .and_then(|p| p.get(op))
            .or_else(|| {
                OpPolicy {
                    token: self.token,
                    id_token: self.id_token,
                    otp: self.otp,
                    secret: self.secret,
                    admin: self.admin,
                }
                .get(op)
            })
            .unwrap_or(match op {
                Operation::Token | Operation::IdToken | Operation::Secret => Approval::NewClient,
                Operation::Otp | Operation::Admin => Approval::Never,
            })
    }
}

/// `[lock]`: when the agent locks by itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockConfig {
    /// Lock after this many seconds without a request for a credential (none: never).
    pub idle_timeout_secs: Option<u64>,
    /// Lock this many seconds after an unlock (or the start), busy or not (none: never).
    pub max_unlocked_secs: Option<u64>,
    /// Lock when the desktop session locks or the machine suspends (logind). Default true.
    pub on_session_lock: Option<bool>,
}

/// The config file (`config.toml`); every key is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `auto`, `keychain` or `file`.
    #[serde(default)]
    pub vault: VaultChoice,
    /// Vault-file settings.
    #[serde(default)]
    pub file_vault: FileVaultConfig,
    /// Where non-secret state lives (default: the XDG data directory).
    pub data_dir: Option<PathBuf>,
    /// Per-client request limits.
    #[serde(default)]
    pub limits: Limits,
    /// Approval policy.
    #[serde(default)]
    pub policy: Policy,
    /// Automatic locking.
    #[serde(default)]
    pub lock: LockConfig,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading the file failed.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("the config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// An environment override is invalid.
    #[error("{VAULT_ENV}: {0}")]
    Env(String),
    /// No home directory to derive defaults from.
    #[error("cannot find the home directory: set HOME (or XDG_DATA_HOME and XDG_CONFIG_HOME)")]
    NoHome,
}

fn project_dirs() -> Result<directories::ProjectDirs, ConfigError> {
    directories::ProjectDirs::from("", "", "keyfob").ok_or(ConfigError::NoHome)
}

/// The default config file path.
pub fn default_config_path() -> Result<PathBuf, ConfigError> {
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    Ok(project_dirs()?.config_dir().join("config.toml"))
}

impl Config {
    /// Loads `path`; a missing file means all defaults. Applies `KEYFOB_VAULT`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut cfg = match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|message| ConfigError::Parse {
                path: path.to_owned(),
                message,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if let Ok(v) = std::env::var(VAULT_ENV)
            && !v.is_empty()
        {
            cfg.vault = v.parse().map_err(ConfigError::Env)?;
        }
        Ok(cfg)
    }

    /// Parses config text; the error names the offending key.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.message().trim().to_owned())
    }

    /// The directory for state and the vault file.
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(project_dirs()?.data_dir().to_owned()),
        }
    }

    /// The directory for the audit log: `$XDG_STATE_HOME/keyfob`, or the data dir when set.
    pub fn state_dir(&self) -> Result<PathBuf, ConfigError> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        let dirs = project_dirs()?;
        Ok(dirs
            .state_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dirs.data_dir().to_owned()))
    }

    /// The vault file's path.
    pub fn vault_file(&self) -> Result<PathBuf, ConfigError> {
        match &self.file_vault.path {
            Some(p) => Ok(p.clone()),
            None => Ok(self.data_dir()?.join("vault.kfv")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("vault = \"file\"\nvalut_typo = 1\n").unwrap_err();
        assert!(err.contains("valut_typo"), "{err}");
    }

    #[test]
    fn parses_every_key() {
        let cfg = Config::parse(
            "vault = \"keychain\"\ndata_dir = \"/d\"\n[file_vault]\npath = \"/v\"\nkey_file = \"/k\"\n",
        )
        .unwrap();
        assert_eq!(cfg.vault, VaultChoice::Keychain);
        assert_eq!(cfg.vault_file().unwrap(), PathBuf::from("/v"));
    }

    #[test]
    fn policy_falls_back_from_account_to_default_to_built_in() {
        let cfg = Config::parse(
            "[policy]\ntoken = \"always\"\n[policy.account.ci]\ntoken = \"never\"\notp = \"always\"\n",
        )
        .unwrap();
        let p = &cfg.policy;
        assert_eq!(p.rule("ci", Operation::Token), Approval::Never);
        assert_eq!(p.rule("ci", Operation::Otp), Approval::Always);
        assert_eq!(p.rule("other", Operation::Token), Approval::Always);
        assert_eq!(p.rule("other", Operation::Secret), Approval::NewClient);
        assert_eq!(p.rule("other", Operation::Admin), Approval::Never);
        let err = Config::parse("[policy]\ntoken = \"sometimes\"\n").unwrap_err();
        assert!(err.contains("sometimes"), "{err}");
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../docs/config.example.toml");
        Config::parse(text).unwrap();
    }
}
