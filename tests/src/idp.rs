//! The real OpenID provider in `tests/idp` (oidc-provider on 127.0.0.1), started per test,
//! with its grant log; and a browser stand-in that approves sign-ins on the provider's own
//! pages, as a person would.

use crate::tool;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Confidential client of the test provider (used to introspect and replay).
pub const CONFIDENTIAL: (&str, &str) = ("keyfob-confidential", "keyfob-confidential-secret");

/// The folder with server.mjs and browser.mjs.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("idp")
}

/// A running provider.
pub struct Idp {
    child: Child,
    /// Its issuer URL.
    pub issuer: String,
    log: Arc<Mutex<Vec<Value>>>,
}

impl Idp {
    /// Starts the provider with access tokens living `at_ttl` seconds.
    pub fn start(at_ttl: u64) -> Self {
        assert!(
            dir().join("node_modules/oidc-provider").is_dir(),
            "the test provider is not installed: run `npm ci --prefix tests/idp` (scripts/test does)"
        );
        let mut child = tool("node", "nodejs")
            .arg("server.mjs")
            .current_dir(dir())
            .env("IDP_AT_TTL", at_ttl.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the test provider");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let issuer = loop {
            let line = lines.next().expect("provider exited").expect("read");
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["event"] == "listening"
            {
                break v["issuer"].as_str().expect("issuer").to_owned();
            }
        };
        let log: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Self { child, issuer, log }
    }

    /// Successful token requests of `grant_type` so far.
    pub fn grants(&self, grant_type: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["event"] == "grant.success" && v["grant_type"] == grant_type)
            .count()
    }

    /// Opens `url` in the browser stand-in and submits the provider's pages; returns what the
    /// last page said.
    pub fn approve(&self, url: &str) -> Value {
        let out = tool("node", "nodejs")
            .arg(dir().join("browser.mjs"))
            .arg(url)
            .output()
            .expect("browser.mjs");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert!(out.status.success(), "the browser flow broke: {v}");
        v
    }

    /// RFC 7662 introspection of a token, as the confidential client.
    pub fn introspect(&self, token: &str) -> Value {
        self.post("/token/introspection", &[("token", token)])
    }

    /// A refresh at the token endpoint with `refresh_token`, as client `client_id` (public).
    pub fn refresh_raw(&self, client_id: &str, refresh_token: &str) -> Value {
        self.post_as(
            None,
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ],
        )
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        self.post_as(Some(CONFIDENTIAL), path, form)
    }

    fn post_as(&self, auth: Option<(&str, &str)>, path: &str, form: &[(&str, &str)]) -> Value {
        let mut c: Command = tool("curl", "curl");
        c.args(["-s", "-X", "POST"]);
        if let Some((u, p)) = auth {
            c.args(["-u", &format!("{u}:{p}")]);
        }
        for (k, v) in form {
            c.args(["--data-urlencode", &format!("{k}={v}")]);
        }
        c.arg(format!("{}{path}", self.issuer));
        let out = c.output().expect("curl");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
