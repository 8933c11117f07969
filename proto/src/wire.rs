//! JSON-RPC 2.0 envelopes and the line framing both ends use.

use crate::error::RpcError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `jsonrpc` member's only valid value.
pub const JSONRPC: &str = "2.0";

/// A request as it arrives: kept loose so the daemon can answer each malformation precisely.
#[derive(Debug, Deserialize)]
pub struct IncomingRequest {
    /// Must be "2.0".
    pub jsonrpc: Option<String>,
    /// Absent for notifications from the client (which Keyfob answers to nobody).
    #[serde(default)]
    pub id: Option<Value>,
    /// The method name.
    pub method: Option<String>,
    /// Method params; absent means `{}`.
    #[serde(default)]
    pub params: Option<Value>,
}

/// A request as a client sends it.
#[derive(Debug, Serialize)]
pub struct OutgoingRequest<'a, P: Serialize> {
    /// Always "2.0".
    pub jsonrpc: &'static str,
    /// Correlates the response.
    pub id: u64,
    /// The method name.
    pub method: &'a str,
    /// The params object.
    pub params: &'a P,
}

/// A response: exactly one of `result` and `error`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    /// Always "2.0".
    pub jsonrpc: String,
    /// The request's id (null when the request could not be read).
    pub id: Value,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// A success response.
    pub fn ok(id: Value, result: Value) -> Self {
        Self {
            jsonrpc: JSONRPC.into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// An error response.
    pub fn err(id: Value, error: RpcError) -> Self {
        Self {
            jsonrpc: JSONRPC.into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

/// A server-to-client notification (no id): how events reach subscribers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Notification<P> {
    /// Always "2.0".
    pub jsonrpc: String,
    /// Always [`EVENT_METHOD`].
    pub method: String,
    /// The event.
    pub params: P,
}

/// The method name of every server notification.
pub const EVENT_METHOD: &str = "event";

/// Any line a client can receive: a response or a notification.
#[derive(Debug, Deserialize)]
pub struct Incoming {
    /// Present on responses.
    #[serde(default)]
    pub id: Option<Value>,
    /// Present on notifications.
    #[serde(default)]
    pub method: Option<String>,
    /// Notification params.
    #[serde(default)]
    pub params: Option<Value>,
    /// Response result.
    #[serde(default)]
    pub result: Option<Value>,
    /// Response error.
    #[serde(default)]
    pub error: Option<RpcError>,
}

/// Serialises `value` as one protocol line, `\n` included.
pub fn to_line<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut buf = serde_json::to_vec(value)?;
    buf.push(b'\n');
    Ok(buf)
}
