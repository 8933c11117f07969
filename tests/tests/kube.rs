//! kubectl (the machine's own) with a kubeconfig user whose exec plugin is
//! `keyfob kube-credential NAME`, against a local TLS API endpoint that records the
//! Authorization header it gets (kubectl sends an exec token only over TLS).

use keyfob_e2e::idp::Idp;
use keyfob_e2e::{TestEnv, bin, tool, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// A TLS endpoint on 127.0.0.1 (self-signed) that answers every GET with `ok` and appends
/// each request's Authorization header to a file.
struct Api {
    child: Child,
    port: u16,
    seen: PathBuf,
}

impl Api {
    fn start(dir: &Path) -> Self {
        let (cert, key) = (dir.join("api.crt"), dir.join("api.key"));
        let out = tool("openssl", "openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen = dir.join("authorization.log");
        let port_file = dir.join("api.port");
        let server = r#"
import http.server, ssl, sys, threading
cert, key, seen, port_file = sys.argv[1:5]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with lock, open(seen, "a") as f:
            f.write((self.headers.get("Authorization") or "none") + "\n")
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(port_file, "w").write(str(srv.server_address[1]))
srv.serve_forever()
"#;
        let child = tool("python3", "python3")
            .args(["-c", server])
            .arg(&cert)
            .arg(&key)
            .arg(&seen)
            .arg(&port_file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(20), "the API endpoint", || {
            std::fs::read_to_string(&port_file).is_ok_and(|p| !p.is_empty())
        });
        let port = std::fs::read_to_string(&port_file)
            .unwrap()
            .parse()
            .unwrap();
        Self { child, port, seen }
    }

    fn headers(&self) -> Vec<String> {
        std::fs::read_to_string(&self.seen)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kubeconfig whose user runs `keyfob kube-credential work`.
fn kubeconfig(env: &TestEnv, api: &Api) -> PathBuf {
    let path = env.root().join("kubeconfig");
    let text = format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
users:
- name: keyfob
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: {keyfob}
      args: [kube-credential, work]
      interactiveMode: Never
contexts:
- name: local
  context: {{cluster: local, user: keyfob}}
current-context: local
"#,
        port = api.port,
        keyfob = bin("keyfob").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn kubectl(env: &TestEnv, config: &Path) -> std::process::Command {
    let mut c = env.command_of("kubectl", &["--kubeconfig"]);
    c.arg(config).args(["get", "--raw", "/healthz"]);
    c
}

#[test]
fn kubectl_sends_the_accounts_bearer_token_from_keyfob() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let api = Api::start(env.root());
    let config = kubeconfig(&env, &api);
    let out = kubectl(&env, &config).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let token = env.ok(&["token", "work"]);
    // kubectl may ask more than once per command; every request carries the token.
    let headers = api.headers();
    assert!(!headers.is_empty());
    assert!(
        headers
            .iter()
            .all(|h| *h == format!("Bearer {}", token.trim())),
        "{headers:?}"
    );
    // The ExecCredential names the token's expiry.
    let cred = env
        .command_of(&bin("keyfob").display().to_string(), &["kube-credential", "work"])
        .env(
            "KUBERNETES_EXEC_INFO",
            r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}"#,
        )
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&cred.stdout).unwrap();
    assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert!(
        v["status"]["expirationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

#[test]
fn twenty_parallel_kubectl_runs_on_an_expired_token_make_one_refresh() {
    let idp = Idp::start(4);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let api = Api::start(env.root());
    let config = kubeconfig(&env, &api);
    env.wait_for_token_expiry("work");
    let before = idp.grants("refresh_token");
    let runs: Vec<Child> = (0..20)
        .map(|_| {
            kubectl(&env, &config)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(idp.grants("refresh_token") - before, 1);
    // Every run sent the one refreshed token.
    let headers = api.headers();
    assert!(headers.len() >= 20, "{}", headers.len());
    assert!(
        headers
            .iter()
            .all(|h| h == &headers[0] && h.starts_with("Bearer "))
    );
}

#[test]
fn kubectl_on_an_account_that_needs_a_sign_in_gets_one_clear_line_and_no_browser() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    let api = Api::start(env.root());
    let config = kubeconfig(&env, &api);
    let out = kubectl(&env, &config).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keyfob login work"), "{err}");
    assert!(
        api.headers().is_empty(),
        "a request went out without a token"
    );
}
