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

/// An account name as a file name: hex, so no name (".", "..", case on a case-blind file
/// system) can mean another file.
fn file_name(account: &str) -> String {
    account.bytes().map(|b| format!("{b:02x}")).collect()
}

fn account_of(file: &str) -> Option<String> {
    if !file.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..file.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(file.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
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
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(self.dir.join(file_name(account)))?;
        f.write_all(at.to_string().as_bytes())
    }

    /// Clears `account`'s mark (none is not an error).
    pub fn clear(&self, account: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(file_name(account))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every mark: the account and when its refresh went out (0 when the mark lost its time
    /// to a power cut).
    pub fn list(&self) -> io::Result<Vec<(String, u64)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(account) = entry.file_name().to_str().and_then(account_of) else {
                continue;
            };
            let at = fs::read_to_string(entry.path())
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            out.push((account, at));
        }
        out.sort();
        Ok(out)
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
        marks
            .set("GitHub:alice@example.com", 1_700_000_000)
            .unwrap();
        marks.set("..", 5).unwrap();
        assert_eq!(
            marks.list().unwrap(),
            vec![
                ("..".to_owned(), 5),
                ("GitHub:alice@example.com".to_owned(), 1_700_000_000)
            ]
        );
        marks.clear("..").unwrap();
        marks.clear("..").unwrap();
        assert_eq!(marks.list().unwrap().len(), 1);
    }

    #[test]
    fn a_mark_that_lost_its_time_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let marks = RefreshMarks::new(dir.path());
        marks.set("work", 7).unwrap();
        fs::write(dir.path().join(DIR).join(file_name("work")), b"").unwrap();
        fs::write(dir.path().join(DIR).join("not-hex"), b"1").unwrap();
        assert_eq!(marks.list().unwrap(), vec![("work".to_owned(), 0)]);
    }
}
