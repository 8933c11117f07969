//! RFC 8628 device authorization: ask for a user code, then poll the token endpoint while a
//! person approves it in a browser.

use super::token::{ClientCreds, TokenResponse, classify, client};
use super::{Endpoints, FlowError};
use oauth2::{DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse};
use std::time::Duration;

/// What to show the person.
pub struct DeviceStart {
    /// The provider's response (codes, URIs, interval).
    pub details: StandardDeviceAuthorizationResponse,
}

/// Requests a device code.
pub async fn start(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &ClientCreds,
    scopes: &[String],
    audience: Option<&str>,
) -> Result<DeviceStart, FlowError> {
    let url = ep.device_authorization.clone().ok_or_else(|| {
        FlowError::Config("the provider has no device authorization endpoint: use --browser".into())
    })?;
    let c = client(ep, creds)?.set_device_authorization_url(
        DeviceAuthorizationUrl::new(url)
            .map_err(|e| FlowError::Config(format!("bad device endpoint: {e}")))?,
    );
    let mut req = c
        .exchange_device_code()
        .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())));
    if let Some(a) = audience {
        req = req.add_extra_param("audience", a.to_owned());
    }
    let details: StandardDeviceAuthorizationResponse = req
        .request_async(&|r| super::http::send(http.clone(), r))
        .await
        .map_err(classify)?;
    Ok(DeviceStart { details })
}

/// Polls until the person approves, declines, or the code expires. Honours the provider's
/// interval (5 s when it names none) and `slow_down`.
pub async fn finish(
    http: &reqwest::Client,
    ep: &Endpoints,
    creds: &ClientCreds,
    start: &DeviceStart,
) -> Result<TokenResponse, FlowError> {
    let c = client(ep, creds)?;
    c.exchange_device_access_token(&start.details)
        .request_async(
            &|r| super::http::send(http.clone(), r),
            tokio::time::sleep,
            Some(Duration::from_secs(start.details.expires_in().as_secs())),
        )
        .await
        .map_err(classify)
}
