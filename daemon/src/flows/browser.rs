//! Authorization code + PKCE on a loopback redirect (RFC 8252, RFC 7636): a one-shot HTTP
//! listener on 127.0.0.1 that accepts exactly one callback carrying the right `state`.

use super::token::{ClientCreds, TokenResponse, classify, client};
use super::{Endpoints, FlowError};
use oauth2::{
    AuthUrl, AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the person has to finish in the browser.
pub const TIMEOUT: Duration = Duration::from_secs(300);
/// The longest request head the listener reads.
const MAX_HEAD: usize = 8 * 1024;

/// A started browser sign-in: the URL to open and what is needed to finish it.
pub struct BrowserStart {
    /// Open this in a browser.
    pub authorize_url: String,
    listener: TcpListener,
    redirect: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
    /// The OIDC nonce the ID token must carry.
    pub nonce: Option<String>,
}

/// Binds the loopback listener and builds the authorization URL.
pub async fn start(
    ep: &Endpoints,
    creds: &ClientCreds,
    scopes: &[String],
    extra: &BTreeMap<String, String>,
) -> Result<BrowserStart, FlowError> {
    let auth = ep.authorization.clone().ok_or_else(|| {
        FlowError::Config("the provider has no authorization endpoint: use --device".into())
    })?;
    // A random port on the loopback address (RFC 8252 section 7.3).
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
        FlowError::Config(format!(
            "cannot listen on 127.0.0.1 for the browser's redirect: {e}"
        ))
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| FlowError::Config(e.to_string()))?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let c = client(ep, creds)?
        .set_auth_uri(
            AuthUrl::new(auth)
                .map_err(|e| FlowError::Config(format!("bad authorization endpoint: {e}")))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect.clone()).map_err(|e| FlowError::Config(e.to_string()))?,
        );
    let nonce = ep.issuer.as_ref().map(|_| crate::ids::random_hex(16));
    let mut req = c
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
        .set_pkce_challenge(challenge);
    if let Some(n) = &nonce {
        req = req.add_extra_param("nonce", n.clone());
    }
    // OpenID Connect: a refresh token for offline_access is issued only with consent.
    if scopes.iter().any(|s| s == "offline_access") && !extra.contains_key("prompt") {
        req = req.add_extra_param("prompt", "consent");
    }
    for (k, v) in extra {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let (url, state) = req.url();
    Ok(BrowserStart {
        authorize_url: url.to_string(),
        listener,
        redirect,
        state,
        verifier,
        nonce,
    })
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

async fn reply(stream: &mut TcpStream, status: &str, title: &str, text: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Keyfob: {title}</title><style>body{{font-family:sans-serif;margin:3em auto;max-width:32em}}</style></head><body><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nPragma: no-cache\r\nContent-Security-Policy: {CSP}\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads the request target (`/callback?...`) of one HTTP request, if it is a GET.
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next()?.split_whitespace();
    (parts.next()? == "GET").then(|| parts.next().map(str::to_owned))?
}

/// Waits for the one callback with the right `state`, answers the browser, and exchanges
/// the code (with the PKCE verifier) for tokens.
pub async fn finish(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &ClientCreds,
    s: BrowserStart,
) -> Result<TokenResponse, FlowError> {
    let code = tokio::time::timeout(TIMEOUT, async {
        loop {
            let Ok((mut stream, _)) = s.listener.accept().await else { continue };
            let Some(target) = request_target(&mut stream).await else {
                reply(&mut stream, "400 Bad Request", "Bad request", "This address only takes the sign-in redirect.").await;
                continue;
            };
            let Ok(url) = url::Url::parse(&format!("http://127.0.0.1{target}")) else { continue };
            if url.path() != "/callback" {
                reply(&mut stream, "404 Not Found", "Not found", "This address only takes the sign-in redirect.").await;
                continue;
            }
            let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
            let state_ok = q.get("state").is_some_and(|st| {
                use subtle::ConstantTimeEq;
                bool::from(st.as_bytes().ct_eq(s.state.secret().as_bytes()))
            });
            if !state_ok {
                // Not our sign-in (or forged): refuse it and keep waiting for the real one.
                reply(&mut stream, "400 Bad Request", "Sign-in not recognised", "This redirect does not belong to the sign-in Keyfob started. You can close this tab.").await;
                continue;
            }
            if let Some(err) = q.get("error") {
                reply(&mut stream, "200 OK", "Sign-in cancelled", "The provider did not grant access. You can close this tab.").await;
                return Err(if err == "access_denied" { FlowError::AccessDenied } else { FlowError::Provider(err.clone()) });
            }
            let Some(code) = q.get("code").cloned() else {
                reply(&mut stream, "400 Bad Request", "Bad request", "The redirect has no code.").await;
                continue;
            };
            reply(&mut stream, "200 OK", "Signed in", "Keyfob received the sign-in. You can close this tab.").await;
            return Ok(code);
        }
    })
    .await
    .map_err(|_| FlowError::Expired)??;
    drop(s.listener);
    let c = client(ep, creds)?.set_redirect_uri(
        RedirectUrl::new(s.redirect).map_err(|e| FlowError::Config(e.to_string()))?,
    );
    c.exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(s.verifier)
        .request_async(&|r| super::http::send(http.clone(), r))
        .await
        .map_err(classify)
}
