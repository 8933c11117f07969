//! A fake identity provider that answers the way one of four real providers documents it
//! (GitHub OAuth Apps and GitHub Apps, Microsoft Entra ID, Google, GitLab), so tests can run
//! Keyfob's bundled provider plugins against it: [`Shaped::plugin_toml`] is the bundled
//! manifest with every real origin replaced by this server's loopback origin.
//!
//! One origin serves every endpoint of the shape. The person at the other end of a sign-in is
//! scripted with [`Shaped::person`]; everything the client sent is recorded for assertions.
//! Loopback only, blocking, one thread per connection, `Connection: close`.

use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which provider the server imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A GitHub OAuth App: tokens that never expire, no refresh token, comma-separated scopes.
    GithubOauthApp,
    /// A GitHub App acting for a user: 8-hour `ghu_` tokens with rotating `ghr_` refresh tokens.
    GithubApp,
    /// Microsoft Entra ID (v2.0 endpoints), multi-tenant.
    Entra,
    /// Google accounts: confidential desktop clients, restricted device-flow scopes.
    Google,
    /// GitLab (gitlab.com): Doorkeeper with rotating refresh tokens.
    Gitlab,
}

impl Shape {
    /// The bundled plugin this shape imitates.
    pub fn plugin_id(self) -> &'static str {
        match self {
            Shape::GithubOauthApp | Shape::GithubApp => "github",
            Shape::Entra => "microsoft",
            Shape::Google => "google",
            Shape::Gitlab => "gitlab",
        }
    }

    /// Every real origin of the provider that a manifest might name.
    pub fn origins(self) -> &'static [&'static str] {
        match self {
            Shape::GithubOauthApp | Shape::GithubApp => {
                &["https://github.com", "https://api.github.com"]
            }
            Shape::Entra => &[
                "https://login.microsoftonline.com",
                "https://login.microsoft.com",
                "https://login.live.com",
                "https://graph.microsoft.com",
            ],
            Shape::Google => &[
                "https://accounts.google.com",
                "https://oauth2.googleapis.com",
                "https://openidconnect.googleapis.com",
                "https://www.googleapis.com",
            ],
            Shape::Gitlab => &["https://gitlab.com"],
        }
    }

    fn is_github(self) -> bool {
        matches!(self, Shape::GithubOauthApp | Shape::GithubApp)
    }
}

/// How the person answers a sign-in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Person {
    /// Signs in and consents: the client gets its tokens.
    #[default]
    Approve,
    /// Says no: the shape's denial error (`access_denied`, Entra's `authorization_declined`).
    Deny,
    /// Never answers: the device code expires (`expired_token`).
    Ignore,
}

/// The tenant id Entra ID tokens carry unless [`Shaped::entra_tenant`] says otherwise.
pub const ENTRA_TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// The tenant of personal Microsoft accounts.
pub const CONSUMERS_TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// The `kid` of the key that signs every ID token (published in the shape's JWKS).
pub const KID: &str = "shaped-es256";

/// The `sub` of the one person who signs in, per shape.
pub fn subject(shape: Shape) -> &'static str {
    match shape {
        Shape::GithubOauthApp | Shape::GithubApp => "1234567",
        Shape::Entra => "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        Shape::Google => "110169484474386276334",
        Shape::Gitlab => "4242",
    }
}

/// Allowed slack when checking that polls keep the interval: a client that sleeps the
/// interval measured from its previous request may arrive a few milliseconds early.
const POLL_SLACK: Duration = Duration::from_millis(100);

/// The RFC 8628 device grant type.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Scopes Google allows in the device flow (the `BASE` spellings of the URLs are accepted
/// too, since [`Shaped::plugin_toml`] rewrites `https://www.googleapis.com`).
const GOOGLE_DEVICE_SCOPES: &[&str] = &[
    "openid",
    "email",
    "profile",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
];

/// One pending device sign-in.
struct Device {
    client_id: String,
    scope: String,
    issued: Instant,
    expires_in: u64,
    interval: u64,
    last_poll: Option<Instant>,
    /// Polls the server looked at (not the ones answered `slow_down`).
    polls: usize,
    /// Set once the person said no or the code expired; later polls get the same error.
    ended: Option<Fail>,
}

/// One authorization code from the browser flow.
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: Option<(String, String)>,
    nonce: Option<String>,
    scope: String,
    /// Google issues a refresh token only with `access_type=offline`, and then only when
    /// consent was shown.
    offline: bool,
}

/// One sign-in's grant: its tokens live and die together.
struct Grant {
    client_id: String,
    scope: String,
    live: bool,
}

/// Everything the server remembers and records.
struct State {
    person: Person,
    after_polls: usize,
    interval: u64,
    access_ttl: Option<u64>,
    tid: String,
    iss_override: Option<String>,
    slow_down_next: bool,
    devices: HashMap<String, Device>,
    codes: HashMap<String, Code>,
    grants: Vec<Grant>,
    /// Refresh token → (grant, still usable).
    refresh: HashMap<String, (usize, bool)>,
    /// Access token → grant.
    access: HashMap<String, usize>,
    /// Google clients the person has consented to (a second consent-less sign-in gets no
    /// refresh token).
    consented: HashSet<String>,
    // Records.
    requests: Vec<String>,
    polls: Vec<Instant>,
    grant_types: Vec<String>,
    refresh_used: Vec<String>,
    revoked: Vec<String>,
    secrets: Vec<bool>,
    accepts: Vec<String>,
    device_scopes: Vec<String>,
    access_issued: Vec<String>,
    refresh_issued: Vec<String>,
}

impl State {
    fn new() -> Self {
        Self {
            person: Person::Approve,
            after_polls: 1,
            interval: 1,
            access_ttl: None,
            tid: ENTRA_TID.into(),
            iss_override: None,
            slow_down_next: false,
            devices: HashMap::new(),
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            consented: HashSet::new(),
            requests: Vec::new(),
            polls: Vec::new(),
            grant_types: Vec::new(),
            refresh_used: Vec::new(),
            revoked: Vec::new(),
            secrets: Vec::new(),
            accepts: Vec::new(),
            device_scopes: Vec::new(),
            access_issued: Vec::new(),
            refresh_issued: Vec::new(),
        }
    }
}

/// The server proper, shared by the connection threads.
struct Server {
    shape: Shape,
    base: String,
    state: Mutex<State>,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

/// The running fake provider. Dropping it stops accepting connections.
pub struct Shaped {
    /// `http://127.0.0.1:PORT`: the origin of every endpoint.
    pub base: String,
    /// The provider it imitates.
    pub shape: Shape,
    server: Arc<Server>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Shaped {
    /// Starts it on a free loopback port.
    pub fn start(shape: Shape) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let server = Arc::new(Server {
            shape,
            base: base.clone(),
            state: Mutex::new(State::new()),
            key,
            rng,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, stop2) = (server.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s3 = s2.clone();
                std::thread::spawn(move || s3.serve(stream));
            }
        });
        Self {
            base,
            shape,
            server,
            addr,
            stop,
        }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.server.st()
    }

    /// The bundled plugin.toml of this provider with every real origin of the provider
    /// replaced by [`Shaped::base`]; everything else as shipped. Installed as a user plugin it
    /// overrides the bundled one.
    pub fn plugin_toml(&self) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins")
            .join(self.plugin_id())
            .join("plugin.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        self.shape
            .origins()
            .iter()
            .fold(text, |t, o| replace_origin(&t, o, &self.base))
    }

    /// The plugin id: "github", "microsoft", "google" or "gitlab".
    pub fn plugin_id(&self) -> &'static str {
        self.shape.plugin_id()
    }

    /// How the person answers sign-ins from now on (default [`Person::Approve`]), and after how
    /// many polls of a device sign-in (default 1: the first poll gets `authorization_pending`,
    /// the next is answered; 0 answers the first poll). With [`Person::Ignore`] the device code
    /// "expires" once those polls are done, so tests need not wait `expires_in`. In the browser
    /// flow the person answers at once: a code, an `access_denied` redirect, or a page that
    /// never redirects.
    pub fn person(&self, p: Person, after_polls: usize) {
        let mut st = self.st();
        st.person = p;
        st.after_polls = after_polls;
    }

    /// The polling interval the next device codes announce (default 1 second; the real
    /// providers say 5). Polls closer together than the interval get `slow_down`, which adds
    /// 5 seconds (RFC 8628 §3.5). 0 disables the check.
    pub fn interval(&self, secs: u64) {
        self.st().interval = secs;
    }

    /// Makes the next device poll get `slow_down` whatever its timing.
    pub fn slow_down_once(&self) {
        self.st().slow_down_next = true;
    }

    /// For Entra: the tenant id (`tid`) the next ID tokens carry, and optionally an `iss`
    /// other than `BASE/<tid>/v2.0` (to test a mismatch). Default tid: [`ENTRA_TID`].
    pub fn entra_tenant(&self, tid: &str, iss_override: Option<String>) {
        let mut st = self.st();
        st.tid = tid.into();
        st.iss_override = iss_override;
    }

    /// Makes every access token issued from now on live `secs` seconds (`expires_in`). No
    /// effect on [`Shape::GithubOauthApp`], whose tokens do not expire.
    pub fn access_ttl(&self, secs: u64) {
        self.st().access_ttl = Some(secs);
    }

    /// Kills every grant issued so far, as when the person removes the app's access or an
    /// admin revokes their sessions: their refresh tokens get the shape's `invalid_grant`.
    pub fn revoke_grants(&self) {
        for g in &mut self.st().grants {
            g.live = false;
        }
    }

    /// The JWKS document the shape serves (empty key list for GitHub, which has none).
    pub fn jwks(&self) -> String {
        self.server.jwks().to_string()
    }

    /// `METHOD /path` of every request received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.st().requests.clone()
    }

    /// When each device-code poll (token request with the device grant) arrived.
    pub fn polls(&self) -> Vec<Instant> {
        self.st().polls.clone()
    }

    /// The `grant_type` of each token request, in order (empty when absent).
    pub fn grants(&self) -> Vec<String> {
        self.st().grant_types.clone()
    }

    /// The refresh token each refresh request presented, in order.
    pub fn refresh_tokens_used(&self) -> Vec<String> {
        self.st().refresh_used.clone()
    }

    /// The tokens posted to the revocation endpoint, in order.
    pub fn revoked(&self) -> Vec<String> {
        self.st().revoked.clone()
    }

    /// Per device-authorization and token request, in order: whether a client secret was sent
    /// (form `client_secret` or HTTP Basic).
    pub fn client_secrets_seen(&self) -> Vec<bool> {
        self.st().secrets.clone()
    }

    /// The `Accept` header of each token request, in order (empty when absent).
    pub fn accept_headers(&self) -> Vec<String> {
        self.st().accepts.clone()
    }

    /// The `scope` asked at the device authorization endpoint, per request.
    pub fn device_scopes(&self) -> Vec<String> {
        self.st().device_scopes.clone()
    }

    /// Every access token issued, in order.
    pub fn access_tokens_issued(&self) -> Vec<String> {
        self.st().access_issued.clone()
    }

    /// Every refresh token issued, in order (the last one is the newest).
    pub fn refresh_tokens_issued(&self) -> Vec<String> {
        self.st().refresh_issued.clone()
    }
}

impl Drop for Shaped {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Replaces `origin` by `base` where it stands as a whole origin (not a prefix of a longer
/// host such as `https://github.com.example`).
fn replace_origin(text: &str, origin: &str, base: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(origin) {
        let after = &rest[i + origin.len()..];
        let whole = !after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        out.push_str(&rest[..i]);
        out.push_str(if whole { base } else { origin });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn read(stream: &TcpStream) -> Option<Self> {
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let mut parts = line.split_whitespace();
        let method = parts.next()?.to_owned();
        let target = parts.next()?.to_owned();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).ok()?;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        Some(Self {
            method,
            path: path.to_owned(),
            query: parse_form(query),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn form(&self) -> HashMap<String, String> {
        parse_form(&self.body)
    }

    fn wants_json(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.contains("application/json"))
    }

    /// The client's id and whether it sent a secret (form or HTTP Basic, RFC 6749 §2.3.1).
    fn client(&self, form: &HashMap<String, String>, shape: Shape) -> (Option<String>, bool) {
        let mut id = form.get("client_id").filter(|s| !s.is_empty()).cloned();
        let mut secret = form.get("client_secret").is_some_and(|s| !s.is_empty());
        // GitHub's token endpoint reads client credentials from the form only.
        if shape.is_github() {
            return (id, secret);
        }
        if let Some(b) = self.header("authorization").and_then(|a| {
            a.strip_prefix("Basic ")
                .or_else(|| a.strip_prefix("basic "))
        }) && let Ok(raw) = BASE64.decode(b.trim().as_bytes())
            && let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':')
        {
            let dec = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            if id.is_none() && !u.is_empty() {
                id = Some(dec(u));
            }
            secret |= !p.is_empty();
        }
        (id, secret)
    }
}

fn parse_form(s: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(s.as_bytes())
        .into_owned()
        .collect()
}

/// A response about to be written.
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    location: Option<String>,
}

impl Response {
    fn json(status: u16, v: Value) -> Self {
        Self {
            status,
            content_type: "application/json; charset=utf-8",
            body: v.to_string(),
            location: None,
        }
    }

    fn form(status: u16, v: &Value) -> Self {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in v.as_object().into_iter().flatten() {
            match v {
                Value::String(s) => ser.append_pair(k, s),
                other => ser.append_pair(k, &other.to_string()),
            };
        }
        Self {
            status,
            content_type: "application/x-www-form-urlencoded; charset=utf-8",
            body: ser.finish(),
            location: None,
        }
    }

    fn html(status: u16, text: &str) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            body: format!("<!doctype html><title>Sign in</title><p>{text}</p>\n"),
            location: None,
        }
    }

    fn redirect(to: String) -> Self {
        Self {
            status: 302,
            content_type: "text/html; charset=utf-8",
            body: String::new(),
            location: Some(to),
        }
    }

    fn not_found() -> Self {
        Self::json(
            404,
            json!({"error": "not_found", "error_description": "Not Found"}),
        )
    }

    fn write(self, mut out: TcpStream) {
        let reason = match self.status {
            200 => "OK",
            302 => "Found",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            428 => "Precondition Required",
            _ => "Error",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nPragma: no-cache\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if let Some(l) = self.location {
            head.push_str(&format!("Location: {l}\r\n"));
        }
        head.push_str("\r\n");
        let _ = out.write_all(head.as_bytes());
        let _ = out.write_all(self.body.as_bytes());
        let _ = out.flush();
    }
}

/// A failure the provider reports, rendered per shape by [`Server::fail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Pending,
    /// With the new interval.
    SlowDown(u64),
    Denied,
    Expired,
    BadDeviceCode,
    BadRefresh,
    /// An authorization code that is unknown, used, or for another client.
    BadCode,
    /// The `code_verifier` does not match the `code_challenge`.
    Pkce,
    RedirectMismatch,
    UnsupportedGrant,
    Missing(&'static str),
    NoSecret,
}

/// How the token response is encoded (GitHub answers form-encoded unless asked for JSON).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Enc {
    Json,
    Form,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// `YYYY-MM-DD hh:mm:ssZ`, Entra's error `timestamp`.
fn utc_timestamp(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl Server {
    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn random(&self, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.rng.fill(&mut b).expect("random");
        b
    }

    fn alnum(&self, n: usize) -> String {
        const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        self.random(n)
            .iter()
            .map(|b| A[usize::from(*b) % A.len()] as char)
            .collect()
    }

    fn guid(&self) -> String {
        let h = HEXLOWER.encode(&self.random(16));
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    fn serve(&self, stream: TcpStream) {
        let Some(req) = Request::read(&stream) else {
            return;
        };
        self.st()
            .requests
            .push(format!("{} {}", req.method, req.path));
        self.route(&req).write(stream);
    }

    fn route(&self, req: &Request) -> Response {
        let (get, post) = (req.method == "GET", req.method == "POST");
        let p = req.path.as_str();
        match self.shape {
            Shape::GithubOauthApp | Shape::GithubApp => match p {
                "/login/device/code" if post => self.device(req),
                "/login/oauth/access_token" if post => self.token(req),
                "/login/oauth/authorize" if get => self.authorize(req),
                "/login/device" if get => {
                    Response::html(200, "Enter the code displayed on your device")
                }
                _ => Response::not_found(),
            },
            Shape::Entra if p == "/devicelogin" && get => Response::html(200, "Enter code"),
            Shape::Entra => {
                let Some((tenant, rest)) = p
                    .strip_prefix('/')
                    .and_then(|r| r.split_once('/'))
                    .filter(|(t, _)| !t.is_empty())
                else {
                    return Response::not_found();
                };
                match rest {
                    "v2.0/.well-known/openid-configuration" if get => self.discovery(Some(tenant)),
                    "oauth2/v2.0/devicecode" if post => self.device(req),
                    "oauth2/v2.0/token" if post => self.token(req),
                    "oauth2/v2.0/authorize" if get => self.authorize(req),
                    "discovery/v2.0/keys" if get => Response::json(200, self.jwks()),
                    _ => Response::not_found(),
                }
            }
            Shape::Google => match p {
                "/.well-known/openid-configuration" if get => self.discovery(None),
                "/device/code" if post => self.device(req),
                "/token" if post => self.token(req),
                "/o/oauth2/v2/auth" if get => self.authorize(req),
                "/revoke" if post => self.revoke(req),
                "/oauth2/v3/certs" if get => Response::json(200, self.jwks()),
                "/device" if get => Response::html(200, "Enter the code displayed on your device"),
                _ => Response::not_found(),
            },
            Shape::Gitlab => match p {
                "/.well-known/openid-configuration" if get => self.discovery(None),
                "/oauth/authorize_device" if post => self.device(req),
                "/oauth/token" if post => self.token(req),
                "/oauth/authorize" if get => self.authorize(req),
                "/oauth/revoke" if post => self.revoke(req),
                "/oauth/discovery/keys" if get => Response::json(200, self.jwks()),
                "/oauth/device" if get => Response::html(200, "Device authorization"),
                _ => Response::not_found(),
            },
        }
    }

    fn jwks(&self) -> Value {
        if self.shape.is_github() {
            return json!({"keys": []});
        }
        let p = self.key.public_key().as_ref();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": KID,
            "x": BASE64URL_NOPAD.encode(&p[1..33]), "y": BASE64URL_NOPAD.encode(&p[33..65])}]})
    }

    fn discovery(&self, tenant: Option<&str>) -> Response {
        let b = &self.base;
        let mut d = match self.shape {
            Shape::Entra => {
                let t = tenant.unwrap_or("common");
                // Multi-tenant aliases publish the template; `consumers` and a tenant named by
                // its domain publish that tenant's id, as the real one does.
                let issuer = match t {
                    "organizations" | "common" => format!("{b}/{{tenantid}}/v2.0"),
                    "consumers" => format!("{b}/{CONSUMERS_TID}/v2.0"),
                    t if t.contains('.') => format!("{b}/{ENTRA_TID}/v2.0"),
                    t => format!("{b}/{t}/v2.0"),
                };
                // Real Entra publishes RS256 only; ring cannot generate RSA keys, so this
                // fake signs ES256 and says so.
                json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{b}/{t}/oauth2/v2.0/authorize"),
                    "token_endpoint": format!("{b}/{t}/oauth2/v2.0/token"),
                    "device_authorization_endpoint": format!("{b}/{t}/oauth2/v2.0/devicecode"),
                    "jwks_uri": format!("{b}/{t}/discovery/v2.0/keys"),
                    "end_session_endpoint": format!("{b}/{t}/oauth2/v2.0/logout"),
                    "response_modes_supported": ["query", "fragment", "form_post"],
                    "subject_types_supported": ["pairwise"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "token_endpoint_auth_methods_supported":
                        ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                    "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "nonce",
                        "preferred_username", "name", "tid", "ver", "oid"],
                    "request_uri_parameter_supported": false,
                    "tenant_region_scope": null,
                    "cloud_instance_name": "microsoftonline.com",
                })
            }
            Shape::Google => json!({
                "issuer": b,
                "authorization_endpoint": format!("{b}/o/oauth2/v2/auth"),
                "device_authorization_endpoint": format!("{b}/device/code"),
                "token_endpoint": format!("{b}/token"),
                "revocation_endpoint": format!("{b}/revoke"),
                "jwks_uri": format!("{b}/oauth2/v3/certs"),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["public"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "sub", "nonce"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
            }),
            Shape::Gitlab => json!({
                "issuer": b,
                "authorization_endpoint": format!("{b}/oauth/authorize"),
                "device_authorization_endpoint": format!("{b}/oauth/authorize_device"),
                "token_endpoint": format!("{b}/oauth/token"),
                "revocation_endpoint": format!("{b}/oauth/revoke"),
                "jwks_uri": format!("{b}/oauth/discovery/keys"),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["public"],
                "scopes_supported": ["api", "read_api", "read_user", "read_repository",
                    "write_repository", "openid", "profile", "email"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "claims_supported": ["iss", "sub", "aud", "exp", "iat", "sub_legacy", "name",
                    "nickname", "preferred_username", "email", "email_verified", "groups_direct"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "grant_types_supported": ["authorization_code", "password", "client_credentials",
                    "device_code", "refresh_token"],
            }),
            Shape::GithubOauthApp | Shape::GithubApp => return Response::not_found(),
        };
        d["response_types_supported"] = json!(["code", "id_token", "code id_token"]);
        d["id_token_signing_alg_values_supported"] = json!(["ES256"]);
        Response::json(200, d)
    }

    /// Renders `f` the way the shape does.
    fn fail(&self, f: Fail, enc: Enc) -> Response {
        match self.shape {
            Shape::GithubOauthApp | Shape::GithubApp => {
                const DEVICE_DOCS: &str = "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow";
                const TOKEN_DOCS: &str = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";
                let (code, desc, uri) = match f {
                    Fail::Pending => (
                        "authorization_pending",
                        "The authorization request is still pending.",
                        DEVICE_DOCS,
                    ),
                    Fail::SlowDown(_) => (
                        "slow_down",
                        "Too many requests have been made in the same timeframe.",
                        DEVICE_DOCS,
                    ),
                    Fail::Denied => (
                        "access_denied",
                        "The authorization request was denied.",
                        DEVICE_DOCS,
                    ),
                    Fail::Expired => ("expired_token", "The device code has expired.", DEVICE_DOCS),
                    Fail::BadDeviceCode => (
                        "incorrect_device_code",
                        "The device_code provided is not valid.",
                        DEVICE_DOCS,
                    ),
                    Fail::BadRefresh => (
                        "bad_refresh_token",
                        "The refresh token passed is incorrect or expired.",
                        TOKEN_DOCS,
                    ),
                    Fail::BadCode | Fail::Pkce => (
                        "bad_verification_code",
                        "The code passed is incorrect or expired.",
                        TOKEN_DOCS,
                    ),
                    Fail::RedirectMismatch => (
                        "redirect_uri_mismatch",
                        "The redirect_uri MUST match the registered callback URL for this application.",
                        TOKEN_DOCS,
                    ),
                    Fail::UnsupportedGrant => (
                        "unsupported_grant_type",
                        "The grant type is not supported.",
                        DEVICE_DOCS,
                    ),
                    Fail::Missing("grant_type") => (
                        "unsupported_grant_type",
                        "The grant type is not supported.",
                        DEVICE_DOCS,
                    ),
                    Fail::Missing("device_code") => (
                        "incorrect_device_code",
                        "The device_code provided is not valid.",
                        DEVICE_DOCS,
                    ),
                    Fail::Missing("refresh_token") => (
                        "bad_refresh_token",
                        "The refresh token passed is incorrect or expired.",
                        TOKEN_DOCS,
                    ),
                    Fail::Missing("code") => (
                        "bad_verification_code",
                        "The code passed is incorrect or expired.",
                        TOKEN_DOCS,
                    ),
                    Fail::Missing(_) | Fail::NoSecret => (
                        "incorrect_client_credentials",
                        "The client_id and/or client_secret passed are incorrect.",
                        TOKEN_DOCS,
                    ),
                };
                let mut body = json!({"error": code, "error_description": desc, "error_uri": uri});
                if let Fail::SlowDown(i) = f {
                    body["interval"] = json!(i);
                }
                // GitHub answers every token error with HTTP 200.
                match enc {
                    Enc::Json => Response::json(200, body),
                    Enc::Form => Response::form(200, &body),
                }
            }
            Shape::Entra => {
                let (status, code, num, desc) = match f {
                    Fail::Pending => (
                        400,
                        "authorization_pending",
                        70016,
                        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                    ),
                    Fail::SlowDown(_) => (
                        400,
                        "slow_down",
                        70016,
                        "OAuth 2.0 device flow error. Polling too frequently. Slow down.",
                    ),
                    Fail::Denied => (
                        400,
                        "authorization_declined",
                        70000,
                        "The end user denied the authorization request.",
                    ),
                    Fail::Expired => (
                        400,
                        "expired_token",
                        70019,
                        "Verification code expired. Have the user retry the sign-in.",
                    ),
                    Fail::BadDeviceCode => (
                        400,
                        "bad_verification_code",
                        70000,
                        "The provided value for the input parameter 'device_code' is not valid.",
                    ),
                    Fail::BadRefresh => (
                        400,
                        "invalid_grant",
                        9_002_313,
                        "Invalid request. Request is malformed or invalid. The refresh token has been revoked or is invalid.",
                    ),
                    Fail::BadCode => (
                        400,
                        "invalid_grant",
                        54005,
                        "OAuth2 Authorization code was already redeemed or is invalid.",
                    ),
                    Fail::Pkce => (
                        400,
                        "invalid_grant",
                        501_481,
                        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                    ),
                    Fail::RedirectMismatch => (
                        400,
                        "invalid_grant",
                        500_112,
                        "The reply address does not match the reply address provided when requesting Authorization code.",
                    ),
                    Fail::UnsupportedGrant => (
                        400,
                        "unsupported_grant_type",
                        70003,
                        "The app requested an unsupported grant type.",
                    ),
                    Fail::Missing("client_id") => (
                        400,
                        "invalid_request",
                        900_144,
                        "The request body must contain the following parameter: 'client_id'.",
                    ),
                    Fail::Missing(_) => (
                        400,
                        "invalid_request",
                        900_144,
                        "The request body must contain a required parameter.",
                    ),
                    Fail::NoSecret => (
                        401,
                        "invalid_client",
                        7_000_218,
                        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                    ),
                };
                let (trace, corr) = (self.guid(), self.guid());
                let ts = utc_timestamp(now_secs());
                Response::json(
                    status,
                    json!({
                        "error": code,
                        "error_description": format!("AADSTS{num}: {desc} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
                        "error_codes": [num],
                        "timestamp": ts,
                        "trace_id": trace,
                        "correlation_id": corr,
                        "error_uri": format!("{}/error?code={num}", self.base),
                    }),
                )
            }
            Shape::Google => {
                let (status, code, desc) = match f {
                    Fail::Pending => (428, "authorization_pending", "Precondition Required"),
                    Fail::SlowDown(_) => (403, "slow_down", "Forbidden"),
                    Fail::Denied => (403, "access_denied", "Forbidden"),
                    Fail::Expired => (400, "expired_token", "Bad Request"),
                    Fail::BadDeviceCode => (400, "invalid_grant", "Malformed auth code."),
                    Fail::BadRefresh => {
                        (400, "invalid_grant", "Token has been expired or revoked.")
                    }
                    Fail::BadCode => (400, "invalid_grant", "Malformed auth code."),
                    Fail::Pkce => (400, "invalid_grant", "Invalid code verifier."),
                    Fail::RedirectMismatch => (400, "redirect_uri_mismatch", "Bad Request"),
                    Fail::UnsupportedGrant => {
                        (400, "unsupported_grant_type", "Invalid grant_type.")
                    }
                    Fail::Missing(p) => {
                        return Response::json(
                            400,
                            json!({"error": "invalid_request",
                                "error_description": format!("Missing required parameter: {p}")}),
                        );
                    }
                    Fail::NoSecret => (401, "invalid_client", "client_secret is missing."),
                };
                Response::json(status, json!({"error": code, "error_description": desc}))
            }
            Shape::Gitlab => {
                let invalid_grant = "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";
                let (status, code, desc) = match f {
                    Fail::Pending => (
                        400,
                        "authorization_pending",
                        "The authorization request is still pending as the end user hasn't yet completed the user-interaction steps.",
                    ),
                    Fail::SlowDown(_) => (
                        400,
                        "slow_down",
                        "The client is polling too quickly and should back off at a reasonable rate.",
                    ),
                    Fail::Denied => (
                        400,
                        "access_denied",
                        "The resource owner or authorization server denied the request.",
                    ),
                    Fail::Expired => (
                        400,
                        "expired_token",
                        "The device verification code has expired.",
                    ),
                    Fail::BadDeviceCode
                    | Fail::BadRefresh
                    | Fail::BadCode
                    | Fail::Pkce
                    | Fail::RedirectMismatch => (400, "invalid_grant", invalid_grant),
                    Fail::UnsupportedGrant => (
                        400,
                        "unsupported_grant_type",
                        "The authorization grant type is not supported by the authorization server.",
                    ),
                    Fail::Missing(_) => (400, "invalid_request", "Missing required parameter."),
                    Fail::NoSecret => (
                        401,
                        "invalid_client",
                        "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
                    ),
                };
                Response::json(status, json!({"error": code, "error_description": desc}))
            }
        }
    }

    fn device(&self, req: &Request) -> Response {
        let form = req.form();
        let (client_id, secret) = req.client(&form, self.shape);
        let scope = form.get("scope").cloned().unwrap_or_default();
        let enc = if !self.shape.is_github() || req.wants_json() {
            Enc::Json
        } else {
            Enc::Form
        };
        let mut st = self.st();
        st.secrets.push(secret);
        st.device_scopes.push(scope.clone());
        if self.shape == Shape::Google && !secret {
            return self.fail(Fail::NoSecret, enc);
        }
        let Some(client_id) = client_id else {
            return self.fail(Fail::Missing("client_id"), enc);
        };
        if self.shape == Shape::Entra && scope.is_empty() {
            return self.fail(Fail::Missing("scope"), enc);
        }
        if self.shape == Shape::Google {
            let allowed = |s: &str| {
                GOOGLE_DEVICE_SCOPES.contains(&s)
                    || s.strip_prefix(&self.base).is_some_and(|rest| {
                        GOOGLE_DEVICE_SCOPES
                            .contains(&format!("https://www.googleapis.com{rest}").as_str())
                    })
            };
            if scope.is_empty() {
                return self.fail(Fail::Missing("scope"), enc);
            }
            if !scope.split_whitespace().all(allowed) {
                return Response::json(400, json!({"error": "invalid_scope"}));
            }
        }
        let device_code = match self.shape {
            Shape::GithubOauthApp | Shape::GithubApp => HEXLOWER.encode(&self.random(20)),
            Shape::Gitlab => self.alnum(43),
            Shape::Entra => format!("DAQABAAEAAAD{}", self.alnum(120)),
            Shape::Google => format!("AH-1Ng{}", self.alnum(70)),
        };
        let (user_code, expires_in) = match self.shape {
            Shape::GithubOauthApp | Shape::GithubApp => ("ABCD-1234", 900),
            Shape::Entra => ("F7QK9HW3U", 900),
            Shape::Google => ("GQVQ-JKEC", 1800),
            Shape::Gitlab => ("0A44L90H", 300),
        };
        let interval = st.interval;
        st.devices.insert(
            device_code.clone(),
            Device {
                client_id,
                scope,
                issued: Instant::now(),
                expires_in,
                interval,
                last_poll: None,
                polls: 0,
                ended: None,
            },
        );
        drop(st);
        let b = &self.base;
        let body = match self.shape {
            Shape::GithubOauthApp | Shape::GithubApp => json!({
                "device_code": device_code, "user_code": user_code,
                "verification_uri": format!("{b}/login/device"),
                "expires_in": expires_in, "interval": interval,
            }),
            Shape::Entra => json!({
                "user_code": user_code, "device_code": device_code,
                "verification_uri": format!("{b}/devicelogin"),
                "expires_in": expires_in, "interval": interval,
                "message": format!("To sign in, use a web browser to open the page {b}/devicelogin and enter the code {user_code} to authenticate."),
            }),
            // Google spells it verification_url.
            Shape::Google => json!({
                "device_code": device_code, "user_code": user_code,
                "expires_in": expires_in, "interval": interval,
                "verification_url": format!("{b}/device"),
            }),
            Shape::Gitlab => json!({
                "device_code": device_code, "user_code": user_code,
                "verification_uri": format!("{b}/oauth/device"),
                "verification_uri_complete": format!("{b}/oauth/device?user_code={user_code}"),
                "expires_in": expires_in, "interval": interval,
            }),
        };
        match enc {
            Enc::Json => Response::json(200, body),
            Enc::Form => Response::form(200, &body),
        }
    }

    fn token(&self, req: &Request) -> Response {
        let form = req.form();
        let (client_id, secret) = req.client(&form, self.shape);
        let enc = if !self.shape.is_github() || req.wants_json() {
            Enc::Json
        } else {
            Enc::Form
        };
        let grant_type = form.get("grant_type").cloned().unwrap_or_default();
        let mut st = self.st();
        st.secrets.push(secret);
        st.accepts
            .push(req.header("accept").unwrap_or_default().to_owned());
        st.grant_types.push(grant_type.clone());
        if grant_type == DEVICE_GRANT {
            st.polls.push(Instant::now());
        }
        if self.shape == Shape::Google && !secret {
            return self.fail(Fail::NoSecret, enc);
        }
        let Some(client_id) = client_id else {
            return self.fail(Fail::Missing("client_id"), enc);
        };
        match grant_type.as_str() {
            DEVICE_GRANT => self.poll(&mut st, &form, &client_id, enc),
            "refresh_token" => self.refresh(&mut st, &form, &client_id, enc),
            "authorization_code" => self.redeem(&mut st, &form, &client_id, enc),
            // GitHub's web flow takes the code without a grant_type.
            "" if self.shape.is_github() && form.contains_key("code") => {
                self.redeem(&mut st, &form, &client_id, enc)
            }
            "client_credentials" if self.shape == Shape::Entra => {
                if !secret {
                    return self.fail(Fail::NoSecret, enc);
                }
                let scope = form.get("scope").cloned().unwrap_or_default();
                if !scope.ends_with("/.default") {
                    return Response::json(
                        400,
                        json!({"error": "invalid_scope",
                            "error_description": "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
                            "error_codes": [1_002_012]}),
                    );
                }
                let g = new_grant(&mut st, &client_id, &scope);
                let ttl = st.access_ttl.unwrap_or(3599);
                let at = self.access_token(&mut st, g);
                Response::json(
                    200,
                    json!({"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl,
                        "access_token": at}),
                )
            }
            "" => self.fail(Fail::Missing("grant_type"), enc),
            _ => self.fail(Fail::UnsupportedGrant, enc),
        }
    }

    fn poll(
        &self,
        st: &mut State,
        form: &HashMap<String, String>,
        client_id: &str,
        enc: Enc,
    ) -> Response {
        let Some(code) = form.get("device_code") else {
            return self.fail(Fail::Missing("device_code"), enc);
        };
        let now = Instant::now();
        let forced = std::mem::take(&mut st.slow_down_next);
        let (person, after) = (st.person, st.after_polls);
        let Some(dev) = st
            .devices
            .get_mut(code)
            .filter(|d| d.client_id == client_id)
        else {
            return self.fail(Fail::BadDeviceCode, enc);
        };
        if let Some(end) = dev.ended {
            return self.fail(end, enc);
        }
        if now >= dev.issued + Duration::from_secs(dev.expires_in) {
            dev.ended = Some(Fail::Expired);
            return self.fail(Fail::Expired, enc);
        }
        let too_soon = dev.last_poll.is_some_and(|t| {
            now.duration_since(t) + POLL_SLACK < Duration::from_secs(dev.interval)
        });
        dev.last_poll = Some(now);
        if forced || too_soon {
            dev.interval += 5;
            return self.fail(Fail::SlowDown(dev.interval), enc);
        }
        dev.polls += 1;
        if dev.polls <= after {
            return self.fail(Fail::Pending, enc);
        }
        match person {
            Person::Approve => {
                let dev = st.devices.remove(code).expect("device");
                let g = new_grant(st, &dev.client_id, &dev.scope);
                let refresh = match self.shape {
                    Shape::GithubOauthApp => false,
                    Shape::Entra => has_scope(&dev.scope, "offline_access"),
                    Shape::GithubApp | Shape::Google | Shape::Gitlab => true,
                };
                self.tokens(st, g, None, refresh, enc)
            }
            Person::Deny => {
                dev.ended = Some(Fail::Denied);
                self.fail(Fail::Denied, enc)
            }
            Person::Ignore => {
                dev.ended = Some(Fail::Expired);
                self.fail(Fail::Expired, enc)
            }
        }
    }

    fn refresh(
        &self,
        st: &mut State,
        form: &HashMap<String, String>,
        client_id: &str,
        enc: Enc,
    ) -> Response {
        let Some(rt) = form.get("refresh_token") else {
            return self.fail(Fail::Missing("refresh_token"), enc);
        };
        st.refresh_used.push(rt.clone());
        let Some(&(g, true)) = st.refresh.get(rt) else {
            return self.fail(Fail::BadRefresh, enc);
        };
        if !st.grants[g].live || st.grants[g].client_id != client_id {
            return self.fail(Fail::BadRefresh, enc);
        }
        match self.shape {
            // Rotation: the presented token is spent.
            Shape::GithubApp | Shape::Gitlab => {
                st.refresh.insert(rt.clone(), (g, false));
                self.tokens(st, g, None, true, enc)
            }
            // A new refresh token each time; the old one stays usable.
            Shape::Entra => self.tokens(st, g, None, true, enc),
            // No rotation: no refresh_token in the answer.
            Shape::Google => self.tokens(st, g, None, false, enc),
            Shape::GithubOauthApp => self.fail(Fail::BadRefresh, enc),
        }
    }

    fn redeem(
        &self,
        st: &mut State,
        form: &HashMap<String, String>,
        client_id: &str,
        enc: Enc,
    ) -> Response {
        let Some(code) = form.get("code") else {
            return self.fail(Fail::Missing("code"), enc);
        };
        // Single use: a code is gone once presented.
        let Some(c) = st.codes.remove(code).filter(|c| c.client_id == client_id) else {
            return self.fail(Fail::BadCode, enc);
        };
        match form.get("redirect_uri") {
            Some(r) if *r != c.redirect_uri => return self.fail(Fail::RedirectMismatch, enc),
            // GitHub's redirect_uri is optional at the token endpoint; the others require it.
            None if !self.shape.is_github() => return self.fail(Fail::RedirectMismatch, enc),
            _ => {}
        }
        if let Some((challenge, method)) = &c.challenge {
            let Some(verifier) = form.get("code_verifier") else {
                return self.fail(Fail::Pkce, enc);
            };
            let derived = if method == "plain" {
                verifier.clone()
            } else {
                BASE64URL_NOPAD.encode(
                    ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref(),
                )
            };
            if derived != *challenge {
                return self.fail(Fail::Pkce, enc);
            }
        }
        let g = new_grant(st, client_id, &c.scope);
        let refresh = match self.shape {
            Shape::GithubOauthApp => false,
            Shape::Entra => has_scope(&c.scope, "offline_access"),
            Shape::Google => c.offline,
            Shape::GithubApp | Shape::Gitlab => true,
        };
        self.tokens(st, g, c.nonce.as_deref(), refresh, enc)
    }

    fn authorize(&self, req: &Request) -> Response {
        let q = &req.query;
        let (Some(client_id), Some(redirect_uri)) = (q.get("client_id"), q.get("redirect_uri"))
        else {
            return Response::html(400, "Missing client_id or redirect_uri.");
        };
        let state = q.get("state").cloned();
        let back = |pairs: &[(&str, &str)]| {
            let mut u = url::Url::parse(redirect_uri).expect("redirect_uri");
            {
                let mut qp = u.query_pairs_mut();
                for (k, v) in pairs {
                    qp.append_pair(k, v);
                }
                if let Some(s) = &state {
                    qp.append_pair("state", s);
                }
            }
            Response::redirect(u.to_string())
        };
        if url::Url::parse(redirect_uri).is_err() {
            return Response::html(400, "Invalid redirect_uri.");
        }
        if q.get("response_type").is_some_and(|t| t != "code")
            || (!self.shape.is_github() && !q.contains_key("response_type"))
        {
            return back(&[("error", "unsupported_response_type")]);
        }
        let mut st = self.st();
        match st.person {
            Person::Approve => {}
            Person::Deny => {
                return back(&[
                    ("error", "access_denied"),
                    ("error_description", "The user has denied access."),
                ]);
            }
            Person::Ignore => return Response::html(200, "Sign in to continue."),
        }
        let scope = q.get("scope").cloned().unwrap_or_default();
        let offline = self.shape == Shape::Google
            && q.get("access_type").is_some_and(|a| a == "offline")
            && (q
                .get("prompt")
                .is_some_and(|p| p.split_whitespace().any(|p| p == "consent"))
                || !st.consented.contains(client_id));
        st.consented.insert(client_id.clone());
        let code = match self.shape {
            Shape::GithubOauthApp | Shape::GithubApp => HEXLOWER.encode(&self.random(10)),
            Shape::Entra => format!("0.AXoA{}", self.alnum(80)),
            Shape::Google => format!("4/0A{}", self.alnum(60)),
            Shape::Gitlab => HEXLOWER.encode(&self.random(32)),
        };
        st.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                challenge: q.get("code_challenge").map(|c| {
                    let m = q
                        .get("code_challenge_method")
                        .cloned()
                        .unwrap_or_else(|| "plain".into());
                    (c.clone(), m)
                }),
                nonce: q.get("nonce").cloned(),
                scope: scope.clone(),
                offline,
            },
        );
        drop(st);
        if self.shape == Shape::Google {
            back(&[
                ("code", &code),
                ("scope", &google_scope(&scope)),
                ("authuser", "0"),
            ])
        } else {
            back(&[("code", &code)])
        }
    }

    fn revoke(&self, req: &Request) -> Response {
        let form = req.form();
        let token = form
            .get("token")
            .or_else(|| req.query.get("token"))
            .cloned()
            .unwrap_or_default();
        let mut st = self.st();
        st.revoked.push(token.clone());
        let grant = st
            .refresh
            .get(&token)
            .map(|(g, _)| *g)
            .or_else(|| st.access.get(&token).copied());
        if let Some(g) = grant {
            // The token's whole grant dies with it.
            st.grants[g].live = false;
        }
        match (self.shape, grant) {
            (Shape::Google, None) => Response::json(
                400,
                json!({"error": "invalid_token", "error_description": "Token expired or revoked"}),
            ),
            // RFC 7009: 200 whether or not the token was known.
            _ => Response::json(200, json!({})),
        }
    }

    fn access_token(&self, st: &mut State, g: usize) -> String {
        let t = match self.shape {
            Shape::GithubOauthApp => format!("gho_{}", self.alnum(36)),
            Shape::GithubApp => format!("ghu_{}", self.alnum(36)),
            Shape::Entra => format!("EwBYA8l6BAAU{}", self.alnum(100)),
            Shape::Google => format!("ya29.a0{}", self.alnum(120)),
            Shape::Gitlab => HEXLOWER.encode(&self.random(32)),
        };
        st.access.insert(t.clone(), g);
        st.access_issued.push(t.clone());
        t
    }

    fn refresh_token(&self, st: &mut State, g: usize) -> String {
        let t = match self.shape {
            Shape::GithubOauthApp | Shape::GithubApp => format!("ghr_{}", self.alnum(76)),
            Shape::Entra => format!("0.AXoA{}", self.alnum(120)),
            Shape::Google => format!("1//0{}", self.alnum(100)),
            Shape::Gitlab => HEXLOWER.encode(&self.random(32)),
        };
        st.refresh.insert(t.clone(), (g, true));
        st.refresh_issued.push(t.clone());
        t
    }

    /// The success answer for grant `g`: an access token, a refresh token when `refresh`,
    /// an ID token when the grant asked for `openid` (OIDC shapes).
    fn tokens(
        &self,
        st: &mut State,
        g: usize,
        nonce: Option<&str>,
        refresh: bool,
        enc: Enc,
    ) -> Response {
        let (client_id, scope) = (st.grants[g].client_id.clone(), st.grants[g].scope.clone());
        let at = self.access_token(st, g);
        let rt = refresh.then(|| self.refresh_token(st, g));
        let ttl = st.access_ttl;
        let mut body = match self.shape {
            Shape::GithubOauthApp => json!({
                "access_token": at, "token_type": "bearer",
                "scope": scope.split([' ', ',']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(","),
            }),
            Shape::GithubApp => json!({
                "access_token": at, "expires_in": ttl.unwrap_or(28_800),
                "refresh_token": rt, "refresh_token_expires_in": 15_897_600,
                "token_type": "bearer", "scope": "",
            }),
            Shape::Entra => json!({
                "token_type": "Bearer",
                "scope": scope.split_whitespace().filter(|s| *s != "offline_access").collect::<Vec<_>>().join(" "),
                "expires_in": ttl.unwrap_or(3599), "ext_expires_in": ttl.unwrap_or(3599),
                "access_token": at,
            }),
            Shape::Google => json!({
                "access_token": at, "expires_in": ttl.unwrap_or(3599),
                "scope": google_scope(&scope), "token_type": "Bearer",
            }),
            Shape::Gitlab => json!({
                "access_token": at, "token_type": "Bearer", "expires_in": ttl.unwrap_or(7200),
                "scope": scope, "created_at": now_secs(),
            }),
        };
        if let (Some(rt), false) = (&rt, self.shape.is_github()) {
            body["refresh_token"] = json!(rt);
        }
        if !self.shape.is_github() && has_scope(&scope, "openid") {
            body["id_token"] = json!(self.id_token(st, &client_id, nonce));
        }
        match enc {
            Enc::Json => Response::json(200, body),
            Enc::Form => Response::form(200, &body),
        }
    }

    fn id_token(&self, st: &State, client_id: &str, nonce: Option<&str>) -> String {
        let now = now_secs();
        let b = &self.base;
        let sub = subject(self.shape);
        let mut claims = match self.shape {
            Shape::Entra => json!({
                "iss": st.iss_override.clone().unwrap_or_else(|| format!("{b}/{}/v2.0", st.tid)),
                "tid": st.tid, "aud": client_id, "sub": sub,
                "oid": "00000000-0000-0000-66f3-3332eca7ea81",
                "preferred_username": "alice@contoso.example", "name": "Alice Example",
                "iat": now, "nbf": now, "exp": now + 3600, "ver": "2.0",
            }),
            // The stand-in for https://accounts.google.com is this server's origin, as in
            // discovery and in the rewritten plugin.
            Shape::Google => json!({
                "iss": b, "azp": client_id, "aud": client_id, "sub": sub,
                "email": "alice@example.com", "email_verified": true,
                "iat": now, "exp": now + 3600,
            }),
            // GitLab's ID tokens live two minutes.
            Shape::Gitlab => json!({
                "iss": b, "sub": sub, "aud": client_id, "exp": now + 120, "iat": now,
                "auth_time": now, "sub_legacy": "2f1e0c8d5a7b", "name": "Alice Example",
                "nickname": "alice", "preferred_username": "alice",
                "email": "alice@example.com", "email_verified": true, "groups_direct": [],
            }),
            Shape::GithubOauthApp | Shape::GithubApp => json!({}),
        };
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        let header = json!({"alg": "ES256", "kid": KID, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(header.to_string().as_bytes()),
            BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
        );
        let sig = self.key.sign(&self.rng, input.as_bytes()).expect("sign");
        format!("{input}.{}", BASE64URL_NOPAD.encode(sig.as_ref()))
    }
}

fn new_grant(st: &mut State, client_id: &str, scope: &str) -> usize {
    st.grants.push(Grant {
        client_id: client_id.into(),
        scope: scope.into(),
        live: true,
    });
    st.grants.len() - 1
}

fn has_scope(scope: &str, want: &str) -> bool {
    scope.split_whitespace().any(|s| s == want)
}

/// Google reports `email` and `profile` by their full URLs.
fn google_scope(scope: &str) -> String {
    scope
        .split_whitespace()
        .map(|s| match s {
            "email" => "https://www.googleapis.com/auth/userinfo.email",
            "profile" => "https://www.googleapis.com/auth/userinfo.profile",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}
