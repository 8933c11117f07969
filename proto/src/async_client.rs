//! The async (tokio) client, for the tray app and tests; same protocol as [`crate::Client`].

use crate::MAX_LINE_BYTES;
use crate::client::{ClientError, hello_params};
use crate::events::Event;
use crate::methods::{Hello, HelloResult, Method};
use crate::wire::{Incoming, JSONRPC, OutgoingRequest, to_line};
use interprocess::local_socket::{
    GenericFilePath, ToFsName, tokio::Stream, traits::tokio::Stream as _,
};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::io;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// An async connection to the daemon that has completed `hello`.
pub struct AsyncClient {
    reader: BufReader<Stream>,
    next_id: u64,
    pending_events: VecDeque<Event>,
    hello: Option<HelloResult>,
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient").finish_non_exhaustive()
    }
}

impl AsyncClient {
    /// Connects and says `hello`.
    pub async fn connect(path: &Path, client: &str) -> Result<Self, ClientError> {
        use interprocess::local_socket::traits::StreamCommon as _;
        if let Some(why) = crate::ownership::unsafe_socket_dir(path) {
            return Err(ClientError::Unsafe(why));
        }
        let name = path
            .to_fs_name::<GenericFilePath>()
            .map_err(|source| ClientError::Connect {
                path: path.to_owned(),
                source,
            })?;
        let stream = Stream::connect(name)
            .await
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning {
                        path: path.to_owned(),
                        source,
                    }
                }
                _ => ClientError::Connect {
                    path: path.to_owned(),
                    source,
                },
            })?;
        let peer = stream.peer_creds().ok().and_then(|c| c.euid());
        if let Some(why) = crate::ownership::unsafe_peer(path, peer) {
            return Err(ClientError::Unsafe(why));
        }
        let mut this = Self {
            reader: BufReader::new(stream),
            next_id: 0,
            pending_events: VecDeque::new(),
            hello: None,
        };
        this.hello = Some(this.call::<Hello>(&hello_params(client)).await?);
        Ok(this)
    }

    /// What the daemon said in `hello`.
    pub fn hello(&self) -> Option<&HelloResult> {
        self.hello.as_ref()
    }

    /// Calls `M` and waits for its result.
    pub async fn call<M: Method>(&mut self, params: &M::Params) -> Result<M::Result, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = to_line(&OutgoingRequest {
            jsonrpc: JSONRPC,
            id,
            method: M::NAME,
            params,
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.reader.get_mut().write_all(&line).await?;
        self.receive(id).await
    }

    /// Waits for the next event (after `subscribe`).
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(ev) = self.pending_events.pop_front() {
                return Ok(ev);
            }
            self.read_one().await?;
        }
    }

    async fn receive<T: DeserializeOwned>(&mut self, id: u64) -> Result<T, ClientError> {
        loop {
            if let Some(msg) = self.read_one().await? {
                if msg.id.as_ref().and_then(|v| v.as_u64()) != Some(id) {
                    if let Some(err) = msg.error {
                        return Err(ClientError::Rpc(err));
                    }
                    return Err(ClientError::Protocol(format!(
                        "expected the reply to request {id}, got {:?}",
                        msg.id
                    )));
                }
                if let Some(err) = msg.error {
                    return Err(ClientError::Rpc(err));
                }
                return serde_json::from_value(msg.result.unwrap_or(serde_json::Value::Null))
                    .map_err(|e| ClientError::Protocol(e.to_string()));
            }
        }
    }

    async fn read_one(&mut self) -> Result<Option<Incoming>, ClientError> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        let msg: Incoming =
            serde_json::from_slice(&line).map_err(|e| ClientError::Protocol(e.to_string()))?;
        zeroize::Zeroize::zeroize(&mut line);
        crate::client::classify(msg, &mut self.pending_events)
    }
}
