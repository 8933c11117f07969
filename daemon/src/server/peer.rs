//! Who is on the other end of a connection, as the kernel reports it (never as the client says).

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::StreamCommon as _;
use std::path::PathBuf;

/// The peer process of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Effective uid (SO_PEERCRED / getpeereid).
    pub uid: u32,
    /// Process id, where the OS reports it.
    pub pid: Option<i32>,
    /// The executable, from /proc on Linux.
    pub exe: Option<PathBuf>,
    /// The client behind the peer (filled in once the peer's uid is accepted).
    pub client: Option<super::identity::ClientIdentity>,
}

impl Peer {
    /// The peer as the audit log records it.
    pub fn audit_client(&self) -> std::sync::Arc<crate::audit::Client> {
        let shown = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        std::sync::Arc::new(match &self.client {
            Some(c) => crate::audit::Client {
                pid: Some(c.pid),
                exe: shown(&c.exe),
                script: shown(&c.script),
                terminal_session: c.terminal_session,
                inline: c.inline,
                via: shown(&c.via),
                id: Some(c.stable_id.clone()),
                uid: Some(self.uid),
            },
            None => crate::audit::Client {
                pid: self.pid,
                exe: shown(&self.exe),
                uid: Some(self.uid),
                ..Default::default()
            },
        })
    }
}

/// Reads the peer's credentials from the socket.
pub fn identify(stream: &Stream) -> std::io::Result<Peer> {
    let creds = stream.peer_creds()?;
    let uid = creds
        .euid()
        .ok_or_else(|| std::io::Error::other("the OS did not report the peer's uid"))?;
    let pid = creds.pid();
    let exe = pid.and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok());
    Ok(Peer {
        uid,
        pid,
        exe,
        client: None,
    })
}
