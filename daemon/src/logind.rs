//! Locks the agent when the desktop session locks or the machine suspends, from logind's
//! `Session.Lock` and `Manager.PrepareForSleep` signals on the system bus.
//!
//! Only signals sent by the owner of `org.freedesktop.login1` count; on a real system bus only
//! logind may own that name. `DBUS_SYSTEM_BUS_ADDRESS` points elsewhere (tests use a private bus).

use crate::agent::Agent;
use futures::StreamExt;
use keyfob_proto::events::LockReason;
use std::sync::Arc;

const LOGIND: &str = "org.freedesktop.login1";

/// logind's object path for session `id` (sd_bus_path_encode's escaping).
fn session_path(id: &str) -> String {
    let mut out = String::from("/org/freedesktop/login1/session/");
    if id.is_empty() {
        out.push('_');
    }
    for (i, b) in id.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// Our session's path: from `XDG_SESSION_ID`, else asked of logind; none when neither works.
async fn our_session(conn: &zbus::Connection) -> Option<String> {
    if let Ok(id) = std::env::var("XDG_SESSION_ID")
        && !id.is_empty()
    {
        return Some(session_path(&id));
    }
    let reply = conn
        .call_method(
            Some(LOGIND),
            "/org/freedesktop/login1",
            Some("org.freedesktop.login1.Manager"),
            "GetSessionByPID",
            &(std::process::id()),
        )
        .await
        .ok()?;
    let path: zbus::zvariant::OwnedObjectPath = reply.body().deserialize().ok()?;
    Some(path.to_string())
}

async fn signal_stream(
    conn: &zbus::Connection,
    interface: &str,
    member: &str,
) -> zbus::Result<zbus::MessageStream> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(LOGIND)?
        .interface(interface.to_owned())?
        .member(member.to_owned())?
        .build();
    zbus::MessageStream::for_match_rule(rule, conn, Some(16)).await
}

/// Watches logind until the daemon stops; without a system bus it logs why and returns.
pub async fn watch(agent: Arc<Agent>) {
    let conn = match zbus::Connection::system().await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "no system bus: session lock and suspend will not lock the agent");
            return;
        }
    };
    let streams = async {
        let sleep =
            signal_stream(&conn, "org.freedesktop.login1.Manager", "PrepareForSleep").await?;
        let lock = signal_stream(&conn, "org.freedesktop.login1.Session", "Lock").await?;
        zbus::Result::Ok((sleep, lock))
    };
    let (mut sleep, mut lock) = match streams.await {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %e, "cannot watch logind: session lock and suspend will not lock the agent");
            return;
        }
    };
    let session = our_session(&conn).await;
    tracing::info!(session = ?session, "watching logind for session lock and suspend");
    let mut shutdown = agent.shutdown_signal();
    loop {
        tokio::select! {
            _ = crate::agent::stopped(&mut shutdown) => return,
            Some(Ok(msg)) = sleep.next() => {
                if msg.body().deserialize::<bool>().unwrap_or(false) {
                    agent.lock(LockReason::Suspend).await;
                }
            }
            Some(Ok(msg)) = lock.next() => {
                let path = msg.header().path().map(|p| p.to_string());
                // Without a known session, any session's lock locks us: the safe side.
                if session.is_none() || path == session {
                    agent.lock(LockReason::SessionLocked).await;
                }
            }
            else => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn session_paths_are_escaped_as_logind_does() {
        assert_eq!(
            super::session_path("c1"),
            "/org/freedesktop/login1/session/c1"
        );
        assert_eq!(
            super::session_path("3"),
            "/org/freedesktop/login1/session/_33"
        );
        assert_eq!(
            super::session_path("a-b"),
            "/org/freedesktop/login1/session/a_2db"
        );
    }
}
