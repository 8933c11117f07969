//! Static secrets through the CLI, and what lands on disk.

use keyfob_e2e::TestEnv;

#[test]
fn secrets_round_trip_and_are_encrypted_at_rest() {
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "npm-token"], "npm_s3cr3t_VALUE_42\n");
    assert_eq!(
        env.ok(&["secret", "get", "npm-token"]),
        "npm_s3cr3t_VALUE_42\n"
    );
    assert_eq!(env.ok(&["secret", "list"]), "npm-token\n");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["secret", "get", "npm-token", "--json"])).unwrap();
    assert_eq!(json["value"], "npm_s3cr3t_VALUE_42");

    for f in ["state.json", "vault.kfv"] {
        let text = std::fs::read_to_string(env.data_dir().join(f)).unwrap();
        assert!(
            !text.contains("npm_s3cr3t"),
            "{f} holds the secret in clear"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.data_dir().join("vault.kfv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    env.ok(&["secret", "rm", "npm-token"]);
    let out = env.keyfob(&["secret", "get", "npm-token"]);
    assert_eq!(out.status.code(), Some(4));
    let out = env.keyfob_in(&["secret", "set", "empty"], "");
    assert_eq!(out.status.code(), Some(8));
    env.assert_logs_free_of(&["npm_s3cr3t_VALUE_42"]);
}
