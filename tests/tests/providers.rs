//! Each bundled provider plugin, through the real CLI and daemon, against a provider shaped
//! as the real one answers (tests/src/shaped.rs): GitHub's HTTP 200 errors and lasting
//! tokens, Entra ID's tenant issuer template, Google's client secret, device scopes and
//! non-rotating refresh tokens, GitLab's rotation and revocation. The plugin under test is
//! the bundled plugin.toml with only the provider's origin pointed at the fake.

use keyfob_e2e::TestEnv;
use keyfob_e2e::shaped::{CONSUMERS_TID, ENTRA_TID, Person, Shape, Shaped};
use std::process::{Output, Stdio};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A provider of `shape` and an env whose plugin of that id points at it.
fn setup(shape: Shape) -> (TestEnv, Shaped) {
    let s = Shaped::start(shape);
    let env = TestEnv::new();
    let dir = env
        .config_path()
        .parent()
        .expect("config dir")
        .join("plugins")
        .join(s.plugin_id());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.toml"), s.plugin_toml()).unwrap();
    (env, s)
}

/// `keyfob account add NAME --provider ID --client-id keyfob-test EXTRA…` (stdin: `secret`).
fn add(env: &TestEnv, s: &Shaped, name: &str, extra: &[&str], secret: &str) -> Output {
    let mut args = vec![
        "account",
        "add",
        name,
        "--provider",
        s.plugin_id(),
        "--client-id",
        "keyfob-test",
    ];
    args.extend_from_slice(extra);
    env.keyfob_in(&args, secret)
}

/// `keyfob login NAME` (device flow unless `--browser` is in `extra`), to its end.
fn login(env: &TestEnv, name: &str, extra: &[&str]) -> Output {
    let mut args = vec!["login", name];
    if extra.is_empty() {
        // Google's plugin starts the browser flow by default; these tests use the device's.
        args.push("--device");
    }
    args.extend_from_slice(extra);
    env.keyfob_cmd(&args)
        .stdin(Stdio::null())
        .output()
        .expect("keyfob login")
}

/// Adds account `name` and signs it in with the device flow; returns the access token.
fn signed_in(env: &TestEnv, s: &Shaped, name: &str, extra: &[&str], secret: &str) -> String {
    let out = add(env, s, name, extra, secret);
    assert!(out.status.success(), "account add: {}", stderr(&out));
    let out = login(env, name, &[]);
    assert!(out.status.success(), "login: {}", stderr(&out));
    let tok = env.ok(&["token", name]);
    assert_eq!(
        Some(tok.trim()),
        s.access_tokens_issued().last().map(String::as_str)
    );
    tok.trim().to_owned()
}

/// `keyfob ARGS` (a browser sign-in with `--json`), completed by following the provider's
/// redirect to Keyfob's loopback callback as a browser would; returns the authorize URL.
fn browser_login(env: &TestEnv, args: &[&str]) -> String {
    use std::io::BufRead;
    let mut child = env
        .keyfob_cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let url = first["authorize_url"]
        .as_str()
        .expect("authorize_url")
        .to_owned();
    // The provider redirects at once; curl follows to Keyfob's loopback callback.
    let page = keyfob_e2e::tool("curl", "curl")
        .args(["-s", "-L", &url])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains("Signed in"), "{page}");
    assert!(child.wait().unwrap().success());
    url
}

fn refresh_count(s: &Shaped) -> usize {
    s.grants().iter().filter(|g| *g == "refresh_token").count()
}

// ---- GitHub ----

#[test]
fn github_device_errors_with_http_200_are_read_as_errors() {
    let (env, s) = setup(Shape::GithubOauthApp);
    // Two polls answered `authorization_pending` with HTTP 200, then the person approves.
    s.person(Person::Approve, 2);
    signed_in(&env, &s, "gh", &[], "");
    assert!(s.polls().len() >= 3, "{:?}", s.grants());
    // A person who says no: the sign-in ends as denied, not as an unreadable answer.
    s.person(Person::Deny, 1);
    let out = login(&env, "gh", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("declined"), "{}", stderr(&out));
    // Every token request asked for JSON.
    assert!(
        s.accept_headers()
            .iter()
            .all(|a| a.contains("application/json")),
        "{:?}",
        s.accept_headers()
    );
}

#[test]
fn github_slow_down_with_http_200_makes_keyfob_poll_slower() {
    let (env, s) = setup(Shape::GithubOauthApp);
    s.slow_down_once();
    s.person(Person::Approve, 1);
    signed_in(&env, &s, "gh", &[], "");
    // The poll after the slow_down waited the interval plus the 5 s RFC 8628 adds.
    let polls = s.polls();
    let gaps: Vec<_> = polls.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter()
            .skip(1)
            .any(|g| *g >= std::time::Duration::from_secs(5)),
        "{gaps:?}"
    );
}

#[test]
fn github_oauth_app_tokens_without_expiry_are_kept_across_restarts() {
    let (env, s) = setup(Shape::GithubOauthApp);
    let tok = signed_in(&env, &s, "gh", &[], "");
    let requests = s.grants().len();
    env.ok(&["daemon", "stop"]);
    // A new daemon serves the same token: it is the grant, kept in the vault.
    assert_eq!(env.ok(&["token", "gh"]).trim(), tok);
    assert_eq!(s.grants().len(), requests, "a token request was made");
    // It cannot be narrowed: there is no refresh token to ask with.
    let out = env.keyfob(&["token", "gh", "--scope", "gist"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not expire"), "{}", stderr(&out));
    env.assert_logs_free_of(&[&tok]);
}

#[test]
fn github_app_refresh_tokens_rotate_and_bad_refresh_token_needs_sign_in() {
    let (env, s) = setup(Shape::GithubApp);
    s.access_ttl(2);
    let first = signed_in(&env, &s, "gh", &[], "");
    env.wait_for_token_expiry("gh");
    let second = env.ok(&["token", "gh"]);
    assert_ne!(second.trim(), first);
    assert_eq!(refresh_count(&s), 1);
    // The rotated token was kept: the next refresh presents it.
    env.wait_for_token_expiry("gh");
    env.ok(&["token", "gh"]);
    let used = s.refresh_tokens_used();
    let issued = s.refresh_tokens_issued();
    assert_eq!(
        used.last(),
        issued.get(issued.len() - 2),
        "{used:?} {issued:?}"
    );
    // The person removes the app's access: GitHub answers bad_refresh_token with HTTP 200.
    s.revoke_grants();
    env.wait_for_token_expiry("gh");
    let out = env.keyfob(&["token", "gh"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("keyfob login gh"), "{}", stderr(&out));
    let show = env.ok(&["account", "show", "gh"]);
    assert!(show.contains("needs sign-in"), "{show}");
}

#[test]
fn github_app_client_secret_goes_in_the_form_where_github_reads_it() {
    let (env, s) = setup(Shape::GithubApp);
    s.access_ttl(2);
    signed_in(&env, &s, "gh", &["--client-secret", "-"], "gh-app-secret\n");
    env.wait_for_token_expiry("gh");
    assert!(env.keyfob(&["token", "gh"]).status.success());
    // GitHub reads client credentials from the form only: every token request carried it.
    let seen = s.client_secrets_seen();
    assert!(!seen.is_empty() && seen.iter().all(|s| *s), "{seen:?}");
    env.assert_logs_free_of(&["gh-app-secret"]);
}

#[test]
fn github_logout_says_the_provider_cannot_revoke_and_names_where_to() {
    let (env, s) = setup(Shape::GithubOauthApp);
    let tok = signed_in(&env, &s, "gh", &[], "");
    let out = env.keyfob(&["logout", "gh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("only the tokens on this machine"), "{text}");
    assert!(text.contains("/settings/applications"), "{text}");
    assert!(s.revoked().is_empty());
    let out = env.keyfob(&["token", "gh"]);
    assert!(!out.status.success(), "the token outlived the logout");
    assert!(!stdout(&out).contains(&tok));
}

// ---- Entra ID ----

#[test]
fn entra_organizations_issuer_template_is_validated_against_tid() {
    let (env, s) = setup(Shape::Entra);
    // The default tenant is `organizations`: discovery names the {tenantid} template.
    let out = add(&env, &s, "work", &[], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("{tenantid}"), "{}", stderr(&out));
    let out = login(&env, "work", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        env.keyfob(&["token", "work", "--id-token"])
            .status
            .success()
    );
}

#[test]
fn entra_id_token_naming_another_tenant_than_its_own_is_refused() {
    let (env, s) = setup(Shape::Entra);
    let other = format!("{}/11111111-2222-3333-4444-555555555555/v2.0", s.base);
    s.entra_tenant(ENTRA_TID, Some(other));
    let out = add(&env, &s, "work", &[], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = login(&env, "work", &[]);
    assert!(
        !out.status.success(),
        "a mixed-tenant ID token was accepted"
    );
    assert!(
        stderr(&out).contains("issued by someone else"),
        "{}",
        stderr(&out)
    );
    // A personal account (the consumers tenant) at `organizations`: refused too.
    s.entra_tenant("9188040d-6c67-4c5b-b112-36a304b66dad", None);
    let out = login(&env, "work", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("personal Microsoft account"),
        "{}",
        stderr(&out)
    );
    assert!(env.ok(&["account", "show", "work"]).contains("signed out"));
}

#[test]
fn entra_tenants_named_by_domain_or_consumers_sign_in_against_their_tenant_id_issuer() {
    // A tenant named by its domain: discovery names its tenant id; tokens must name that.
    let (env, s) = setup(Shape::Entra);
    let out = add(&env, &s, "corp", &["--param", "tenant=contoso.example"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(ENTRA_TID), "{}", stderr(&out));
    assert!(login(&env, "corp", &[]).status.success());
    // Personal accounts only.
    s.entra_tenant(CONSUMERS_TID, None);
    let out = add(&env, &s, "home", &["--param", "tenant=consumers"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = login(&env, "home", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A work account's token at the consumers issuer is another tenant's: refused.
    s.entra_tenant(ENTRA_TID, None);
    let out = login(&env, "home", &[]);
    assert!(!out.status.success(), "another tenant's token was accepted");
}

#[test]
fn entra_authorization_declined_is_a_denial() {
    let (env, s) = setup(Shape::Entra);
    s.person(Person::Deny, 1);
    assert!(add(&env, &s, "work", &[], "").status.success());
    let out = login(&env, "work", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("declined"), "{}", stderr(&out));
}

#[test]
fn entra_browser_sign_in_and_refresh_keep_the_tenant_check() {
    let (env, s) = setup(Shape::Entra);
    s.access_ttl(2);
    assert!(add(&env, &s, "work", &[], "").status.success());
    browser_login(&env, &["login", "work", "--browser", "--json"]);
    env.wait_for_token_expiry("work");
    assert!(env.keyfob(&["token", "work"]).status.success());
    assert_eq!(refresh_count(&s), 1);
}

// ---- Google ----

#[test]
fn google_needs_the_client_secret_and_keeps_it_in_the_vault() {
    let (env, s) = setup(Shape::Google);
    let out = add(&env, &s, "me", &[], "");
    assert!(!out.status.success(), "added without the client secret");
    assert!(stderr(&out).contains("--client-secret"), "{}", stderr(&out));
    signed_in(
        &env,
        &s,
        "me",
        &["--client-secret", "-"],
        "GOCSPX-test-secret\n",
    );
    assert!(s.client_secrets_seen().iter().all(|seen| *seen));
    env.assert_logs_free_of(&["GOCSPX-test-secret"]);
}

#[test]
fn google_device_flow_refuses_other_scopes_before_the_person_is_sent_off() {
    let (env, s) = setup(Shape::Google);
    let scopes = ["--scope", "openid https://www.googleapis.com/auth/drive"];
    let extra = [&["--client-secret", "-"][..], &scopes[..]].concat();
    assert!(add(&env, &s, "me", &extra, "GOCSPX-x\n").status.success());
    let out = login(&env, "me", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--browser"), "{}", stderr(&out));
    assert!(
        !s.requests().iter().any(|r| r.contains("/device/code")),
        "{:?}",
        s.requests()
    );
}

#[test]
fn google_pending_with_http_428_keeps_polling_and_refresh_tokens_do_not_rotate() {
    let (env, s) = setup(Shape::Google);
    s.access_ttl(2);
    s.person(Person::Approve, 2);
    signed_in(&env, &s, "me", &["--client-secret", "-"], "GOCSPX-x\n");
    env.wait_for_token_expiry("me");
    env.ok(&["token", "me"]);
    env.wait_for_token_expiry("me");
    env.ok(&["token", "me"]);
    // The one refresh token is presented each time: Google does not rotate it.
    let used = s.refresh_tokens_used();
    assert_eq!(used.len(), 2);
    assert!(
        used.iter()
            .all(|u| Some(u) == s.refresh_tokens_issued().first())
    );
}

#[test]
fn google_logout_revokes_at_the_provider() {
    let (env, s) = setup(Shape::Google);
    signed_in(&env, &s, "me", &["--client-secret", "-"], "GOCSPX-x\n");
    let out = env.keyfob(&["logout", "me"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.revoked().len(), 1);
    assert_eq!(s.revoked().first(), s.refresh_tokens_issued().first());
}

// ---- GitLab ----

#[test]
fn gitlab_refresh_tokens_rotate_and_logout_revokes_the_current_one() {
    let (env, s) = setup(Shape::Gitlab);
    s.access_ttl(2);
    signed_in(&env, &s, "lab", &[], "");
    env.wait_for_token_expiry("lab");
    env.ok(&["token", "lab"]);
    assert_eq!(refresh_count(&s), 1);
    // The rotated token is the one revoked at logout (the first one is already dead).
    let out = env.keyfob(&["logout", "lab"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.revoked().last(), s.refresh_tokens_issued().last());
    let out = env.keyfob(&["token", "lab"]);
    assert!(!out.status.success());
}

// ---- every provider ----

#[test]
fn an_expired_device_code_ends_the_sign_in_plainly() {
    let (env, s) = setup(Shape::Gitlab);
    s.person(Person::Ignore, 1);
    assert!(add(&env, &s, "lab", &[], "").status.success());
    let out = login(&env, "lab", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
}

#[test]
fn each_providers_refresh_error_shape_ends_as_needs_sign_in() {
    for (shape, secret) in [
        (Shape::Entra, ""),
        (Shape::Google, "GOCSPX-x\n"),
        (Shape::Gitlab, ""),
    ] {
        let (env, s) = setup(shape);
        s.access_ttl(2);
        let extra: &[&str] = if secret.is_empty() {
            &[]
        } else {
            &["--client-secret", "-"]
        };
        signed_in(&env, &s, "a", extra, secret);
        // The person ends the app's access at the provider.
        s.revoke_grants();
        env.wait_for_token_expiry("a");
        let out = env.keyfob(&["token", "a"]);
        assert!(!out.status.success(), "{shape:?}: served after revocation");
        assert!(
            stderr(&out).contains("keyfob login a"),
            "{shape:?}: {}",
            stderr(&out)
        );
        assert!(
            env.ok(&["account", "show", "a"]).contains("needs sign-in"),
            "{shape:?}"
        );
    }
}

#[test]
fn google_browser_sign_in_asks_for_offline_access_and_gets_a_refresh_token() {
    let (env, s) = setup(Shape::Google);
    s.access_ttl(2);
    let out = add(&env, &s, "me", &["--client-secret", "-"], "GOCSPX-x\n");
    assert!(out.status.success(), "{}", stderr(&out));
    // Google's default flow is the browser's; its plugin adds access_type=offline and
    // prompt=consent, without which Google issues no refresh token.
    let url = browser_login(&env, &["login", "me", "--json"]);
    assert!(
        url.contains("access_type=offline") && url.contains("prompt=consent"),
        "{url}"
    );
    env.wait_for_token_expiry("me");
    assert!(env.keyfob(&["token", "me"]).status.success());
    assert_eq!(refresh_count(&s), 1);
}

#[test]
fn account_add_checks_the_provider_and_says_what_it_found() {
    let (env, s) = setup(Shape::Gitlab);
    let out = add(&env, &s, "lab", &[], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("discovery answered"), "{said}");
    assert!(
        said.contains("device code") && said.contains("browser"),
        "{said}"
    );
    assert!(said.contains("revokes"), "{said}");
    // An issuer whose discovery is not there: refused at once, nothing stored.
    let wrong = format!("{}/not-gitlab", s.base);
    let out = add(&env, &s, "bad", &["--issuer", &wrong], "");
    assert!(
        !out.status.success(),
        "added a provider that does not answer"
    );
    assert!(stderr(&out).contains("not added"), "{}", stderr(&out));
    assert!(!env.ok(&["account", "list"]).contains("bad"));
    // A provider that cannot be reached now: added, with a warning.
    let out = add(&env, &s, "later", &["--issuer", "http://127.0.0.1:9"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not be reached"),
        "{}",
        stderr(&out)
    );
}
