//! Sans-IO framing and decoding, shared by the daemon, the blocking client and the async
//! client: each end feeds it bytes and writes what it returns, so both clients check line
//! length, reply ids and errors the same way.
//!
//! Every line passes through a [`LineBuf`], wiped when cleared, dropped or grown: a line may
//! hold a token or a secret, and neither a `serde_json::Value` nor a reallocation leaves a
//! copy behind.

use crate::MAX_LINE_BYTES;
use crate::client_error::ClientError;
use crate::error::RpcError;
use crate::events::Event;
use crate::methods::Method;
use crate::wire::{EVENT_METHOD, JSONRPC, OutgoingRequest};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use zeroize::Zeroize;

/// A byte buffer that wipes its contents when cleared, dropped or moved to a larger allocation.
#[derive(Default)]
pub struct LineBuf(Vec<u8>);

impl std::fmt::Debug for LineBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LineBuf({} bytes)", self.0.len())
    }
}

impl LineBuf {
    /// An empty buffer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Appends `bytes`; when the allocation must grow, the old one is wiped before it is freed.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let need = self.0.len() + bytes.len();
        if need > self.0.capacity() {
            let mut bigger = Vec::with_capacity(need.max(self.0.capacity() * 2).max(256));
            bigger.extend_from_slice(&self.0);
            self.0.zeroize();
            self.0 = bigger;
        }
        self.0.extend_from_slice(bytes);
    }

    /// Wipes and empties the buffer, keeping its allocation.
    pub fn clear(&mut self) {
        self.0.zeroize();
        self.0.clear();
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl std::io::Write for LineBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuf {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Serialises `value` as one protocol line (`\n` included) into a wiped buffer.
pub fn line_of<T: Serialize>(value: &T) -> serde_json::Result<LineBuf> {
    let mut buf = LineBuf::with_capacity(256);
    serde_json::to_writer(&mut buf, value)?;
    buf.extend_from_slice(b"\n");
    Ok(buf)
}

/// A success response, serialised straight from the typed result.
#[derive(Serialize)]
struct OkResponse<'a, T> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: &'a T,
}

/// An error response.
#[derive(Serialize)]
struct ErrResponse<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    error: &'a RpcError,
}

/// The response line for request `id`: its result, or its error.
pub fn response_line<T: Serialize>(id: &Value, result: Result<&T, &RpcError>) -> LineBuf {
    let line = match result {
        Ok(result) => line_of(&OkResponse {
            jsonrpc: JSONRPC,
            id,
            result,
        }),
        Err(error) => line_of(&ErrResponse {
            jsonrpc: JSONRPC,
            id,
            error,
        }),
    };
    line.unwrap_or_else(|e| {
        let error = RpcError::new(
            crate::ErrorKind::Internal,
            format!("cannot encode the reply: {e}"),
        );
        line_of(&ErrResponse {
            jsonrpc: JSONRPC,
            id,
            error: &error,
        })
        .unwrap_or_default()
    })
}

/// A line is longer than [`MAX_LINE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// Collects bytes into lines of at most [`MAX_LINE_BYTES`].
#[derive(Debug, Default)]
pub struct Framer {
    line: LineBuf,
}

impl Framer {
    /// Takes bytes from `available` up to and including the first `\n`. Returns how many it
    /// consumed and whether a whole line (without its `\n`) is now in [`Framer::line`].
    pub fn take(&mut self, available: &[u8]) -> Result<(usize, bool), TooLong> {
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if self.line.as_slice().len() + take > MAX_LINE_BYTES {
            return Err(TooLong);
        }
        self.line.extend_from_slice(&available[..take]);
        Ok((if done { take + 1 } else { take }, done))
    }

    /// The line collected so far.
    pub fn line(&self) -> &[u8] {
        self.line.as_slice()
    }

    /// Wipes the line, for the next one.
    pub fn clear(&mut self) {
        self.line.clear();
    }
}

/// The envelope of a received line, read without keeping `result` or `params`.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    error: Option<RpcError>,
    #[serde(default)]
    #[allow(dead_code)]
    result: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ResultOf<T> {
    result: T,
}

#[derive(Deserialize)]
struct ParamsOf<T> {
    params: T,
}

/// A client's side of the protocol, without the socket.
#[derive(Debug, Default)]
pub struct ClientCodec {
    framer: Framer,
    next_id: u64,
    events: VecDeque<Event>,
}

impl ClientCodec {
    /// The request line for `M` with `params`, and the id its reply will carry.
    pub fn request<M: Method>(
        &mut self,
        params: &M::Params,
    ) -> Result<(u64, LineBuf), ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = line_of(&OutgoingRequest {
            jsonrpc: JSONRPC,
            id,
            method: M::NAME,
            params,
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok((id, line))
    }

    /// Feeds received bytes; see [`Framer::take`]. Empty input means the daemon closed.
    pub fn feed(&mut self, available: &[u8]) -> Result<(usize, bool), ClientError> {
        if available.is_empty() {
            return Err(ClientError::Closed);
        }
        self.framer
            .take(available)
            .map_err(|TooLong| ClientError::Protocol("reply line too long".into()))
    }

    /// Decodes the whole line fed so far as the reply to request `id`, then wipes it.
    /// `Ok(None)`: the line was an event (queued for [`ClientCodec::next_event`]); read on.
    pub fn reply<T: DeserializeOwned>(&mut self, id: u64) -> Result<Option<T>, ClientError> {
        let out = self.decode(id);
        self.framer.clear();
        out
    }

    fn decode<T: DeserializeOwned>(&mut self, id: u64) -> Result<Option<T>, ClientError> {
        let line = self.framer.line();
        let head: Head =
            serde_json::from_slice(line).map_err(|e| ClientError::Protocol(e.to_string()))?;
        // `"id": null` deserialises to `None`, like a missing id.
        if head.id.is_none() && head.method.as_deref() == Some(EVENT_METHOD) {
            // An event this client does not know (a newer daemon) is skipped.
            if let Ok(ev) = serde_json::from_slice::<ParamsOf<Event>>(line) {
                self.events.push_back(ev.params);
            }
            return Ok(None);
        }
        // An error tied to no request (a refused connection, an unreadable line) or to this
        // one is the daemon's answer.
        if let Some(err) = head.error
            && (head.id.is_none() || head.id.as_ref().and_then(Value::as_u64) == Some(id))
        {
            return Err(ClientError::Rpc(err));
        }
        if head.id.as_ref().and_then(Value::as_u64) != Some(id) {
            return Err(ClientError::Protocol(format!(
                "expected the reply to request {id}, got {:?}",
                head.id
            )));
        }
        serde_json::from_slice::<ResultOf<T>>(line)
            .map(|r| Some(r.result))
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Decodes the whole line fed so far when no reply is awaited, then wipes it: an event
    /// is queued, an error tied to no request is returned, anything else is skipped.
    pub fn unasked(&mut self) -> Result<(), ClientError> {
        let out = match self.decode::<IgnoredAny>(u64::MAX) {
            Err(ClientError::Protocol(_)) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        self.framer.clear();
        out
    }

    /// An event received while waiting for a reply, if any.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::{Empty, SecretGet, SecretGetResult};

    fn feed_all(c: &mut ClientCodec, mut bytes: &[u8]) -> bool {
        loop {
            let (n, done) = c.feed(bytes).expect("feed");
            bytes = &bytes[n..];
            if done || bytes.is_empty() {
                return done;
            }
        }
    }

    #[test]
    fn a_reply_to_another_request_is_a_protocol_error() {
        let mut c = ClientCodec::default();
        let (id, _) = c
            .request::<SecretGet>(&crate::methods::NameParams { name: "s".into() })
            .unwrap();
        assert!(feed_all(
            &mut c,
            b"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n"
        ));
        assert!(matches!(
            c.reply::<Empty>(id),
            Err(ClientError::Protocol(_))
        ));
    }

    #[test]
    fn events_are_queued_and_the_reply_follows() {
        let mut c = ClientCodec::default();
        let line = b"{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"event\":\"lock.changed\",\"locked\":true,\"reason\":\"command\"}}\n";
        assert!(feed_all(&mut c, line));
        assert!(c.reply::<Empty>(0).unwrap().is_none());
        assert!(c.next_event().is_some());
        assert!(feed_all(
            &mut c,
            b"{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"value\":\"v\"}}\n"
        ));
        let r: SecretGetResult = c.reply(0).unwrap().unwrap();
        assert_eq!(r.value.expose(), "v");
    }

    #[test]
    fn an_overlong_line_is_refused_before_it_is_kept() {
        let mut f = Framer::default();
        let big = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(f.take(&big), Err(TooLong));
        assert!(f.line().is_empty());
    }

    #[test]
    fn an_error_without_an_id_is_the_answer() {
        let mut c = ClientCodec::default();
        assert!(feed_all(
            &mut c,
            b"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32001,\"message\":\"no\"}}\n"
        ));
        assert!(matches!(c.reply::<Empty>(0), Err(ClientError::Rpc(_))));
    }
}
