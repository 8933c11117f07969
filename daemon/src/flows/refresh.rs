//! Refreshing an access token with a refresh token, with bounded retries for transient
//! failures. `invalid_grant` is final and is never retried: with rotation, a second use of
//! the same refresh token makes the provider revoke the whole grant.

use super::token::{ClientCreds, TokenResponse, classify, client};
use super::{Endpoints, FlowError};
use oauth2::{RefreshToken, Scope};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Attempts for a transient failure, and the first back-off (doubled each time).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest `Retry-After` waited for inside one request; longer ones are reported.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// One refresh, retried (while `may_retry` says so: not once the daemon is stopping) when the
/// connection could not be opened, on HTTP 503 and 429 (waiting `Retry-After`
/// up to 10 s): the provider did not act on those. A timeout is not retried: the provider may
/// have acted on it.
pub async fn refresh(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &ClientCreds,
    refresh_token: &str,
    scopes: &[String],
    audience: Option<&str>,
    may_retry: &(dyn Fn() -> bool + Send + Sync),
) -> Result<TokenResponse, FlowError> {
    let c = client(ep, creds)?;
    let rt = RefreshToken::new(refresh_token.to_owned());
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        // oauth2 does not expose the response's status or headers; record them on the way.
        let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
        let recording = |req: oauth2::HttpRequest| {
            let seen = Arc::clone(&seen);
            // An owned handle (an Arc inside) keeps the future free of borrowed lifetimes.
            let http = http.clone();
            async move {
                // An error body is an error whatever the status: GitHub answers
                // `bad_refresh_token` with HTTP 200.
                let resp = super::http::send(http, req).await?;
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Seen {
                    status: resp.status().as_u16(),
                    retry_after,
                });
                Ok::<_, oauth2::HttpClientError<reqwest::Error>>(resp)
            }
        };
        let mut req = c
            .exchange_refresh_token(&rt)
            .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())));
        if let Some(a) = audience {
            req = req.add_extra_param("audience", a.to_owned());
        }
        let res = req.request_async(&recording).await.map_err(|e| {
            if let oauth2::RequestTokenError::Request(oauth2::HttpClientError::Reqwest(re)) = &e
            {
                // The provider may have rotated the token and the answer got lost: a retry
                // would replay the old one and revoke the grant. Report, do not retry. Only
                // a connection that never opened is safe to try again.
                if re.is_timeout() {
                    return FlowError::Provider(
                        "the refresh request timed out; its outcome is unknown".into(),
                    );
                }
                if !re.is_connect() {
                    return FlowError::Provider(
                        "the token endpoint closed the connection before answering the refresh; its outcome is unknown, so it is not sent again (the next request tries once more)".into(),
                    );
                }
            }
            // An answer too large to read: whatever it said, the provider may have acted.
            if let oauth2::RequestTokenError::Request(oauth2::HttpClientError::Other(m)) = &e {
                return FlowError::Provider(format!("{m}; the refresh's outcome is unknown, so it is not sent again"));
            }
            if let oauth2::RequestTokenError::Parse(..) = &e
                && seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some_and(|s| (200..300).contains(&s.status))
            {
                // A success the token type cannot read: the provider has likely rotated
                // already, and sending the old token again would revoke the grant.
                return FlowError::Provider(
                    "the provider answered the refresh with a token response Keyfob cannot read; its outcome is unknown, so it is not sent again".into(),
                );
            }
            classify(e)
        });
        let seen = *seen.lock().unwrap_or_else(|e| e.into_inner());
        let res = match (res, seen) {
            // 429: the provider did not act on the request; wait as told, if not too long.
            (
                Err(_),
                Some(Seen {
                    status: 429,
                    retry_after,
                }),
            ) => {
                let wait = retry_after.unwrap_or(1);
                if wait <= MAX_RETRY_AFTER.as_secs() && attempt < ATTEMPTS && may_retry() {
                    tracing::warn!(
                        attempt,
                        wait,
                        "the provider is rate limiting; waiting as asked"
                    );
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    attempt += 1;
                    continue;
                }
                Err(FlowError::RateLimited(wait))
            }
            // 503: the provider says it did not take the request; safe to send again.
            (Err(_), Some(Seen { status: 503, .. })) => Err(FlowError::Transient(
                "the token endpoint answered HTTP 503".into(),
            )),
            // Other 5xx (a gateway timing out, a crash after the work): the provider may have
            // rotated the token, so it is not sent again now.
            (Err(_), Some(Seen { status, .. })) if status >= 500 => {
                Err(FlowError::Provider(format!(
                    "the token endpoint answered HTTP {status}; the refresh's outcome is unknown, so it is not sent again (the next request tries once more)"
                )))
            }
            (other, _) => other,
        };
        match res {
            Err(e)
                if e.is_transient()
                    && !matches!(e, FlowError::RateLimited(_))
                    && attempt < ATTEMPTS
                    && may_retry() =>
            {
                tracing::warn!(attempt, error = %e, "refresh failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// What the token endpoint answered, as far as retrying cares.
#[derive(Clone, Copy)]
struct Seen {
    status: u16,
    retry_after: Option<u64>,
}
