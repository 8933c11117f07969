//! The blocking client: no async runtime, so a one-shot CLI call costs little beyond the
//! process start.

use crate::PROTOCOL_VERSION;
use crate::codec::ClientCodec;
use crate::events::Event;
use crate::methods::{Hello, HelloParams, HelloResult, Method};
use crate::read_buf::ReadBuf;
use interprocess::local_socket::{GenericFilePath, Stream, ToFsName, traits::Stream as _};
use serde::de::DeserializeOwned;
use std::io::{self, Write};
use std::path::Path;

pub use crate::client_error::ClientError;

/// Environment variable carrying a scoped agent key that every connection presents.
pub const KEY_ENV: &str = "KEYFOB_KEY";

/// The `hello` params this library sends: with the agent key from `KEYFOB_KEY`, if set.
pub fn hello_params(client: &str) -> HelloParams {
    HelloParams {
        version: PROTOCOL_VERSION,
        client: Some(client.to_owned()),
        key: std::env::var(KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty())
            .map(crate::Sensitive::new),
    }
}

/// What a client reads at a time (std's `BufReader` default).
pub(crate) const READ_BUFFER: usize = 8 * 1024;

/// A connection to the daemon that has completed `hello`.
pub struct Client {
    stream: Stream,
    buf: ReadBuf,
    codec: ClientCodec,
    hello: HelloResult,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("daemon_pid", &self.hello.pid)
            .finish_non_exhaustive()
    }
}

/// Opens the socket at `path`, mapping "nobody there" to [`ClientError::NotRunning`]; refuses
/// (before sending anything) a socket that is not this user's agent.
pub fn connect_stream(path: &Path) -> Result<Stream, ClientError> {
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
    let stream = Stream::connect(name).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
            path: path.to_owned(),
            source,
        },
        _ => ClientError::Connect {
            path: path.to_owned(),
            source,
        },
    })?;
    let peer = stream.peer_creds().ok().and_then(|c| c.euid());
    if let Some(why) = crate::ownership::unsafe_peer(path, peer) {
        return Err(ClientError::Unsafe(why));
    }
    Ok(stream)
}

/// A broken connection before the `hello` reply means the daemon went away (the daemon
/// answers `hello` before it reads anything else), so the request was not acted on.
fn before_hello(e: ClientError) -> ClientError {
    match e {
        ClientError::Io(e) => ClientError::Dropped(e.to_string()),
        ClientError::Closed => ClientError::Dropped("the connection closed".into()),
        other => other,
    }
}

impl Client {
    /// Connects and says `hello`.
    pub fn connect(path: &Path, client: &str) -> Result<Self, ClientError> {
        let stream = connect_stream(path)?;
        let mut this = Self::new(stream);
        this.send::<Hello>(&hello_params(client))
            .and_then(|id| this.receive::<HelloResult>(id))
            .map(|h| this.hello = h)
            .map_err(before_hello)?;
        Ok(this)
    }

    /// Connects, says `hello` and makes one call, sending both requests in one write so a
    /// one-shot caller pays for a single round trip.
    pub fn connect_and_call<M: Method>(
        path: &Path,
        client: &str,
        params: &M::Params,
    ) -> Result<(Self, M::Result), ClientError> {
        let stream = connect_stream(path)?;
        let mut this = Self::new(stream);
        let (hello_id, mut buf) = this.codec.request::<Hello>(&hello_params(client))?;
        let (id, call) = this.codec.request::<M>(params)?;
        buf.extend_from_slice(call.as_slice());
        drop(call);
        this.write(buf.as_slice())
            .and_then(|_| this.receive::<HelloResult>(hello_id))
            .map(|h| this.hello = h)
            .map_err(before_hello)?;
        let result = this.receive::<M::Result>(id)?;
        Ok((this, result))
    }

    fn new(stream: Stream) -> Self {
        Self {
            stream,
            buf: ReadBuf::new(READ_BUFFER),
            codec: ClientCodec::default(),
            hello: HelloResult {
                version: 0,
                daemon_version: String::new(),
                pid: 0,
            },
        }
    }

    /// What the daemon said in `hello`.
    pub fn hello(&self) -> &HelloResult {
        &self.hello
    }

    /// Calls `M` and waits for its result; events that arrive meanwhile are kept for
    /// [`Client::next_event`].
    pub fn call<M: Method>(&mut self, params: &M::Params) -> Result<M::Result, ClientError> {
        let id = self.send::<M>(params)?;
        self.receive(id)
    }

    /// Blocks until the next event (after `subscribe`).
    pub fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(ev) = self.codec.next_event() {
                return Ok(ev);
            }
            // No request is outstanding: any reply here is out of turn.
            self.read_line()?;
            self.codec.unasked()?;
        }
    }

    fn send<M: Method>(&mut self, params: &M::Params) -> Result<u64, ClientError> {
        let (id, line) = self.codec.request::<M>(params)?;
        self.write(line.as_slice())?;
        Ok(id)
    }

    /// Writes a request; if the daemon already hung up, its last words (e.g. "forbidden")
    /// are the better error than the broken pipe.
    fn write(&mut self, buf: &[u8]) -> Result<(), ClientError> {
        match self.stream.write_all(buf) {
            Ok(()) => Ok(()),
            Err(e) => match self.read_line().and_then(|_| self.codec.unasked()) {
                Err(rpc @ ClientError::Rpc(_)) => Err(rpc),
                _ => Err(ClientError::Io(e)),
            },
        }
    }

    fn receive<T: DeserializeOwned>(&mut self, id: u64) -> Result<T, ClientError> {
        loop {
            self.read_line()?;
            if let Some(result) = self.codec.reply(id)? {
                return Ok(result);
            }
        }
    }

    /// Reads until the codec holds one whole line.
    fn read_line(&mut self) -> Result<(), ClientError> {
        loop {
            let available = self.buf.fill(&mut self.stream)?;
            let (n, done) = self.codec.feed(available)?;
            self.buf.consume(n);
            if done {
                return Ok(());
            }
        }
    }
}
