//! One connection: framing, the peer check, the `hello` handshake, requests and events.

use super::dispatch::{Outcome, Session, dispatch};
use super::peer;
use crate::agent::Agent;
use interprocess::local_socket::tokio::Stream;
use keyfob_proto::codec::{Framer, LineBuf, line_of, response_line};
use keyfob_proto::read_buf::ReadBuf;
use keyfob_proto::wire::{EVENT_METHOD, IncomingRequest, JSONRPC, Notification};
use keyfob_proto::{ErrorKind, Event, MAX_LINE_BYTES, RpcError};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// A line that has started must be finished within this time, so a client that sends half a
/// line and stalls holds only its own connection, and not for long.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// The read buffer of one connection.
const READ_BUFFER: usize = 1024;

enum Frame {
    /// A whole line is in the framer (without its `\n`).
    Line,
    /// Some bytes arrived; the line is not finished.
    Partial,
    /// The peer closed the connection.
    Eof,
}

/// The read side of a connection: request lines carry secrets (a value being stored, a vault
/// passphrase), so its buffer is wiped as lines are taken and when the connection ends.
struct Reader<R> {
    inner: R,
    buf: ReadBuf,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    fn new(inner: R, capacity: usize) -> Self {
        Self {
            inner,
            buf: ReadBuf::new(capacity),
        }
    }
}

/// Reads what is available into `framer`. Cancel-safe: bytes taken from the reader are
/// already in the framer when another `select!` branch wins.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut Reader<R>,
    framer: &mut Framer,
) -> Result<Frame, ErrorKind> {
    let available = r
        .buf
        .fill_async(&mut r.inner)
        .await
        .map_err(|_| ErrorKind::Internal)?;
    if available.is_empty() {
        return Ok(Frame::Eof);
    }
    let (n, done) = framer.take(available).map_err(|_| ErrorKind::LineTooLong)?;
    r.buf.consume(n);
    Ok(if done { Frame::Line } else { Frame::Partial })
}

fn error_line(id: Value, kind: ErrorKind, message: impl Into<String>) -> LineBuf {
    response_line::<()>(&id, Err(&RpcError::new(kind, message)))
}

/// Serves one connection until the peer leaves, breaks the protocol badly, or the daemon stops.
pub async fn serve(agent: Arc<Agent>, stream: Stream) {
    let _counted = agent.connection_opened();
    let mut peer = match peer::identify(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot identify a peer; closing");
            return;
        }
    };
    let (rd, mut wr) = tokio::io::split(stream);
    let me = rustix::process::geteuid().as_raw();
    if peer.uid != me {
        tracing::warn!(peer_uid = peer.uid, pid = ?peer.pid, "refused a connection from another user");
        agent.audit.record(crate::audit::Record {
            event: "connection.refused".into(),
            client: Some(peer.audit_client()),
            outcome: "error".into(),
            detail: Some("another user".into()),
            ..Default::default()
        });
        let line = error_line(
            Value::Null,
            ErrorKind::Forbidden,
            format!(
                "keyfobd serves only its own user (uid {me}); you are uid {}: start your own agent",
                peer.uid
            ),
        );
        let _ = wr.write_all(line.as_slice()).await;
        return;
    }
    // procfs reads are served from memory: cheap enough for the connection path.
    peer.client = peer
        .pid
        .map(|pid| super::identity::identify(pid, peer.exe.clone()));
    tracing::debug!(pid = ?peer.pid, client = ?peer.client, "connection");

    // Replies and events are written inline by this one task: a writer task behind a
    // channel would add a task hop to every round trip.
    let mut out = Writer(wr);
    // Requests are short lines; an idle connection holds this buffer, so it is small (a
    // longer line only takes more reads).
    let mut reader = Reader::new(rd, READ_BUFFER);
    let mut framer = Framer::default();
    let mut session = Session::new(peer);
    let mut events: Option<broadcast::Receiver<Event>> = None;
    let mut closing = agent.closing_signal();
    let mut line_deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = crate::agent::stopped(&mut closing) => break,
            ev = next_event(&mut events) => {
                match ev {
                    // A revoked or expired key's subscription ends with the key.
                    Some(_) if !session.key_still_holds(&agent).await => break,
                    Some(ev) if session.wants(&ev) => {
                        let n = Notification { jsonrpc: JSONRPC.into(), method: EVENT_METHOD.into(), params: ev };
                        if let Ok(line) = line_of(&n)
                            && out.send(line).await.is_err()
                        {
                            break;
                        }
                    }
                    Some(_) => {}
                    None => events = None,
                }
            }
            _ = sleep_until(line_deadline) => {
                let _ = out.send(error_line(Value::Null, ErrorKind::InvalidRequest,
                    "the request line was not finished in time; closing the connection")).await;
                break;
            }
            frame = read_frame(&mut reader, &mut framer) => match frame {
                Ok(Frame::Partial) => {
                    line_deadline.get_or_insert_with(|| Instant::now() + LINE_TIMEOUT);
                }
                Ok(Frame::Line) => {
                    line_deadline = None;
                    let outcome = handle_line(&agent, &mut session, framer.line()).await;
                    framer.clear();
                    // Each reply leaves at once, even when the next request is already read:
                    // a client must hear `hello` answered before a slow request runs (the CLI
                    // retries a request whose daemon died before answering `hello`).
                    if let Some(line) = outcome.reply
                        && out.send(line).await.is_err()
                    {
                        break;
                    }
                    if events.is_none() {
                        events = session.rx.take();
                    }
                    if outcome.close { break; }
                    if outcome.stop_daemon {
                        agent.request_shutdown();
                    }
                }
                Ok(Frame::Eof) => break,
                Err(kind) => {
                    if kind == ErrorKind::LineTooLong {
                        let _ = out.send(error_line(Value::Null, kind,
                            format!("request line longer than {MAX_LINE_BYTES} bytes; closing the connection"))).await;
                    }
                    break;
                }
            }
        }
    }
    let _ = out.0.shutdown().await;
}

/// The write half; lines may hold secrets, so each is wiped once written.
struct Writer<W>(W);

impl<W: tokio::io::AsyncWrite + Unpin> Writer<W> {
    async fn send(&mut self, line: LineBuf) -> std::io::Result<()> {
        self.0.write_all(line.as_slice()).await
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn next_event(rx: &mut Option<broadcast::Receiver<Event>>) -> Option<Event> {
    match rx {
        None => std::future::pending().await,
        Some(rx) => loop {
            match rx.recv().await {
                Ok(ev) => return Some(ev),
                // A slow subscriber misses events rather than slowing the daemon.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "subscriber lagged");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        },
    }
}

/// What to do after one line.
struct LineOutcome {
    reply: Option<LineBuf>,
    close: bool,
    stop_daemon: bool,
}

/// Only the id of a request that could not be read otherwise, for the error reply.
#[derive(serde::Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<Value>,
}

async fn handle_line(agent: &Arc<Agent>, session: &mut Session, bytes: &[u8]) -> LineOutcome {
    let mut out = LineOutcome {
        reply: None,
        close: false,
        stop_daemon: false,
    };
    let reply_err = |id: Value, kind, msg: String| Some(error_line(id, kind, msg));
    let Ok(text) = std::str::from_utf8(bytes) else {
        out.reply = reply_err(
            Value::Null,
            ErrorKind::ParseError,
            "the request is not valid UTF-8".into(),
        );
        return out;
    };
    if text.trim().is_empty() {
        return out;
    }
    let req: IncomingRequest = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (kind, msg) = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Err(_) => (
                    ErrorKind::ParseError,
                    format!("the request is not valid JSON: {e}"),
                ),
                Ok(_) if text.trim_start().starts_with('[') => (
                    ErrorKind::InvalidRequest,
                    "batch requests are not supported: send one request per line".into(),
                ),
                Ok(_) => (
                    ErrorKind::InvalidRequest,
                    "not a JSON-RPC 2.0 request object".into(),
                ),
            };
            let id = serde_json::from_str::<IdOnly>(text)
                .ok()
                .and_then(|i| i.id)
                .unwrap_or(Value::Null);
            out.reply = reply_err(id, kind, msg);
            return out;
        }
    };
    let id = req.id.clone().unwrap_or(Value::Null);
    if req.jsonrpc.as_deref() != Some(JSONRPC) {
        out.reply = reply_err(
            id,
            ErrorKind::InvalidRequest,
            "the request must have \"jsonrpc\": \"2.0\"".into(),
        );
        return out;
    }
    let Some(method) = req.method else {
        out.reply = reply_err(
            id,
            ErrorKind::InvalidRequest,
            "the request has no \"method\"".into(),
        );
        return out;
    };
    let params = req.params.map_or("{}", |p| p.get());
    let is_notification = req.id.is_none();
    let reply = dispatch(agent, session, &method, &id, params).await;
    match reply.outcome {
        Outcome::Continue => {}
        Outcome::Close => out.close = true,
        Outcome::StopDaemon => out.stop_daemon = true,
    }
    if !is_notification {
        out.reply = Some(reply.line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_split_across_reads_and_several_in_one_read_are_framed_alike() {
        let (mut client, daemon_side) = tokio::io::duplex(64);
        client
            .write_all(b"{\"a\":1}\n{\"bb\":22}\n{\"longer than eight\":3}\nhalf")
            .await
            .unwrap();
        drop(client);
        // A buffer smaller than the lines: they arrive in pieces, and two share a read.
        let mut reader = Reader::new(daemon_side, 8);
        let mut framer = Framer::default();
        let mut lines = Vec::new();
        loop {
            match read_frame(&mut reader, &mut framer).await.unwrap() {
                Frame::Line => {
                    lines.push(String::from_utf8(framer.line().to_vec()).unwrap());
                    framer.clear();
                }
                Frame::Partial => {}
                Frame::Eof => break,
            }
        }
        assert_eq!(
            lines,
            ["{\"a\":1}", "{\"bb\":22}", "{\"longer than eight\":3}"]
        );
        assert_eq!(framer.line(), b"half", "an unfinished line is not a line");
    }
}
