//! `docker-credential-keyfob` (keyfob run under that name, as docker finds it on PATH) speaks
//! docker's credential-helper protocol byte for byte: store, get, list, erase, version, and
//! the exact "not found" answer; `list` reads no value, so it works while the agent is locked
//! and never asks for approval.

use keyfob_e2e::{TestEnv, bin, output_with_input};
use std::process::Output;

/// The helper, linked under docker's name in the env's own bin directory.
fn helper(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.root().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("docker-credential-keyfob");
    if !link.exists() {
        std::os::unix::fs::symlink(bin("keyfob"), &link).unwrap();
    }
    link
}

fn call(env: &TestEnv, action: &str, input: &str) -> Output {
    output_with_input(
        &mut env.command_of(&helper(env).display().to_string(), &[action]),
        input,
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const HUB: &str = "https://index.docker.io/v1/";

#[test]
fn the_docker_helper_protocol_cases_answer_byte_for_byte() {
    let env = TestEnv::new();
    let out = call(&env, "version", "");
    assert!(out.status.success());
    assert!(
        stdout(&out).starts_with("docker-credential-keyfob"),
        "{}",
        stdout(&out)
    );

    // Nothing stored: docker's exact "none" answer, on stdout, exit 1.
    let out = call(&env, "get", HUB);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "credentials not found in native keychain\n");
    assert_eq!(stdout(&call(&env, "list", "")), "{}\n");

    let stored = format!(r#"{{"ServerURL":"{HUB}","Username":"alice","Secret":"hub-s3cr3t"}}"#);
    let out = call(&env, "store", &stored);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let ghcr = r#"{"ServerURL":"ghcr.io","Username":"bob","Secret":"ghcr-s3cr3t"}"#;
    assert!(call(&env, "store", ghcr).status.success());

    let out = call(&env, "get", HUB);
    assert!(out.status.success());
    assert_eq!(stdout(&out), format!("{stored}\n"));
    assert_eq!(
        stdout(&call(&env, "list", "")),
        format!("{{\"ghcr.io\":\"bob\",\"{HUB}\":\"alice\"}}\n")
    );

    let out = call(&env, "erase", HUB);
    assert!(out.status.success(), "{}", stdout(&out));
    let out = call(&env, "get", HUB);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "credentials not found in native keychain\n");
    assert_eq!(stdout(&call(&env, "list", "")), "{\"ghcr.io\":\"bob\"}\n");
    env.assert_logs_free_of(&["hub-s3cr3t", "ghcr-s3cr3t"]);
}

#[test]
fn list_reads_no_value_so_it_works_locked_and_asks_nobody() {
    let env = TestEnv::new();
    let ghcr = r#"{"ServerURL":"ghcr.io","Username":"bob","Secret":"ghcr-s3cr3t"}"#;
    assert!(call(&env, "store", ghcr).status.success());
    // Every secret asks a person now, and none is running; the agent is locked.
    env.write_config("[policy]\nsecret = \"always\"\n");
    env.ok(&["daemon", "stop"]);
    env.ok(&["lock"]);
    let out = call(&env, "list", "");
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), "{\"ghcr.io\":\"bob\"}\n");
    // A get does need the value: refused while locked, with the reason on stdout.
    let out = call(&env, "get", "ghcr.io");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("locked"), "{}", stdout(&out));
}

/// A registry on 127.0.0.1 (plain HTTP, which docker allows on loopback) that takes only
/// `alice:pw` over Basic auth, and records each Authorization header it gets.
struct Registry {
    child: std::process::Child,
    host: String,
    seen: std::path::PathBuf,
}

impl Registry {
    fn start(dir: &std::path::Path) -> Self {
        let seen = dir.join("registry-auth.log");
        let port_file = dir.join("registry.port");
        let server = r#"
import base64, http.server, sys
seen, port_file = sys.argv[1:3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        a = self.headers.get("Authorization") or "none"
        with open(seen, "a") as f:
            f.write(a + "\n")
        ok = a.startswith("Basic ") and base64.b64decode(a[6:]) == b"alice:pw"
        self.send_response(200 if ok else 401)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if not ok:
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(srv.server_address[1]))
srv.serve_forever()
"#;
        let child = keyfob_e2e::tool("python3", "python3")
            .args(["-c", server])
            .arg(&seen)
            .arg(&port_file)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        keyfob_e2e::wait_until(std::time::Duration::from_secs(20), "the registry", || {
            std::fs::read_to_string(&port_file).is_ok_and(|p| !p.is_empty())
        });
        let port = std::fs::read_to_string(&port_file).unwrap();
        Self {
            child,
            host: format!("127.0.0.1:{port}"),
            seen,
        }
    }

    fn basic_auths(&self) -> usize {
        std::fs::read_to_string(&self.seen)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Basic "))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The machine's docker CLI, with the env's config and bin directory, and no engine (docker
/// login checks credentials at the registry from the CLI when no engine answers).
fn docker(env: &TestEnv, args: &[&str], input: &str) -> Output {
    let path = format!(
        "{}:{}",
        helper(env).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = keyfob_e2e::tool("docker", "docker-cli");
    cmd.args(args)
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", path)
        .env("DOCKER_CONFIG", env.root().join("home/.docker"))
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.root().join("no-engine.sock").display()),
        );
    output_with_input(&mut cmd, input)
}

#[test]
fn docker_login_and_logout_keep_the_registry_password_in_keyfob_through_the_helper() {
    let env = TestEnv::new();
    let registry = Registry::start(env.root());
    let host = registry.host.clone();
    // keyfob setup docker names the helper for the registry.
    let out = env
        .keyfob_cmd(&["setup", "docker", "--registry", &host])
        .env("DOCKER_CONFIG", env.root().join("home/.docker"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let login = docker(
        &env,
        &["login", &host, "-u", "alice", "--password-stdin"],
        "pw\n",
    );
    assert!(
        login.status.success(),
        "docker login failed: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert!(stdout(&login).contains("Login Succeeded"));
    // The password went to the helper, not into docker's config file.
    let config = std::fs::read_to_string(env.root().join("home/.docker/config.json")).unwrap();
    assert!(!config.contains("\"auth\""), "{config}");
    let got = call(&env, "get", &host);
    assert_eq!(
        stdout(&got),
        format!("{{\"ServerURL\":\"{host}\",\"Username\":\"alice\",\"Secret\":\"pw\"}}\n")
    );

    assert_eq!(
        registry.basic_auths(),
        1,
        "docker login did not check the password"
    );
    // A login without a password reads the stored credentials through the helper's get (the
    // check that follows needs a docker engine, which this machine does not run).
    let again = docker(&env, &["login", &host], "");
    let said = format!(
        "{}{}",
        stdout(&again),
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        said.contains("existing credentials... [Username: alice]"),
        "{}{}",
        stdout(&again),
        String::from_utf8_lossy(&again.stderr)
    );

    // docker logout erases them through the helper.
    let logout = docker(&env, &["logout", &host], "");
    assert!(
        logout.status.success(),
        "{}",
        String::from_utf8_lossy(&logout.stderr)
    );
    let gone = call(&env, "get", &host);
    assert_eq!(stdout(&gone), "credentials not found in native keychain\n");
    assert_eq!(gone.status.code(), Some(1));
}
