//! Every method in the protocol's registry, called the way a script would call it over the
//! socket: each one that hands out a credential is refused while the agent is locked, without
//! a person's approval, and under an agent key scoped elsewhere; a key scoped elsewhere reaches
//! nothing else either. A method added later without a declared need is an admin operation.

use keyfob_e2e::TestEnv;
use keyfob_proto::Method;
use keyfob_proto::methods::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};

/// Every method: example params, and whether its result carries a credential (a token, a
/// code, a secret or a seed). Written by hand: the registry's own declarations are checked
/// against it, not used to build it.
const CASES: &[(&str, &str, bool)] = &[
    ("hello", r#"{"version":1}"#, false),
    ("subscribe", r#"{"events":[]}"#, false),
    ("daemon.status", "{}", false),
    ("daemon.stop", "{}", false),
    (
        "otp.add",
        r#"{"name":"new","secret":"JBSWY3DPEHPK3PXP"}"#,
        false,
    ),
    ("otp.import", r#"{"lines":[]}"#, false),
    ("otp.code", r#"{"name":"gh"}"#, true),
    ("otp.list", "{}", false),
    ("otp.rm", r#"{"name":"gh"}"#, false),
    ("otp.uri", r#"{"name":"gh"}"#, true),
    ("otp.recovery.add", r#"{"name":"gh","codes":["c3"]}"#, false),
    ("otp.recovery.take", r#"{"name":"gh"}"#, true),
    ("secret.set", r#"{"name":"s1","value":"v2"}"#, false),
    ("secret.get", r#"{"name":"s1"}"#, true),
    ("secret.list", "{}", false),
    ("secret.rm", r#"{"name":"s1"}"#, false),
    ("audit.tail", "{}", false),
    ("audit.verify", "{}", false),
    (
        "account.add",
        r#"{"name":"a","provider":"generic","issuer":"http://127.0.0.1:9","client_id":"c"}"#,
        false,
    ),
    ("account.list", "{}", false),
    ("account.show", r#"{"name":"gh"}"#, false),
    ("account.rm", r#"{"name":"gh"}"#, false),
    ("login.start", r#"{"name":"gh"}"#, false),
    ("login.wait", r#"{"login_id":"x"}"#, false),
    ("token.get", r#"{"name":"gh"}"#, true),
    ("logout", r#"{"name":"gh"}"#, false),
    ("approval.listen", "{}", false),
    ("approval.decide", r#"{"id":1,"decision":"deny"}"#, false),
    ("approval.list", "{}", false),
    ("approval.revoke", r#"{"id":"x"}"#, false),
    (
        "key.create",
        r#"{"name":"k2","accounts":["gh"],"ops":["secret"]}"#,
        false,
    ),
    ("key.list", "{}", false),
    ("key.revoke", r#"{"id":"k"}"#, false),
    ("agent.lock", "{}", false),
    ("agent.unlock", "{}", false),
];

/// The methods anyone may call: the handshake, status and events.
const OPEN: [&str; 3] = ["hello", "subscribe", "daemon.status"];

macro_rules! declared {
    ($($ty:ident),*) => {
        /// What the registry declares for `method` with `params`: (credential, open).
        fn declared(method: &str, params: &str) -> (bool, bool) {
            match method {
                $($ty::NAME => {
                    let p: <$ty as Method>::Params = serde_json::from_str(params)
                        .unwrap_or_else(|e| panic!("example params of {method}: {e}"));
                    let need = $ty::need(&p);
                    (need.is_credential(), need == Need::Open)
                })*
                other => panic!("{other} is not in the registry"),
            }
        }
    };
}
keyfob_proto::for_each_method!(declared);

/// One request on a fresh connection (with `key` in `hello`); the error kind, or "ok".
fn call(env: &TestEnv, key: Option<&str>, method: &str, params: &str) -> String {
    let s = std::os::unix::net::UnixStream::connect(env.socket()).expect("connect");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut hello = json!({"version": keyfob_proto::PROTOCOL_VERSION});
    if let Some(k) = key {
        hello["key"] = json!(k);
    }
    let params: Value = serde_json::from_str(params).expect("params");
    for (id, (m, p)) in [("hello", hello), (method, params)].into_iter().enumerate() {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": m, "params": p});
        writeln!(w, "{req}").expect("write");
    }
    let mut reply = |what: &str| {
        let mut line = String::new();
        r.read_line(&mut line).expect("read");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{what}: {line}"));
        match (v["error"]["data"]["kind"].as_str(), v.get("result")) {
            (Some(kind), _) => kind.to_owned(),
            (None, Some(_)) => "ok".to_owned(),
            (None, None) => panic!("{what}: neither result nor error kind: {line}"),
        }
    };
    assert_eq!(reply("hello"), "ok");
    reply(method)
}

fn names(it: impl IntoIterator<Item = &'static str>) -> BTreeSet<&'static str> {
    it.into_iter().collect()
}

#[test]
fn the_test_table_covers_the_registry_and_agrees_with_its_declarations() {
    assert_eq!(
        names(CASES.iter().map(|c| c.0)),
        names(NAMES.iter().copied()),
        "a method was added to or removed from the registry: add it to CASES, deciding whether it hands out a credential"
    );
    for (method, params, credential) in CASES {
        let (declared_credential, open) = declared(method, params);
        assert_eq!(
            declared_credential, *credential,
            "{method}: the registry's declaration and this table disagree on whether it hands out a credential"
        );
        assert_eq!(open, OPEN.contains(method), "{method}: open to anyone?");
    }
}

#[test]
fn every_credential_method_is_refused_unapproved_out_of_scope_and_while_locked() {
    let env = TestEnv::new();
    // Every credential asks a person; no approver runs.
    env.write_config(
        "[policy]\ntoken = \"always\"\nid_token = \"always\"\notp = \"always\"\nsecret = \"always\"\n",
    );
    env.ok_in(&["otp", "add", "gh", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    env.ok_in(&["otp", "recovery", "gh", "--add", "-"], "c1\nc2\n");
    env.ok_in(&["secret", "set", "s1"], "v1");
    // Every credential operation, on another account.
    let key = keyfob_e2e::approver::approved(
        &env,
        &[
            "key",
            "create",
            "--name",
            "k",
            "--account",
            "elsewhere",
            "--ops",
            "token,id_token,otp,secret",
        ],
        "create agent key \"k\"",
    );
    let key = key.trim();

    for (method, params, credential) in CASES {
        if OPEN.contains(method) {
            continue;
        }
        let got = call(&env, Some(key), method, params);
        assert_eq!(
            got, "forbidden",
            "{method} under a key scoped to another account"
        );
        if *credential {
            let got = call(&env, None, method, params);
            assert_eq!(got, "approval_required", "{method} with nobody to approve");
        }
    }
    env.ok(&["lock"]);
    for (method, params, credential) in CASES {
        if *credential {
            assert_eq!(
                call(&env, None, method, params),
                "locked",
                "{method} while locked"
            );
        }
    }
    // Nothing was handed out or changed along the way.
    env.ok_in(&["unlock", "--passphrase-stdin"], "e2e passphrase\n");
    let list = env.ok(&["otp", "list"]);
    assert!(list.contains("2 recovery codes"), "{list}");
}
