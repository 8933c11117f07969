//! The async (tokio) client, for the tray app and tests; same protocol as [`crate::Client`].

use crate::client::hello_params;
use crate::client_error::ClientError;
use crate::codec::ClientCodec;
use crate::events::Event;
use crate::methods::{Hello, HelloResult, Method};
use crate::read_buf::ReadBuf;
use interprocess::local_socket::{
    GenericFilePath, ToFsName, tokio::Stream, traits::tokio::Stream as _,
};
use std::io;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// An async connection to the daemon that has completed `hello`.
pub struct AsyncClient {
    stream: Stream,
    buf: ReadBuf,
    codec: ClientCodec,
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
            stream,
            buf: ReadBuf::new(crate::client::READ_BUFFER),
            codec: ClientCodec::default(),
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
        let (id, line) = self.codec.request::<M>(params)?;
        self.stream.write_all(line.as_slice()).await?;
        drop(line);
        loop {
            self.read_line().await?;
            if let Some(result) = self.codec.reply(id)? {
                return Ok(result);
            }
        }
    }

    /// Waits for the next event (after `subscribe`).
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(ev) = self.codec.next_event() {
                return Ok(ev);
            }
            self.read_line().await?;
            self.codec.unasked()?;
        }
    }

    /// Reads until the codec holds one whole line.
    async fn read_line(&mut self) -> Result<(), ClientError> {
        loop {
            let available = self.buf.fill_async(&mut self.stream).await?;
            let (n, done) = self.codec.feed(available)?;
            self.buf.consume(n);
            if done {
                return Ok(());
            }
        }
    }
}
