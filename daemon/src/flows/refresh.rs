//! Refreshing an access token with a refresh token, with bounded retries for transient
//! failures. `invalid_grant` is final and is never retried: with rotation, a second use of
//! the same refresh token makes the provider revoke the whole grant.

use super::token::{ClientCreds, TokenResponse, classify, client};
use super::{Endpoints, FlowError};
use oauth2::{RefreshToken, Scope};
use std::time::Duration;

/// Attempts for a transient failure, and the first back-off (doubled each time).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// One refresh, retried on connection failures and 5xx answers (the provider did not act on
/// those). A timeout is not retried: the provider may have acted on it.
pub async fn refresh(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &ClientCreds,
    refresh_token: &str,
    scopes: &[String],
) -> Result<TokenResponse, FlowError> {
    let c = client(ep, creds)?;
    let rt = RefreshToken::new(refresh_token.to_owned());
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let res = c
            .exchange_refresh_token(&rt)
            .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
            .request_async(http)
            .await
            .map_err(|e| {
                if let oauth2::RequestTokenError::Request(oauth2::HttpClientError::Reqwest(re)) = &e
                    && re.is_timeout()
                {
                    // The provider may have rotated the token and the answer got lost: a retry
                    // would replay the old one and revoke the grant. Report, do not retry.
                    return FlowError::Provider(
                        "the refresh request timed out; its outcome is unknown".into(),
                    );
                }
                classify(e)
            });
        match res {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "refresh failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}
