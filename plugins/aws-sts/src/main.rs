//! keyfob-aws-sts: Keyfob's exec plugin that turns an account's ID token into AWS
//! credentials with STS AssumeRoleWithWebIdentity.
//!
//! keyfobd runs it once per call with one JSON-RPC request on stdin and reads one reply on
//! stdout; it keeps nothing between runs (the daemon caches the credentials). Methods:
//! `describe`, and `exchange` with the account's settings and the source account's ID token.
//! Nothing secret is ever printed on stderr.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;
use zeroize::Zeroizing;

/// The longest request accepted on stdin.
const REQUEST_LIMIT: u64 = 1024 * 1024;
/// The longest STS reply read.
const REPLY_LIMIT: usize = 256 * 1024;
/// How long the STS call may take (the daemon's limit for the whole run is longer).
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);
/// JSON-RPC: the method is not implemented.
const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the params are wrong (a setting of the account).
const INVALID_PARAMS: i64 = -32602;
/// The provider (STS) refused or failed.
const PROVIDER_ERROR: i64 = -32000;

/// A JSON-RPC request from keyfobd.
#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    id: serde_json::Value,
    method: String,
    #[serde(default)]
    params: serde_json::Value,
}

/// `exchange` params.
#[derive(Deserialize)]
struct Exchange {
    params: BTreeMap<String, String>,
    subject_token: SecretString,
}

/// A failure, as a JSON-RPC error.
struct Failure {
    code: i64,
    message: String,
}

fn invalid(message: String) -> Failure {
    Failure {
        code: INVALID_PARAMS,
        message,
    }
}

fn provider(message: String) -> Failure {
    Failure {
        code: PROVIDER_ERROR,
        message,
    }
}

/// The settings of one exchange, checked.
struct Settings {
    endpoint: url::Url,
    role_arn: String,
    session_name: String,
    duration_secs: u32,
}

fn setting<'a>(p: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str, Failure> {
    p.get(key).map(String::as_str).ok_or_else(|| {
        invalid(format!(
            "the account has no {key}: add it with --param {key}=…"
        ))
    })
}

/// Whether `url` may carry an ID token: HTTPS, or plain HTTP to a loopback host.
fn check_endpoint(raw: &str) -> Result<url::Url, Failure> {
    let url =
        url::Url::parse(raw).map_err(|e| invalid(format!("endpoint {raw:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(invalid(format!(
            "endpoint {raw:?} must use https (plain http only to 127.0.0.1, [::1] or localhost)"
        ))),
    }
}

impl Settings {
    fn of(p: &BTreeMap<String, String>) -> Result<Settings, Failure> {
        let endpoint = check_endpoint(setting(p, "endpoint")?)?;
        let role_arn = setting(p, "role_arn")?.to_owned();
        if !role_arn.starts_with("arn:aws") || !role_arn.contains(":role/") {
            return Err(invalid(format!(
                "role_arn {role_arn:?} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
            )));
        }
        let session_name = setting(p, "session_name")?.to_owned();
        let name_ok = (2..=64).contains(&session_name.len())
            && session_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c));
        if !name_ok {
            return Err(invalid(format!(
                "session_name {session_name:?} must be 2 to 64 of letters, digits and +=,.@-_"
            )));
        }
        let raw = setting(p, "duration_secs")?;
        let duration_secs = raw
            .parse::<u32>()
            .ok()
            .filter(|d| (900..=43_200).contains(d))
            .ok_or_else(|| {
                invalid(format!(
                    "duration_secs {raw:?} must be a number of seconds from 900 to 43200"
                ))
            })?;
        Ok(Settings {
            endpoint,
            role_arn,
            session_name,
            duration_secs,
        })
    }
}

/// STS's answer to AssumeRoleWithWebIdentity.
#[derive(Deserialize)]
struct StsResponse {
    #[serde(rename = "AssumeRoleWithWebIdentityResult")]
    result: StsResult,
}

#[derive(Deserialize)]
struct StsResult {
    #[serde(rename = "Credentials")]
    credentials: StsCredentials,
}

#[derive(Deserialize)]
struct StsCredentials {
    #[serde(rename = "AccessKeyId")]
    access_key_id: SecretString,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: SecretString,
    #[serde(rename = "SessionToken")]
    session_token: SecretString,
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// STS's error document.
#[derive(Deserialize)]
struct StsErrorResponse {
    #[serde(rename = "Error")]
    error: StsError,
}

#[derive(Deserialize)]
struct StsError {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// Calls STS and returns the credential for keyfobd.
async fn exchange(x: Exchange) -> Result<serde_json::Value, Failure> {
    let s = Settings::of(&x.params)?;
    let duration = s.duration_secs.to_string();
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", s.role_arn.as_str()),
        ("RoleSessionName", s.session_name.as_str()),
        ("WebIdentityToken", x.subject_token.expose_secret()),
        ("DurationSeconds", duration.as_str()),
    ];
    let http = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| provider(format!("cannot set up HTTPS: {e}")))?;
    let reply = http
        .post(s.endpoint.clone())
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            provider(format!(
                "cannot reach STS at {}: {}",
                s.endpoint,
                e.without_url()
            ))
        })?;
    let status = reply.status();
    let mut body = Zeroizing::new(Vec::new());
    let mut reply = reply;
    while let Some(chunk) = reply
        .chunk()
        .await
        .map_err(|e| provider(format!("STS's answer was cut short: {}", e.without_url())))?
    {
        if body.len() + chunk.len() > REPLY_LIMIT {
            return Err(provider(format!(
                "STS's answer is longer than {REPLY_LIMIT} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let text = std::str::from_utf8(&body).map_err(|_| {
        provider(format!(
            "STS answered HTTP {status} with a body that is not text"
        ))
    })?;
    if !status.is_success() {
        return Err(match quick_xml::de::from_str::<StsErrorResponse>(text) {
            Ok(e) => provider(format!(
                "STS refused AssumeRoleWithWebIdentity for {}: {}: {}",
                s.role_arn, e.error.code, e.error.message
            )),
            Err(_) => provider(format!(
                "STS answered HTTP {status} without an error document"
            )),
        });
    }
    let r: StsResponse = quick_xml::de::from_str(text).map_err(|e| {
        provider(format!(
            "STS's answer is not an AssumeRoleWithWebIdentity response: {e}"
        ))
    })?;
    let c = r.result.credentials;
    let expires_at = chrono::DateTime::parse_from_rfc3339(c.expiration.trim())
        .map_err(|e| {
            provider(format!(
                "STS's Expiration {:?} is not a timestamp: {e}",
                c.expiration
            ))
        })?
        .timestamp();
    Ok(serde_json::json!({
        "credential": {
            "token": c.session_token.expose_secret(),
            "token_type": "aws-session",
            "expires_at": expires_at,
            "fields": {
                "access_key_id": c.access_key_id.expose_secret(),
                "secret_access_key": c.secret_access_key.expose_secret(),
                "session_token": c.session_token.expose_secret(),
            }
        }
    }))
}

async fn answer(req: Request) -> Result<serde_json::Value, Failure> {
    match req.method.as_str() {
        "describe" => Ok(serde_json::json!({
            "name": "aws-sts",
            "methods": ["describe", "exchange"],
        })),
        "exchange" => {
            let x: Exchange = serde_json::from_value(req.params)
                .map_err(|e| invalid(format!("exchange params: {e}")))?;
            exchange(x).await
        }
        other => Err(Failure {
            code: METHOD_NOT_FOUND,
            message: format!("aws-sts does not implement {other:?}: it only exchanges ID tokens"),
        }),
    }
}

fn main() {
    let mut input = Zeroizing::new(Vec::new());
    if let Err(e) = std::io::stdin().take(REQUEST_LIMIT).read_to_end(&mut input) {
        eprintln!("keyfob-aws-sts: cannot read the request: {e}");
        std::process::exit(2);
    }
    let req: Request = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "keyfob-aws-sts: the request on stdin is not JSON-RPC ({e}); keyfobd runs this program"
            );
            std::process::exit(2);
        }
    };
    let id = req.id.clone();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyfob-aws-sts: cannot start: {e}");
            std::process::exit(2);
        }
    };
    let reply = match runtime.block_on(answer(req)) {
        Ok(result) => serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(f) => {
            eprintln!("keyfob-aws-sts: {}", f.message);
            serde_json::json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": f.code, "message": f.message}})
        }
    };
    let out = Zeroizing::new(reply.to_string());
    println!("{}", out.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("endpoint", "https://sts.amazonaws.com"),
            ("role_arn", "arn:aws:iam::123456789012:role/dev"),
            ("session_name", "keyfob"),
            ("duration_secs", "3600"),
        ]
    }

    fn refused(change: (&'static str, &'static str)) -> String {
        let mut p = good();
        p.retain(|(k, _)| *k != change.0);
        p.push(change);
        match Settings::of(&params(&p)) {
            Ok(_) => String::new(),
            Err(f) => f.message,
        }
    }

    #[test]
    fn settings_are_checked_with_the_setting_named() {
        assert!(Settings::of(&params(&good())).is_ok());
        assert!(refused(("endpoint", "http://sts.example.com")).contains("https"));
        assert!(refused(("endpoint", "http://127.0.0.1:5000")).is_empty());
        assert!(refused(("role_arn", "dev")).contains("role_arn"));
        assert!(refused(("session_name", "a b")).contains("session_name"));
        assert!(refused(("duration_secs", "60")).contains("duration_secs"));
    }

    #[test]
    fn an_sts_reply_is_read_into_its_credentials() {
        let xml = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>u</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>FwoGZXIvYXdzE</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI</SecretAccessKey>
      <Expiration>2026-11-30T02:00:00Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;
        let r: StsResponse = quick_xml::de::from_str(xml).unwrap();
        assert_eq!(
            r.result.credentials.access_key_id.expose_secret(),
            "ASIAEXAMPLE"
        );
        assert_eq!(r.result.credentials.expiration, "2026-11-30T02:00:00Z");
        let e: StsErrorResponse = quick_xml::de::from_str(
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>bad</Message></Error></ErrorResponse>",
        )
        .unwrap();
        assert_eq!(e.error.code, "InvalidIdentityToken");
    }
}
