//! The token response Keyfob keeps (with the OIDC `id_token`), the client type, and the
//! mapping of oauth2 errors to [`FlowError`].

use super::{Endpoints, FlowError};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    ClientId, ClientSecret, EndpointNotSet, EndpointSet, ErrorResponse, RequestTokenError,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Extra fields of a token response: the ID token, when the provider sends one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    /// The raw ID token (a JWT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl oauth2::ExtraTokenFields for IdTokenField {}

/// A token endpoint response.
pub type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// An oauth2 client with a token endpoint and device endpoint state `D`.
pub type OauthClient<D> = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    D,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The account's client credentials.
#[derive(Clone)]
pub struct ClientCreds {
    /// The client id.
    pub id: String,
    /// The client secret, for confidential clients.
    pub secret: Option<SecretString>,
    /// Send the client id and secret as form fields rather than HTTP Basic (GitHub does not
    /// read Basic credentials at its token endpoint).
    pub secret_in_body: bool,
}

impl std::fmt::Debug for ClientCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCreds")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A client for the token endpoint.
pub fn client(
    ep: &Endpoints,
    creds: &ClientCreds,
) -> Result<OauthClient<EndpointNotSet>, FlowError> {
    let token = TokenUrl::new(ep.token.clone())
        .map_err(|e| FlowError::Config(format!("bad token endpoint: {e}")))?;
    let mut c = oauth2::Client::new(ClientId::new(creds.id.clone())).set_token_uri(token);
    if let Some(s) = &creds.secret {
        c = c.set_client_secret(ClientSecret::new(s.expose_secret().to_owned()));
    }
    if creds.secret_in_body {
        c = c.set_auth_type(oauth2::AuthType::RequestBody);
    }
    Ok(c)
}

/// Sorts a token-endpoint failure.
pub fn classify<E: std::error::Error, T: ErrorResponse + 'static>(
    e: RequestTokenError<E, T>,
) -> FlowError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            // Serialise the standard error object to read its code without knowing T.
            let v = serde_json::to_value(&r).unwrap_or_default();
            let code = v
                .get("error")
                .and_then(|c| c.as_str())
                .unwrap_or("unknown")
                .to_owned();
            // A description is the provider's free text: bounded, so a hostile provider
            // cannot fill messages and logs.
            let desc = v
                .get("error_description")
                .and_then(|c| c.as_str())
                .map(|d| {
                    let d: String = d.chars().take(300).collect();
                    format!(": {d}")
                })
                .unwrap_or_default();
            let code: String = code.chars().take(80).collect();
            match code.as_str() {
                // GitHub's name for a dead refresh token.
                "invalid_grant" | "bad_refresh_token" => {
                    FlowError::InvalidGrant(format!("{code}{desc}"))
                }
                // Entra ID says `authorization_declined` where RFC 8628 says `access_denied`.
                "access_denied" | "authorization_declined" => FlowError::AccessDenied,
                "expired_token" => FlowError::Expired,
                "server_error" | "temporarily_unavailable" => {
                    FlowError::Transient(format!("{code}{desc}"))
                }
                _ => FlowError::Provider(format!("{code}{desc}")),
            }
        }
        RequestTokenError::Request(e) => FlowError::Transient(e.to_string()),
        RequestTokenError::Parse(_, body) => {
            // A non-JSON answer is a gateway or server page: transient. Never echo the body.
            FlowError::Transient(format!(
                "an unreadable token response ({} bytes)",
                body.len()
            ))
        }
        RequestTokenError::Other(m) => FlowError::Provider(m),
    }
}
