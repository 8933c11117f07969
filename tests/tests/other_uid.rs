//! Only the owning user reaches the agent: another uid is stopped by the socket's
//! permissions, and, if those are loosened, by the daemon's own peer-uid check.

use keyfob_e2e::{TestEnv, other_user, set_mode};
use std::os::unix::process::CommandExt;
use std::process::Command;

#[test]
fn another_uid_cannot_use_the_agent() {
    let (uid, gid) = other_user();
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "k"], "top-secret-value");
    // A copy of the CLI the other user can execute.
    set_mode(env.root(), 0o755);
    let cli = env.root().join("keyfob");
    std::fs::copy(keyfob_e2e::bin("keyfob"), &cli).unwrap();
    set_mode(&cli, 0o755);
    let run_as_other = || {
        Command::new(&cli)
            .args(["secret", "get", "k"])
            .env_clear()
            .env("KEYFOB_SOCKET", env.socket())
            .env("HOME", "/nonexistent")
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap()
    };

    // 1. The directory is 0700 and the socket 0600: the kernel refuses the connection.
    let out = run_as_other();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ermission denied"));
    assert!(out.stdout.is_empty());

    // 2. Even with the permissions opened up, the daemon checks the peer's uid itself. (Keyfob's
    // own CLI would not even connect to a directory that is not the other user's: a raw
    // client, as an attacker would write it.)
    set_mode(&env.root().join("run"), 0o755);
    set_mode(&env.root().join("run/keyfob"), 0o755);
    set_mode(&env.socket(), 0o666);
    let out = run_as_other();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to talk to"), "{err}");
    let raw = keyfob_e2e::tool("python3", "python3")
        .args([
            "-c",
            // The daemon answers `forbidden` at once and closes, maybe before the request
            // arrives (a broken pipe) or with it unread (a reset after the reply).
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ntry: s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"hello\",\"params\":{\"version\":1}}\\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"secret.get\",\"params\":{\"name\":\"k\"}}\\n')\nexcept OSError: pass\nd=b''\nwhile True:\n    try: b=s.recv(65536)\n    except ConnectionResetError: break\n    if not b: break\n    d+=b\nprint(d.decode())",
        ])
        .arg(env.socket())
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    let reply = String::from_utf8_lossy(&raw.stdout);
    assert!(
        reply.contains("serves only its own user"),
        "{reply} {}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert!(!reply.contains("top-secret-value"));
    assert!(
        env.logs()
            .contains("refused a connection from another user")
    );

    // The owner's own client will not use a directory others can enter; made private again,
    // the owner is served.
    let out = env.keyfob(&["secret", "get", "k"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("open to other users"), "{err}");
    set_mode(&env.root().join("run/keyfob"), 0o700);
    assert_eq!(env.ok(&["secret", "get", "k"]), "top-secret-value\n");
}
