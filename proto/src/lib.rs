//! Keyfob's wire protocol: JSON-RPC 2.0 over a local socket, one object per line.
//!
//! This crate is the single source of truth for the protocol (`docs/protocol.md` describes
//! it for people): the envelopes, every method with its params and result, the stable error
//! codes, the framing limits, the socket path, and a client library that the CLI, the tray
//! and third-party tools link.

pub mod client;
pub mod client_error;
pub mod codec;
pub mod error;
pub mod events;
pub mod methods;
pub mod ownership;
pub mod paths;
pub mod read_buf;
pub mod sensitive;
pub mod wire;

#[cfg(feature = "tokio")]
pub mod approver;
#[cfg(feature = "tokio")]
pub mod async_client;

pub use client::{Client, ClientError};
pub use error::{ErrorKind, RpcError};
pub use events::Event;
pub use methods::Method;
pub use sensitive::Sensitive;

/// The protocol version both ends must agree on in `hello`; bump on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest line (request or response) either side accepts, in bytes, without the `\n`.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
