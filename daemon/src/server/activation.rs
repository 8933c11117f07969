//! Socket activation: a listening socket handed over by the service manager (systemd's
//! `LISTEN_FDS`). The manager owns the socket file and queues connections while keyfobd
//! starts, so no client ever races a daemon's start.

use super::listener::ClaimError;
use interprocess::local_socket::tokio::Listener;
use interprocess::os::unix::uds_local_socket::tokio::Listener as UdsListener;
use std::os::fd::OwnedFd;
use std::path::Path;

fn io(what: &str) -> impl FnOnce(std::io::Error) -> ClaimError + '_ {
    move |source| ClaimError::Io {
        what: what.to_owned(),
        source,
    }
}

/// The listener the service manager passed for `socket`, if it passed one. One for another
/// path is refused: the clients would never find it.
pub fn inherited(socket: &Path) -> Result<Option<Listener>, ClaimError> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let Some(std_listener) = fds.take_unix_listener(0).map_err(io(
        "the service manager's socket (LISTEN_FDS) is not a Unix stream listener",
    ))?
    else {
        return Ok(None);
    };
    let addr = std_listener
        .local_addr()
        .map_err(io("cannot read the service manager's socket address"))?;
    if addr.as_pathname() != Some(socket) {
        return Err(ClaimError::Unsafe(format!(
            "the service manager passed a socket at {}, but clients look for the agent at {}: make ListenStream= in keyfob.socket name that path (`keyfob daemon install` writes it)",
            addr.as_pathname().map_or_else(
                || "an unnamed address".to_owned(),
                |p| p.display().to_string()
            ),
            socket.display()
        )));
    }
    std_listener
        .set_nonblocking(true)
        .map_err(io("cannot make the service manager's socket non-blocking"))?;
    let fd = OwnedFd::from(std_listener);
    let uds =
        UdsListener::try_from(fd).map_err(io("cannot serve on the service manager's socket"))?;
    tracing::info!(socket = %socket.display(), "serving on the socket the service manager passed");
    Ok(Some(Listener::from(uds)))
}
