//! Sign-in and fresh tokens against a real OpenID provider (tests/idp) that rotates refresh
//! tokens and revokes the whole grant when an old one is replayed.

use keyfob_e2e::idp::Idp;
use keyfob_e2e::secret_service::SecretService;
use keyfob_e2e::{TestEnv, wait_until};
use serde_json::Value;
use std::time::Duration;

const REFRESH: &str = "refresh_token";

fn token_json(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&env.ok(&all)).expect("token json")
}

/// An env whose vault is a real gnome-keyring, so tests can read what the vault holds.
fn keychain_env() -> (TestEnv, SecretService) {
    let mut env = TestEnv::new();
    let ss = SecretService::start(env.root(), &env.root().join("home"), true, "pw");
    env.set("DBUS_SESSION_BUS_ADDRESS", ss.address.clone());
    env.set("KEYFOB_VAULT", "keychain");
    (env, ss)
}

#[test]
fn device_sign_in_yields_a_token_the_provider_calls_active() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    let outcome = env.device_login("work", &idp);
    assert_eq!(outcome["state"], "signed_in", "{outcome}");
    assert_eq!(
        idp.grants("urn:ietf:params:oauth:grant-type:device_code"),
        1
    );

    let t = token_json(&env, &["work"]);
    let access = t["access_token"].as_str().unwrap();
    let info = idp.introspect(access);
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "keyfob-native");
    // Served from the cache: no refresh happened.
    assert_eq!(idp.grants(REFRESH), 0);
    assert_eq!(env.ok(&["token", "work"]).trim(), access);
    env.assert_logs_free_of(&[access]);
}

#[test]
fn expired_tokens_are_refreshed_and_the_rotated_refresh_token_is_kept_across_restarts() {
    // Access tokens live 2 s; each request after expiry needs a refresh, and each must use
    // the refresh token the previous one rotated in.
    let idp = Idp::start(2);
    let (env, ss) = keychain_env();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let mut rt = ss
        .lookup("refresh:work")
        .expect("refresh token in the keychain");
    for round in 1..=3 {
        if round == 3 {
            env.ok(&["daemon", "stop"]);
        }
        env.wait_for_token_expiry("work");
        let t = token_json(&env, &["work"]);
        assert_eq!(idp.grants(REFRESH), round, "one refresh per request");
        let now_rt = ss.lookup("refresh:work").expect("refresh token");
        assert_ne!(
            now_rt, rt,
            "round {round}: the vault must hold the rotated refresh token"
        );
        rt = now_rt;
        assert_eq!(
            idp.introspect(t["access_token"].as_str().unwrap())["active"],
            true
        );
    }
    env.assert_logs_free_of(&[rt.as_str()]);
}

#[test]
fn claims_follow_the_latest_refreshed_id_token_and_answer_after_a_restart() {
    let idp = Idp::start(2);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let at_sign_in = token_json(&env, &["work", "--claims"]);
    assert_ne!(at_sign_in["claims_unverified"], true, "{at_sign_in}");
    env.wait_for_token_expiry("work");
    let refreshed = token_json(&env, &["work", "--claims"]);
    assert_eq!(idp.grants(REFRESH), 1, "the second request refreshed");
    assert_ne!(refreshed["claims_unverified"], true, "{refreshed}");
    assert_eq!(refreshed["claims"]["sub"], at_sign_in["claims"]["sub"]);
    assert!(
        refreshed["claims"]["iat"].as_u64() > at_sign_in["claims"]["iat"].as_u64(),
        "the refresh's own ID token answers, not the sign-in's: {refreshed} vs {at_sign_in}"
    );
    // A new daemon has no cached token: the sign-in's recorded claims or a new refresh's
    // answer, verified either way.
    env.ok(&["daemon", "stop"]);
    let restarted = token_json(&env, &["work", "--claims"]);
    assert_ne!(restarted["claims_unverified"], true, "{restarted}");
    assert_eq!(restarted["claims"]["sub"], at_sign_in["claims"]["sub"]);
}

#[test]
fn a_replayed_refresh_token_revokes_the_grant_and_keyfob_says_needs_sign_in() {
    let idp = Idp::start(2);
    let (env, ss) = keychain_env();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let old = ss.lookup("refresh:work").unwrap();
    env.wait_for_token_expiry("work");
    token_json(&env, &["work"]); // rotates
    // Someone replays the old refresh token: the provider refuses and revokes the grant.
    let replay = idp.refresh_raw("keyfob-native", &old);
    assert_eq!(replay["error"], "invalid_grant", "{replay}");

    env.wait_for_token_expiry("work");
    let out = env.keyfob(&["token", "work"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(
        err.contains("needs a new sign-in") && err.contains("keyfob login work"),
        "{err}"
    );
    let show: Value =
        serde_json::from_str(&env.ok(&["account", "show", "work", "--json"])).unwrap();
    assert_eq!(show["state"], "needs_login");
    // It stays that way without asking the provider again, across a restart too, and the
    // refused refresh is not later reported as one a crash cut short.
    let before = idp.grants(REFRESH);
    assert_eq!(env.keyfob(&["token", "work"]).status.code(), Some(7));
    env.ok(&["daemon", "stop"]);
    assert_eq!(env.keyfob(&["token", "work"]).status.code(), Some(7));
    assert_eq!(idp.grants(REFRESH), before);
    let show: Value =
        serde_json::from_str(&env.ok(&["account", "show", "work", "--json"])).unwrap();
    let detail = show["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("refused") && !detail.contains("interrupted"),
        "{show}"
    );

    // A new sign-in heals it.
    env.device_login("work", &idp);
    assert_eq!(
        idp.introspect(
            token_json(&env, &["work"])["access_token"]
                .as_str()
                .unwrap()
        )["active"],
        true
    );
}

#[test]
fn five_hundred_concurrent_requests_on_an_expired_token_make_one_refresh() {
    let idp = Idp::start(20);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    // Wait until the token from the sign-in has really expired.
    let show: Value =
        serde_json::from_str(&env.ok(&["account", "show", "work", "--json"])).unwrap();
    let expires = show["access_expires_at"].as_u64().unwrap();
    wait_until(
        Duration::from_secs(40),
        "the access token to expire",
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                > expires
        },
    );
    keyfob_e2e::raise_fd_limit();
    let children: Vec<_> = (0..500)
        .map(|_| {
            env.keyfob_cmd(&["token", "work", "--min-ttl", "1"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokens.insert(String::from_utf8(out.stdout).unwrap());
    }
    assert_eq!(
        idp.grants(REFRESH),
        1,
        "exactly one refresh at the provider"
    );
    assert_eq!(tokens.len(), 1, "every caller got the same fresh token");
    let t = tokens.into_iter().next().unwrap();
    assert_eq!(
        idp.introspect(t.trim())["active"],
        true,
        "the grant was not revoked"
    );
}

#[test]
fn account_errors_are_clear() {
    let env = TestEnv::new();
    let add = "account add x --client-id c --provider";
    for (rest, want) in [
        ("nope", "unknown provider \"nope\""),
        ("oidc", "issuer"),
        ("oidc --issuer http://idp.example.com", "must use https"),
    ] {
        let line = format!("{add} {rest}");
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = env.keyfob(&args);
        assert_eq!(out.status.code(), Some(8), "{line}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{line}"
        );
    }
    let out = env.keyfob(&["token", "missing"]);
    assert_eq!(out.status.code(), Some(4));
    env.ok(&[
        "account",
        "add",
        "x",
        "--provider",
        "oidc",
        "--issuer",
        "https://idp.example.com",
        "--client-id",
        "c",
    ]);
    let out = env.keyfob(&["token", "x"]);
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keyfob login x"));
}

#[test]
fn browser_sign_in_uses_pkce_and_accepts_only_its_own_callback() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("web", &idp.issuer);
    let mut child = env
        .keyfob_cmd(&["login", "web", "--browser", "--json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let authorize = url_of(first["authorize_url"].as_str().expect("authorize_url"));
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["code_challenge"].len() >= 43);
    assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16);
    let redirect = url_of(&q["redirect_uri"]);
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));

    // A forged callback (wrong state) is refused, with a page that must not be cached.
    let forged = keyfob_e2e::tool("curl", "curl")
        .args(["-s", "-i"])
        .arg(format!(
            "{}?code=forged&state=not-the-state",
            q["redirect_uri"]
        ))
        .output()
        .unwrap();
    let forged = String::from_utf8_lossy(&forged.stdout).to_lowercase();
    assert!(forged.starts_with("http/1.1 400"), "{forged}");
    assert!(forged.contains("cache-control: no-store"), "{forged}");
    assert!(
        forged.contains("content-security-policy: default-src 'none'"),
        "{forged}"
    );

    // The real sign-in still completes.
    let page = idp.approve(authorize.as_str());
    assert_eq!(page["status"], 200, "{page}");
    assert!(
        page["text"].as_str().unwrap().contains("Signed in"),
        "{page}"
    );
    let last: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(last["state"], "signed_in");
    assert!(child.wait().unwrap().success());
    assert_eq!(idp.grants("authorization_code"), 1);
    let t = token_json(&env, &["web"]);
    assert_eq!(
        idp.introspect(t["access_token"].as_str().unwrap())["active"],
        true
    );
    // The listener is gone once the sign-in is done.
    let after = keyfob_e2e::tool("curl", "curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(redirect.as_str())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&after.stdout), "000");
}

fn url_of(s: &str) -> url::Url {
    url::Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn logout_revokes_at_the_provider_and_deletes_local_tokens() {
    let idp = Idp::start(300);
    let (env, ss) = keychain_env();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let access = token_json(&env, &["work"])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ss.lookup("refresh:work").is_some());

    let r: Value = serde_json::from_str(&env.ok(&["logout", "work", "--json"])).unwrap();
    assert_eq!(r["revoked"], true, "{r}");
    assert_eq!(r["deleted_local"], true);
    assert_eq!(
        ss.lookup("refresh:work"),
        None,
        "the refresh token is gone from the keychain"
    );
    // Revoking the refresh token ended the grant: its access token is dead too.
    assert_eq!(idp.introspect(&access)["active"], false);
    let out = env.keyfob(&["token", "work"]);
    assert_eq!(out.status.code(), Some(7));

    // A second logout has nothing to revoke, and says so.
    let out = env.keyfob(&["logout", "work"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token was stored"));
}

#[test]
fn client_credentials_accounts_get_tokens_without_a_person() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    let (id, secret) = keyfob_e2e::idp::CONFIDENTIAL;
    let add = [
        "account",
        "add",
        "svc",
        "--provider",
        "oidc",
        "--issuer",
        &idp.issuer,
        "--client-id",
        id,
        "--grant",
        "client-credentials",
        "--scope",
        "api",
    ];
    let out = env.keyfob(&add);
    assert_eq!(out.status.code(), Some(8), "a secret is required");
    let with_secret: Vec<&str> = add
        .iter()
        .copied()
        .chain(["--client-secret", "-"])
        .collect();
    env.ok_in(&with_secret, secret);
    let t = token_json(&env, &["svc"]);
    let info = idp.introspect(t["access_token"].as_str().unwrap());
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], id);
    assert_eq!(idp.grants("client_credentials"), 1);
    assert_eq!(
        token_json(&env, &["svc"])["access_token"],
        t["access_token"],
        "cached"
    );
    let out = env.keyfob(&["login", "svc"]);
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs no sign-in"));
    env.assert_logs_free_of(&[secret, t["access_token"].as_str().unwrap()]);
}

#[test]
fn sign_ins_are_announced_once_per_account_to_subscribers() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.ok(&["daemon", "start"]);
    let mut sub = keyfob_proto::Client::connect(&env.socket(), "approver").unwrap();
    sub.call::<keyfob_proto::methods::Subscribe>(&keyfob_proto::methods::SubscribeParams {
        events: vec!["signin.started".into(), "signin.finished".into()],
    })
    .unwrap();
    // Two scripts ask for a sign-in of the same account at once: one sign-in, one code.
    let spawn = || {
        env.keyfob_cmd(&["login", "work", "--device", "--json"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    use std::io::BufRead;
    let first_line = |c: &mut std::process::Child| -> Value {
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let (fa, fb) = (first_line(&mut a), first_line(&mut b));
    assert_eq!(
        fa["user_code"], fb["user_code"],
        "one sign-in for both callers"
    );
    let ev = serde_json::to_value(sub.next_event().unwrap()).unwrap();
    assert_eq!(ev["event"], "signin.started");
    assert_eq!(ev["account"], "work");
    assert_eq!(ev["user_code"], fa["user_code"]);
    idp.approve(fa["verification_uri_complete"].as_str().unwrap());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let ev = serde_json::to_value(sub.next_event().unwrap()).unwrap();
    assert_eq!(ev["event"], "signin.finished");
    assert_eq!(ev["ok"], true);
    assert_eq!(
        idp.grants("urn:ietf:params:oauth:grant-type:device_code"),
        1
    );
}

#[test]
fn a_crash_while_a_refresh_is_out_is_reported_after_restart() {
    let idp = Idp::start(2);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    env.wait_for_token_expiry("work");
    // The provider stops answering: a listener on its port that accepts and never replies.
    let port: u16 = idp.issuer.rsplit(':').next().unwrap().parse().unwrap();
    drop(idp);
    let blackhole =
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind the provider's port");
    let caller = env
        .keyfob_cmd(&["token", "work"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the daemon has recorded the refresh as in flight and sent it.
    let marks = env.data_dir().join("refreshing");
    wait_until(
        Duration::from_secs(20),
        "the refresh to be in flight",
        || std::fs::read_dir(&marks).is_ok_and(|mut d| d.next().is_some()),
    );
    let (_held, _) = blackhole.accept().expect("the refresh request arrives");
    let pid = rustix::process::Pid::from_raw(env.daemon_pid().unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let out = caller.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let show: Value =
        serde_json::from_str(&env.ok(&["account", "show", "work", "--json"])).unwrap();
    let detail = show["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("interrupted by a daemon crash") && detail.contains("keyfob login work"),
        "{show}"
    );
    assert_eq!(
        show["state"], "signed_in",
        "not silently turned into a broken account"
    );
    assert!(env.logs().contains("a refresh was interrupted by a crash"));
}

#[test]
fn token_wait_waits_for_a_person_to_sign_in() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    // Without --wait: fails fast, naming the fix.
    let out = env.keyfob(&["token", "work"]);
    assert_eq!(out.status.code(), Some(7));
    // With --wait: blocks until a person completes a sign-in, then prints the token.
    let waiter = env
        .keyfob_cmd(&["token", "work", "--wait"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(10), "the waiter to be waiting", || {
        env.logs().contains("a token request waits for a sign-in")
    });
    env.device_login("work", &idp);
    let out = waiter.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8(out.stdout).unwrap();
    assert_eq!(idp.introspect(t.trim())["active"], true);
}

#[test]
fn tokens_of_accounts_in_use_are_refreshed_ahead_of_expiry() {
    let idp = Idp::start(30);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let first = env.ok(&["token", "work", "--min-ttl", "1"]);
    assert_eq!(idp.grants(REFRESH), 0);
    let expiry = |env: &TestEnv| -> Value {
        let show: Value =
            serde_json::from_str(&env.ok(&["account", "show", "work", "--json"])).unwrap();
        show["access_expires_at"].clone()
    };
    let before = expiry(&env);
    // Nobody asks again; the daemon refreshes on its own before the token runs out. (The
    // provider logs the grant before the daemon has stored it: wait for the daemon's view.)
    wait_until(Duration::from_secs(40), "a refresh ahead of expiry", || {
        expiry(&env) != before
    });
    let second = env.ok(&["token", "work", "--min-ttl", "1"]);
    assert_ne!(first, second);
    assert_eq!(
        idp.grants(REFRESH),
        1,
        "the caller got the token refreshed ahead"
    );
    assert_eq!(idp.introspect(second.trim())["active"], true);
}

#[test]
fn a_downscoped_token_is_fetched_and_cached_apart() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.ok(&[
        "account",
        "add",
        "work",
        "--provider",
        "oidc",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "keyfob-native",
        "--scope",
        "openid offline_access api",
    ]);
    env.device_login("work", &idp);
    let full = token_json(&env, &["work"]);
    let narrow = token_json(&env, &["work", "--scope", "openid"]);
    assert_ne!(full["access_token"], narrow["access_token"]);
    let info = idp.introspect(narrow["access_token"].as_str().unwrap());
    assert_eq!(info["scope"], "openid", "{info}");
    assert_eq!(idp.grants(REFRESH), 1);
    // Both are cached: no further refresh for either.
    assert_eq!(
        token_json(&env, &["work", "--scope", "openid"])["access_token"],
        narrow["access_token"]
    );
    assert_eq!(
        token_json(&env, &["work"])["access_token"],
        full["access_token"]
    );
    assert_eq!(idp.grants(REFRESH), 1);
    // The full grant survives the narrower refresh (its refresh token was rotated and kept).
    assert_eq!(
        idp.introspect(full["access_token"].as_str().unwrap())["active"],
        true
    );
}
