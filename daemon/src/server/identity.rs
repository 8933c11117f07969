//! Who the client really is, read from /proc by the daemon (a client's own claims are never
//! trusted): the peer process, or, when the peer is Keyfob's own CLI or a helper installed
//! beside keyfobd, its nearest ancestor that is not Keyfob; for an interpreter, the script it
//! runs, or "inline code" when it runs code given on its command line or stdin (never the
//! identity of a file named among its options); for an interactive shell on a terminal, its
//! terminal session.
//!
//! Strength: this names the program, not a person. Any process of the same user can start the
//! same program, and (unless ptrace is restricted) tamper with a running one.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Interpreters whose identity is the script they run.
const INTERPRETERS: [&str; 12] = [
    "python", "python3", "bash", "sh", "dash", "zsh", "fish", "node", "perl", "ruby", "deno", "bun",
];
/// Environment variables that make a program load code it was not asked to run: a
/// preloaded library, a module path searched before the script's own, code run before the
/// script. Their values are part of the identity, so a script approved once is a new client
/// when it runs with, say, `PYTHONPATH=/tmp/evil`.
const CODE_ENV: [&str; 16] = [
    "LD_PRELOAD",
    "LD_AUDIT",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "BASH_ENV",
    "ENV",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "DENO_DIR",
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
    /// An interpreter running code that is in no file (`-c`, `-e`, `-m`, stdin).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
    /// The Keyfob program that connected on its behalf, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<PathBuf>,
    /// Code-loading variables set in its environment (see [`CODE_ENV`]), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injected: Vec<String>,
    /// A stable identity: the identifying file's path, device, inode and change time.
    pub stable_id: String,
}

/// Reads /proc/PID/NAME whole. This runs on every connection: procfs files report no size,
/// so `std::fs::read` would start at 32 bytes and double through several reads; a page-sized
/// buffer takes a `stat` line or a typical environment in one.
fn read_proc(pid: i32, name: &str) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut buf = Vec::with_capacity(4096);
    std::fs::File::open(format!("/proc/{pid}/{name}"))
        .ok()?
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

fn exe_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Fields of /proc/PID/stat after the command name: (ppid, session).
fn stat_of(pid: i32) -> Option<(i32, i32)> {
    let f = stat_fields(pid)?;
    Some((f.get(1)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

/// The fields of /proc/PID/stat after the command name, from field 3 (`state`) on.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = String::from_utf8(read_proc(pid, "stat")?).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let rest = s.get(s.rfind(')')? + 2..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// When `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat).
fn start_time_of(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

fn cmdline_of(pid: i32) -> Vec<String> {
    read_proc(pid, "cmdline")
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The directory keyfobd runs from, read once (this runs on every connection).
fn daemon_dir() -> Option<&'static Path> {
    static DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|me| me.parent().map(Path::to_path_buf))
    })
    .as_deref()
}

fn beside_daemon(p: &Path) -> bool {
    daemon_dir().is_some_and(|d| p.parent() == Some(d))
}

/// The tray's two programs: its windows and its resident icon. They are approvers in their
/// own right, never acting for someone else.
const TRAY_PROGRAMS: [&str; 2] = ["keyfob-tray", "keyfob-tray-resident"];

/// Keyfob's own CLI or helper entry points (they act for someone else; the tray does not),
/// by name only.
fn named_like_keyfob(exe: &Path) -> bool {
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name == "keyfob"
        || name.ends_with("-keyfob")
        || (name.starts_with("keyfob-") && !TRAY_PROGRAMS.contains(&name.as_ref()))
}

/// Keyfob's own programs, installed beside keyfobd: the only ones skipped when walking to the
/// real client. A program merely named like them elsewhere is a client like any other.
fn is_keyfob(exe: &Path) -> bool {
    named_like_keyfob(exe) && beside_daemon(exe)
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

/// An interpreter's command-line syntax, as far as telling a script from inline code goes.
struct Syntax {
    /// Short options that run code given on the command line (`-c`, `-e`, `-m`), or load code
    /// named by their argument before the script (`node -r`, `ruby -r`, `perl -M`, and load
    /// paths searched before the script's own).
    inline_short: &'static str,
    /// Long options that do.
    inline_long: &'static [&'static str],
    /// Short options that take the next argument (so it is not the script).
    arg_short: &'static str,
    /// Long options that do.
    arg_long: &'static [&'static str],
}

fn syntax(base: &str) -> Syntax {
    match base {
        "python" | "python3" => Syntax {
            inline_short: "cm",
            inline_long: &[],
            arg_short: "XWQ",
            arg_long: &["--check-hash-based-pycs"],
        },
        "fish" => Syntax {
            inline_short: "cC",
            inline_long: &["--command", "--init-command"],
            arg_short: "d",
            arg_long: &["--debug", "--debug-output", "--features", "--profile"],
        },
        "bash" | "sh" | "dash" | "zsh" => Syntax {
            // `-s`: commands from stdin.
            inline_short: "cs",
            inline_long: &[],
            arg_short: "oO",
            arg_long: &["--rcfile", "--init-file"],
        },
        "perl" => Syntax {
            inline_short: "eEMmI",
            inline_long: &[],
            arg_short: "",
            arg_long: &[],
        },
        "ruby" => Syntax {
            inline_short: "erI",
            inline_long: &[],
            arg_short: "CEFU",
            arg_long: &[],
        },
        // node, deno, bun.
        _ => Syntax {
            inline_short: "epr",
            inline_long: &[
                "--eval",
                "--print",
                "--require",
                "--import",
                "--loader",
                "--experimental-loader",
                "--env-file",
                "--preload",
            ],
            arg_short: "C",
            arg_long: &["--conditions", "--input-type"],
        },
    }
}

/// What an interpreter runs.
#[derive(Debug, PartialEq, Eq)]
enum Runs {
    /// A script file (relative to the interpreter's working directory, when not absolute).
    Script(String),
    /// Code given on the command line or stdin.
    Inline,
    /// Nothing named: a REPL, or code from stdin.
    Nothing,
}

/// Reads an interpreter's arguments: inline code anywhere among its options wins over any file
/// named there; the script is the first argument that is neither an option nor an option's
/// argument.
fn runs(base: &str, args: &[String]) -> Runs {
    let syn = syntax(base);
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            return it.next().map_or(Runs::Nothing, |s| Runs::Script(s.clone()));
        }
        if let Some(long) = a.strip_prefix("--") {
            let name = format!("--{}", long.split('=').next().unwrap_or_default());
            if syn.inline_long.contains(&name.as_str()) {
                return Runs::Inline;
            }
            if syn.arg_long.contains(&name.as_str()) && !long.contains('=') {
                it.next();
            }
            continue;
        }
        // deno and bun run inline code with a subcommand.
        if matches!(base, "deno" | "bun") && a == "eval" {
            return Runs::Inline;
        }
        if matches!(base, "deno" | "bun") && a == "run" {
            continue;
        }
        let cluster = a.strip_prefix('-').or_else(|| a.strip_prefix('+'));
        match cluster {
            Some(flags) if !flags.is_empty() => {
                for (i, c) in flags.char_indices() {
                    if syn.inline_short.contains(c) {
                        return Runs::Inline;
                    }
                    if syn.arg_short.contains(c) {
                        // The rest of the cluster is the argument, or else the next one is.
                        if flags[i + c.len_utf8()..].is_empty() {
                            it.next();
                        }
                        break;
                    }
                }
            }
            _ => return Runs::Script(a.clone()),
        }
    }
    Runs::Nothing
}

/// Whether a process's standard input is a terminal: an interactive shell reads a person's
/// commands from one.
/// Whether `pid` reads its standard input from a terminal.
pub fn stdin_is_terminal(pid: i32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/fd/0")).is_ok_and(|t| {
        let t = t.to_string_lossy();
        t.starts_with("/dev/pts/") || t.starts_with("/dev/tty") || t == "/dev/console"
    })
}

/// What `pid` reads its standard input from, for messages ("pipe:[1234]", "/dev/null").
pub fn stdin_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/0"))
        .map_or_else(|_| "nothing readable".into(), |t| t.display().to_string())
}

/// The session `pid` belongs to.
pub fn session_of(pid: i32) -> Option<i32> {
    stat_of(pid).map(|(_, sid)| sid)
}

/// The script file an interpreter runs, resolved against its working directory.
fn script_path(pid: i32, arg: &str) -> Option<PathBuf> {
    let p = PathBuf::from(arg);
    let p = if p.is_absolute() {
        p
    } else {
        std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?.join(p)
    };
    // One script, one identity, however it was named (`./x.sh`, `../bin/x.sh`, a symlink).
    let p = p.canonicalize().ok()?;
    p.is_file().then_some(p)
}

/// The code-loading variables (see [`CODE_ENV`]) set and non-empty in `pid`'s environment.
fn code_env_of(pid: i32) -> Vec<(String, Vec<u8>)> {
    let Some(env) = read_proc(pid, "environ") else {
        return Vec::new();
    };
    let mut found: Vec<(String, Vec<u8>)> = env
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let i = kv.iter().position(|b| *b == b'=')?;
            let (k, v) = (&kv[..i], &kv[i + 1..]);
            let k = std::str::from_utf8(k).ok()?;
            (CODE_ENV.contains(&k) && !v.is_empty()).then(|| (k.to_owned(), v.to_vec()))
        })
        .collect();
    found.sort();
    found
}

/// The file's path, device and inode, and its change time: unlike the modification time, a
/// program cannot set the change time back after editing the file.
fn stable_id(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{}#{}:{}@{}.{:09}",
            path.display(),
            m.dev(),
            m.ino(),
            m.ctime(),
            m.ctime_nsec()
        ),
        Err(_) => path.display().to_string(),
    }
}

/// `pid` and its ancestors, nearest first (to init, at most 64).
pub fn lineage(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut p = pid;
    for _ in 0..64 {
        match stat_of(p) {
            Some((ppid, _)) if ppid > 0 && !out.contains(&ppid) => {
                out.push(ppid);
                p = ppid;
            }
            _ => break,
        }
    }
    out
}

/// Whether one of the two processes started the other (directly or not), or they are one.
pub fn related(a: i32, b: i32) -> bool {
    lineage(a).contains(&b) || lineage(b).contains(&a)
}

/// Identifies the client behind the peer process `pid`, whose executable the caller has
/// read already (`exe`).
pub fn identify(pid: i32, exe: Option<PathBuf>) -> ClientIdentity {
    let mut pid = pid;
    let mut exe = exe;
    let mut via = None;
    for _ in 0..MAX_HOPS {
        let Some(keyfob) = exe.as_ref().filter(|e| is_keyfob(e)) else {
            break;
        };
        via.get_or_insert_with(|| keyfob.clone());
        match stat_of(pid) {
            Some((ppid, _)) if ppid > 1 => {
                pid = ppid;
                exe = exe_of(pid);
            }
            _ => break,
        }
    }
    let mut id = ClientIdentity {
        pid,
        exe: exe.clone(),
        via,
        ..Default::default()
    };
    if let Some(exe) = &exe {
        let base = base_name(exe);
        if INTERPRETERS.contains(&base.as_str()) {
            match runs(&base, &cmdline_of(pid)) {
                Runs::Script(arg) => match script_path(pid, &arg) {
                    Some(p) => id.script = Some(p),
                    // A script that is no file (gone, or a name the interpreter looks up):
                    // nothing to vouch for it.
                    None => id.inline = true,
                },
                Runs::Inline => id.inline = true,
                // Only a shell reading a person's commands from a terminal is identified by
                // its terminal session; anything else with no file is inline code.
                Runs::Nothing if SHELLS.contains(&base.as_str()) && stdin_is_terminal(pid) => {
                    id.terminal_session = stat_of(pid).map(|(_, sid)| sid);
                }
                Runs::Nothing => id.inline = true,
            }
        }
    }
    id.stable_id = match (&id.script, id.terminal_session, &id.exe) {
        (Some(s), _, _) => stable_id(s),
        // The session leader's start time makes the id one session's: a later session that
        // gets the same number is another.
        (None, Some(sid), Some(e)) => format!(
            "{}#terminal-session-{sid}@{}",
            e.display(),
            start_time_of(sid).unwrap_or(0)
        ),
        (None, None, Some(e)) if id.inline => format!("{}#inline-code", e.display()),
        (None, _, Some(e)) => stable_id(e),
        _ => format!("pid-{pid}"),
    };
    let injected = code_env_of(pid);
    if !injected.is_empty() {
        let names: Vec<&str> = injected.iter().map(|(k, _)| k.as_str()).collect();
        let mut values = Vec::new();
        for (k, v) in &injected {
            values.extend_from_slice(k.as_bytes());
            values.push(b'=');
            values.extend_from_slice(v);
            values.push(0);
        }
        let hash = crate::ids::sha256_hex(&values);
        id.stable_id = format!("{}+env[{}]#{}", id.stable_id, names.join(","), &hash[..16]);
        id.injected = names.into_iter().map(str::to_owned).collect();
    }
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
            (None, None) if self.inline => ("inline code", format!("{shown} (inline code)")),
            (None, None) if exe.is_some() => ("executable", shown),
            _ => ("process id", shown),
        };
        // The person sees what else the program loads.
        let label = if self.injected.is_empty() {
            label
        } else {
            format!("{label} with {} set", self.injected.join(", "))
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
        let named = |p: &Path, names: &[&str]| {
            p.file_name()
                .is_some_and(|n| names.iter().any(|name| n == *name))
        };
        match (&self.via, &self.exe) {
            (Some(via), _) => named(via, &["keyfob"]) && beside_daemon(via),
            (None, Some(exe)) => named(exe, &TRAY_PROGRAMS) && beside_daemon(exe),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_identified_by_its_executable() {
        let pid = std::process::id() as i32;
        let me = identify(pid, exe_of(pid));
        assert_eq!(me.exe, std::env::current_exe().ok());
        assert!(me.via.is_none());
        assert!(me.stable_id.contains('#') && me.stable_id.contains('@'));
    }

    #[test]
    fn keyfob_programs_are_recognised_only_beside_the_daemon_and_the_tray_is_a_client() {
        assert!(named_like_keyfob(Path::new("/usr/bin/keyfob")));
        assert!(named_like_keyfob(Path::new(
            "/usr/bin/git-credential-keyfob"
        )));
        assert!(!named_like_keyfob(Path::new("/usr/bin/keyfob-tray")));
        assert!(!named_like_keyfob(Path::new(
            "/usr/bin/keyfob-tray-resident"
        )));
        assert!(!named_like_keyfob(Path::new("/usr/bin/python3")));
        assert!(!is_keyfob(Path::new("/tmp/elsewhere/evil-keyfob")));
        assert_eq!(base_name(Path::new("/usr/bin/python3.11")), "python3");
    }

    #[test]
    fn a_program_named_like_the_tray_elsewhere_is_no_approver() {
        let client = |exe: PathBuf| ClientIdentity {
            exe: Some(exe),
            ..Default::default()
        };
        let here = daemon_dir().unwrap();
        for name in TRAY_PROGRAMS {
            assert!(client(here.join(name)).is_keyfob_frontend(), "{name}");
            let imitation = client(PathBuf::from("/tmp/evil").join(name));
            assert!(!imitation.is_keyfob_frontend(), "{name} outside");
        }
        assert!(!client(here.join("keyfob-tray-helper")).is_keyfob_frontend());
    }

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn inline_code_is_never_identified_as_a_file_named_among_the_options() {
        let inline = [
            ("python3", "python3 -X /ok.py -c CODE"),
            ("python3", "python3 -Ic CODE"),
            ("python3", "python3 -m http.server"),
            ("bash", "bash --rcfile /ok.py -c CODE"),
            ("bash", "bash -ec CODE"),
            ("bash", "bash -s"),
            ("sh", "sh -c CODE /ok.sh"),
            ("node", "node --require /ok.js -e CODE"),
            ("node", "node --eval=CODE"),
            ("perl", "perl -ne CODE /ok.pl"),
            ("ruby", "ruby -I /ok.rb -e CODE"),
            ("deno", "deno eval CODE"),
            ("fish", "fish --init-command CODE /ok.fish"),
            // Code loaded before the script is code the script's identity does not vouch for.
            ("node", "node --require /pre.js /ok.js"),
            ("node", "node -r /pre.js /ok.js"),
            ("node", "node --import=/pre.mjs /ok.js"),
            ("ruby", "ruby -I lib /ok.rb"),
            ("ruby", "ruby -r/pre.rb /ok.rb"),
            ("perl", "perl -MEvil /ok.pl"),
        ];
        for (base, line) in inline {
            assert_eq!(runs(base, &argv(line)), Runs::Inline, "{line}");
        }
        let scripts = [
            ("python3", "python3 -X dev /ok.py", "/ok.py"),
            ("python3", "python3 -u /ok.py -c x", "/ok.py"),
            ("bash", "bash -e /ok.sh", "/ok.sh"),
            ("bash", "bash --rcfile /rc /ok.sh", "/ok.sh"),
            ("bash", "bash -o pipefail /ok.sh", "/ok.sh"),
            ("node", "node -C dev /ok.js", "/ok.js"),
            ("deno", "deno run /ok.ts", "/ok.ts"),
            ("ruby", "ruby -W2 /ok.rb", "/ok.rb"),
        ];
        for (base, line, script) in scripts {
            assert_eq!(
                runs(base, &argv(line)),
                Runs::Script(script.into()),
                "{line}"
            );
        }
        assert_eq!(runs("bash", &argv("bash -i")), Runs::Nothing);
        assert_eq!(runs("python3", &argv("python3")), Runs::Nothing);
    }
}
