//! One end-to-end run that uses every kind of secret Keyfob holds, through the built-in policy
//! (approvals) and a real keychain, then looks for each secret in the daemon's logs, the audit
//! log, every error message and everything the approver printed.

use keyfob_e2e::approver::Approver;
use keyfob_e2e::idp::Idp;
use keyfob_e2e::secret_service::SecretService;
use keyfob_e2e::{TestEnv, base32};
use ring::rand::SecureRandom;
use serde_json::{Value, json};
use std::process::{Child, Output, Stdio};

fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    b
}

fn random_text(prefix: &str) -> String {
    format!("{prefix}-{}", base32(&random(15)).to_lowercase())
}

/// Runs commands, keeping every stderr (where error messages go).
struct Run {
    env: TestEnv,
    messages: String,
}

impl Run {
    fn out(&mut self, args: &[&str], stdin: &str) -> Output {
        let out = self.env.keyfob_in(args, stdin);
        self.messages
            .push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    fn ok(&mut self, args: &[&str], stdin: &str) -> String {
        let out = self.out(args, stdin);
        assert!(
            out.status.success(),
            "keyfob {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&mut self, args: &[&str], stdin: &str) {
        let out = self.out(args, stdin);
        assert!(!out.status.success(), "keyfob {args:?} should fail");
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.env
            .keyfob_cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn finish(&mut self, c: Child) -> String {
        let out = c.wait_with_output().unwrap();
        self.messages
            .push_str(&String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A request that needs approval: started, approved with `answer`, finished.
    fn approved(&mut self, ap: &mut Approver, args: &[&str], answer: &str) -> String {
        let c = self.spawn(args);
        ap.next_request();
        ap.answer(answer);
        self.finish(c)
    }
}

#[test]
fn no_secret_appears_in_logs_audit_or_messages_after_a_full_run() {
    // Access tokens live 2 s: token requests after expiry refresh and rotate the refresh token.
    let idp = Idp::start(2);
    let mut env = TestEnv::new();
    let ss = SecretService::start(env.root(), &env.root().join("home"), true, "pw");
    env.set("DBUS_SESSION_BUS_ADDRESS", ss.address.clone());
    env.set("KEYFOB_VAULT", "keychain");
    env.write_config(""); // the built-in policy: tokens and secrets need approval
    let mut run = Run {
        env,
        messages: String::new(),
    };
    let mut secrets: Vec<String> = Vec::new();
    let mut ap = Approver::start(&run.env);

    // TOTP seed and recovery codes.
    let seed = base32(&random(20));
    run.ok(&["otp", "add", "site", "--secret", "-"], &seed);
    run.ok(&["otp", "code", "site"], "");
    let codes = [random_text("rc"), random_text("rc")];
    run.ok(
        &["otp", "recovery", "site", "--add", "-"],
        &format!("{}\n{}\n", codes[0], codes[1]),
    );
    // A recovery code is a secret: a person approves it.
    run.approved(&mut ap, &["otp", "recovery", "site"], "o");
    // A malformed seed that contains the real one is refused without echoing it.
    run.fails(
        &["otp", "add", "bad", "--secret", "-"],
        &format!("{seed}!?"),
    );
    secrets.push(seed.clone());
    secrets.extend(codes.iter().cloned());

    // A static secret, fetched with a person's approval.
    let value = random_text("static");
    run.ok(&["secret", "set", "npm"], &value);
    let got = run.approved(&mut ap, &["secret", "get", "npm"], "a");
    assert_eq!(got.trim(), value);
    secrets.push(value.clone());

    // An account: sign-in, tokens (each a refresh), an ID token.
    run.env.add_account("work", &idp.issuer);
    run.env.device_login("work", &idp);
    ap.line_containing("Sign-in started for work");
    secrets.push(ss.lookup("refresh:work").expect("refresh token"));
    let t = run.approved(&mut ap, &["token", "work"], "a");
    secrets.push(t.trim().to_owned());
    secrets.push(ss.lookup("refresh:work").expect("refresh token"));
    let t = run.ok(&["token", "work"], "");
    secrets.push(t.trim().to_owned());
    let id = run.approved(&mut ap, &["token", "work", "--id-token"], "o");
    secrets.push(id.trim().to_owned());

    // An agent key, used in and out of its scope.
    // Creating it widens access: a person approves it.
    let key = run
        .approved(
            &mut ap,
            &[
                "key",
                "create",
                "--name",
                "ci",
                "--account",
                "work",
                "--ops",
                "token",
            ],
            "o",
        )
        .trim()
        .to_owned();
    let out = run
        .env
        .keyfob_cmd(&["token", "work"])
        .env("KEYFOB_KEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success());
    secrets.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    let out = run
        .env
        .keyfob_cmd(&["secret", "get", "npm"])
        .env("KEYFOB_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    run.messages.push_str(&String::from_utf8_lossy(&out.stderr));
    secrets.push(key.clone());

    // A wrong-typed field carrying a secret is refused without echoing it.
    let mut c = keyfob_proto::Client::connect(&run.env.socket(), "raw").unwrap();
    let e = c
        .call::<RawOtpAdd>(&json!({"name": "x", "secret": "A", "digits": value}))
        .unwrap_err();
    run.messages.push_str(&e.to_string());

    // Lock (the keychain vault: unlocking needs a person), then sign out.
    run.ok(&["lock"], "");
    run.fails(&["secret", "get", "npm"], "");
    run.approved(&mut ap, &["unlock"], "o");
    secrets.push(ss.lookup("refresh:work").expect("refresh token"));
    run.ok(&["logout", "work"], "");
    run.ok(&["audit", "verify"], "");

    let logs = run.env.logs();
    let shown = ap.text();
    assert!(logs.contains("token.get") && logs.contains("approval"));
    for s in &secrets {
        assert!(s.len() >= 16, "a real secret, not {s:?}");
        for (place, text) in [
            ("the daemon log or audit log", &logs),
            ("an error message", &run.messages),
            ("the approver's output", &shown),
        ] {
            assert!(
                !text.contains(s.as_str()),
                "a secret ({}…) appears in {place}",
                &s[..4]
            );
        }
    }
}

/// `otp.add` with free-form params, to send a wrongly typed field.
struct RawOtpAdd;

impl keyfob_proto::Method for RawOtpAdd {
    const NAME: &'static str = "otp.add";
    type Params = Value;
    type Result = Value;
}
