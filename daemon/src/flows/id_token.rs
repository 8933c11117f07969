//! ID-token validation: signature against the provider's JWKS with an allow-list of
//! asymmetric algorithms (never `none`, never HMAC), `iss`, `aud`/`azp`, `exp`/`iat` with
//! bounded skew, and `nonce`. Each failure is its own error.

use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    ClaimsVerificationError, ClientId, IssuerUrl, Nonce, SignatureVerificationError,
};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clock skew tolerated on `exp` and `iat`.
pub const SKEW: Duration = Duration::from_secs(120);
/// A JWKS is refetched for an unknown `kid` at most this often.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

const IAT_FUTURE: &str = "iat is in the future";

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Not a JWT.
    #[error("the ID token is malformed")]
    Malformed,
    /// `iss` is not the provider.
    #[error("the ID token was issued by someone else ({0})")]
    WrongIssuer(String),
    /// A multi-tenant account's ID token names a tenant the account does not take.
    #[error("the ID token's tenant is not one this account accepts ({0})")]
    WrongTenant(String),
    /// `aud`/`azp` does not name this client.
    #[error("the ID token is for another client ({0})")]
    WrongAudience(String),
    /// `nonce` is not the one sent.
    #[error("the ID token's nonce does not match this sign-in")]
    WrongNonce,
    /// Past `exp` (beyond the skew).
    #[error("the ID token has expired ({0})")]
    Expired(String),
    /// `iat` in the future (beyond the skew).
    #[error("the ID token claims to be issued in the future")]
    IssuedInFuture,
    /// Unsigned (`alg: none`).
    #[error("the ID token is not signed")]
    Unsigned,
    /// An algorithm outside the allow-list.
    #[error("the ID token uses a disallowed signing algorithm ({0})")]
    AlgNotAllowed(String),
    /// The signature does not verify.
    #[error("the ID token's signature is invalid")]
    BadSignature,
    /// No key in the JWKS has the token's `kid`.
    #[error("the ID token is signed with a key the provider does not publish")]
    UnknownKey,
    /// Anything else the verifier refused.
    #[error("the ID token was refused: {0}")]
    Other(String),
}

/// Algorithms allowed for ID tokens: the asymmetric ones the provider advertises (RS256
/// when it advertises none). HMAC is never allowed: a public client has no shared secret,
/// and accepting it invites signing with the public key as the "secret".
pub fn allowed_algs(advertised: &[String]) -> Vec<CoreJwsSigningAlgorithm> {
    const ASYMMETRIC: [&str; 10] = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    ];
    let picked: Vec<CoreJwsSigningAlgorithm> = advertised
        .iter()
        .filter(|a| ASYMMETRIC.contains(&a.as_str()))
        .filter_map(|a| serde_json::from_value(serde_json::Value::String(a.clone())).ok())
        .collect();
    if picked.is_empty() {
        vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
    } else {
        picked
    }
}

/// The tenant id of personal Microsoft accounts.
pub const CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Whether `s` has the shape of a tenant id (a GUID).
pub fn is_tenant_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The issuer a token of tenant `tid` must name, when the alias takes that tenant.
fn tenant_issuer(
    t: &super::discovery::TenantIssuer,
    tid: Option<&str>,
) -> Result<String, IdTokenError> {
    let tid = tid.ok_or_else(|| IdTokenError::WrongTenant("it names no tenant (tid)".into()))?;
    if !is_tenant_id(tid) {
        return Err(IdTokenError::WrongTenant(format!(
            "{tid:?} is not a tenant id"
        )));
    }
    let personal = tid.eq_ignore_ascii_case(CONSUMERS_TENANT);
    match t.alias.as_str() {
        "organizations" if personal => Err(IdTokenError::WrongTenant(
            "a personal Microsoft account, and the account takes work or school accounts only (tenant \"organizations\")".into(),
        )),
        "consumers" if !personal => Err(IdTokenError::WrongTenant(format!(
            "tenant {tid}, and the account takes personal Microsoft accounts only (tenant \"consumers\")"
        ))),
        _ => Ok(t.template.replace("{tenantid}", tid)),
    }
}

/// The payload of a JWT, decoded without verifying anything: for what is read before the
/// verification (the issuer to hold it to), after it (a stored token's expiry), or never
/// (`--claims` on an access token, which is the resource server's to verify).
pub fn unverified_payload(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A string claim of a JWT's payload, read without verifying it: only to pick the issuer
/// the verification then holds the token to.
fn unverified_claim(raw: &str, name: &str) -> Option<String> {
    unverified_payload(raw)?
        .get(name)?
        .as_str()
        .map(str::to_owned)
}

/// What to check an ID token against.
pub struct Expect<'a> {
    /// The provider's issuer.
    pub issuer: &'a str,
    /// For a multi-tenant issuer: the template each token's own `tid` fills.
    pub tenant: Option<&'a super::discovery::TenantIssuer>,
    /// This client's id.
    pub client_id: &'a str,
    /// The nonce sent in the authorization request; `None` when none was sent.
    pub nonce: Option<&'a str>,
    /// Allowed algorithms.
    pub algs: &'a [CoreJwsSigningAlgorithm],
}

/// Verifies `raw` and returns its claims.
pub fn verify(
    raw: &str,
    expect: &Expect<'_>,
    jwks: &CoreJsonWebKeySet,
) -> Result<serde_json::Value, IdTokenError> {
    let token = CoreIdToken::from_str(raw).map_err(|_| IdTokenError::Malformed)?;
    // A multi-tenant issuer is the template filled with the token's own tenant; the signature
    // check below then vouches for that tenant claim. Never any issuer at all.
    let issuer = match expect.tenant {
        Some(t) => tenant_issuer(t, unverified_claim(raw, "tid").as_deref())?,
        None => expect.issuer.to_owned(),
    };
    let issuer = IssuerUrl::new(issuer).map_err(|e| IdTokenError::Other(e.to_string()))?;
    let skew = chrono::Duration::from_std(SKEW).unwrap_or_default();
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(expect.client_id.to_owned()),
        issuer,
        jwks.clone(),
    )
    .set_allowed_algs(expect.algs.to_vec())
    // exp is compared with this clock: running it SKEW behind tolerates a fast provider clock.
    .set_time_fn(move || chrono::Utc::now() - skew)
    .set_issue_time_verifier_fn(move |iat| {
        if iat > chrono::Utc::now() + skew {
            Err(IAT_FUTURE.into())
        } else {
            Ok(())
        }
    });
    let expected_nonce = expect.nonce.map(|n| Nonce::new(n.to_owned()));
    let nonce_check = |got: Option<&Nonce>| -> Result<(), String> {
        match (&expected_nonce, got) {
            (None, _) => Ok(()),
            (Some(want), Some(got)) if want.secret() == got.secret() => Ok(()),
            _ => Err("nonce mismatch".into()),
        }
    };
    let claims = token.claims(&verifier, nonce_check).map_err(|e| match e {
        // The iat check reports through `Expired` with our own message.
        ClaimsVerificationError::Expired(m) if m.contains(IAT_FUTURE) => {
            IdTokenError::IssuedInFuture
        }
        ClaimsVerificationError::Expired(m) => IdTokenError::Expired(m),
        ClaimsVerificationError::InvalidAudience(m) => IdTokenError::WrongAudience(m),
        ClaimsVerificationError::InvalidIssuer(m) => IdTokenError::WrongIssuer(m),
        ClaimsVerificationError::InvalidNonce(_) => IdTokenError::WrongNonce,
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoMatchingKey => IdTokenError::UnknownKey,
            SignatureVerificationError::NoSignature => IdTokenError::Unsigned,
            SignatureVerificationError::DisallowedAlg(m)
            | SignatureVerificationError::UnsupportedAlg(m) => {
                if m.contains("none") {
                    IdTokenError::Unsigned
                } else {
                    IdTokenError::AlgNotAllowed(m)
                }
            }
            SignatureVerificationError::CryptoError(_) => IdTokenError::BadSignature,
            other => IdTokenError::Other(other.to_string()),
        },
        other => IdTokenError::Other(other.to_string()),
    })?;
    serde_json::to_value(claims).map_err(|e| IdTokenError::Other(e.to_string()))
}

/// JWKS per URI, refetched for an unknown key no more than once per [`REFETCH_INTERVAL`].
#[derive(Default)]
pub struct JwksCache {
    sets: Mutex<HashMap<String, (CoreJsonWebKeySet, Instant)>>,
}

impl JwksCache {
    /// Verifies with the cached set, fetching it first if absent, and refetching once when
    /// the token names an unknown key (a provider rotating keys).
    pub async fn verify<F, Fut>(
        &self,
        uri: &str,
        raw: &str,
        expect: &Expect<'_>,
        fetch: F,
    ) -> Result<serde_json::Value, IdTokenError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<CoreJsonWebKeySet, String>>,
    {
        let cached = self
            .sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uri)
            .cloned();
        let (set, fetched) = match cached {
            Some(c) => c,
            None => self.refetch(uri, &fetch).await?,
        };
        match verify(raw, expect, &set) {
            Err(IdTokenError::UnknownKey) if fetched.elapsed() >= REFETCH_INTERVAL => {
                let (set, _) = self.refetch(uri, &fetch).await?;
                verify(raw, expect, &set)
            }
            other => other,
        }
    }

    async fn refetch<F, Fut>(
        &self,
        uri: &str,
        fetch: &F,
    ) -> Result<(CoreJsonWebKeySet, Instant), IdTokenError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<CoreJsonWebKeySet, String>>,
    {
        let set = fetch()
            .await
            .map_err(|e| IdTokenError::Other(format!("cannot fetch the provider's keys: {e}")))?;
        let entry = (set, Instant::now());
        self.sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uri.to_owned(), entry.clone());
        Ok(entry)
    }
}

/// Fetches a JWKS document.
pub async fn fetch_jwks(http: &reqwest::Client, uri: &str) -> Result<CoreJsonWebKeySet, String> {
    let resp = http.get(uri).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    super::http::json_bounded(resp).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::BASE64URL_NOPAD;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const ISS: &str = "https://idp.example.test";
    const CLIENT: &str = "keyfob-native";

    fn b64(bytes: &[u8]) -> String {
        BASE64URL_NOPAD.encode(bytes)
    }

    struct Signer {
        key: EcdsaKeyPair,
        rng: SystemRandom,
    }

    impl Signer {
        fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Self { key, rng }
        }

        fn jwks(&self, kid: &str) -> CoreJsonWebKeySet {
            let p = self.key.public_key().as_ref();
            serde_json::from_value(json!({"keys": [{
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": b64(&p[1..33]), "y": b64(&p[33..65]),
            }]}))
            .unwrap()
        }

        fn token(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
            format!("{input}.{}", b64(sig.as_ref()))
        }
    }

    fn claims(over: serde_json::Value) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        let mut c = json!({"iss": ISS, "aud": CLIENT, "sub": "alice", "iat": now, "exp": now + 300, "nonce": "n-1"});
        for (k, v) in over.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn check(raw: &str, jwks: &CoreJsonWebKeySet) -> Result<serde_json::Value, IdTokenError> {
        let algs = allowed_algs(&["ES256".into(), "HS256".into(), "none".into()]);
        verify(
            raw,
            &Expect {
                issuer: ISS,
                tenant: None,
                client_id: CLIENT,
                nonce: Some("n-1"),
                algs: &algs,
            },
            jwks,
        )
    }

    #[test]
    fn a_tenant_issuer_is_filled_with_the_tokens_own_signed_tenant() {
        let s = Signer::new();
        let jwks = s.jwks("k1");
        let es = json!({"alg": "ES256", "kid": "k1"});
        let t = crate::flows::discovery::TenantIssuer {
            template: "https://login.example/{tenantid}/v2.0".into(),
            alias: "organizations".into(),
        };
        let algs = allowed_algs(&["ES256".into()]);
        let expect = Expect {
            issuer: "https://login.example/organizations/v2.0",
            tenant: Some(&t),
            client_id: CLIENT,
            nonce: Some("n-1"),
            algs: &algs,
        };
        let mine = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let other = "11111111-2222-3333-4444-555555555555";
        let iss = |tid: &str| format!("https://login.example/{tid}/v2.0");
        let token = |over| s.token(es.clone(), claims(over));
        let ok = token(json!({"iss": iss(mine), "tid": mine}));
        assert_eq!(verify(&ok, &expect, &jwks).unwrap()["sub"], "alice");
        // Another tenant's issuer than the token's own tenant: refused.
        let mixed = token(json!({"iss": iss(other), "tid": mine}));
        assert!(matches!(
            verify(&mixed, &expect, &jwks),
            Err(IdTokenError::WrongIssuer(_))
        ));
        // The template itself, no tenant, a tenant that is no id, a personal account.
        for bad in [
            json!({"iss": "https://login.example/{tenantid}/v2.0", "tid": "{tenantid}"}),
            json!({"iss": iss(mine)}),
            json!({"iss": iss("evil.example"), "tid": "evil.example"}),
            json!({"iss": iss(CONSUMERS_TENANT), "tid": CONSUMERS_TENANT}),
        ] {
            let got = verify(&token(bad.clone()), &expect, &jwks);
            assert!(
                matches!(got, Err(IdTokenError::WrongTenant(_))),
                "{bad}: {got:?}"
            );
        }
    }

    #[test]
    fn a_good_token_passes_and_each_tampering_has_its_own_error() {
        let s = Signer::new();
        let jwks = s.jwks("k1");
        let es = json!({"alg": "ES256", "kid": "k1"});
        let good = check(&s.token(es.clone(), claims(json!({}))), &jwks).unwrap();
        assert_eq!(good["sub"], "alice");

        let cases: Vec<(String, IdTokenError)> = vec![
            (
                s.token(es.clone(), claims(json!({"aud": "someone-else"}))),
                IdTokenError::WrongAudience(String::new()),
            ),
            (
                s.token(es.clone(), claims(json!({"nonce": "n-2"}))),
                IdTokenError::WrongNonce,
            ),
            (
                s.token(es.clone(), claims(json!({"iss": "https://evil.test"}))),
                IdTokenError::WrongIssuer(String::new()),
            ),
            (
                s.token(
                    es.clone(),
                    claims(json!({"exp": chrono::Utc::now().timestamp() - 3600})),
                ),
                IdTokenError::Expired(String::new()),
            ),
            (
                s.token(
                    es.clone(),
                    claims(json!({"iat": chrono::Utc::now().timestamp() + 3600})),
                ),
                IdTokenError::IssuedInFuture,
            ),
            (
                s.token(json!({"alg": "ES256", "kid": "k2"}), claims(json!({}))),
                IdTokenError::UnknownKey,
            ),
            (
                format!(
                    "{}.{}.",
                    b64(br#"{"alg":"none"}"#),
                    b64(claims(json!({})).to_string().as_bytes())
                ),
                IdTokenError::Unsigned,
            ),
            (
                {
                    let t = s.token(es.clone(), claims(json!({})));
                    let (head, sig) = t.rsplit_once('.').unwrap();
                    let mut raw = BASE64URL_NOPAD.decode(sig.as_bytes()).unwrap();
                    raw[5] ^= 0x40;
                    format!("{head}.{}", b64(&raw))
                },
                IdTokenError::BadSignature,
            ),
            (
                s.token(json!({"alg": "HS256", "kid": "k1"}), claims(json!({}))),
                IdTokenError::AlgNotAllowed(String::new()),
            ),
            ("not.a.jwt".into(), IdTokenError::Malformed),
        ];
        for (raw, want) in cases {
            let got = check(&raw, &jwks).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&want),
                "want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn hmac_and_none_are_never_allowed() {
        let algs = allowed_algs(&["HS256".into(), "none".into()]);
        assert_eq!(algs, vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_the_keys_once_then_is_rate_limited() {
        let old = Signer::new();
        let new = Signer::new();
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let cache = JwksCache::default();
        let algs = allowed_algs(&["ES256".into()]);
        let expect = Expect {
            issuer: ISS,
            tenant: None,
            client_id: CLIENT,
            nonce: None,
            algs: &algs,
        };
        // The provider first publishes the old key; then it rotates to the new one.
        let fetch = || {
            let n = fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let set = if n == 0 {
                old.jwks("old")
            } else {
                new.jwks("new")
            };
            async move { Ok(set) }
        };
        let t_old = old.token(json!({"alg": "ES256", "kid": "old"}), claims(json!({})));
        cache.verify("u", &t_old, &expect, fetch).await.unwrap();
        let t_new = new.token(json!({"alg": "ES256", "kid": "new"}), claims(json!({})));
        // Just fetched: an unknown kid does not trigger another fetch yet.
        assert_eq!(
            cache.verify("u", &t_new, &expect, fetch).await,
            Err(IdTokenError::UnknownKey)
        );
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Once the interval has passed, the unknown kid triggers one refetch and verifies.
        {
            let mut sets = cache.sets.lock().unwrap();
            let e = sets.get_mut("u").unwrap();
            e.1 -= REFETCH_INTERVAL;
        }
        cache.verify("u", &t_new, &expect, fetch).await.unwrap();
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
