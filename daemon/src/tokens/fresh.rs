//! When a cached access token may be served: the freshness rule, and the cache key.

use secrecy::SecretString;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Served tokens keep this margin beyond `min_ttl`, for clock skew and time in flight.
pub const SKEW: Duration = Duration::from_secs(10);

/// A cached access token.
#[derive(Clone)]
pub struct CachedToken {
    /// The token. Shared, like the ID token and the fields: every cache hit clones the
    /// cached token, and a copy of each secret per caller is memory to wipe and, on a machine
    /// that has been quiet, pages to touch (bench/README.md).
    pub access: Arc<SecretString>,
    /// Usually "Bearer".
    pub token_type: String,
    /// When it expires; `None` when the provider gave no lifetime.
    pub expires_at: Option<SystemTime>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// The latest validated ID token, if the provider sent one.
    pub id_token: Option<Arc<SecretString>>,
    /// Its validated claims, when they were checked here (a refresh's); else the account's
    /// recorded ones apply. Shared: every cache hit clones the token, and few ask for these.
    pub claims: Option<Arc<serde_json::Value>>,
    /// When it was obtained (its lifetime is `expires_at - obtained_at`).
    pub obtained_at: SystemTime,
    /// Further named parts of the credential (an exec plugin's); empty for OAuth.
    pub fields: Arc<std::collections::BTreeMap<String, SecretString>>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("expires_at", &self.expires_at)
            .field("obtained_at", &self.obtained_at)
            .finish_non_exhaustive()
    }
}

/// What a caller needs of the token it is handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Valid for at least this long (plus [`SKEW`]), or, from a provider whose tokens never
    /// live that long, the current one while it is fresh.
    MinTtl(Duration),
    /// Any token but the one obtained at this instant (refresh ahead of expiry).
    Replacing(SystemTime),
}

/// Whether `t` satisfies `want` at `now`.
///
/// A provider whose tokens live less than the caller's `min_ttl` cannot satisfy it at all;
/// refreshing on every call would rotate the refresh token on every call. Such a token is
/// served (with its real expiry) until nine tenths of its life are gone, so refreshes stay
/// at most one per token lifetime whatever the call rate.
pub fn serves(t: &CachedToken, want: Freshness, now: SystemTime) -> bool {
    match want {
        Freshness::Replacing(seen) => t.obtained_at != seen,
        Freshness::MinTtl(min_ttl) => {
            let Some(exp) = t.expires_at else {
                return true;
            };
            let left = exp.duration_since(now).unwrap_or_default();
            let need = min_ttl + SKEW;
            if left >= need {
                return true;
            }
            let life = exp.duration_since(t.obtained_at).unwrap_or_default();
            life < need && !left.is_zero() && left > life / 10
        }
    }
}

/// A cache key: the account, plus the scopes and audience a caller asked for (downscoped
/// or other-audience tokens are cached apart from the account's own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    /// The account.
    pub account: String,
    /// Scopes asked for, sorted and without repeats; empty for the account's own.
    pub scopes: Vec<String>,
    /// Audience asked for.
    pub audience: Option<String>,
}

impl CacheKey {
    /// The key for `account` with `scopes` and `audience` asked for.
    pub fn new(account: &str, scopes: &[String], audience: Option<&str>) -> Self {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        Self {
            account: account.to_owned(),
            scopes,
            audience: audience.map(str::to_owned),
        }
    }

    /// The account's own token.
    pub fn account(account: &str) -> Self {
        Self::new(account, &[], None)
    }

    /// Whether this is the account's own token (no scopes or audience asked for).
    pub fn is_default(&self) -> bool {
        self.scopes.is_empty() && self.audience.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(obtained: SystemTime, life: u64) -> CachedToken {
        CachedToken {
            access: Arc::new(SecretString::from("a")),
            token_type: "Bearer".into(),
            expires_at: Some(obtained + Duration::from_secs(life)),
            scopes: vec![],
            id_token: None,
            claims: None,
            obtained_at: obtained,
            fields: Default::default(),
        }
    }

    #[test]
    fn a_long_lived_token_is_served_while_min_ttl_plus_skew_is_left() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = token(t0, 3600);
        let want = Freshness::MinTtl(Duration::from_secs(60));
        assert!(serves(&t, want, t0 + Duration::from_secs(3530)));
        assert!(!serves(&t, want, t0 + Duration::from_secs(3531)));
    }

    #[test]
    fn a_token_shorter_lived_than_min_ttl_is_served_for_nine_tenths_of_its_life() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = token(t0, 60);
        let want = Freshness::MinTtl(Duration::from_secs(60));
        assert!(serves(&t, want, t0));
        assert!(serves(&t, want, t0 + Duration::from_secs(53)));
        assert!(!serves(&t, want, t0 + Duration::from_secs(54)));
        assert!(!serves(&t, want, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn refresh_ahead_wants_any_token_but_the_one_it_saw() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = token(t0, 60);
        assert!(!serves(&t, Freshness::Replacing(t0), t0));
        assert!(serves(
            &t,
            Freshness::Replacing(t0 - Duration::from_secs(1)),
            t0
        ));
    }

    #[test]
    fn cache_keys_ignore_scope_order_and_repeats() {
        let a = CacheKey::new("w", &["b".into(), "a".into(), "a".into()], None);
        let b = CacheKey::new("w", &["a".into(), "b".into()], None);
        assert_eq!(a, b);
        assert!(!a.is_default());
        assert!(CacheKey::account("w").is_default());
    }
}
