//! Who may have what: approvals through the real `keyfob approve`, scoped agent keys, and the
//! lock (by command, by idle timeout, and by logind signals on a private D-Bus).

use keyfob_e2e::approver::Approver;
use keyfob_e2e::idp::Idp;
use keyfob_e2e::secret_service::SecretService;
use keyfob_e2e::{NO_PROMPTS, TestEnv, wait_until};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Output};
use std::time::Duration;

const SECRET: &str = "api-secret-value-0f3a";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn status(env: &TestEnv) -> Value {
    serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).expect("status json")
}

fn finish(c: Child) -> Output {
    c.wait_with_output().expect("wait keyfob")
}

/// An env that runs with the built-in policy plus `extra` config.
fn asking_env(extra: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_config(extra);
    env
}

/// A provider with hour-long tokens, and account "work" signed in there through `env`'s daemon.
fn signed_in(env: TestEnv) -> (Idp, TestEnv, keyfob_e2e::Daemon) {
    let idp = Idp::start(3600);
    let d = env.spawn_daemon();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    (idp, env, d)
}

/// `keyfob key create` for account "work" and tokens, approved by a person; returns the key.
fn token_key(env: &TestEnv, name: &str, ttl: &str) -> String {
    keyfob_e2e::approver::approved(
        env,
        &[
            "key",
            "create",
            "--name",
            name,
            "--account",
            "work",
            "--ops",
            "token",
            "--ttl",
            ttl,
        ],
        &format!("create agent key {name:?} allowing token on \"work\""),
    )
    .trim()
    .to_owned()
}

#[test]
fn keyfob_approve_allows_denies_and_remembers_and_decisions_are_revocable() {
    let env = asking_env("");
    let _d = env.spawn_daemon();
    env.ok_in(&["secret", "set", "api"], SECRET);

    // Nobody to ask: a clear error naming the fix, at once.
    let out = env.keyfob(&["secret", "get", "api"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no approver is running") && err.contains("keyfob approve"),
        "{err}"
    );

    let mut ap = Approver::start(&env);
    let me = std::env::current_exe().unwrap().display().to_string();

    // Deny: the waiting client is refused.
    let c = env.spawn_keyfob(&["secret", "get", "api"]);
    let req = ap.next_request();
    assert!(req.contains("secret for \"api\" (secret.get)"), "{req}");
    assert!(
        req.contains(&me) && req.contains("identified by executable"),
        "the prompt must show the real client (this test), not keyfob: {req}"
    );
    ap.answer("d");
    let out = finish(c);
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("denied"), "{}", stderr(&out));

    // Allow once: this request gets the value, the next one asks again.
    let c = env.spawn_keyfob(&["secret", "get", "api"]);
    ap.next_request();
    ap.answer("o");
    let out = finish(c);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), SECRET);

    let c = env.spawn_keyfob(&["secret", "get", "api"]);
    ap.next_request();
    ap.answer("a");
    assert!(finish(c).status.success());

    // Always: remembered, so no prompt (nobody answers, and it still succeeds).
    assert_eq!(env.ok(&["secret", "get", "api"]).trim(), SECRET);
    let list: Value = serde_json::from_str(&env.ok(&["approvals", "list", "--json"])).unwrap();
    let a = &list["approvals"][0];
    assert_eq!(list["approvals"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(a["account"], "api");
    assert_eq!(a["operation"], "secret");
    assert!(a["client"].as_str().unwrap().contains(&me), "{a}");
    assert!(a.get("expires").is_none(), "always means no expiry: {a}");

    // Revoked: asked again; "for a while" is remembered with an expiry.
    env.ok(&["approvals", "revoke", a["id"].as_str().unwrap()]);
    let c = env.spawn_keyfob(&["secret", "get", "api"]);
    ap.next_request();
    ap.answer("f 1h");
    assert!(finish(c).status.success());
    let list: Value = serde_json::from_str(&env.ok(&["approvals", "list", "--json"])).unwrap();
    assert!(list["approvals"][0]["expires"].as_u64().is_some(), "{list}");

    let audit = std::fs::read_to_string(env.audit_path()).unwrap();
    assert!(audit.contains("\"event\":\"approval\"") && audit.contains("approval.decide"));
    assert!(
        audit.contains("policy.changed"),
        "the first start records the policy"
    );
    env.assert_logs_free_of(&[SECRET]);
    assert!(!ap.text().contains(SECRET));
}

#[test]
fn an_unanswered_request_times_out_and_only_keyfob_may_approve() {
    let env = asking_env("[policy]\napproval_timeout_secs = 1\n");
    let _d = env.spawn_daemon();
    env.ok_in(&["secret", "set", "api"], SECRET);
    env.ok_in(&["secret", "set", "other"], SECRET);
    let mut ap = Approver::start(&env);
    let c = env.spawn_keyfob(&["secret", "get", "api"]);
    ap.next_request();
    let out = finish(c);
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert!(
        err.contains("nobody approved") && err.contains("within 1 s"),
        "{err}"
    );
    assert!(err.contains("keyfob approve"), "{err}");

    // A request that times out while the person is still on an earlier prompt is not shown
    // afterwards; an answer that comes too late says so.
    assert_eq!(
        finish(env.spawn_keyfob(&["secret", "get", "other"]))
            .status
            .code(),
        Some(5)
    );
    ap.answer("o");
    ap.line_containing("too late");
    let c = env.spawn_keyfob(&["secret", "get", "api"]);
    let next = ap.next_request();
    assert!(
        next.contains("\"api\""),
        "the expired request was shown: {next}"
    );
    assert_eq!(finish(c).status.code(), Some(5));

    // This test program is not Keyfob's CLI or tray: it may not answer prompts.
    let mut c = keyfob_proto::Client::connect(&env.socket(), "impostor").unwrap();
    let e = c
        .call::<keyfob_proto::methods::ApprovalListen>(&Default::default())
        .unwrap_err();
    assert_eq!(e.kind(), Some(keyfob_proto::ErrorKind::Forbidden));
    assert!(
        e.to_string().contains("only Keyfob's own CLI or tray"),
        "{e}"
    );
}

#[test]
fn two_hundred_concurrent_requests_from_one_client_raise_one_prompt() {
    let (_idp, env, _d) = signed_in(asking_env(""));
    let mut ap = Approver::start(&env);
    keyfob_e2e::raise_fd_limit();
    let children: Vec<Child> = (0..200)
        .map(|_| env.spawn_keyfob(&["token", "work"]))
        .collect();
    // Every request reaches the prompt before anyone answers.
    wait_until(
        Duration::from_secs(60),
        "200 requests waiting for approval",
        || status(&env)["approvals_waiting"] == 200,
    );
    let req = ap.next_request();
    assert!(req.contains("token for \"work\""), "{req}");
    ap.answer("o");
    let mut tokens = std::collections::HashSet::new();
    for c in children {
        let out = finish(c);
        assert!(out.status.success(), "{}", stderr(&out));
        tokens.insert(String::from_utf8(out.stdout).unwrap());
    }
    assert_eq!(tokens.len(), 1, "one cached token for everyone");
    assert_eq!(
        ap.text().matches("Approval request #").count(),
        1,
        "one prompt for 200 requests: {}",
        ap.text()
    );
    assert_eq!(status(&env)["approvals_waiting"], 0);
}

fn sha256_hex(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A raw connection presenting `key` in `hello`.
struct Raw {
    w: std::os::unix::net::UnixStream,
    r: BufReader<std::os::unix::net::UnixStream>,
    id: u64,
}

impl Raw {
    fn open(env: &TestEnv, key: &str) -> (Self, Value) {
        let s = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
        let mut raw = Self {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
            id: 0,
        };
        let hello = raw.call(
            "hello",
            json!({"version": keyfob_proto::PROTOCOL_VERSION, "key": key}),
        );
        (raw, hello)
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let req = json!({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params});
        writeln!(self.w, "{req}").unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

#[test]
fn a_scoped_key_gets_its_scope_and_nothing_else_and_revocation_is_immediate() {
    let (idp, env, _d) = signed_in(asking_env(""));
    env.ok_in(&["secret", "set", "s"], SECRET);
    env.ok_in(&["otp", "add", "work", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    let key = token_key(&env, "ci", "8h");
    assert!(key.starts_with("kfk_") && key.len() == 47, "{key}");

    // Inside its scope: served without any approver running.
    let out = env.keyfob_with_key(&key, &["token", "work"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(idp.introspect(token.trim())["active"], true);
    // The same request without the key needs a person.
    assert_eq!(env.keyfob(&["token", "work"]).status.code(), Some(5));

    // Outside its scope: forbidden, saying what the key allows.
    for args in [
        &["token", "other"][..],
        &["token", "work", "--id-token"],
        &["secret", "get", "s"],
        &["otp", "code", "work"],
        &["account", "list"],
        &[
            "key",
            "create",
            "--name",
            "x",
            "--account",
            "work",
            "--ops",
            "admin",
        ],
        &["lock"],
    ] {
        let out = env.keyfob_with_key(&key, args);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the agent key \"ci\" allows only token on work"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(
        env.keyfob_with_key(&key, &["daemon", "status"])
            .status
            .success()
    );

    // Listed by prefix with its last use; stored only as a hash.
    let list: Value = serde_json::from_str(&env.ok(&["key", "list", "--json"])).unwrap();
    let k = &list["keys"][0];
    assert_eq!(k["name"], "ci");
    assert_eq!(k["prefix"], key[..12]);
    assert!(k["last_used"].as_u64().is_some() && k["expires"].as_u64().is_some());
    let stored = std::fs::read_to_string(env.data_dir().join("state.json")).unwrap();
    assert!(stored.contains(&sha256_hex(&key)), "the hash is stored");
    assert!(!stored.contains(&key[4..]), "the key itself is not");

    // Revocation reaches a connection that is already open.
    let (mut raw, hello) = Raw::open(&env, &key);
    assert!(hello["result"].is_object(), "{hello}");
    let ok = raw.call("token.get", json!({"name": "work"}));
    assert!(ok["result"]["access_token"].is_string(), "{ok}");
    env.ok(&["key", "revoke", "ci"]);
    let refused = raw.call("token.get", json!({"name": "work"}));
    assert_eq!(refused["error"]["data"]["kind"], "forbidden", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let out = env.keyfob_with_key(&key, &["token", "work"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("not known"), "{}", stderr(&out));

    // An expired key is refused as soon as it expires.
    let short = token_key(&env, "short", "1s");
    wait_until(Duration::from_secs(10), "the key to expire", || {
        let out = env.keyfob_with_key(&short, &["token", "work"]);
        !out.status.success() && stderr(&out).contains("has expired")
    });
    env.assert_logs_free_of(&[&key, &short, token.trim()]);
}

#[test]
fn lock_drops_cached_tokens_and_unlock_needs_the_passphrase_or_a_person() {
    let (idp, env, _d) = signed_in(TestEnv::new());
    let t1 = env.ok(&["token", "work"]);
    assert_eq!(env.ok(&["token", "work"]), t1, "served from the cache");

    env.ok(&["lock"]);
    assert_eq!(status(&env)["locked"], true);
    for args in [&["token", "work"][..], &["secret", "get", "x"]] {
        let out = env.keyfob(args);
        assert_eq!(out.status.code(), Some(6), "{args:?}");
        assert!(stderr(&out).contains("keyfob unlock"), "{}", stderr(&out));
    }

    let out = env.keyfob_in(&["unlock", "--passphrase-stdin"], "wrong\n");
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
    assert_eq!(status(&env)["locked"], true);
    env.ok_in(&["unlock", "--passphrase-stdin"], "e2e passphrase\n");
    assert_eq!(status(&env)["locked"], false);

    // The cached token did not survive the lock: the next request refreshes.
    let refreshes = idp.grants("refresh_token");
    let t2 = env.ok(&["token", "work"]);
    assert_ne!(t2, t1);
    assert_eq!(idp.grants("refresh_token"), refreshes + 1);

    // Without a passphrase, a person confirms through an approver.
    env.ok(&["lock"]);
    let mut ap = Approver::start(&env);
    let c = env.spawn_keyfob(&["unlock"]);
    let req = ap.next_request();
    assert!(req.contains("to unlock the agent"), "{req}");
    ap.answer("o");
    let out = finish(c);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(env.keyfob(&["token", "work"]).status.success());

    let audit = std::fs::read_to_string(env.audit_path()).unwrap();
    assert!(audit.contains("agent.locked") && audit.contains("agent.unlock"));
    env.assert_logs_free_of(&[t1.trim(), t2.trim(), "e2e passphrase"]);
}

#[test]
fn the_idle_timeout_locks_by_itself() {
    let env = TestEnv::new();
    env.write_config(&format!("{NO_PROMPTS}[lock]\nidle_timeout_secs = 1\n"));
    let _d = env.spawn_daemon();
    env.ok_in(&["secret", "set", "s"], SECRET);
    assert_eq!(env.ok(&["secret", "get", "s"]).trim(), SECRET);
    wait_until(Duration::from_secs(20), "the idle lock", || {
        status(&env)["locked"] == true
    });
    assert_eq!(env.keyfob(&["secret", "get", "s"]).status.code(), Some(6));
    let audit = std::fs::read_to_string(env.audit_path()).unwrap();
    assert!(audit.contains("\"detail\":\"idle\""), "{audit}");
}

/// Sends a logind signal as `org.freedesktop.login1` on the bus at `address`.
fn logind_signal(address: &str, path: &str, iface: &str, member: &str, body: &bool) {
    let conn = zbus::blocking::connection::Builder::address(address)
        .unwrap()
        .name("org.freedesktop.login1")
        .unwrap()
        .build()
        .unwrap();
    match member {
        "PrepareForSleep" => conn
            .emit_signal(None::<&str>, path, iface, member, &(*body,))
            .unwrap(),
        _ => conn
            .emit_signal(None::<&str>, path, iface, member, &())
            .unwrap(),
    }
}

#[test]
fn session_lock_and_suspend_signals_from_logind_lock_the_agent() {
    let mut env = TestEnv::new();
    let bus = SecretService::start(env.root(), &env.root().join("home"), false, "");
    env.set("DBUS_SYSTEM_BUS_ADDRESS", bus.address.clone());
    env.set("XDG_SESSION_ID", "c7");
    let _d = env.spawn_daemon();
    wait_until(
        Duration::from_secs(20),
        "the daemon to watch logind",
        || env.logs().contains("watching logind"),
    );

    logind_signal(
        &bus.address,
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager",
        "PrepareForSleep",
        &true,
    );
    wait_until(Duration::from_secs(20), "the lock on suspend", || {
        status(&env)["locked"] == true
    });
    env.ok_in(&["unlock", "--passphrase-stdin"], "e2e passphrase\n");

    logind_signal(
        &bus.address,
        "/org/freedesktop/login1/session/c7",
        "org.freedesktop.login1.Session",
        "Lock",
        &true,
    );
    wait_until(Duration::from_secs(20), "the lock on session lock", || {
        status(&env)["locked"] == true
    });
    let audit = std::fs::read_to_string(env.audit_path()).unwrap();
    assert!(audit.contains("\"detail\":\"suspend\"") && audit.contains("session_locked"));
}
