//! Talking to identity providers: endpoint resolution (manifest or OIDC discovery), the
//! device flow, and refresh. Each file holds one flow.

pub mod browser;
pub mod device;
pub mod discovery;
pub mod error;
pub mod http;
pub mod id_token;
pub mod refresh;
pub mod service;
pub mod token;

pub use error::FlowError;

use crate::plugins::manifest::{Kind, Manifest, check_url};
use std::collections::BTreeMap;
use std::time::Duration;

/// Timeout of one HTTP request to a provider.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client for providers: rustls, no redirects (a token endpoint never redirects,
/// and following one could send credentials elsewhere), bounded time.
pub fn http_client() -> Result<reqwest::Client, FlowError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("keyfob/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FlowError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Where an account's provider is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The OIDC issuer, when there is one.
    pub issuer: Option<String>,
    /// Token endpoint.
    pub token: String,
    /// Device authorization endpoint.
    pub device_authorization: Option<String>,
    /// Authorization endpoint.
    pub authorization: Option<String>,
    /// RFC 7009 revocation.
    pub revocation: Option<String>,
    /// RFC 7662 introspection.
    pub introspection: Option<String>,
    /// JWKS for ID tokens.
    pub jwks_uri: Option<String>,
    /// ID-token signing algorithms the provider advertises.
    pub id_token_algs: Vec<String>,
    /// For a multi-tenant issuer (Entra ID's `organizations`): the issuer template and the
    /// tenant alias asked for; each ID token's own `tid` fills the template.
    pub tenant: Option<discovery::TenantIssuer>,
}

/// Resolves the endpoints of `manifest` for an account's `params`: the manifest's own for
/// `oauth2`, discovery (with manifest overrides) for `oidc`.
pub async fn resolve(
    http: &reqwest::Client,
    manifest: &Manifest,
    params: &BTreeMap<String, String>,
) -> Result<Endpoints, FlowError> {
    let m = &manifest.endpoints;
    let mut ep = match manifest.kind {
        Kind::Oauth2 => Endpoints {
            issuer: None,
            token: m
                .token
                .clone()
                .ok_or_else(|| FlowError::Config("no token endpoint".into()))?,
            ..Default::default()
        },
        Kind::Oidc => {
            let issuer = manifest
                .issuer_for(params)
                .map_err(FlowError::Config)?
                .ok_or_else(|| FlowError::Config("no issuer".into()))?;
            let per_tenant = manifest.quirks.issuer_varies_by_tenant;
            discovery::discover(http, &issuer, per_tenant).await?
        }
        Kind::Exec => {
            return Err(FlowError::Config(format!(
                "provider {} is an exec plugin; exec plugins are not supported yet",
                manifest.id
            )));
        }
    };
    if let Some(t) = &m.token {
        ep.token = t.clone();
    }
    ep.device_authorization = m.device_authorization.clone().or(ep.device_authorization);
    ep.authorization = m.authorization.clone().or(ep.authorization);
    ep.revocation = m.revocation.clone().or(ep.revocation);
    ep.introspection = m.introspection.clone().or(ep.introspection);
    for (key, v) in [
        ("token_endpoint", Some(&ep.token)),
        (
            "device_authorization_endpoint",
            ep.device_authorization.as_ref(),
        ),
        ("authorization_endpoint", ep.authorization.as_ref()),
        ("revocation_endpoint", ep.revocation.as_ref()),
        ("introspection_endpoint", ep.introspection.as_ref()),
        ("jwks_uri", ep.jwks_uri.as_ref()),
    ] {
        if let Some(url) = v {
            check_url(key, url).map_err(FlowError::Config)?;
        }
    }
    Ok(ep)
}
