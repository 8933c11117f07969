//! Client credentials (service accounts) and RFC 7009 revocation.

use super::token::{ClientCreds, TokenResponse, classify, client};
use super::{Endpoints, FlowError};
use oauth2::Scope;

/// A token for the client itself (no user, no refresh token).
pub async fn client_credentials(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &ClientCreds,
    scopes: &[String],
) -> Result<TokenResponse, FlowError> {
    if creds.secret.is_none() {
        return Err(FlowError::Config(
            "a client-credentials account needs a client secret: add it again with --client-secret -".into(),
        ));
    }
    client(ep, creds)?
        .exchange_client_credentials()
        .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
        .request_async(&|r| super::http::send(http.clone(), r))
        .await
        .map_err(classify)
}

/// Revokes a token at the provider (RFC 7009); `hint` is `refresh_token` or `access_token`.
/// Sent directly rather than through oauth2, which refuses plain-http endpoints even on
/// loopback.
pub async fn revoke(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &ClientCreds,
    token: &str,
    hint: &str,
) -> Result<(), FlowError> {
    use secrecy::ExposeSecret;
    let url = ep
        .revocation
        .clone()
        .ok_or_else(|| FlowError::Config("the provider has no revocation endpoint".into()))?;
    let mut form = vec![("token", token), ("token_type_hint", hint)];
    let mut req = http.post(&url).header("Accept", "application/json");
    match &creds.secret {
        Some(secret) if creds.secret_in_body => {
            form.push(("client_id", creds.id.as_str()));
            form.push(("client_secret", secret.expose_secret()));
        }
        Some(secret) => req = req.basic_auth(&creds.id, Some(secret.expose_secret())),
        None => form.push(("client_id", creds.id.as_str())),
    }
    let resp = req
        .form(&form)
        .send()
        .await
        .map_err(|e| FlowError::Transient(format!("revocation at {url}: {e}")))?;
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap_or_default();
    // An error body is an error at any status, read as token answers are.
    if status.is_success() && !super::http::is_error_body(&bytes) {
        return Ok(());
    }
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = body
        .get("error")
        .and_then(|v| v.as_str())
        .unwrap_or("no error code");
    Err(FlowError::Provider(format!(
        "revocation answered HTTP {status} ({code})"
    )))
}
