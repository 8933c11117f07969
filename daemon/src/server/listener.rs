//! Claiming the socket: a private directory, a pid lock for a single instance, stale-socket
//! recovery, and a socket created 0600 before anyone can connect.

use interprocess::local_socket::tokio::Listener;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use crate::instance::ClaimError;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClaimError {
    let what = what.into();
    move |source| ClaimError::Io { what, source }
}

/// The claimed socket path; holds the single-instance lock until dropped.
#[derive(Debug)]
pub struct Claim {
    socket: PathBuf,
    _lock: File,
}

impl Claim {
    /// Prepares the directory and takes the pid lock. Does not bind yet: the daemon binds
    /// only once it is ready to serve.
    pub fn acquire(socket: &Path) -> Result<Self, ClaimError> {
        let dir = socket
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| {
                ClaimError::Unsafe(format!(
                    "the socket path {} has no directory",
                    socket.display()
                ))
            })?;
        prepare_dir(dir)?;
        let lock_path = dir.join(format!(
            "{}.lock",
            socket
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io(format!(
                "cannot open the lock file {}",
                lock_path.display()
            )))?;
        if !crate::instance::lock_waiting_out_exit(&lock, &lock_path)? {
            let mut text = String::new();
            let _ = lock.read_to_string(&mut text);
            return Err(ClaimError::AlreadyRunning {
                pid: text.trim().parse().unwrap_or(0),
                socket: socket.to_owned(),
            });
        }
        lock.set_len(0).map_err(io("cannot write the lock file"))?;
        lock.rewind().map_err(io("cannot write the lock file"))?;
        write!(lock, "{}", std::process::id()).map_err(io("cannot write the lock file"))?;
        Ok(Self {
            socket: socket.to_owned(),
            _lock: lock,
        })
    }

    /// Binds the socket (mode 0600), replacing a stale one: holding the lock proves that no
    /// live daemon owns it.
    pub fn bind(&self) -> Result<Listener, ClaimError> {
        match fs::symlink_metadata(&self.socket) {
            Ok(m) if m.file_type().is_dir() => {
                return Err(ClaimError::Unsafe(format!(
                    "{} is a directory, not a socket: remove it or set KEYFOB_SOCKET",
                    self.socket.display()
                )));
            }
            Ok(_) => {
                tracing::info!(socket = %self.socket.display(), "removing a stale socket left by a daemon that did not stop cleanly");
                fs::remove_file(&self.socket).map_err(io(format!(
                    "cannot remove the stale socket {}",
                    self.socket.display()
                )))?;
            }
            Err(_) => {}
        }
        let name = self
            .socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .map_err(io("invalid socket path"))?;
        ListenerOptions::new()
            .name(name)
            .mode(0o600)
            .create_tokio()
            .map_err(io(format!("cannot listen on {}", self.socket.display())))
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

/// Creates the socket directory 0700, or checks that an existing one is ours and private.
fn prepare_dir(dir: &Path) -> Result<(), ClaimError> {
    crate::atomic::ensure_private_dir(dir)
        .map_err(io(format!("cannot create {}", dir.display())))?;
    let meta =
        fs::symlink_metadata(dir).map_err(io(format!("cannot inspect {}", dir.display())))?;
    if meta.file_type().is_symlink() {
        return Err(ClaimError::Unsafe(format!(
            "{} is a symbolic link: keyfobd listens only in a directory of its own; remove the link or set KEYFOB_SOCKET to a path of your own",
            dir.display()
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(ClaimError::Unsafe(format!(
            "{} belongs to uid {}, not to you (uid {me}): remove it or set KEYFOB_SOCKET to a path of your own",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io(format!("cannot make {} private", dir.display())))?;
    }
    Ok(())
}
