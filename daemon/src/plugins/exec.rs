//! The exec-plugin host: one JSON-RPC 2.0 call per run of the plugin's executable, with a
//! minimal environment, a time limit and a reply size limit.
//!
//! A run per call keeps a plugin stateless and a failure contained: a plugin that hangs is
//! killed (its whole process group), one that crashes or prints garbage fails that call
//! only, and the daemon keeps serving. The daemon owns all storage; a plugin sees only what
//! one call of one account needs, and what it prints on stderr reaches the daemon's log
//! with every secret of the call taken out.

use super::Manifest;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

/// A plugin's reply may be this long at most.
pub const REPLY_LIMIT: usize = 256 * 1024;
/// How much of a plugin's stderr is kept for the log (its end).
const STDERR_TAIL: usize = 2048;
/// The time one call may take when the manifest does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The only environment variables a plugin gets from the daemon's environment (proxies and
/// CA certificates, which network calls need); everything else is dropped.
const PASSED_ENV: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];
/// JSON-RPC error code a plugin answers when the account's grant is dead (a new sign-in is
/// needed): the daemon marks the account "needs sign-in" and does not retry.
pub const GRANT_ENDED: i64 = -32001;
/// JSON-RPC "method not found".
pub const METHOD_NOT_FOUND: i64 = -32601;

/// Why a plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The executable could not be started.
    #[error(
        "plugin {plugin:?} failed: cannot run {program}: {cause} (check [exec] command in its plugin.toml)"
    )]
    Spawn {
        /// The plugin id.
        plugin: String,
        /// The executable.
        program: String,
        /// The OS error.
        cause: String,
    },
    /// No reply within the time limit; the plugin was killed.
    #[error(
        "plugin {plugin:?} failed: no answer to {method} within {secs} s, so it was stopped (its stderr is in the daemon log)"
    )]
    Hung {
        /// The plugin id.
        plugin: String,
        /// The method called.
        method: String,
        /// The time limit.
        secs: u64,
    },
    /// It exited unsuccessfully.
    #[error(
        "plugin {plugin:?} failed: it exited with {status} during {method} (its stderr is in the daemon log)"
    )]
    Crashed {
        /// The plugin id.
        plugin: String,
        /// The method called.
        method: String,
        /// How it ended.
        status: String,
    },
    /// Its stdout was not one JSON-RPC reply.
    #[error(
        "plugin {plugin:?} failed: its answer to {method} is not a JSON-RPC reply ({why}); a plugin prints one JSON-RPC response on stdout and its messages on stderr"
    )]
    Garbage {
        /// The plugin id.
        plugin: String,
        /// The method called.
        method: String,
        /// What was wrong (never the text itself, which may hold a secret).
        why: String,
    },
    /// Its reply was longer than [`REPLY_LIMIT`].
    #[error(
        "plugin {plugin:?} failed: its answer to {method} is longer than {limit} bytes, so it was stopped"
    )]
    TooLarge {
        /// The plugin id.
        plugin: String,
        /// The method called.
        method: String,
        /// The limit.
        limit: usize,
    },
    /// It answered with a JSON-RPC error.
    #[error("plugin {plugin:?}: {message}")]
    Refused {
        /// The plugin id.
        plugin: String,
        /// The JSON-RPC error code ([`GRANT_ENDED`], [`METHOD_NOT_FOUND`], …).
        code: i64,
        /// Its message, with the call's secrets taken out.
        message: String,
    },
}

impl PluginError {
    /// Whether the plugin said the account's grant is dead.
    pub fn grant_ended(&self) -> bool {
        matches!(self, PluginError::Refused { code, .. } if *code == GRANT_ENDED)
    }

    /// Whether the plugin does not implement the method.
    pub fn not_implemented(&self) -> bool {
        matches!(self, PluginError::Refused { code, .. } if *code == METHOD_NOT_FOUND)
    }
}

/// A credential as a plugin returns it (login, refresh, exchange).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginCredential {
    /// What `keyfob token` prints: a bearer token, or the credential's main secret.
    pub token: SecretString,
    /// Usually "Bearer".
    #[serde(default)]
    pub token_type: Option<String>,
    /// Its lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Or its expiry, in Unix seconds.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Further named parts of the credential (AWS: access_key_id, secret_access_key,
    /// session_token).
    #[serde(default)]
    pub fields: BTreeMap<String, SecretString>,
}

impl PluginCredential {
    /// Its lifetime from `now_unix`, from whichever of `expires_in` and `expires_at` it gave.
    pub fn lifetime(&self, now_unix: u64) -> Option<Duration> {
        match (self.expires_in, self.expires_at) {
            (Some(s), _) => Some(Duration::from_secs(s)),
            (None, Some(at)) => Some(Duration::from_secs(at.saturating_sub(now_unix))),
            (None, None) => None,
        }
    }
}

/// The reply to `login`, `refresh` and `exchange`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obtained {
    /// The credential.
    pub credential: PluginCredential,
    /// What the daemon keeps for the next `refresh` (like a refresh token); a new value
    /// replaces the old one, which is never sent again.
    #[serde(default)]
    pub material: Option<SecretString>,
}

/// The reply to `describe`.
#[derive(Debug, Deserialize)]
pub struct Described {
    /// The plugin's own name for itself.
    #[serde(default)]
    pub name: Option<String>,
    /// The methods it implements.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// An exec plugin, ready to be called.
#[derive(Debug, Clone)]
pub struct Host {
    plugin: String,
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    timeout: Duration,
}

/// Where a bundled plugin's relative command is looked for: beside the running keyfobd.
fn bundled_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/"))
}

impl Host {
    /// The host of an exec manifest; `None` for other kinds.
    pub fn of(m: &Manifest) -> Option<Host> {
        let spec = m.exec_spec()?;
        let dir = m.dir.clone().unwrap_or_else(bundled_dir);
        let command = Path::new(&spec.command);
        let program = if command.is_absolute() {
            command.to_path_buf()
        } else {
            dir.join(command)
        };
        Some(Host {
            plugin: m.id.clone(),
            program,
            args: spec.args.clone(),
            dir,
            timeout: spec
                .timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// Calls `method` with `params` and decodes its result. `secrets` are the secret values
    /// in `params`: they are taken out of anything the plugin says that reaches a log or an
    /// error.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: &serde_json::Value,
        secrets: &[&SecretString],
    ) -> Result<T, PluginError> {
        let request = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({
                "jsonrpc": "2.0",
                "id": 1,
                "method": method,
                "params": params,
            }))
            .unwrap_or_default(),
        );
        let (reply, stderr) = self.run(method, &request).await;
        let outcome = reply.and_then(|bytes| self.decode::<T>(method, &bytes, secrets));
        // Only a failure's stderr is logged: after a success it may hold the new credential,
        // which the daemon cannot know to cut out.
        if let Err(e) = &outcome {
            let tail = scrub(&String::from_utf8_lossy(&stderr), secrets);
            tracing::warn!(plugin = %self.plugin, method, error = %e, stderr_tail = %tail.trim_end(), "plugin call failed");
        }
        outcome
    }

    /// Runs the executable once: the reply bytes (or why none), and the end of its stderr.
    async fn run(
        &self,
        method: &str,
        request: &[u8],
    ) -> (Result<Zeroizing<Vec<u8>>, PluginError>, Vec<u8>) {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("KEYFOB_PLUGIN", &self.plugin)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so a hung plugin is stopped with its children.
            .process_group(0);
        for k in PASSED_ENV {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let err = PluginError::Spawn {
                    plugin: self.plugin.clone(),
                    program: self.program.display().to_string(),
                    cause: e.to_string(),
                };
                return (Err(err), Vec::new());
            }
        };
        let pgid = child.id();
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return (Err(self.crashed(method, "no pipes".into())), Vec::new());
        };
        let tail = tokio::spawn(read_tail(stderr));
        let work = async {
            // A plugin that exits without reading its request is not an error here: its exit
            // status and reply tell.
            let _ = stdin.write_all(request).await;
            let _ = stdin.write_all(b"\n").await;
            drop(stdin);
            let reply = read_limited(stdout, REPLY_LIMIT).await;
            let status = child.wait().await;
            (reply, status)
        };
        let outcome = match tokio::time::timeout(self.timeout, work).await {
            Err(_) => Err(PluginError::Hung {
                plugin: self.plugin.clone(),
                method: method.to_owned(),
                secs: self.timeout.as_secs(),
            }),
            Ok((Err(ReadError::TooLarge), _)) => Err(PluginError::TooLarge {
                plugin: self.plugin.clone(),
                method: method.to_owned(),
                limit: REPLY_LIMIT,
            }),
            Ok((Err(ReadError::Io(e)), _)) => Err(self.crashed(method, e)),
            Ok((_, Err(e))) => Err(self.crashed(method, e.to_string())),
            Ok((Ok(reply), Ok(status))) if status.success() => Ok(reply),
            Ok((Ok(_), Ok(status))) => Err(self.crashed(method, status.to_string())),
        };
        // Stop it and whatever it started, answered or not: nothing of a call outlives it. (A
        // plugin that already exited with no children left is no error.)
        if let Some(pid) = pgid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        drop(child);
        let mut tail = tail;
        let stderr = match tokio::time::timeout(Duration::from_secs(1), &mut tail).await {
            Ok(Ok(t)) => t,
            _ => {
                // Something that escaped the group still holds stderr: stop reading it.
                tail.abort();
                Vec::new()
            }
        };
        (outcome, stderr)
    }

    fn crashed(&self, method: &str, status: String) -> PluginError {
        PluginError::Crashed {
            plugin: self.plugin.clone(),
            method: method.to_owned(),
            status,
        }
    }

    /// Reads one JSON-RPC response and decodes its result.
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        bytes: &[u8],
        secrets: &[&SecretString],
    ) -> Result<T, PluginError> {
        #[derive(Deserialize)]
        struct RpcErr {
            code: i64,
            message: String,
        }
        #[derive(Deserialize)]
        #[serde(bound = "T: serde::de::DeserializeOwned")]
        struct Response<T> {
            jsonrpc: String,
            #[serde(default = "none")]
            result: Option<T>,
            #[serde(default)]
            error: Option<RpcErr>,
        }
        let garbage = |why: String| PluginError::Garbage {
            plugin: self.plugin.clone(),
            method: method.to_owned(),
            why,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(garbage("it printed nothing".into()));
        }
        let r: Response<T> = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's message names a position and the expected shape, never the text.
            garbage(format!(
                "{} at line {} column {}",
                classify(&e),
                e.line(),
                e.column()
            ))
        })?;
        if r.jsonrpc != "2.0" {
            return Err(garbage("\"jsonrpc\" is not \"2.0\"".into()));
        }
        match (r.result, r.error) {
            (_, Some(e)) => Err(PluginError::Refused {
                plugin: self.plugin.clone(),
                code: e.code,
                message: clean_message(&e.message, secrets),
            }),
            (Some(v), None) => Ok(v),
            (None, None) => Err(garbage("neither \"result\" nor \"error\"".into())),
        }
    }
}

fn none<T>() -> Option<T> {
    None
}

/// What kind of JSON error it was, without quoting the input.
fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Eof => "cut short",
        serde_json::error::Category::Data => "JSON of the wrong shape for this method",
        serde_json::error::Category::Io => "unreadable",
    }
}

/// `text` with each of `secrets` (as is, and as it looks inside a JSON string) replaced by
/// "[redacted]".
fn scrub(text: &str, secrets: &[&SecretString]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        let s = s.expose_secret();
        if s.is_empty() {
            continue;
        }
        out = out.replace(s, "[redacted]");
        let escaped = Zeroizing::new(serde_json::to_string(s).unwrap_or_default());
        let inner = escaped.trim_start_matches('"').trim_end_matches('"');
        if !inner.is_empty() && inner != s {
            out = out.replace(inner, "[redacted]");
        }
    }
    out
}

/// The longest plugin error message passed on.
const MESSAGE_LIMIT: usize = 500;

/// A plugin's error message as it may reach a person, the state file and the log: secrets cut
/// out, control characters dropped, bounded.
fn clean_message(text: &str, secrets: &[&SecretString]) -> String {
    let scrubbed = scrub(text, secrets);
    let mut out: String = scrubbed.chars().filter(|c| !c.is_control()).collect();
    if out.len() > MESSAGE_LIMIT {
        let mut cut = MESSAGE_LIMIT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

enum ReadError {
    TooLarge,
    Io(String),
}

/// Reads `r` to its end, refusing more than `limit` bytes.
async fn read_limited(
    mut r: impl AsyncRead + Unpin,
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(4096));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let n = r
            .read(&mut chunk[..])
            .await
            .map_err(|e| ReadError::Io(e.to_string()))?;
        if n == 0 {
            return Ok(buf);
        }
        if buf.len() + n > limit {
            return Err(ReadError::TooLarge);
        }
        // Grow by hand so no reallocation leaves a copy of the reply behind.
        if buf.capacity() < buf.len() + n {
            let mut bigger = Zeroizing::new(Vec::with_capacity((buf.len() + n) * 2));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads `r` to its end, keeping the last [`STDERR_TAIL`] bytes.
async fn read_tail(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut cut = false;
    let mut chunk = [0u8; 4096];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
            cut = true;
        }
    }
    // A cut line may hold the end of a secret that no longer matches: drop it.
    if cut && let Some(nl) = tail.iter().position(|&b| b == b'\n') {
        tail.drain(..=nl);
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_takes_out_every_secret_of_the_call() {
        let a = SecretString::from("s3cr3t");
        let out = scrub("got s3cr3t twice: s3cr3t", &[&a]);
        assert_eq!(out, "got [redacted] twice: [redacted]");
    }

    #[test]
    fn scrub_also_takes_out_a_secret_as_it_looks_inside_json() {
        let pem = SecretString::from("-----BEGIN KEY-----\nabc\n-----END KEY-----");
        let out = scrub(
            r#"{"material":"-----BEGIN KEY-----\nabc\n-----END KEY-----"}"#,
            &[&pem],
        );
        assert!(!out.contains("abc"), "{out}");
    }

    #[test]
    fn messages_are_bounded_and_lose_control_characters() {
        let m = clean_message(&format!("bad\x1b[31m{}", "x".repeat(2000)), &[]);
        assert!(!m.contains('\x1b'));
        assert!(m.len() <= MESSAGE_LIMIT + '…'.len_utf8());
    }

    #[test]
    fn a_lifetime_comes_from_expires_in_or_expires_at() {
        let c: PluginCredential =
            serde_json::from_str(r#"{"token":"t","expires_at":1100}"#).unwrap();
        assert_eq!(c.lifetime(1000), Some(Duration::from_secs(100)));
        assert_eq!(c.lifetime(2000), Some(Duration::ZERO));
    }
}
