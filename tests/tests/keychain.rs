//! The OS keychain backend against a real gnome-keyring Secret Service on a private D-Bus
//! session bus (never the user's own keychain).

use keyfob_e2e::TestEnv;
use keyfob_e2e::secret_service::SecretService;

const SEED: &[u8] = b"12345678901234567890";

fn keychain_env(with_keyring: bool) -> (TestEnv, SecretService) {
    let mut env = TestEnv::new();
    let ss = SecretService::start(
        env.root(),
        &env.root().join("home"),
        with_keyring,
        "login-password",
    );
    env.set("DBUS_SESSION_BUS_ADDRESS", ss.address.clone());
    env.unset("KEYFOB_VAULT");
    // No passphrase: proves the vault file is not what holds the secrets.
    env.unset("KEYFOB_PASSPHRASE");
    (env, ss)
}

#[test]
fn auto_chooses_the_keychain_and_secrets_live_in_it() {
    let (env, ss) = keychain_env(true);
    // A seed that is printable, so `secret-tool` shows it as it is.
    env.ok_in(
        &["otp", "add", "gh", "--secret", "-"],
        &keyfob_e2e::base32(SEED),
    );
    env.ok_in(&["secret", "set", "npm"], "npm-token-value");
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).unwrap();
    assert_eq!(status["vault"], "keychain", "{status}");
    assert!(
        status["vault_detail"]
            .as_str()
            .unwrap()
            .contains("keychain answered")
    );

    // The Secret Service itself holds the items.
    assert_eq!(ss.lookup("secret:npm").as_deref(), Some("npm-token-value"));
    assert_eq!(ss.lookup("otp:gh").as_deref(), Some("12345678901234567890"));
    assert!(!env.data_dir().join("vault.kfv").exists());

    // A restarted daemon reads them back from the keychain.
    env.ok(&["daemon", "stop"]);
    assert_eq!(env.ok(&["secret", "get", "npm"]), "npm-token-value\n");
    assert_eq!(
        env.ok(&["otp", "code", "gh", "--at", "59"]).trim(),
        "287082"
    );

    env.ok(&["secret", "rm", "npm"]);
    assert_eq!(ss.lookup("secret:npm"), None);
}

#[test]
fn a_bus_without_a_secret_service_is_reported_at_start_up() {
    let (mut env, _ss) = keychain_env(false);
    env.set("KEYFOB_VAULT", "keychain");
    let out = env.keyfob(&["otp", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("no Secret Service"), "{err}");
    assert!(err.contains("vault = \"file\""), "{err}");

    // auto falls back to the vault file and says why.
    env.unset("KEYFOB_VAULT");
    env.set("KEYFOB_PASSPHRASE", "pw");
    env.ok(&["otp", "list"]);
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).unwrap();
    assert_eq!(status["vault"], "file");
    assert!(
        status["vault_detail"]
            .as_str()
            .unwrap()
            .contains("no keychain answered"),
        "{status}"
    );
}

#[test]
fn a_locked_keychain_is_reported_at_start_up() {
    let (mut env, ss) = keychain_env(true);
    env.set("KEYFOB_VAULT", "keychain");
    env.ok_in(&["secret", "set", "k"], "v");
    env.ok(&["daemon", "stop"]);
    let out = ss.dbus_send(&[
        "--dest=org.freedesktop.secrets",
        "/org/freedesktop/secrets",
        "org.freedesktop.Secret.Service.Lock",
        "array:objpath:/org/freedesktop/secrets/collection/login",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.keyfob(&["secret", "get", "k"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("locked"), "{err}");
}
