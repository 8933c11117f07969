//! The AWS CLI (v2, Debian's awscli package: PyPI's awscli is v1, which has no
//! `configure export-credentials`) gets credentials through `credential_process = keyfob
//! aws-credential-process NAME`, which the bundled aws-sts exec plugin obtained from a local
//! STS endpoint (PyPI moto in server mode) with the ID token of an account signed in at
//! tests/idp. The STS endpoint records every call and the web identity token it was sent.

use keyfob_e2e::idp::Idp;
use keyfob_e2e::{TestEnv, bin, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

/// moto's STS on 127.0.0.1, behind a WSGI layer that appends each call's action and web
/// identity token to a file.
struct Sts {
    child: Child,
    url: String,
    calls: PathBuf,
}

impl Sts {
    fn start(dir: &Path) -> Self {
        let calls = dir.join("sts-calls.log");
        let port_file = dir.join("sts.port");
        let server = r#"
import io, sys, threading, urllib.parse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server
calls, port_file = sys.argv[1:3]
lock = threading.Lock()
moto = DomainDispatcherApplication(create_backend_app)
def app(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n)
    environ["wsgi.input"] = io.BytesIO(body)
    form = urllib.parse.parse_qs(body.decode())
    with lock, open(calls, "a") as f:
        f.write("%s %s\n" % (form.get("Action", ["?"])[0], form.get("WebIdentityToken", ["-"])[0]))
    return moto(environ, start_response)
srv = make_server("127.0.0.1", 0, app, threaded=True)
open(port_file, "w").write(str(srv.server_port))
srv.serve_forever()
"#;
        // scripts/test makes a virtualenv with moto and names its python here.
        let python = std::env::var("KEYFOB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let has_moto = std::process::Command::new(&python)
            .args(["-c", "import moto.server, werkzeug"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            has_moto,
            "{python} cannot import moto's server: `pip install 'moto[server]'`, or run scripts/test (it sets KEYFOB_TEST_PYTHON)"
        );
        let child = std::process::Command::new(&python)
            .args(["-c", server])
            .arg(&calls)
            .arg(&port_file)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(60), "moto's STS endpoint", || {
            std::fs::read_to_string(&port_file).is_ok_and(|p| !p.is_empty())
        });
        let port = std::fs::read_to_string(&port_file).unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            calls,
        }
    }

    /// Each AssumeRoleWithWebIdentity call's web identity token.
    fn tokens(&self) -> Vec<String> {
        std::fs::read_to_string(&self.calls)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("AssumeRoleWithWebIdentity "))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Sts {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's AWS CLI v2 (another `aws` on PATH may be v1).
const AWS: &str = "/usr/bin/aws";

const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";

/// An account `work` signed in at tests/idp, and `aws-dev` exchanging its ID token at `sts`
/// (added with a person's yes, which the prompt asks naming the endpoint).
fn setup(idp: &Idp, sts: &Sts) -> TestEnv {
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", idp);
    let endpoint = format!("endpoint={}", sts.url);
    let role = format!("role_arn={ROLE}");
    keyfob_e2e::approver::approved(
        &env,
        &[
            "account",
            "add",
            "aws-dev",
            "--provider",
            "aws-sts",
            "--param",
            "source=work",
            "--param",
            &role,
            "--param",
            &endpoint,
            "--param",
            "duration_secs=900",
        ],
        &format!(
            "add account \"aws-dev\" (aws-sts), which sends the ID token of \"work\" to {}",
            sts.url
        ),
    );
    env
}

/// The AWS CLI with its files in the test's home and nothing from the machine.
fn aws(env: &TestEnv, args: &[&str]) -> Output {
    let home = env.root().join("home");
    assert!(
        Path::new(AWS).is_file(),
        "the AWS CLI v2 is not installed at {AWS}: `apt-get install awscli` (scripts/test installs it)"
    );
    std::process::Command::new(AWS)
        .args(args)
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_CONFIG_FILE", home.join(".aws/config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn export(env: &TestEnv) -> serde_json::Value {
    let out = aws(
        env,
        &[
            "configure",
            "export-credentials",
            "--profile",
            "dev",
            "--format",
            "process",
        ],
    );
    assert!(
        out.status.success(),
        "aws failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_aws_cli_gets_sts_credentials_for_the_accounts_id_token_and_a_second_call_makes_no_sts_call()
{
    let idp = Idp::start(3600);
    let sts = Sts::start(&tempfile::tempdir().unwrap().keep());
    let env = setup(&idp, &sts);
    // keyfob setup aws writes the profile through the AWS CLI, and a second run changes
    // nothing.
    let home = env.root().join("home");
    let setup = |extra: &[&str]| {
        let mut args = vec!["setup", "aws", "--account", "aws-dev", "--profile", "dev"];
        args.extend_from_slice(extra);
        // `keyfob setup aws` runs the `aws` it finds on PATH: Debian's first.
        let path = format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
        env.keyfob_cmd(&args)
            .env("PATH", path)
            .env("AWS_CONFIG_FILE", home.join(".aws/config"))
            .output()
            .unwrap()
    };
    let first = setup(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("+ credential_process = "));
    let again = setup(&[]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already asks keyfob"));
    let config = std::fs::read_to_string(home.join(".aws/config")).unwrap();
    assert!(
        config.contains(&format!(
            "credential_process = {} aws-credential-process aws-dev",
            bin("keyfob").display()
        )),
        "{config}"
    );

    let creds = export(&env);
    for key in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(
            creds[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} missing: {creds}"
        );
    }
    assert_eq!(creds["Version"], 1);
    // STS got work's ID token, once.
    let id_token = env.ok(&["token", "work", "--id-token"]);
    assert_eq!(sts.tokens(), vec![id_token.trim().to_owned()]);

    // A second run within the credentials' lifetime is served by the agent: no STS call.
    let again = export(&env);
    assert_eq!(again["AccessKeyId"], creds["AccessKeyId"]);
    assert_eq!(again["SessionToken"], creds["SessionToken"]);
    assert_eq!(sts.tokens().len(), 1, "a second STS call was made");

    // Nothing secret reached the daemon's log or the audit log.
    env.assert_logs_free_of(&[
        creds["SecretAccessKey"].as_str().unwrap(),
        creds["SessionToken"].as_str().unwrap(),
        id_token.trim(),
    ]);
}

#[test]
fn aws_credentials_for_an_account_whose_source_needs_a_sign_in_fail_with_one_line_naming_keyfob_login()
 {
    let idp = Idp::start(3600);
    let sts = Sts::start(&tempfile::tempdir().unwrap().keep());
    let env = setup(&idp, &sts);
    env.ok(&["logout", "work"]);
    let out = env.keyfob(&["aws-credential-process", "aws-dev"]);
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "credential_process printed on failure"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keyfob login work"), "{err}");
    assert!(sts.tokens().is_empty(), "STS was called without a token");
}

#[test]
fn adding_an_aws_account_checks_its_source_and_settings() {
    let idp = Idp::start(3600);
    let env = TestEnv::new();
    // No person asked here: these are the daemon's own checks.
    env.write_config(&format!(
        "{}widen_access = \"never\"\n",
        keyfob_e2e::NO_PROMPTS
    ));
    env.add_account("work", &idp.issuer);
    let add = |params: &[&str]| {
        let mut args = vec!["account", "add", "x", "--provider", "aws-sts"];
        for p in params {
            args.extend_from_slice(&["--param", p]);
        }
        env.keyfob(&args)
    };
    let err = |o: Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let role = format!("role_arn={ROLE}");
    assert!(err(add(&["source=work"])).contains("role_arn"));
    assert!(err(add(&["source=nobody", &role])).contains("no account \"nobody\""));
    assert!(err(add(&["source=x", &role])).contains("own token"));
    env.ok(&[
        "account",
        "add",
        "gh",
        "--provider",
        "github",
        "--client-id",
        "Iv1.x",
    ]);
    assert!(err(add(&["source=gh", &role])).contains("not an OpenID Connect account"));
    assert!(err(add(&["source=work", &role, "colour=red"])).contains("colour"));
    // A bad endpoint is refused by the plugin when it runs, naming the setting.
    env.ok(&[
        "account",
        "add",
        "x",
        "--provider",
        "aws-sts",
        "--param",
        "source=work",
        "--param",
        &role,
        "--param",
        "endpoint=http://sts.example.com",
    ]);
    env.device_login("work", &idp);
    let e = err(env.keyfob(&["aws-credential-process", "x"]));
    assert!(e.contains("endpoint") && e.contains("https"), "{e}");
}

/// `account add x --provider aws-sts` naming `work` as the source and an endpoint that would
/// collect its ID token.
const COLLECTOR: [&str; 11] = [
    "account",
    "add",
    "x",
    "--provider",
    "aws-sts",
    "--param",
    "source=work",
    "--param",
    "role_arn=arn:aws:iam::123456789012:role/deploy",
    "--param",
    "endpoint=http://127.0.0.1:9/collect",
];

#[test]
fn an_unapproved_script_cannot_add_an_account_that_sends_anothers_id_token_to_its_endpoint() {
    let idp = Idp::start(3600);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    // The built-in policy: a new client asks a person for an ID token; admin is open.
    env.write_config("");
    env.ok(&["daemon", "stop"]);
    let script = env.root().join("collect.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec {} \"$@\"\n", bin("keyfob").display()),
    )
    .unwrap();
    keyfob_e2e::set_mode(&script, 0o755);
    let out = env
        .command_of("sh", &[script.to_str().unwrap()])
        .args(COLLECTOR)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "the script added it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.ok(&["account", "list"]).contains("aws-sts"));
}

#[test]
fn an_admin_key_for_one_account_cannot_make_it_exchange_another_accounts_id_token() {
    let idp = Idp::start(3600);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let key = keyfob_e2e::approver::approved(
        &env,
        &[
            "key",
            "create",
            "--name",
            "prov",
            "--account",
            "x",
            "--ops",
            "admin",
            "--ttl",
            "1h",
        ],
        "allowing admin on \"x\"",
    );
    let with_key = |args: &[&str]| {
        env.keyfob_cmd(args)
            .env("KEYFOB_KEY", key.trim())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = with_key(&COLLECTOR);
    assert_eq!(
        out.status.code(),
        Some(5),
        "the key added it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.ok(&["account", "list"]).contains("aws-sts"));
    // The key may add an account of its own name that takes nobody's token.
    let own = with_key(&[
        "account",
        "add",
        "x",
        "--provider",
        "oidc",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "keyfob-native",
    ]);
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
}

#[test]
fn signing_out_of_the_source_stops_the_credentials_made_from_its_id_token() {
    let idp = Idp::start(3600);
    let sts = Sts::start(&tempfile::tempdir().unwrap().keep());
    let env = setup(&idp, &sts);
    let first = env.ok(&["aws-credential-process", "aws-dev"]);
    assert!(first.contains("AccessKeyId"));
    env.ok(&["logout", "work"]);
    let out = env.keyfob(&["aws-credential-process", "aws-dev"]);
    assert!(
        !out.status.success(),
        "cached credentials outlived the source's sign-out"
    );
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keyfob login work"));
    assert_eq!(sts.tokens().len(), 1);
}
