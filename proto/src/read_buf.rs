//! The read buffer of a connection, for both ends: bytes are wiped as soon as they are taken,
//! and the buffer when it is dropped. Lines carry tokens and secrets (a token reply, a value
//! being stored, a vault passphrase); a plain `BufReader` would keep the last ones in memory
//! until they happen to be overwritten, and leave them in the heap once freed. The tray and
//! scripts hold connections open all day.

use zeroize::{Zeroize, Zeroizing};

/// A fixed-size read buffer that wipes what was taken from it.
pub struct ReadBuf {
    buf: Zeroizing<Vec<u8>>,
    /// Bytes `start..end` are read and not yet taken.
    start: usize,
    end: usize,
}

impl std::fmt::Debug for ReadBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadBuf({} bytes waiting)", self.end - self.start)
    }
}

impl ReadBuf {
    /// A buffer that reads at most `capacity` bytes at a time (a longer line only takes more
    /// reads).
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: Zeroizing::new(vec![0; capacity.max(1)]),
            start: 0,
            end: 0,
        }
    }

    /// The bytes read and not taken.
    pub fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Takes the first `n` available bytes (all of them, if fewer), wiping them.
    pub fn consume(&mut self, n: usize) {
        let to = self.start.saturating_add(n).min(self.end);
        self.buf[self.start..to].zeroize();
        self.start = to;
    }

    /// The bytes read and not taken, reading more from `r` when there are none; empty at the
    /// end of the stream.
    pub fn fill(&mut self, r: &mut impl std::io::Read) -> std::io::Result<&[u8]> {
        while self.start == self.end {
            match r.read(&mut self.buf[..]) {
                Ok(n) => {
                    (self.start, self.end) = (0, n);
                    if n == 0 {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.available())
    }

    /// [`ReadBuf::fill`] for an async reader. Cancel-safe: a read cancelled before it
    /// completes took nothing.
    #[cfg(feature = "tokio")]
    pub async fn fill_async(
        &mut self,
        r: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> std::io::Result<&[u8]> {
        use tokio::io::AsyncReadExt as _;
        if self.start == self.end {
            let n = r.read(&mut self.buf[..]).await?;
            (self.start, self.end) = (0, n);
        }
        Ok(self.available())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(b: &ReadBuf, needle: &[u8]) -> bool {
        b.buf.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_reply_taken_from_the_buffer_is_wiped_from_it() {
        let reply = b"{\"id\":1,\"result\":{\"access_token\":\"gho_secret\"}}\n{\"id\":2";
        let mut r = std::io::Cursor::new(&reply[..]);
        let mut b = ReadBuf::new(64);
        let got = b.fill(&mut r).unwrap().to_vec();
        assert_eq!(got, &reply[..64.min(reply.len())]);
        let line = got.iter().position(|c| *c == b'\n').unwrap() + 1;
        b.consume(line);
        assert!(
            !holds(&b, b"gho_secret"),
            "the taken line is still in the buffer"
        );
        assert_eq!(b.available(), b"{\"id\":2", "what was not taken stays");
        b.consume(usize::MAX);
        assert!(b.available().is_empty());
        assert!(b.buf.iter().all(|c| *c == 0));
    }

    #[test]
    fn a_long_line_is_read_in_pieces_and_the_end_of_the_stream_is_empty() {
        let mut r = std::io::Cursor::new(vec![b'x'; 10]);
        let mut b = ReadBuf::new(4);
        let mut total = 0;
        loop {
            let n = b.fill(&mut r).unwrap().len();
            if n == 0 {
                break;
            }
            assert!(n <= 4);
            total += n;
            b.consume(n);
        }
        assert_eq!(total, 10);
    }
}
