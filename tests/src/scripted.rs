//! A scripted OAuth token endpoint for behaviour the real provider cannot be made to show
//! (HTTP 429 with Retry-After, 5xx answers). Loopback only; it records when each request came.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One scripted answer: status, extra headers, JSON body.
pub type Answer = (u16, Vec<(String, String)>, String);

/// The running endpoint.
pub struct Scripted {
    /// The ID token the next device-code grant returns (for OIDC-mode tests).
    pub id_token: Arc<Mutex<Option<String>>>,
    /// The JWKS document served at `/jwks`.
    pub jwks: Arc<Mutex<String>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Answers for the next refresh requests, in order; when empty, refreshes succeed.
    pub script: Arc<Mutex<VecDeque<Answer>>>,
    /// When each refresh request arrived.
    pub refreshes: Arc<Mutex<Vec<Instant>>>,
}

fn ok_tokens(n: usize) -> String {
    format!(
        r#"{{"access_token":"scripted-access-{n}","refresh_token":"scripted-refresh-{n}","token_type":"Bearer","expires_in":1}}"#
    )
}

impl Scripted {
    /// Starts it on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let refreshes: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let id_token: Arc<Mutex<Option<String>>> = Arc::default();
        let jwks: Arc<Mutex<String>> = Arc::new(Mutex::new(r#"{"keys":[]}"#.into()));
        let (s2, r2, b2) = (script.clone(), refreshes.clone(), base.clone());
        let (i2, j2) = (id_token.clone(), jwks.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let body = String::from_utf8_lossy(&body).into_owned();
                let (status, headers, json) = if request_line
                    .contains("/.well-known/openid-configuration")
                {
                    (
                        200,
                        vec![],
                        format!(
                            r#"{{"issuer":"{b2}","token_endpoint":"{b2}/token","device_authorization_endpoint":"{b2}/device","jwks_uri":"{b2}/jwks","id_token_signing_alg_values_supported":["ES256"]}}"#
                        ),
                    )
                } else if request_line.contains("/jwks") {
                    (200, vec![], j2.lock().unwrap().clone())
                } else if request_line.contains("/device") {
                    (
                        200,
                        vec![],
                        format!(
                            r#"{{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"{b2}/activate","expires_in":60,"interval":1}}"#
                        ),
                    )
                } else if body.contains("grant_type=refresh_token") {
                    let mut r = r2.lock().unwrap();
                    r.push(Instant::now());
                    let n = r.len();
                    drop(r);
                    s2.lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((200, vec![], ok_tokens(n)))
                } else {
                    match i2.lock().unwrap().clone() {
                        Some(id) => {
                            let t = ok_tokens(0);
                            (
                                200,
                                vec![],
                                format!("{},\"id_token\":\"{id}\"}}", &t[..t.len() - 1]),
                            )
                        }
                        None => (200, vec![], ok_tokens(0)),
                    }
                };
                let reason = match status {
                    200 => "OK",
                    429 => "Too Many Requests",
                    503 => "Service Unavailable",
                    _ => "Error",
                };
                let mut out = stream;
                let mut head = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    json.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(json.as_bytes());
            }
        });
        Self {
            id_token,
            jwks,
            base,
            script,
            refreshes,
        }
    }

    /// The plugin manifest that points at it.
    pub fn manifest(&self, id: &str) -> String {
        format!(
            "id = \"{id}\"\nname = \"Scripted\"\nkind = \"oauth2\"\nflows = [\"device\"]\n[endpoints]\ntoken = \"{b}/token\"\ndevice_authorization = \"{b}/device\"\n",
            b = self.base
        )
    }
}
