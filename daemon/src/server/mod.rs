//! The local-socket server: binding, accepting, and one task per connection.

pub mod activation;
pub mod connection;
mod dispatch;
pub mod identity;
pub mod listener;
pub mod peer;

use crate::agent::Agent;
use interprocess::local_socket::tokio::Listener;
use interprocess::local_socket::traits::tokio::Listener as _;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// How long stopping waits for open connections to flush their last replies.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts connections until shutdown is requested, then drains them.
pub async fn serve(agent: Arc<Agent>, listener: Listener) {
    let mut shutdown = agent.shutdown_signal();
    let tracker = TaskTracker::new();
    loop {
        tokio::select! {
            _ = crate::agent::stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    tracker.spawn(connection::serve(Arc::clone(&agent), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors: back off instead of spinning on the error.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    // Dropping the listener removes the socket file, so new clients see "not running".
    drop(listener);
    // Refreshes in flight finish and store their rotated tokens before anything is cut.
    agent.finish_refreshes().await;
    agent.close_connections();
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
}
