//! Tampered ID tokens arriving through a real device sign-in are refused, each with its own
//! error, and nothing is stored. The provider here is the scripted one acting as an OpenID
//! provider (discovery, JWKS, token endpoint), signing with a key the test holds.

use data_encoding::BASE64URL_NOPAD;
use keyfob_e2e::TestEnv;
use keyfob_e2e::scripted::Scripted;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

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
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self { key, rng }
    }

    fn jwks(&self) -> String {
        let p = self.key.public_key().as_ref();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "k1",
            "x": b64(&p[1..33]), "y": b64(&p[33..65])}]})
        .to_string()
    }

    fn sign(&self, header: Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

#[test]
fn tampered_id_tokens_are_refused_at_sign_in_with_distinct_errors() {
    let s = Scripted::start();
    let signer = Signer::new();
    *s.jwks.lock().unwrap() = signer.jwks();
    let env = TestEnv::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |over: Value| {
        let mut c = json!({"iss": s.base, "aud": "keyfob-native", "sub": "alice", "iat": now, "exp": now + 300});
        for (k, v) in over.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let es = json!({"alg": "ES256", "kid": "k1"});
    let good = signer.sign(es.clone(), &claims(json!({})));
    let (head, sig) = good.rsplit_once('.').unwrap();
    let mut raw_sig = BASE64URL_NOPAD.decode(sig.as_bytes()).unwrap();
    raw_sig[7] ^= 0x10;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "aud",
            signer.sign(es.clone(), &claims(json!({"aud": "someone-else"}))),
            "for another client",
        ),
        (
            "iss",
            signer.sign(es.clone(), &claims(json!({"iss": "https://evil.test"}))),
            "issued by someone else",
        ),
        (
            "exp",
            signer.sign(es.clone(), &claims(json!({"exp": now - 3600}))),
            "has expired",
        ),
        (
            "iat",
            signer.sign(es.clone(), &claims(json!({"iat": now + 3600}))),
            "issued in the future",
        ),
        (
            "none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none"}"#),
                b64(claims(json!({})).to_string().as_bytes())
            ),
            "not signed",
        ),
        (
            "sig",
            format!("{head}.{}", b64(&raw_sig)),
            "signature is invalid",
        ),
        (
            "kid",
            signer.sign(json!({"alg": "ES256", "kid": "k9"}), &claims(json!({}))),
            "key the provider does not publish",
        ),
        (
            "hs256",
            signer.sign(json!({"alg": "HS256", "kid": "k1"}), &claims(json!({}))),
            "disallowed signing algorithm",
        ),
    ];
    let mut messages = std::collections::HashSet::new();
    for (name, token, want) in cases {
        *s.id_token.lock().unwrap() = Some(token);
        env.add_account(name, &s.base);
        let out = env.keyfob(&["login", name, "--device"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{name}: a tampered ID token was accepted"
        );
        assert!(err.contains(want), "{name}: want {want:?} in {err}");
        messages.insert(want);
        let show: Value =
            serde_json::from_str(&env.ok(&["account", "show", name, "--json"])).unwrap();
        assert_eq!(show["state"], "signed_out", "{name}: nothing may be stored");
    }
    assert_eq!(messages.len(), 8);

    // The untampered token signs in.
    *s.id_token.lock().unwrap() = Some(good);
    env.add_account("ok", &s.base);
    env.ok(&["login", "ok", "--device"]);
    let c: Value = serde_json::from_str(&env.ok(&["token", "ok", "--claims", "--json"])).unwrap();
    assert_eq!(c["claims"]["sub"], "alice");
}
