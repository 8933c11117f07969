//! How a provider interaction failed, sorted by what the caller should do about it.

/// A flow failure. Messages carry the provider's error code and description, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The grant is dead (revoked, expired, or a replayed rotated refresh token): sign in again.
    #[error("the provider refused the refresh token ({0})")]
    InvalidGrant(String),
    /// The person declined the sign-in.
    #[error("the sign-in was declined at the provider")]
    AccessDenied,
    /// The device code expired before the person approved it.
    #[error("the sign-in code expired before it was approved")]
    Expired,
    /// The provider said no for another reason.
    #[error("the provider returned an error: {0}")]
    Provider(String),
    /// Network trouble, a timeout, or a 5xx: worth retrying.
    #[error("the provider could not be reached: {0}")]
    Transient(String),
    /// The provider asked us to slow down (HTTP 429).
    #[error("the provider is rate limiting requests (retry after {0} s)")]
    RateLimited(u64),
    /// The account or plugin is not usable as configured.
    #[error("{0}")]
    Config(String),
}

impl FlowError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, FlowError::Transient(_) | FlowError::RateLimited(_))
    }
}
