//! Before a client sends anything: is the socket really its own user's agent? The socket's
//! directory must be a real directory (not a symlink) owned by this uid with no access for
//! anyone else, and the process listening must run as this uid. Another local user who
//! created `/tmp/keyfob-UID` first, or a planted socket, gets nothing: no `hello`, no agent
//! key, no passphrase, no secret value.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Why a socket is not safe to talk to (`None`: it is, as far as its directory goes). A
/// directory that does not exist is no danger: nobody listens there yet.
pub fn unsafe_socket_dir(socket: &Path) -> Option<String> {
    let dir = socket.parent().filter(|d| !d.as_os_str().is_empty())?;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(_) => return None,
    };
    let me = rustix::process::geteuid().as_raw();
    let fix = "remove it, or set KEYFOB_SOCKET (or XDG_RUNTIME_DIR) to a directory of your own";
    if meta.file_type().is_symlink() {
        return Some(format!(
            "refusing to talk to {}: its directory {} is a symbolic link; {fix}",
            socket.display(),
            dir.display()
        ));
    }
    if meta.uid() != me {
        return Some(format!(
            "refusing to talk to {}: its directory {} belongs to uid {}, not to you (uid {me}), so someone else may be listening there; {fix}",
            socket.display(),
            dir.display(),
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Some(format!(
            "refusing to talk to {}: its directory {} is open to other users (mode {:o}); make it 0700 (`chmod 700 {}`), or {fix}",
            socket.display(),
            dir.display(),
            meta.permissions().mode() & 0o777,
            dir.display()
        ));
    }
    None
}

/// Why the peer of a connected socket is not this user's agent (`None`: it is).
pub fn unsafe_peer(socket: &Path, peer_uid: Option<u32>) -> Option<String> {
    let me = rustix::process::geteuid().as_raw();
    match peer_uid {
        Some(uid) if uid == me => None,
        Some(uid) => Some(format!(
            "refusing to talk to {}: the process listening there runs as uid {uid}, not as you (uid {me}); remove the socket, or set KEYFOB_SOCKET to a path of your own",
            socket.display()
        )),
        None => Some(format!(
            "refusing to talk to {}: the system did not say which user is listening there",
            socket.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_directory_of_ones_own_is_safe_and_an_open_or_linked_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(unsafe_socket_dir(&private.join("agent.sock")), None);
        assert_eq!(
            unsafe_socket_dir(&dir.path().join("missing/agent.sock")),
            None
        );

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let why = unsafe_socket_dir(&open.join("agent.sock")).unwrap();
        assert!(why.contains("open to other users"), "{why}");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&private, &link).unwrap();
        let why = unsafe_socket_dir(&link.join("agent.sock")).unwrap();
        assert!(why.contains("symbolic link"), "{why}");
    }

    #[test]
    fn a_peer_of_another_uid_is_refused() {
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(unsafe_peer(Path::new("/s"), Some(me)), None);
        assert!(unsafe_peer(Path::new("/s"), Some(me + 1)).is_some());
        assert!(unsafe_peer(Path::new("/s"), None).is_some());
    }
}
