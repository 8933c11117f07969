//! JSON-RPC 2.0 envelopes and the line framing both ends use.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `jsonrpc` member's only valid value.
pub const JSONRPC: &str = "2.0";

/// A request as it arrives: kept loose so the daemon can answer each malformation precisely.
/// The params stay unparsed text, decoded once into the method's own type.
#[derive(Debug, Deserialize)]
pub struct IncomingRequest<'a> {
    /// Must be "2.0".
    pub jsonrpc: Option<String>,
    /// Absent for notifications from the client (which Keyfob answers to nobody).
    #[serde(default)]
    pub id: Option<Value>,
    /// The method name.
    pub method: Option<String>,
    /// Method params; absent means `{}`.
    #[serde(default, borrow)]
    pub params: Option<&'a serde_json::value::RawValue>,
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
