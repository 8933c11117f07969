//! `keyfob approve` driven by a test: the real interactive approver on a pseudo-terminal of
//! its own (util-linux `script`), in a session of its own, as a person's terminal would run
//! it; the test types the answers and reads the prompts through that terminal.

use crate::TestEnv;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a test waits for the approver to show something before failing.
const PATIENCE: Duration = Duration::from_secs(90);

/// A running `keyfob approve`.
pub struct Approver {
    child: Child,
    /// Where the detached approver wrote its pid.
    pidfile: std::path::PathBuf,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Everything it printed (stdout and stderr), for the secrets check.
    pub transcript: Arc<Mutex<String>>,
}

impl Approver {
    /// Starts `keyfob approve` and waits until the daemon counts it as an approver.
    pub fn start(env: &TestEnv) -> Self {
        // Reparented away from this test (setsid -f), on a terminal and in a session of its
        // own (`script` runs it on a new pseudo-terminal), as a person's terminal would be: a
        // program cannot answer prompts through an approver it started, one reading a pipe,
        // or one in its own session. `script`'s pid goes to a file, so it can be stopped.
        let pidfile = env.root().join(format!(
            "approver-{}.pid",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let mut child = env
            .command_of(
                "setsid",
                &[
                    "-f",
                    "sh",
                    "-c",
                    "echo $$ >\"$0\"; exec \"$@\"",
                    &pidfile.display().to_string(),
                    "script",
                    "-qfec",
                    &format!("exec {} approve", crate::bin("keyfob").display()),
                    "/dev/null",
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyfob approve");
        let transcript = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("stdout");
        let t = transcript.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // A terminal ends lines with \r\n.
                let line = line.trim_end_matches('\r').to_owned();
                t.lock().expect("transcript").push_str(&format!("{line}\n"));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The terminal carries stderr too: the approver is ready once it says so.
        let mut err = child.stderr.take().expect("stderr");
        let t = transcript.clone();
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            t.lock().expect("transcript").push_str(&rest);
        });
        let ready = lines
            .recv_timeout(PATIENCE)
            .expect("keyfob approve did not start");
        assert!(
            ready.contains("waiting for requests"),
            "keyfob approve did not start: {ready}"
        );
        let stdin = child.stdin.take();
        Self {
            child,
            pidfile,
            stdin,
            lines,
            transcript,
        }
    }

    /// The next line containing `needle`.
    pub fn line_containing(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("keyfob approve showed no line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The next approval request, as shown (from its title to its expiry line).
    pub fn next_request(&self) -> String {
        let mut block = self.line_containing("Approval request #");
        loop {
            let line = self
                .lines
                .recv_timeout(PATIENCE)
                .expect("the rest of the request");
            block.push('\n');
            block.push_str(&line);
            if line.trim_start().starts_with("expires:") {
                return block;
            }
        }
    }

    /// Types an answer (`o`, `f 1h`, `a`, `d`).
    pub fn answer(&mut self, answer: &str) {
        let stdin = self.stdin.as_mut().expect("approver stdin");
        writeln!(stdin, "{answer}").expect("answer the approver");
        stdin.flush().expect("flush");
    }

    /// Everything printed so far.
    pub fn text(&self) -> String {
        self.transcript.lock().expect("transcript").clone()
    }
}

/// `keyfob ARGS` (a key creation, which needs a person's yes), approved once by a person at
/// a `keyfob approve` started for it; returns its stdout. The prompt must contain `shows`.
pub fn approved(env: &TestEnv, args: &[&str], shows: &str) -> String {
    let mut ap = Approver::start(env);
    let c = env.spawn_keyfob(args);
    let req = ap.next_request();
    assert!(
        req.contains(shows),
        "the prompt does not show {shows:?}: {req}"
    );
    ap.answer("o");
    let out = c.wait_with_output().expect("wait keyfob");
    assert!(
        out.status.success(),
        "keyfob {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

impl Drop for Approver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}
