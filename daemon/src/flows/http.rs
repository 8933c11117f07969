//! Every request to a provider's token and device endpoints goes through [`send`], which reads
//! the answer as the provider meant it before oauth2 sees it:
//! - an error body is an error whatever the status (GitHub answers `authorization_pending`,
//!   `slow_down` and `bad_refresh_token` with HTTP 200);
//! - a form-encoded body (GitHub's answer to a client that did not ask for JSON; Keyfob always
//!   asks) is read as the JSON object it stands for;
//! - anything the request carried that is secret (the client secret, a refresh token, a
//!   code or its verifier) is cut out of the answer, so a provider that echoes it in an
//!   error description cannot put it into a message, a log line or the audit log.

use oauth2::http::{HeaderValue, StatusCode, header};

/// Sends `req` with `http` and normalises the answer (see the module docs).
pub async fn send(
    http: reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
    let secrets = secrets_of(&req);
    let mut resp = call_bounded(&http, req).await?;
    normalise(&mut resp);
    redact(&mut resp, &secrets);
    Ok(resp)
}

/// The largest answer read from a provider's token or device endpoint: a token response is a
/// few kilobytes, and a hostile provider must not fill the daemon's memory.
pub const MAX_BODY: usize = 1024 * 1024;

/// oauth2's reqwest client, with the answer's body bounded by [`MAX_BODY`].
async fn call_bounded(
    http: &reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
    let mut response = http
        .execute(req.try_into().map_err(Box::new)?)
        .await
        .map_err(Box::new)?;
    let mut builder = oauth2::http::Response::builder()
        .status(response.status())
        .version(response.version());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Box::new)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(oauth2::HttpClientError::Other(format!(
                "the provider's answer is larger than {} KiB; it was not read",
                MAX_BODY / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    builder.body(body).map_err(oauth2::HttpClientError::Http)
}

/// The body of a metadata answer (discovery, JWKS), bounded by [`MAX_BODY`] and read as JSON.
pub async fn json_bounded<T: serde::de::DeserializeOwned>(
    mut resp: reqwest::Response,
) -> Result<T, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!(
                "the answer is larger than {} KiB; it was not read",
                MAX_BODY / 1024
            ));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Form fields of token requests whose values are secret.
const SECRET_FIELDS: [&str; 7] = [
    "client_secret",
    "refresh_token",
    "code",
    "code_verifier",
    "device_code",
    "assertion",
    "password",
];

/// The secret values `req` carries: secret form fields, and HTTP Basic credentials.
fn secrets_of(req: &oauth2::HttpRequest) -> Vec<zeroize::Zeroizing<String>> {
    let mut out: Vec<zeroize::Zeroizing<String>> = url::form_urlencoded::parse(req.body())
        .filter(|(k, _)| SECRET_FIELDS.contains(&k.as_ref()))
        .map(|(_, v)| zeroize::Zeroizing::new(v.into_owned()))
        .collect();
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| data_encoding::BASE64.decode(b.trim().as_bytes()).ok())
        .map(zeroize::Zeroizing::new);
    if let Some(pair) = basic
        && let Ok(pair) = std::str::from_utf8(&pair)
        && let Some((_, secret)) = pair.split_once(':')
    {
        // oauth2 form-encodes Basic credentials (RFC 6749 2.3.1).
        for s in [secret.to_owned()].into_iter().chain(
            url::form_urlencoded::parse(format!("s={secret}").as_bytes())
                .map(|(_, v)| v.into_owned()),
        ) {
            out.push(zeroize::Zeroizing::new(s));
        }
    }
    out.retain(|s| s.len() >= 4);
    out
}

/// Cuts every one of `secrets` out of an error answer's body. A success is left whole: a
/// provider may send the same refresh token back, and that is the token to keep.
fn redact(resp: &mut oauth2::HttpResponse, secrets: &[zeroize::Zeroizing<String>]) {
    if resp.status().is_success() {
        return;
    }
    let Ok(text) = std::str::from_utf8(resp.body()) else {
        return;
    };
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return;
    }
    let mut clean = text.to_owned();
    for s in secrets {
        clean = clean.replace(s.as_str(), "[redacted]");
    }
    *resp.body_mut() = clean.into_bytes();
}

/// Numeric fields of token and device responses, which a form body carries as text.
const NUMERIC: [&str; 5] = [
    "expires_in",
    "interval",
    "refresh_token_expires_in",
    "ext_expires_in",
    "created_at",
];

/// Rewrites a response in place: form body to JSON, error body to an error status.
pub fn normalise(resp: &mut oauth2::HttpResponse) {
    let form = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        let mut obj = serde_json::Map::new();
        for (k, v) in url::form_urlencoded::parse(resp.body()) {
            let value = match v.parse::<u64>() {
                Ok(n) if NUMERIC.contains(&k.as_ref()) => serde_json::Value::from(n),
                _ => serde_json::Value::from(v.into_owned()),
            };
            obj.insert(k.into_owned(), value);
        }
        *resp.body_mut() = serde_json::to_vec(&obj).unwrap_or_default();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    // A 2xx body that carries tokens is tokens, even beside an `error`: reading it as an
    // error could resend a refresh token the provider has already rotated.
    if resp.status().is_success() && is_error_body(resp.body()) {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
}

/// What normalising needs to know of a body, read without copying any token out of it.
#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(default, borrow)]
    error: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    access_token: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    refresh_token: Option<serde::de::IgnoredAny>,
}

/// Whether a body is an error whatever its status: a JSON object with an `error` code and no
/// token (one read of the body).
pub fn is_error_body(body: &[u8]) -> bool {
    serde_json::from_slice::<Probe>(body)
        .is_ok_and(|p| p.error.is_some() && p.access_token.is_none() && p.refresh_token.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, ctype: &str, body: &str) -> oauth2::HttpResponse {
        let mut r = oauth2::HttpResponse::new(body.as_bytes().to_vec());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_str(ctype).unwrap());
        r
    }

    #[test]
    fn an_error_with_http_200_is_an_error() {
        let mut r = resp(
            200,
            "application/json",
            r#"{"error":"slow_down","interval":10}"#,
        );
        normalise(&mut r);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_form_body_reads_as_json_with_numbers() {
        let mut r = resp(
            200,
            "application/x-www-form-urlencoded; charset=utf-8",
            "access_token=gho_x&scope=repo%2Cgist&token_type=bearer&expires_in=28800",
        );
        normalise(&mut r);
        assert_eq!(r.status(), StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["scope"], "repo,gist");
        assert_eq!(v["expires_in"], 28800);
        let mut r = resp(
            200,
            "application/x-www-form-urlencoded",
            "error=authorization_pending",
        );
        normalise(&mut r);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_success_carrying_tokens_stays_a_success_beside_an_error() {
        let body = r#"{"error":"server_error","access_token":"a","refresh_token":"r2"}"#;
        let mut r = resp(200, "application/json", body);
        normalise(&mut r);
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn secrets_the_request_carried_are_cut_out_of_the_answer() {
        let mut req = oauth2::HttpRequest::new(
            b"grant_type=refresh_token&refresh_token=rt-secret-1&client_id=cli".to_vec(),
        );
        req.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!(
                "Basic {}",
                data_encoding::BASE64.encode(b"cli:cs-secret-2")
            ))
            .unwrap(),
        );
        let secrets = secrets_of(&req);
        let mut r = resp(
            400,
            "application/json",
            r#"{"error":"invalid_grant","error_description":"rt-secret-1 with cs-secret-2 for cli"}"#,
        );
        redact(&mut r, &secrets);
        let text = String::from_utf8(r.body().clone()).unwrap();
        assert!(
            !text.contains("rt-secret-1") && !text.contains("cs-secret-2"),
            "{text}"
        );
        assert!(text.contains("for cli"), "{text}");
        // A success keeps what it carries: the same refresh token sent back is the one to keep.
        let body = r#"{"access_token":"a","refresh_token":"rt-secret-1"}"#;
        let mut r = resp(200, "application/json", body);
        redact(&mut r, &secrets);
        assert_eq!(r.body(), body.as_bytes());
    }

    #[test]
    fn a_token_response_is_left_alone() {
        let body = r#"{"access_token":"a","token_type":"Bearer"}"#;
        let mut r = resp(200, "application/json", body);
        normalise(&mut r);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.body(), body.as_bytes());
    }
}
