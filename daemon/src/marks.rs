//! Marks of refreshes in flight: one small file per account, present while a refresh request
//! is out at the provider. Found at start-up, a mark means the daemon died between sending a
//! refresh token and storing what came back.
//!
//! The marks are files of their own, not part of the state file, because they are set and
//! cleared on every refresh: a durable rewrite of the state file (two fsyncs) on each side of
//! the provider call was most of a refresh's own latency. A mark is written without fsync on
//! purpose. A killed daemon leaves it in the page cache, which is the crash it is for; power
//! lost mid-refresh may lose it, and then the next refresh still tells the truth (the
//! provider refuses a spent token), only less early. No secret is ever in a mark.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The folder of marks, beside the state file.
pub const DIR: &str = "refreshing";

/// Refresh-in-flight marks in one folder.
#[derive(Debug, Clone)]
pub struct RefreshMarks {
    dir: PathBuf,
}

/// An account's mark file: the SHA-256 of its name, so every name (".", "..", up to the
/// longest allowed, whose hex would pass the file-name limit) is one short, distinct file.
fn file_name(account: &str) -> String {
    crate::ids::sha256_hex(account.as_bytes())
}

impl RefreshMarks {
    /// Marks kept in `data_dir`/refreshing (created on first use, mode 0700).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(DIR),
        }
    }

    /// The folder of the marks, for error messages.
    pub fn folder(&self) -> &Path {
        &self.dir
    }

    /// Records that a refresh of `account` is out since `at` (Unix seconds).
    pub fn set(&self, account: &str, at: u64) -> io::Result<()> {
        crate::atomic::ensure_private_dir(&self.dir)?;
        let path = self.dir.join(file_name(account));
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{at}\n{account}\n").as_bytes()));
        if written.is_err() {
            // The refresh fails without going out: no mark may stay to report it.
            let _ = fs::remove_file(&path);
        }
        written
    }

    /// Clears `account`'s mark (none is not an error).
    pub fn clear(&self, account: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(file_name(account))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every mark: the account (`None` when a power cut took the file's contents) and when
    /// its refresh went out (0 when not recorded).
    pub fn list(&self) -> io::Result<Vec<(Option<String>, u64)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            let mut lines = text.lines();
            let at = lines
                .next()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            // The name must hash to the file's name: a file that does not is no mark of ours.
            let account = lines
                .next()
                .map(str::to_owned)
                .filter(|a| entry.file_name().to_str() == Some(file_name(a).as_str()));
            out.push((account, at));
        }
        out.sort();
        Ok(out)
    }

    /// Removes every mark (after they were reported).
    pub fn clear_all(&self) -> io::Result<()> {
        match fs::read_dir(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(entries) => {
                for entry in entries {
                    fs::remove_file(entry?.path())?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_lives_from_set_to_clear_and_names_its_account() {
        let dir = tempfile::tempdir().unwrap();
        let marks = RefreshMarks::new(dir.path());
        assert!(marks.list().unwrap().is_empty(), "no folder yet is no mark");
        let longest = "x".repeat(crate::agent::names::MAX_LEN);
        marks
            .set("GitHub:alice@example.com", 1_700_000_000)
            .unwrap();
        marks.set("..", 5).unwrap();
        marks.set(&longest, 6).unwrap();
        let mut listed = marks.list().unwrap();
        listed.sort_by_key(|(_, at)| *at);
        assert_eq!(
            listed,
            vec![
                (Some("..".to_owned()), 5),
                (Some(longest.clone()), 6),
                (Some("GitHub:alice@example.com".to_owned()), 1_700_000_000)
            ]
        );
        marks.clear("..").unwrap();
        marks.clear("..").unwrap();
        assert_eq!(marks.list().unwrap().len(), 2);
        marks.clear_all().unwrap();
        assert!(marks.list().unwrap().is_empty());
    }

    #[test]
    fn a_mark_that_lost_its_contents_still_counts_without_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let marks = RefreshMarks::new(dir.path());
        marks.set("work", 7).unwrap();
        fs::write(dir.path().join(DIR).join(file_name("work")), b"").unwrap();
        assert_eq!(marks.list().unwrap(), vec![(None, 0)]);
    }
}
