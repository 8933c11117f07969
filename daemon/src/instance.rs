//! One agent per data directory: an exclusive lock on `agent.lock` in the data directory,
//! held for the daemon's whole life, with the holder's pid and socket written in it. Two
//! daemons over one vault would each refresh with their own copy of a refresh token, and a
//! provider with reuse detection revokes the grant at the second.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why the daemon cannot claim its data directory or socket.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another keyfobd holds the lock.
    #[error(
        "keyfobd is already running (pid {pid}) on {socket}: use it, or stop it with `keyfob daemon stop`"
    )]
    AlreadyRunning {
        /// The running daemon's pid (0 if unreadable).
        pid: u32,
        /// Its socket.
        socket: PathBuf,
    },
    /// The directory is unsafe (owned by another user).
    #[error("{0}")]
    Unsafe(String),
    /// An I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "agent.lock";

/// How long a lock held by a process that is exiting is waited for: a killed daemon releases
/// its locks only once the kernel has closed all its files.
const EXITING_WAIT: Duration = Duration::from_secs(5);
/// How long a lock held by a daemon that is stopping (its socket gone, refreshes in flight
/// finishing) is waited for; within the start timeout of the client that started us.
const STOPPING_WAIT: Duration = Duration::from_secs(25);

/// What the lock file says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The daemon's pid.
    pub pid: u32,
    /// Where it listens.
    pub socket: PathBuf,
}

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Takes the data directory's lock for a daemon listening on `socket`, or says which
    /// daemon holds it.
    pub fn acquire(data_dir: &Path, socket: &Path) -> Result<Self, ClaimError> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| ClaimError::Io {
                what: format!("cannot open the lock file {}", path.display()),
                source,
            })?;
        if !lock_waiting_out_exit(&file, &path)? && !wait_for_stopping_holder(&file, &path)? {
            let holder = read_holder(&file);
            return Err(ClaimError::AlreadyRunning {
                pid: holder.as_ref().map(|h| h.pid).unwrap_or(0),
                socket: holder
                    .map(|h| h.socket)
                    .unwrap_or_else(|| socket.to_owned()),
            });
        }
        let record = serde_json::to_vec(&Holder {
            pid: std::process::id(),
            socket: socket.to_owned(),
        })
        .map_err(|e| ClaimError::Unsafe(e.to_string()))?;
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(&record)?;
            file.sync_data()
        };
        write(&mut file).map_err(|source| ClaimError::Io {
            what: format!("cannot write the lock file {}", path.display()),
            source,
        })?;
        Ok(Self { _file: file })
    }
}

/// A holder whose socket no longer answers is stopping (it closed its listener first, and
/// finishes refreshes in flight before it releases the lock): wait for it, so the client
/// that started us is served by us instead of being sent to a socket that is gone.
fn wait_for_stopping_holder(file: &File, path: &Path) -> Result<bool, ClaimError> {
    let mut said = false;
    lock_while(file, path, STOPPING_WAIT, || {
        let holder = read_holder(file);
        let listening = holder
            .as_ref()
            .is_some_and(|h| std::os::unix::net::UnixStream::connect(&h.socket).is_ok());
        if !listening && !said {
            said = true;
            tracing::info!(
                pid = holder.as_ref().map(|h| h.pid),
                "the agent for this data directory is stopping; waiting for it to exit"
            );
        }
        !listening
    })
}

fn read_holder(mut file: &File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Takes `file`'s exclusive lock. A lock held by a process that is exiting (killed, its
/// files not yet all closed) is waited for; one held by a live process is not: `false`.
pub fn lock_waiting_out_exit(file: &File, path: &Path) -> Result<bool, ClaimError> {
    lock_while(file, path, EXITING_WAIT, || holder_is_exiting(path))
}

/// Takes `file`'s exclusive lock, waiting (at most `wait`) while `holder_going` says the
/// holder is on its way out; `false` when it is held and not going.
fn lock_while(
    file: &File,
    path: &Path,
    wait: Duration,
    mut holder_going: impl FnMut() -> bool,
) -> Result<bool, ClaimError> {
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(TryLockError::WouldBlock) => {
                if Instant::now() >= deadline || !holder_going() {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::Error(source)) => {
                return Err(ClaimError::Io {
                    what: format!("cannot lock {}", path.display()),
                    source,
                });
            }
        }
    }
}

/// The pids holding a lock on `path`, from /proc/locks (read, so nothing is locked to look).
fn lock_holders(path: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF": the 5th field is the pid, the 6th
    // major:minor (hex) and inode.
    let dev = meta.dev();
    let file_id = format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev),
        meta.ino()
    );
    locks
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 5 && f[5] == file_id).then(|| f[4].to_owned())
        })
        .collect()
}

/// The daemon that holds `data_dir`'s lock, if one does: the pid and socket it wrote,
/// believed only while that pid holds the lock. Found without taking the lock, so a daemon
/// starting at the same moment is not turned away by the look.
pub fn running(data_dir: &Path) -> Option<Holder> {
    let path = data_dir.join(LOCK_FILE);
    let holder = read_holder(&File::open(&path).ok()?)?;
    lock_holders(&path)
        .contains(&holder.pid.to_string())
        .then_some(holder)
}

/// Whether every process holding a lock on `path` is gone or dying: from /proc/locks, the
/// holders' pids, and from /proc/PID/stat, their state.
fn holder_is_exiting(path: &Path) -> bool {
    let pids = lock_holders(path);
    !pids.is_empty()
        && pids.iter().all(|pid| {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                // The state follows the command name in parentheses.
                Ok(stat) => stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .is_some_and(|s| matches!(s, "Z" | "X" | "x")),
                Err(_) => true,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_holder_is_found_only_while_it_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(running(dir.path()), None, "no lock file");
        let a = dir.path().join("a.sock");
        let held = InstanceLock::acquire(dir.path(), &a).unwrap();
        assert_eq!(
            running(dir.path()),
            Some(Holder {
                pid: std::process::id(),
                socket: a.clone()
            })
        );
        drop(held);
        assert_eq!(running(dir.path()), None, "the file stays; the lock went");
    }

    #[test]
    fn a_second_lock_on_the_same_data_directory_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sock");
        let _listening = std::os::unix::net::UnixListener::bind(&a).unwrap();
        let first = InstanceLock::acquire(dir.path(), &a).unwrap();
        match InstanceLock::acquire(dir.path(), Path::new("/tmp/b.sock")) {
            Err(ClaimError::AlreadyRunning { pid, socket }) => {
                assert_eq!(pid, std::process::id());
                assert_eq!(socket, a);
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        InstanceLock::acquire(dir.path(), Path::new("/tmp/b.sock")).unwrap();
    }

    #[test]
    fn a_lock_released_by_a_holder_that_stopped_listening_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let first = InstanceLock::acquire(dir.path(), &dir.path().join("gone.sock")).unwrap();
        let release = std::thread::spawn(move || drop(first));
        InstanceLock::acquire(dir.path(), Path::new("/tmp/b.sock")).unwrap();
        release.join().unwrap();
    }
}
