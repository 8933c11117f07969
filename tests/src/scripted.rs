//! A scripted OAuth token endpoint for behaviour the real provider cannot be made to show
//! (HTTP 429 with Retry-After, 5xx answers, errors with HTTP 200, a slow answer, a connection
//! closed after the request was read). Loopback only; it records when each request came and
//! which refresh token it carried.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer: status, extra headers, JSON body.
pub type Answer = (u16, Vec<(String, String)>, String);

/// The status that makes the endpoint close the connection after reading the request,
/// without answering (as a provider that acted on it and then lost the connection).
pub const CLOSE: u16 = 0;

/// The channels of a held request: "it arrived" to the test, "answer now" from it.
type Hold = Arc<Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>>;

/// A refresh request held by the endpoint until the test releases it.
pub struct Held {
    arrived: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl Held {
    /// Waits until the held request has arrived (the provider has it, and has not answered).
    pub fn wait_arrived(&self) {
        self.arrived
            .recv_timeout(Duration::from_secs(60))
            .expect("the held refresh request never arrived");
    }

    /// Lets the endpoint answer it.
    pub fn release(&self) {
        let _ = self.release.send(());
    }
}

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
    /// The refresh token each refresh request carried, in order.
    pub used: Arc<Mutex<Vec<String>>>,
    /// Device-code token requests answered (one per sign-in).
    device: Arc<Mutex<usize>>,
    hold: Hold,
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
        let used: Arc<Mutex<Vec<String>>> = Arc::default();
        let hold: Hold = Arc::default();
        let (u2, h2) = (used.clone(), hold.clone());
        let device: Arc<Mutex<usize>> = Arc::default();
        let d2 = device.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                // One thread per connection: a held request must not stall the others.
                let d2 = d2.clone();
                let (s2, r2, b2, i2, j2, u2, h2) = (
                    s2.clone(),
                    r2.clone(),
                    b2.clone(),
                    i2.clone(),
                    j2.clone(),
                    u2.clone(),
                    h2.clone(),
                );
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
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
                        let token = body
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("refresh_token="))
                            .unwrap_or_default()
                            .to_owned();
                        u2.lock().unwrap().push(token);
                        let held = h2.lock().unwrap().take();
                        if let Some((arrived, release)) = held {
                            let _ = arrived.send(());
                            let _ = release.recv_timeout(Duration::from_secs(120));
                        }
                        s2.lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or((200, vec![], ok_tokens(n)))
                    } else {
                        if body.contains("device_code") {
                            *d2.lock().unwrap() += 1;
                        }
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
                    if status == CLOSE {
                        // Dropping the stream closes the connection with no answer.
                        return;
                    }
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
                });
            }
        });
        Self {
            id_token,
            jwks,
            base,
            script,
            refreshes,
            used,
            device,
            hold,
        }
    }

    /// Holds the next refresh request: it is read, then answered only after
    /// [`Held::release`].
    pub fn hold_next_refresh(&self) -> Held {
        let (arrived_tx, arrived) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        *self.hold.lock().unwrap() = Some((arrived_tx, release_rx));
        Held { arrived, release }
    }

    /// How many device-code token requests have been answered.
    pub fn device_grants(&self) -> usize {
        *self.device.lock().unwrap()
    }

    /// The refresh token the last refresh request carried.
    pub fn last_used(&self) -> String {
        self.used
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }

    /// The plugin manifest that points at it.
    pub fn manifest(&self, id: &str) -> String {
        format!(
            "id = \"{id}\"\nname = \"Scripted\"\nkind = \"oauth2\"\nflows = [\"device\"]\n[endpoints]\ntoken = \"{b}/token\"\ndevice_authorization = \"{b}/device\"\n",
            b = self.base
        )
    }
}
