//! Self-check of the shaped fake provider (`keyfob_e2e::shaped`): driven over raw HTTP, each
//! shape answers the way the real provider documents it (status codes, encodings, field
//! names, token rotation), so tests that run the bundled plugins against it test the real
//! shapes.

use data_encoding::BASE64URL_NOPAD;
use keyfob_e2e::shaped::{ENTRA_TID, KID, Person, Shape, Shaped};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// One HTTP answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        assert!(
            self.header("content-type").starts_with("application/json"),
            "not JSON: {} {}",
            self.header("content-type"),
            self.body
        );
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn form(&self) -> HashMap<String, String> {
        assert!(
            self.header("content-type")
                .starts_with("application/x-www-form-urlencoded"),
            "not form-encoded: {} {}",
            self.header("content-type"),
            self.body
        );
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

/// A minimal HTTP/1.1 exchange with `base` (one request per connection).
fn request(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let host = base.strip_prefix("http://").expect("http base");
    let mut s = TcpStream::connect(host).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn post(s: &Shaped, path: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    request(&s.base, "POST", path, headers, &body)
}

fn get(s: &Shaped, path: &str) -> Reply {
    request(&s.base, "GET", path, &[], "")
}

const JSON: &[(&str, &str)] = &[("Accept", "application/json")];

/// The device and token endpoints of a shape.
fn endpoints(shape: Shape) -> (&'static str, &'static str) {
    match shape {
        Shape::GithubOauthApp | Shape::GithubApp => {
            ("/login/device/code", "/login/oauth/access_token")
        }
        Shape::Entra => (
            "/organizations/oauth2/v2.0/devicecode",
            "/organizations/oauth2/v2.0/token",
        ),
        Shape::Google => ("/device/code", "/token"),
        Shape::Gitlab => ("/oauth/authorize_device", "/oauth/token"),
    }
}

/// Client credentials the shape's requests carry (Google's desktop clients have a secret).
fn client(shape: Shape) -> Vec<(&'static str, &'static str)> {
    match shape {
        Shape::Google => vec![("client_id", "c"), ("client_secret", "s")],
        _ => vec![("client_id", "c")],
    }
}

/// Starts a device sign-in; returns the device code.
fn device_code(s: &Shaped, scope: &str) -> String {
    let mut form = client(s.shape);
    form.push(("scope", scope));
    let r = post(s, endpoints(s.shape).0, JSON, &form);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["device_code"]
        .as_str()
        .expect("device_code")
        .into()
}

/// One device poll.
fn poll(s: &Shaped, code: &str) -> Reply {
    let mut form = client(s.shape);
    form.extend([("device_code", code), ("grant_type", DEVICE_GRANT)]);
    post(s, endpoints(s.shape).1, JSON, &form)
}

fn refresh(s: &Shaped, rt: &str) -> Reply {
    let mut form = client(s.shape);
    form.extend([("grant_type", "refresh_token"), ("refresh_token", rt)]);
    post(s, endpoints(s.shape).1, JSON, &form)
}

/// The claims of an ID token after checking its ES256 signature against the shape's JWKS.
fn verified_claims(s: &Shaped, jwks_path: &str, token: &str) -> Value {
    let jwks = get(s, jwks_path).json();
    let k = &jwks["keys"][0];
    assert_eq!(k["kid"], KID);
    let mut point = vec![4u8];
    for c in ["x", "y"] {
        point.extend(
            BASE64URL_NOPAD
                .decode(k[c].as_str().unwrap().as_bytes())
                .unwrap(),
        );
    }
    let (input, sig) = token.rsplit_once('.').unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(
            input.as_bytes(),
            &BASE64URL_NOPAD.decode(sig.as_bytes()).unwrap(),
        )
        .expect("the ID token verifies against the JWKS");
    let (header, payload) = input.split_once('.').unwrap();
    let header: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(header.as_bytes()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], KID);
    serde_json::from_slice(&BASE64URL_NOPAD.decode(payload.as_bytes()).unwrap()).unwrap()
}

#[test]
fn github_errors_come_with_http_200_and_form_encoded_unless_json_is_asked() {
    let s = Shaped::start(Shape::GithubOauthApp);
    s.interval(0);
    s.person(Person::Approve, 5);
    let d = post(
        &s,
        "/login/device/code",
        &[],
        &[("client_id", "c"), ("scope", "repo read:org")],
    );
    assert_eq!(d.status, 200);
    let d = d.form();
    assert_eq!(d["user_code"], "ABCD-1234");
    assert_eq!(d["verification_uri"], format!("{}/login/device", s.base));
    assert_eq!(d["expires_in"], "900");
    assert_eq!(d["interval"], "0");
    let dc = d["device_code"].as_str();
    let token = |accept: &[(&str, &str)], form: &[(&str, &str)]| {
        post(&s, "/login/oauth/access_token", accept, form)
    };
    let device = [
        ("client_id", "c"),
        ("device_code", dc),
        ("grant_type", DEVICE_GRANT),
    ];

    let r = token(&[], &device);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "no-store");
    assert_eq!(r.header("connection"), "close");
    let f = r.form();
    assert_eq!(f["error"], "authorization_pending");
    assert!(!f["error_description"].is_empty() && f["error_uri"].starts_with("https://"));

    let r = token(JSON, &device);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"], "authorization_pending");

    let mut bogus = device;
    bogus[1].1 = "nope";
    let r = token(&[], &bogus);
    assert_eq!(
        (r.status, r.form()["error"].as_str()),
        (200, "incorrect_device_code")
    );

    let r = token(JSON, &[("client_id", "c"), ("grant_type", "password")]);
    assert_eq!(
        (r.status, &r.json()["error"]),
        (200, &"unsupported_grant_type".into())
    );

    let r = token(
        JSON,
        &[
            ("client_id", "c"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "ghr_x"),
        ],
    );
    assert_eq!(
        (r.status, &r.json()["error"]),
        (200, &"bad_refresh_token".into())
    );

    // No RFC 7009 revocation endpoint, and nothing else either.
    for path in ["/revoke", "/login/oauth/revoke", "/oauth/revoke"] {
        let r = post(&s, path, &[], &[("token", "gho_x")]);
        assert_eq!(r.status, 404, "{path}");
        assert!(r.json()["error"].is_string());
    }
    assert!(s.revoked().is_empty());

    assert_eq!(
        s.grants(),
        [
            DEVICE_GRANT,
            DEVICE_GRANT,
            DEVICE_GRANT,
            "password",
            "refresh_token"
        ]
    );
    assert_eq!(s.accept_headers()[..2], ["", "application/json"]);
    assert_eq!(s.polls().len(), 3);
    assert_eq!(s.device_scopes(), ["repo read:org"]);
    assert_eq!(s.refresh_tokens_used(), ["ghr_x"]);
    assert!(s.client_secrets_seen().iter().all(|b| !b));
}

#[test]
fn a_github_oauth_app_token_has_comma_scopes_and_neither_expiry_nor_refresh_token() {
    let s = Shaped::start(Shape::GithubOauthApp);
    s.interval(0);
    let dc = device_code(&s, "repo read:org");
    assert_eq!(poll(&s, &dc).json()["error"], "authorization_pending");
    let r = poll(&s, &dc);
    assert_eq!(r.status, 200);
    let t = r.json();
    assert!(
        t["access_token"].as_str().unwrap().starts_with("gho_"),
        "{t}"
    );
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["scope"], "repo,read:org");
    assert!(
        t.get("expires_in").is_none() && t.get("refresh_token").is_none(),
        "{t}"
    );
    // The device code is spent.
    assert_eq!(poll(&s, &dc).json()["error"], "incorrect_device_code");
}

#[test]
fn github_slow_down_adds_five_seconds_and_repeats_while_polls_come_sooner() {
    let s = Shaped::start(Shape::GithubOauthApp);
    s.person(Person::Approve, 5);
    let dc = device_code(&s, "repo");
    assert_eq!(poll(&s, &dc).json()["error"], "authorization_pending");
    let r = poll(&s, &dc).json();
    assert_eq!(
        (r["error"].as_str(), r["interval"].as_u64()),
        (Some("slow_down"), Some(6))
    );
    let r = poll(&s, &dc).json();
    assert_eq!(
        (r["error"].as_str(), r["interval"].as_u64()),
        (Some("slow_down"), Some(11))
    );

    // A forced one, for tests that need a slow_down without waiting.
    s.interval(0);
    let dc = device_code(&s, "repo");
    s.slow_down_once();
    let r = poll(&s, &dc).json();
    assert_eq!(
        (r["error"].as_str(), r["interval"].as_u64()),
        (Some("slow_down"), Some(5))
    );
    assert_eq!(s.polls().len(), 4);
}

#[test]
fn a_github_app_refresh_rotates_and_a_reused_refresh_token_is_bad_refresh_token_with_200() {
    let s = Shaped::start(Shape::GithubApp);
    s.interval(0);
    s.person(Person::Approve, 0);
    let t = poll(&s, &device_code(&s, "")).json();
    assert!(
        t["access_token"].as_str().unwrap().starts_with("ghu_"),
        "{t}"
    );
    assert_eq!(t["expires_in"], 28800);
    assert_eq!(t["refresh_token_expires_in"], 15_897_600);
    assert_eq!(
        (t["token_type"].as_str(), t["scope"].as_str()),
        (Some("bearer"), Some(""))
    );
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();
    assert!(rt1.starts_with("ghr_"));

    s.access_ttl(60);
    let r = refresh(&s, &rt1);
    assert_eq!(r.status, 200);
    let t2 = r.json();
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(t2["expires_in"], 60);

    let r = refresh(&s, &rt1);
    assert_eq!(
        (r.status, &r.json()["error"]),
        (200, &"bad_refresh_token".into())
    );
    assert_eq!(refresh(&s, &rt2).status, 200);
    assert!(refresh(&s, &rt2).json()["error"] == "bad_refresh_token");
    assert_eq!(s.refresh_tokens_used(), [rt1.as_str(), &rt1, &rt2, &rt2]);

    // The person removes the app's access: the newest refresh token dies too.
    let rt3 = s.refresh_tokens_issued().last().unwrap().clone();
    assert_eq!(s.refresh_tokens_issued().len(), 3);
    s.revoke_grants();
    assert_eq!(refresh(&s, &rt3).json()["error"], "bad_refresh_token");
}

#[test]
fn pending_denied_and_expired_sign_ins_get_each_providers_own_errors_and_statuses() {
    // (shape, pending status, denial error and status, expiry status)
    let cases = [
        (Shape::GithubOauthApp, 200, "access_denied", 200, 200),
        (Shape::Entra, 400, "authorization_declined", 400, 400),
        (Shape::Google, 428, "access_denied", 403, 400),
        (Shape::Gitlab, 400, "access_denied", 400, 400),
    ];
    for (shape, pending, denial, denial_status, expired) in cases {
        let s = Shaped::start(shape);
        s.interval(0);
        s.person(Person::Deny, 2);
        let dc = device_code(&s, "openid");
        for _ in 0..2 {
            let r = poll(&s, &dc);
            assert_eq!(r.status, pending, "{shape:?}: {}", r.body);
            assert_eq!(r.json()["error"], "authorization_pending", "{shape:?}");
        }
        for _ in 0..2 {
            let r = poll(&s, &dc);
            assert_eq!(r.status, denial_status, "{shape:?}: {}", r.body);
            assert_eq!(r.json()["error"], denial, "{shape:?}");
        }
        s.person(Person::Ignore, 0);
        let r = poll(&s, &device_code(&s, "openid"));
        assert_eq!(r.status, expired, "{shape:?}: {}", r.body);
        let e = r.json();
        assert_eq!(e["error"], "expired_token", "{shape:?}");
        if shape == Shape::Entra {
            assert!(e["error_codes"][0].is_u64(), "{e}");
            for k in [
                "error_description",
                "timestamp",
                "trace_id",
                "correlation_id",
            ] {
                assert!(e[k].is_string(), "{k}: {e}");
            }
        }
    }
}

#[test]
fn google_device_code_without_a_client_secret_is_401_and_answers_verification_url() {
    let s = Shaped::start(Shape::Google);
    let r = post(
        &s,
        "/device/code",
        &[],
        &[("client_id", "c"), ("scope", "openid email")],
    );
    assert_eq!(r.status, 401);
    let e = r.json();
    assert_eq!(e["error"], "invalid_client");
    assert_eq!(e["error_description"], "client_secret is missing.");

    // HTTP Basic counts as the secret.
    let basic = format!("Basic {}", data_encoding::BASE64.encode(b"c:s"));
    let r = post(
        &s,
        "/device/code",
        &[("Authorization", &basic)],
        &[("scope", "openid email profile")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["verification_url"], format!("{}/device", s.base));
    assert!(d.get("verification_uri").is_none(), "{d}");
    assert_eq!(
        (d["expires_in"].as_u64(), d["interval"].as_u64()),
        (Some(1800), Some(1))
    );

    let r = post(
        &s,
        "/device/code",
        &[],
        &[
            ("client_id", "c"),
            ("client_secret", "s"),
            ("scope", "openid https://www.googleapis.com/auth/drive"),
        ],
    );
    assert_eq!(
        (r.status, &r.json()["error"]),
        (400, &"invalid_scope".into())
    );

    // The token endpoint wants the secret too.
    let r = post(
        &s,
        "/token",
        &[],
        &[
            ("client_id", "c"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//x"),
        ],
    );
    assert_eq!(
        (r.status, &r.json()["error"]),
        (401, &"invalid_client".into())
    );
    assert_eq!(s.client_secrets_seen(), [false, true, true, false]);
}

#[test]
fn google_refresh_does_not_rotate_and_revocation_kills_the_grant() {
    let s = Shaped::start(Shape::Google);
    s.interval(0);
    s.person(Person::Approve, 0);
    let t = poll(&s, &device_code(&s, "openid email")).json();
    assert!(
        t["access_token"].as_str().unwrap().starts_with("ya29."),
        "{t}"
    );
    assert_eq!(
        (t["token_type"].as_str(), t["expires_in"].as_u64()),
        (Some("Bearer"), Some(3599))
    );
    assert_eq!(
        t["scope"],
        "openid https://www.googleapis.com/auth/userinfo.email"
    );
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert!(rt.starts_with("1//"));
    let c = verified_claims(&s, "/oauth2/v3/certs", t["id_token"].as_str().unwrap());
    assert_eq!(
        (c["iss"].as_str(), c["aud"].as_str()),
        (Some(s.base.as_str()), Some("c"))
    );
    assert_eq!(c["email"], "alice@example.com");

    for _ in 0..2 {
        let r = refresh(&s, &rt).json();
        assert!(
            r["access_token"].is_string() && r["id_token"].is_string(),
            "{r}"
        );
        assert!(
            r.get("refresh_token").is_none(),
            "Google does not rotate: {r}"
        );
    }
    let r = post(&s, "/revoke", &[], &[("token", &rt)]);
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let r = refresh(&s, &rt);
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(e["error_description"], "Token has been expired or revoked.");
    assert_eq!(s.revoked(), [rt]);

    let d = get(&s, "/.well-known/openid-configuration").json();
    assert_eq!(d["issuer"], s.base);
    assert_eq!(d["revocation_endpoint"], format!("{}/revoke", s.base));
    assert_eq!(
        d["device_authorization_endpoint"],
        format!("{}/device/code", s.base)
    );
}

#[test]
fn entra_discovery_for_organizations_has_the_tenantid_template_issuer() {
    let s = Shaped::start(Shape::Entra);
    let b = &s.base;
    for tenant in ["organizations", "common", "consumers"] {
        let d = get(
            &s,
            &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
        )
        .json();
        // consumers names its one tenant's id, as the real one does.
        let want = if tenant == "consumers" {
            format!("{b}/{}/v2.0", keyfob_e2e::shaped::CONSUMERS_TID)
        } else {
            format!("{b}/{{tenantid}}/v2.0")
        };
        assert_eq!(d["issuer"], want, "{tenant}");
        assert_eq!(
            d["token_endpoint"],
            format!("{b}/{tenant}/oauth2/v2.0/token")
        );
        assert_eq!(
            d["device_authorization_endpoint"],
            format!("{b}/{tenant}/oauth2/v2.0/devicecode")
        );
        assert_eq!(d["jwks_uri"], format!("{b}/{tenant}/discovery/v2.0/keys"));
        assert_eq!(d["id_token_signing_alg_values_supported"][0], "ES256");
        assert!(d.get("revocation_endpoint").is_none(), "{d}");
    }
    for tenant in [ENTRA_TID, "contoso.example"] {
        let d = get(
            &s,
            &format!("/{tenant}/v2.0/.well-known/openid-configuration"),
        )
        .json();
        // A tenant named by its domain is published under its id.
        assert_eq!(d["issuer"], format!("{b}/{ENTRA_TID}/v2.0"));
    }
    assert_eq!(get(&s, "/devicelogin").status, 200);
    let r = get(&s, "/.well-known/openid-configuration");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
}

#[test]
fn entra_id_tokens_name_the_users_tenant_and_old_refresh_tokens_stay_usable() {
    let s = Shaped::start(Shape::Entra);
    s.interval(0);
    s.person(Person::Approve, 0);
    let t = poll(&s, &device_code(&s, "openid profile offline_access")).json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(
        (t["expires_in"].as_u64(), t["ext_expires_in"].as_u64()),
        (Some(3599), Some(3599))
    );
    assert_eq!(t["scope"], "openid profile");
    let jwks = "/organizations/discovery/v2.0/keys";
    let c = verified_claims(&s, jwks, t["id_token"].as_str().unwrap());
    assert_eq!(c["iss"], format!("{}/{ENTRA_TID}/v2.0", s.base));
    assert_eq!(
        (c["tid"].as_str(), c["aud"].as_str()),
        (Some(ENTRA_TID), Some("c"))
    );
    assert_eq!(c["ver"], "2.0");
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        3600
    );
    for k in ["sub", "oid", "preferred_username", "nbf"] {
        assert!(!c[k].is_null(), "{k}: {c}");
    }

    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();
    s.entra_tenant("9188040d-6c67-4c5b-b112-36a304b66dad", None);
    let t2 = refresh(&s, &rt1).json();
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let c = verified_claims(&s, jwks, t2["id_token"].as_str().unwrap());
    assert_eq!(
        c["iss"],
        format!("{}/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", s.base)
    );
    // Entra rotates, yet the old refresh token keeps working.
    assert_eq!(refresh(&s, &rt1).status, 200);

    s.entra_tenant(ENTRA_TID, Some("https://evil.example/v2.0".into()));
    let t3 = refresh(&s, &rt2).json();
    let c = verified_claims(&s, jwks, t3["id_token"].as_str().unwrap());
    assert_eq!(
        (c["iss"].as_str(), c["tid"].as_str()),
        (Some("https://evil.example/v2.0"), Some(ENTRA_TID))
    );

    // No refresh token without offline_access; a bad one is invalid_grant with HTTP 400.
    let t = poll(&s, &device_code(&s, "openid")).json();
    assert!(t.get("refresh_token").is_none(), "{t}");
    let r = refresh(&s, "0.AXoAnope");
    assert_eq!(
        (r.status, &r.json()["error"]),
        (400, &"invalid_grant".into())
    );
    assert_eq!(
        post(
            &s,
            "/organizations/oauth2/v2.0/revoke",
            &[],
            &[("token", &rt1)]
        )
        .status,
        404
    );
}

#[test]
fn gitlab_refresh_rotation_invalidates_the_old_refresh_token() {
    let s = Shaped::start(Shape::Gitlab);
    s.interval(0);
    s.person(Person::Approve, 0);
    s.access_ttl(30);
    let t = poll(&s, &device_code(&s, "openid read_api")).json();
    assert_eq!(
        (t["token_type"].as_str(), t["expires_in"].as_u64()),
        (Some("Bearer"), Some(30))
    );
    assert_eq!(t["scope"], "openid read_api");
    assert!(t["created_at"].is_u64() && t["id_token"].is_string(), "{t}");
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();

    let r = refresh(&s, &rt1);
    assert_eq!(r.status, 200);
    let rt2 = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let r = refresh(&s, &rt1);
    assert_eq!(
        (r.status, &r.json()["error"]),
        (400, &"invalid_grant".into())
    );

    let r = post(
        &s,
        "/oauth/revoke",
        &[],
        &[("token", &rt2), ("client_id", "c")],
    );
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let r = refresh(&s, &rt2);
    assert_eq!(
        (r.status, &r.json()["error"]),
        (400, &"invalid_grant".into())
    );
    assert_eq!(s.revoked(), [rt2.as_str()]);
    assert_eq!(s.refresh_tokens_used(), [rt1.clone(), rt1, rt2]);

    let d = get(&s, "/.well-known/openid-configuration").json();
    assert_eq!(d["issuer"], s.base);
    assert_eq!(
        d["device_authorization_endpoint"],
        format!("{}/oauth/authorize_device", s.base)
    );
}

#[test]
fn the_browser_flow_redirects_at_once_with_code_and_state_and_checks_pkce_and_redirect_uri() {
    let s = Shaped::start(Shape::Entra);
    let verifier = "v".repeat(43);
    let challenge = BASE64URL_NOPAD
        .encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
    let redirect = "http://127.0.0.1:9/callback";
    let authorize = || {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", "c"),
                ("response_type", "code"),
                ("redirect_uri", redirect),
                ("scope", "openid offline_access"),
                ("state", "st-1"),
                ("nonce", "n-1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        let r = get(&s, &format!("/organizations/oauth2/v2.0/authorize?{q}"));
        assert_eq!(r.status, 302, "{}", r.body);
        let to = url::Url::parse(r.header("location")).unwrap();
        assert!(to.as_str().starts_with(redirect), "{to}");
        let q: HashMap<_, _> = to.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st-1");
        q["code"].clone()
    };
    let redeem = |code: &str, verifier: &str, redirect: &str| {
        post(
            &s,
            "/organizations/oauth2/v2.0/token",
            &[],
            &[
                ("client_id", "c"),
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        )
    };
    let r = redeem(&authorize(), &"w".repeat(43), redirect);
    assert_eq!(
        (r.status, &r.json()["error"]),
        (400, &"invalid_grant".into())
    );
    let r = redeem(&authorize(), &verifier, "http://127.0.0.1:9/other");
    assert_eq!(
        (r.status, &r.json()["error"]),
        (400, &"invalid_grant".into())
    );
    let code = authorize();
    let r = redeem(&code, &verifier, redirect);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    let c = verified_claims(
        &s,
        "/common/discovery/v2.0/keys",
        t["id_token"].as_str().unwrap(),
    );
    assert_eq!(c["nonce"], "n-1");
    assert!(t["refresh_token"].is_string());
    // Codes are single-use.
    assert_eq!(redeem(&code, &verifier, redirect).status, 400);

    // A person who says no is sent back with access_denied and the state.
    s.person(Person::Deny, 0);
    let r = get(
        &s,
        &format!(
            "/common/oauth2/v2.0/authorize?client_id=c&response_type=code&state=x&redirect_uri={redirect}"
        ),
    );
    let to = url::Url::parse(r.header("location")).unwrap();
    let q: HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("access_denied", "x")
    );
}

#[test]
fn plugin_toml_points_every_endpoint_of_the_bundled_manifest_at_the_fake() {
    for (shape, id, want) in [
        (
            Shape::GithubOauthApp,
            "github",
            "/login/oauth/access_token\"",
        ),
        (Shape::GithubApp, "github", "/login/device/code\""),
        (Shape::Entra, "microsoft", "/{tenant}/v2.0\""),
        (Shape::Google, "google", "\""),
        (Shape::Gitlab, "gitlab", "\""),
    ] {
        let s = Shaped::start(shape);
        assert_eq!(s.plugin_id(), id);
        let toml = s.plugin_toml();
        assert!(toml.contains(&format!("id = \"{id}\"")), "{toml}");
        assert!(
            toml.contains(&format!("{}{want}", s.base)),
            "{shape:?}: {toml}"
        );
        for origin in shape.origins() {
            assert!(!toml.contains(origin), "{shape:?} still names {origin}");
        }
        // Everything else stays as shipped.
        let shipped = std::fs::read_to_string(format!(
            "{}/../plugins/{id}/plugin.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(toml.lines().count(), shipped.lines().count());
    }
}
