//! Who the client really is, read from /proc by the daemon (a client's own claims are never
//! trusted): the peer process, or, when the peer is Keyfob's own CLI or a helper, its nearest
//! ancestor that is not Keyfob; for an interpreter, the script it runs; for an interactive
//! shell, its terminal session.
//!
//! Strength: this names the program, not a person. Any process of the same user can start the
//! same program, and (unless ptrace is restricted) tamper with a running one.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Interpreters whose identity is the script they run.
const INTERPRETERS: [&str; 12] = [
    "python", "python3", "bash", "sh", "dash", "zsh", "fish", "node", "perl", "ruby", "deno", "bun",
];
/// Shells that, without a script, are identified by their terminal session.
const SHELLS: [&str; 5] = ["bash", "sh", "dash", "zsh", "fish"];
/// The deepest ancestor walk.
const MAX_HOPS: usize = 16;

/// A client as Keyfob identifies it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientIdentity {
    /// The client process.
    pub pid: i32,
    /// Its executable.
    pub exe: Option<PathBuf>,
    /// For an interpreter, the script it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<PathBuf>,
    /// For an interactive shell, its terminal session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_session: Option<i32>,
    /// The Keyfob program that connected on its behalf, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<PathBuf>,
    /// A stable identity: the identifying file's path, inode and modification time.
    pub stable_id: String,
}

fn exe_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Fields of /proc/PID/stat after the command name: (ppid, session).
fn stat_of(pid: i32) -> Option<(i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(1)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

fn cmdline_of(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn is_keyfob(exe: &Path) -> bool {
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // The CLI and credential-helper entry points act for someone else; the tray does not.
    name == "keyfob"
        || name.contains("-keyfob")
        || (name.starts_with("keyfob-") && name != "keyfob-tray")
}

fn base_name(exe: &Path) -> String {
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // python3.11 -> python3
    name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
        .to_owned()
        + if name.starts_with("python3") { "3" } else { "" }
}

/// The script an interpreter runs: its first argument that is not an option and is a file.
fn script_of(pid: i32, args: &[String]) -> Option<PathBuf> {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    args.iter()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| {
            let p = PathBuf::from(a);
            let p = if p.is_absolute() {
                p
            } else {
                cwd.as_ref()?.join(p)
            };
            p.is_file().then_some(p)
        })
}

fn stable_id(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!("{}#{}@{}", path.display(), m.ino(), m.mtime()),
        Err(_) => path.display().to_string(),
    }
}

/// Identifies the client behind the peer process `pid`.
pub fn identify(pid: i32) -> ClientIdentity {
    let mut pid = pid;
    let mut via = None;
    for _ in 0..MAX_HOPS {
        let Some(exe) = exe_of(pid) else { break };
        if !is_keyfob(&exe) {
            break;
        }
        via.get_or_insert(exe);
        match stat_of(pid) {
            Some((ppid, _)) if ppid > 1 => pid = ppid,
            _ => break,
        }
    }
    let exe = exe_of(pid);
    let mut id = ClientIdentity {
        pid,
        exe: exe.clone(),
        via,
        ..Default::default()
    };
    if let Some(exe) = &exe {
        let base = base_name(exe);
        if INTERPRETERS.contains(&base.as_str()) {
            id.script = script_of(pid, &cmdline_of(pid));
            if id.script.is_none() && SHELLS.contains(&base.as_str()) {
                id.terminal_session = stat_of(pid).map(|(_, sid)| sid);
            }
        }
    }
    id.stable_id = match (&id.script, id.terminal_session, &id.exe) {
        (Some(s), _, _) => stable_id(s),
        (None, Some(sid), Some(e)) => format!("{}#terminal-session-{sid}", e.display()),
        (None, _, Some(e)) => stable_id(e),
        _ => format!("pid-{pid}"),
    };
    id
}

impl ClientIdentity {
    /// The identity as approvers see it.
    pub fn info(&self) -> keyfob_proto::methods::ClientInfo {
        let exe = self.exe.as_ref().map(|e| e.display().to_string());
        let script = self.script.as_ref().map(|s| s.display().to_string());
        let shown = exe.clone().unwrap_or_else(|| format!("pid {}", self.pid));
        let (identified_by, label) = match (&script, self.terminal_session) {
            (Some(s), _) => ("script", format!("{shown} {s}")),
            (None, Some(sid)) => (
                "terminal session",
                format!("{shown} (terminal session {sid})"),
            ),
            (None, None) if exe.is_some() => ("executable", shown),
            _ => ("process id", shown),
        };
        keyfob_proto::methods::ClientInfo {
            pid: self.pid,
            exe,
            script,
            terminal_session: self.terminal_session,
            identified_by: identified_by.into(),
            label,
        }
    }

    /// Whether the connection comes from Keyfob's own CLI or tray, installed beside this
    /// daemon: the only programs trusted to answer approval prompts.
    pub fn is_keyfob_frontend(&self) -> bool {
        // The daemon's own directory, read once: this runs on every connection.
        static DAEMON_DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
        let dir = DAEMON_DIR.get_or_init(|| {
            std::env::current_exe()
                .ok()
                .and_then(|me| me.parent().map(Path::to_path_buf))
        });
        let beside_daemon = |p: &Path| dir.is_some() && p.parent() == dir.as_deref();
        let named = |p: &Path, name: &str| p.file_name().is_some_and(|n| n == name);
        match (&self.via, &self.exe) {
            (Some(via), _) => named(via, "keyfob") && beside_daemon(via),
            (None, Some(exe)) => named(exe, "keyfob-tray") && beside_daemon(exe),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_identified_by_its_executable() {
        let me = identify(std::process::id() as i32);
        assert_eq!(me.exe, std::env::current_exe().ok());
        assert!(me.via.is_none());
        assert!(me.stable_id.contains('#') && me.stable_id.contains('@'));
    }

    #[test]
    fn keyfob_programs_are_recognised_but_the_tray_is_a_client() {
        assert!(is_keyfob(Path::new("/usr/bin/keyfob")));
        assert!(is_keyfob(Path::new("/usr/bin/git-credential-keyfob")));
        assert!(!is_keyfob(Path::new("/usr/bin/keyfob-tray")));
        assert!(!is_keyfob(Path::new("/usr/bin/python3")));
        assert_eq!(base_name(Path::new("/usr/bin/python3.11")), "python3");
    }
}
