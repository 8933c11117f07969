//! The audit log: one JSON object per line under the state directory, each carrying the
//! SHA-256 of the line before it, so an edited, removed or reordered line is found by
//! `keyfob audit verify`. Records name who, what and which account, never a secret value.
//!
//! Writing happens on a thread of its own: the request path only queues a record, and the
//! writer takes everything queued at once, so a burst costs one write and one wake-up. In such
//! a batch, the same event from the same client in a row is one line with a `count` (as
//! syslog's "repeated N times"), so a script looping on a token cannot flood the log.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// The live file; rotated to `.1`, `.2`, `.3` when it grows past [`ROTATE_BYTES`].
pub const FILE: &str = "audit.jsonl";
/// Size at which the log rotates.
pub const ROTATE_BYTES: u64 = 8 * 1024 * 1024;
/// Rotated files kept.
pub const KEEP: usize = 3;
/// The `prev` of the very first line.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who asked, as the kernel reported it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Client {
    /// Process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Executable path (of the real client, past Keyfob's own CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// For an interpreter, the script it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// For an interactive shell, its terminal session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_session: Option<i32>,
    /// An interpreter running inline code (`-c`, `-e`, stdin), not a script.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
    /// The Keyfob program that connected on the client's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Stable identity (path, inode, mtime of the identifying file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Effective uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// One audit event (the line adds `seq`, `ts` and `prev`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// What happened (`token.served`, `connection.refused`, `signin.finished`, ...).
    pub event: Cow<'static, str>,
    /// Account, entry or secret name concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The client (shared by every record of its connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Arc<Client>>,
    /// `ok` or `error`.
    pub outcome: Cow<'static, str>,
    /// The error's kind, or a short note; never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A line as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Line {
    /// Position in the chain (continues across rotation).
    pub seq: u64,
    /// Unix milliseconds.
    pub ts: u64,
    /// The event.
    #[serde(flatten)]
    pub record: Record,
    /// How many times it happened in a row (absent: once).
    #[serde(default = "once", skip_serializing_if = "is_once")]
    pub count: u64,
    /// SHA-256 (hex) of the previous line's bytes.
    pub prev: String,
}

fn once() -> u64 {
    1
}

fn is_once(n: &u64) -> bool {
    *n == 1
}

fn hash(line: &[u8]) -> String {
    crate::ids::sha256_hex(line)
}

/// What waits for the writer thread.
#[derive(Default)]
struct Pending {
    records: Vec<Record>,
    /// Callers waiting until everything queued before them is on disk.
    flushes: Vec<std::sync::mpsc::Sender<()>>,
    /// Every [`Audit`] handle is gone: write what is left and stop.
    closed: bool,
}

#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    ready: Condvar,
    /// A wake-up of the writer is already on its way (see [`Audit::record`]).
    nudging: AtomicBool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding the lock cannot leave `Pending` half-changed (every change
        // is one push or one swap), so a poisoned lock is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Closes the queue when the last [`Audit`] handle goes.
struct Handle(Arc<Queue>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_one();
    }
}

/// Queues records for the writer thread.
#[derive(Clone)]
pub struct Audit {
    queue: Arc<Handle>,
    path: PathBuf,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("path", &self.path).finish()
    }
}

impl Audit {
    /// Opens (or continues) the log in `dir` and starts its writer thread.
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        crate::atomic::ensure_private_dir(dir)?;
        let path = dir.join(FILE);
        let mut writer = Writer::open(&path)?;
        let queue = Arc::new(Queue::default());
        let q = queue.clone();
        // A plain thread, not the runtime's blocking pool: the process must be able to exit
        // while a handle is still alive somewhere.
        std::thread::Builder::new()
            .name("keyfob-audit".into())
            .spawn(move || {
                loop {
                    let (records, flushes, closed) = {
                        let mut p = q.lock();
                        while p.records.is_empty() && p.flushes.is_empty() && !p.closed {
                            p = q.ready.wait(p).unwrap_or_else(|e| e.into_inner());
                        }
                        (
                            std::mem::take(&mut p.records),
                            std::mem::take(&mut p.flushes),
                            p.closed,
                        )
                    };
                    if let Err(e) = writer.append(records) {
                        tracing::error!(error = %e, "cannot write the audit log");
                    }
                    if !flushes.is_empty() {
                        let _ = writer.file.sync_all();
                        for done in flushes {
                            let _ = done.send(());
                        }
                    }
                    if closed {
                        break;
                    }
                }
            })?;
        Ok(Self {
            queue: Arc::new(Handle(queue)),
            path,
        })
    }

    /// Records an event (never blocks the caller for more than a push onto the queue).
    pub fn record(&self, r: Record) {
        let q = &self.queue.0;
        let mut p = q.lock();
        let was_idle = p.records.is_empty() && p.flushes.is_empty();
        p.records.push(r);
        drop(p);
        // The writer sleeps only on an empty queue, so only the first record of a batch
        // wakes it. On the runtime, that wake-up waits until the tasks ready now have run:
        // under load, one wake-up (a thread switch) then carries every record of that turn.
        if !was_idle {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if !q.nudging.swap(true, Ordering::AcqRel) => {
                let q = self.queue.0.clone();
                rt.spawn(async move {
                    tokio::task::yield_now().await;
                    q.nudging.store(false, Ordering::Release);
                    q.ready.notify_one();
                });
            }
            Ok(_) => {}
            Err(_) => q.ready.notify_one(),
        }
    }

    fn request_flush(&self) -> std::sync::mpsc::Receiver<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let q = &self.queue.0;
        q.lock().flushes.push(tx);
        q.ready.notify_one();
        rx
    }

    /// Like [`Audit::flush`], without blocking the runtime.
    pub async fn flush_async(&self) {
        let rx = self.request_flush();
        let _ =
            tokio::task::spawn_blocking(move || rx.recv_timeout(std::time::Duration::from_secs(1)))
                .await;
    }

    /// Waits (up to a second) until every queued record is on disk.
    pub fn flush(&self) {
        let _ = self
            .request_flush()
            .recv_timeout(std::time::Duration::from_secs(1));
    }

    /// The live file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

struct Writer {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    seq: u64,
    prev: String,
}

impl Writer {
    fn open(path: &Path) -> std::io::Result<Self> {
        let (seq, prev) = match last_line(path)? {
            Some(raw) => match serde_json::from_slice::<Line>(&raw) {
                Ok(l) => (l.seq + 1, hash(&raw)),
                // A damaged tail still chains on: verify reports the damage.
                Err(_) => (0, hash(&raw)),
            },
            None => match last_line(&rotated(path, 1))? {
                Some(raw) => (
                    serde_json::from_slice::<Line>(&raw)
                        .map(|l| l.seq + 1)
                        .unwrap_or(0),
                    hash(&raw),
                ),
                None => (0, GENESIS.to_owned()),
            },
        };
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            seq,
            prev,
        })
    }

    /// Appends a batch with one write: runs of equal records become one line each.
    fn append(&mut self, records: Vec<Record>) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.size >= ROTATE_BYTES {
            self.rotate()?;
        }
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let (mut seq, mut prev) = (self.seq, self.prev.clone());
        let mut out = Vec::new();
        let mut it = records.into_iter().peekable();
        while let Some(record) = it.next() {
            let mut count = 1;
            while it.next_if_eq(&record).is_some() {
                count += 1;
            }
            let line = Line {
                seq,
                ts,
                record,
                count,
                prev,
            };
            let start = out.len();
            serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
            prev = hash(&out[start..]);
            out.push(b'\n');
            seq += 1;
        }
        // The chain moves on only once its lines are written.
        self.file.write_all(&out)?;
        self.size += out.len() as u64;
        (self.seq, self.prev) = (seq, prev);
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_all()?;
        for n in (1..KEEP).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn last_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut last = None;
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if !line.is_empty() {
            last = Some(line);
        }
    }
    Ok(last)
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Lines checked (across rotated files).
    pub lines: u64,
    /// The first problem: file, 1-based line number in it, and what is wrong.
    pub problem: Option<(String, u64, String)>,
}

/// Checks the chain across the rotated files (oldest first) and the live one.
pub fn verify(dir: &Path) -> std::io::Result<Verdict> {
    let live = dir.join(FILE);
    let mut files: Vec<PathBuf> = (1..=KEEP)
        .rev()
        .map(|n| rotated(&live, n))
        .filter(|p| p.exists())
        .collect();
    files.push(live);
    let mut prev: Option<(String, u64)> = None; // (hash, seq) of the previous line
    let mut count = 0;
    for f in files {
        let Ok(file) = std::fs::File::open(&f) else {
            continue;
        };
        for (i, raw) in BufReader::new(file).split(b'\n').enumerate() {
            let raw = raw?;
            if raw.is_empty() {
                continue;
            }
            count += 1;
            let at = |why: String| Verdict {
                lines: count,
                problem: Some((f.display().to_string(), i as u64 + 1, why)),
            };
            let line: Line = match serde_json::from_slice(&raw) {
                Ok(l) => l,
                Err(_) => return Ok(at("not a valid audit record (edited or damaged)".into())),
            };
            match &prev {
                None => {
                    // The oldest kept line chains to a rotated-away file; only the very first
                    // line of a log starts from the genesis value.
                    if line.seq == 0 && line.prev != GENESIS {
                        return Ok(at("the first line does not start the chain".into()));
                    }
                }
                Some((h, seq)) => {
                    if line.seq != seq + 1 {
                        return Ok(at(format!(
                            "sequence jumps from {seq} to {}: lines were removed or reordered",
                            line.seq
                        )));
                    }
                    if &line.prev != h {
                        // This line's record of its predecessor disagrees: the line before
                        // it was edited.
                        let edited = if i == 0 { 1 } else { i as u64 };
                        return Ok(Verdict {
                            lines: count,
                            problem: Some((
                                f.display().to_string(),
                                edited,
                                "this line was edited (the next line's hash of it does not match)"
                                    .into(),
                            )),
                        });
                    }
                }
            }
            prev = Some((hash(&raw), line.seq));
        }
    }
    Ok(Verdict {
        lines: count,
        problem: None,
    })
}

/// The last `n` records of the live file.
pub fn tail(dir: &Path, n: usize) -> std::io::Result<Vec<Line>> {
    let file = match std::fs::File::open(dir.join(FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut all: Vec<Line> = BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_slice(&l).ok())
        .collect();
    let skip = all.len().saturating_sub(n);
    Ok(all.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(event: &str) -> Record {
        Record {
            event: event.to_owned().into(),
            outcome: "ok".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_clean_chain_verifies_and_each_tampering_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        let mut w = Writer::open(&p).unwrap();
        for i in 0..5 {
            w.append(vec![rec(&format!("e{i}"))]).unwrap();
        }
        drop(w);
        // Reopening continues the chain.
        Writer::open(&p).unwrap().append(vec![rec("e5")]).unwrap();
        assert_eq!(
            verify(dir.path()).unwrap(),
            Verdict {
                lines: 6,
                problem: None
            }
        );
        let original = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = original.lines().collect();

        // Edit line 3.
        let edited = original.replace("\"e2\"", "\"e9\"");
        std::fs::write(&p, &edited).unwrap();
        let v = verify(dir.path()).unwrap();
        assert_eq!(v.problem.as_ref().map(|p| p.1), Some(3), "{v:?}");

        // Remove line 4.
        let removed: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, l)| *l)
            .collect();
        std::fs::write(&p, removed.join("\n") + "\n").unwrap();
        assert!(
            verify(dir.path())
                .unwrap()
                .problem
                .unwrap()
                .2
                .contains("removed or reordered")
        );

        // Swap lines 2 and 3.
        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        std::fs::write(&p, swapped.join("\n") + "\n").unwrap();
        assert!(verify(dir.path()).unwrap().problem.is_some());
    }

    #[test]
    fn rotation_keeps_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        let mut w = Writer::open(&p).unwrap();
        w.append(vec![rec("a")]).unwrap();
        w.rotate().unwrap();
        w.append(vec![rec("b")]).unwrap();
        drop(w);
        assert!(rotated(&p, 1).exists());
        assert_eq!(
            verify(dir.path()).unwrap(),
            Verdict {
                lines: 2,
                problem: None
            }
        );
        assert_eq!(tail(dir.path(), 10).unwrap()[0].record.event, "b");
    }

    #[test]
    fn a_burst_of_the_same_event_is_one_line_with_its_count_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        let mut w = Writer::open(&p).unwrap();
        w.append(vec![rec("a"), rec("a"), rec("a"), rec("b"), rec("a")])
            .unwrap();
        drop(w);
        let lines = tail(dir.path(), 10).unwrap();
        let seen: Vec<(&str, u64)> = lines
            .iter()
            .map(|l| (l.record.event.as_ref(), l.count))
            .collect();
        assert_eq!(seen, [("a", 3), ("b", 1), ("a", 1)]);
        // A single event's line carries no count; the chain holds over the batch.
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.matches("\"count\"").count(), 1, "{text}");
        assert_eq!(verify(dir.path()).unwrap().problem, None);
    }

    #[test]
    fn records_queued_from_many_threads_are_all_written_by_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::start(dir.path()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let audit = audit.clone();
                s.spawn(move || {
                    for i in 0..250 {
                        audit.record(rec(&format!("t{t}-{i}")));
                    }
                });
            }
        });
        audit.flush();
        let lines = tail(dir.path(), usize::MAX).unwrap();
        assert_eq!(lines.iter().map(|l| l.count).sum::<u64>(), 1000);
        assert_eq!(verify(dir.path()).unwrap().problem, None);
    }
}
