//! The real git (the machine's) asking `keyfob git-credential` through its credential-helper
//! protocol: a bearer token with its expiry for git that says `capability[]=authtype`, a
//! username and token for a caller that does not, a new token after git reports a refused
//! one, one clear line (never a prompt) for an account that needs a sign-in, and a real clone
//! and push over HTTP through `git http-backend` behind a server that takes only the
//! provider's active tokens.

use keyfob_e2e::idp::Idp;
use keyfob_e2e::{TestEnv, bin, output_with_input, tool};
use std::process::{Output, Stdio};

/// `git -c credential.helper=… credential ACTION` with `input` on stdin.
fn git_credential(env: &TestEnv, action: &str, input: &str) -> Output {
    let helper = format!("!{} git-credential --account work", bin("keyfob").display());
    output_with_input(
        tool("git", "git")
            .args(["-c", "credential.interactive=false"])
            .args(["-c", &format!("credential.helper={helper}")])
            .args(["credential", action])
            .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("GIT_TERMINAL_PROMPT", "0"),
        input,
    )
}

fn field(out: &Output, key: &str) -> Option<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

const ASK: &str = "capability[]=authtype\nprotocol=https\nhost=git.example.test\n\n";

fn signed_in() -> (Idp, TestEnv) {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    (idp, env)
}

#[test]
fn git_credential_fill_gets_a_bearer_token_with_its_expiry() {
    let (_idp, env) = signed_in();
    let out = git_credential(&env, "fill", ASK);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = env.ok(&["token", "work"]);
    assert_eq!(field(&out, "authtype").as_deref(), Some("Bearer"));
    assert_eq!(field(&out, "credential").as_deref(), Some(token.trim()));
    let expiry: u64 = field(&out, "password_expiry_utc").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expiry > now, "{expiry}");
    // A caller that does not speak authtype gets a username and the token as password.
    let out = git_credential(&env, "fill", "protocol=https\nhost=git.example.test\n\n");
    assert_eq!(field(&out, "password").as_deref(), Some(token.trim()));
    assert!(field(&out, "username").is_some());
}

#[test]
fn after_a_refused_token_the_next_fill_gets_a_new_one_without_a_prompt() {
    let (idp, env) = signed_in();
    let first = field(&git_credential(&env, "fill", ASK), "credential").unwrap();
    let refreshes = idp.grants("refresh_token");
    // The server answered 401: git rejects what it used.
    let reject = format!(
        "capability[]=authtype\nprotocol=https\nhost=git.example.test\nauthtype=Bearer\ncredential={first}\n\n"
    );
    let out = git_credential(&env, "reject", &reject);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = field(&git_credential(&env, "fill", ASK), "credential").unwrap();
    assert_ne!(second, first, "the refused token was handed out again");
    assert_eq!(idp.grants("refresh_token"), refreshes + 1);
    // The account was not forgotten, and a second reject of the old token changes nothing.
    git_credential(&env, "reject", &reject);
    let third = field(&git_credential(&env, "fill", ASK), "credential").unwrap();
    assert_eq!(third, second);
    assert_eq!(idp.grants("refresh_token"), refreshes + 1);
}

#[test]
fn git_on_an_account_that_needs_a_sign_in_gets_one_line_and_no_prompt() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    let out = git_credential(&env, "fill", ASK);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keyfob login work"), "{err}");
    assert!(field(&out, "credential").is_none());
}

/// `git http-backend` behind a server that takes only a bearer token the provider calls
/// active (RFC 7662 introspection) and not on its own deny list.
struct GitServer {
    child: std::process::Child,
    url: String,
    deny: std::path::PathBuf,
}

impl GitServer {
    fn start(root: &std::path::Path, issuer: &str) -> Self {
        let port_file = root.join("git.port");
        let deny = root.join("deny.txt");
        std::fs::write(&deny, "").unwrap();
        let (id, secret) = keyfob_e2e::idp::CONFIDENTIAL;
        let server = r#"
import base64, http.server, json, os, subprocess, sys, urllib.parse, urllib.request
root, port_file, issuer, deny, client = sys.argv[1:6]
def active(tok):
    if tok in open(deny).read().split():
        return False
    req = urllib.request.Request(issuer + "/token/introspection",
        data=urllib.parse.urlencode({"token": tok}).encode(),
        headers={"Authorization": "Basic " + base64.b64encode(client.encode()).decode()})
    return json.load(urllib.request.urlopen(req)).get("active", False)
class H(http.server.BaseHTTPRequestHandler):
    def handle_any(self):
        auth = self.headers.get("Authorization", "")
        if not (auth.startswith("Bearer ") and active(auth[7:])):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
            REQUEST_METHOD=self.command, PATH_INFO=path, QUERY_STRING=query,
            CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(n),
            HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""),
            GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
            REMOTE_USER="keyfob", REMOTE_ADDR="127.0.0.1")
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, rest = out.partition(sep)
        status, headers = 200, []
        for line in head.decode().splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    do_GET = do_POST = handle_any
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(srv.server_address[1]))
srv.serve_forever()
"#;
        let child = tool("python3", "python3")
            .args(["-c", server])
            .arg(root)
            .arg(&port_file)
            .arg(issuer)
            .arg(&deny)
            .arg(format!("{id}:{secret}"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        keyfob_e2e::wait_until(std::time::Duration::from_secs(20), "the git server", || {
            std::fs::read_to_string(&port_file).is_ok_and(|p| !p.is_empty())
        });
        let port = std::fs::read_to_string(&port_file).unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/repo.git"),
            deny,
        }
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// git in `dir`, with keyfob as its only credential helper and no prompt.
fn git_in(env: &TestEnv, dir: &std::path::Path, args: &[&str]) -> Output {
    let helper = format!("!{} git-credential --account work", bin("keyfob").display());
    tool("git", "git")
        .args(["-c", "credential.interactive=false"])
        .args(["-c", &format!("credential.helper={helper}")])
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.test"])
        .args(args)
        .current_dir(dir)
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn git_clones_and_pushes_over_http_with_the_accounts_bearer_token() {
    let (idp, env) = signed_in();
    let srv_root = env.root().join("srv");
    std::fs::create_dir_all(&srv_root).unwrap();
    let ok = |o: Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    // A served bare repository with one commit, made over the file system.
    ok(git_in(
        &env,
        &srv_root,
        &["init", "-q", "--bare", "-b", "main", "repo.git"],
    ));
    ok(git_in(
        &env,
        &srv_root.join("repo.git"),
        &["config", "http.receivepack", "true"],
    ));
    let seed = env.root().join("seed");
    ok(git_in(
        &env,
        env.root(),
        &["init", "-q", "-b", "main", "seed"],
    ));
    std::fs::write(seed.join("README"), "hello\n").unwrap();
    ok(git_in(&env, &seed, &["add", "README"]));
    ok(git_in(&env, &seed, &["commit", "-q", "-m", "first"]));
    let bare = srv_root.join("repo.git").display().to_string();
    ok(git_in(&env, &seed, &["push", "-q", &bare, "main"]));

    let server = GitServer::start(&srv_root, &idp.issuer);
    ok(git_in(
        &env,
        env.root(),
        &["clone", "-q", &server.url, "work"],
    ));
    let work = env.root().join("work");
    assert_eq!(
        std::fs::read_to_string(work.join("README")).unwrap(),
        "hello\n"
    );
    std::fs::write(work.join("NEW"), "pushed\n").unwrap();
    ok(git_in(&env, &work, &["add", "NEW"]));
    ok(git_in(&env, &work, &["commit", "-q", "-m", "second"]));
    ok(git_in(&env, &work, &["push", "-q", "origin", "main"]));
    let log = ok(git_in(
        &env,
        &srv_root.join("repo.git"),
        &["log", "--format=%s", "main"],
    ));
    assert_eq!(String::from_utf8_lossy(&log.stdout), "second\nfirst\n");

    // The server stops taking the token: this fetch fails (git rejects it), and the next one
    // succeeds with a refreshed token, with no prompt in between.
    let token = env.ok(&["token", "work"]);
    std::fs::write(&server.deny, token.trim()).unwrap();
    let refreshes = idp.grants("refresh_token");
    let out = git_in(&env, &work, &["fetch", "-q", "origin"]);
    assert!(!out.status.success(), "a refused token was accepted");
    ok(git_in(&env, &work, &["fetch", "-q", "origin"]));
    assert_eq!(idp.grants("refresh_token"), refreshes + 1);
    assert_ne!(env.ok(&["token", "work"]).trim(), token.trim());
}

#[test]
fn without_account_the_helper_picks_the_account_whose_provider_serves_the_host() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    // A user plugin for the same provider that names its git host, as GitHub's names github.com.
    let dir = env.root().join("config/keyfob/plugins/corp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("plugin.toml"),
        "id = \"corp\"\nname = \"Corp\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nflows = [\"device\"]\nscopes = [\"openid\", \"offline_access\"]\n\n[params.issuer]\ndescription = \"issuer\"\n\n[integrations]\ngit_hosts = [\"git.corp.test\"]\n",
    )
    .unwrap();
    env.ok(&[
        "account",
        "add",
        "work",
        "--provider",
        "corp",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "keyfob-native",
    ]);
    env.device_login("work", &idp);
    let fill = |host: &str| {
        let helper = format!("!{} git-credential", bin("keyfob").display());
        let ask = format!("capability[]=authtype\nprotocol=https\nhost={host}\n\n");
        output_with_input(
            tool("git", "git")
                .args(["-c", "credential.interactive=false"])
                .args(["-c", &format!("credential.helper={helper}")])
                .args(["credential", "fill"])
                .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("GIT_TERMINAL_PROMPT", "0"),
            &ask,
        )
    };
    let out = fill("git.corp.test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = env.ok(&["token", "work"]);
    assert_eq!(field(&out, "credential").as_deref(), Some(token.trim()));
    // Another host: no account serves it, and git gets nothing from keyfob.
    let out = fill("elsewhere.test");
    assert!(!out.status.success());
    assert!(field(&out, "credential").is_none());
}
