//! A socket that is not really the user's agent gets nothing: another local user who created
//! the socket directory first (as with `/tmp/keyfob-UID` when XDG_RUNTIME_DIR is unset), or a
//! process of another uid listening in a directory of ours, receives no `hello`, no agent key
//! and no secret value: the client refuses before sending anything.

use keyfob_e2e::{TestEnv, other_user, set_mode, tool};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};

/// A listener at `socket` that prints what each connection sent up to its first line, one
/// line each (Python's repr of the bytes), then hangs up. `as_other`: the whole process runs as the other user; otherwise it
/// binds as root and becomes the other user before `listen` (so the kernel reports that
/// user as the peer) in a directory the other user could not create.
fn listener(
    socket: &Path,
    uid: u32,
    gid: u32,
    as_other: bool,
) -> (Child, BufReader<std::process::ChildStdout>) {
    let code = "import os,socket,sys\n\
        p,uid,gid,drop=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),sys.argv[4]=='drop'\n\
        s=socket.socket(socket.AF_UNIX)\n\
        s.bind(p)\n\
        if drop:\n    os.setgid(gid); os.setuid(uid)\n\
        s.listen(8)\n\
        print('ready',flush=True)\n\
        while True:\n    c,_=s.accept(); c.settimeout(10)\n    d=b''\n    while b'\\n' not in d:\n        try: b=c.recv(65536)\n        except OSError: break\n        if not b: break\n        d+=b\n    print(repr(d),flush=True); c.close()\n";
    let mut cmd = tool("python3", "python3");
    cmd.args(["-c", code])
        .arg(socket)
        .arg(uid.to_string())
        .arg(gid.to_string())
        .arg(if as_other { "stay" } else { "drop" })
        .stdout(Stdio::piped());
    if as_other {
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd.spawn().expect("start the listener");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("listener ready");
    assert_eq!(line.trim(), "ready");
    (child, out)
}

/// What the listener received before now: a sentinel connection goes last (the listener
/// serves connections one at a time), and every line before its own is returned.
fn received(
    socket: &Path,
    mut child: Child,
    out: BufReader<std::process::ChildStdout>,
) -> Vec<String> {
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("sentinel");
    s.write_all(b"sentinel\n").expect("sentinel");
    let mut got = Vec::new();
    for line in out.lines().map_while(Result::ok) {
        if line.contains("sentinel") {
            break;
        }
        got.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    got
}

#[test]
fn a_socket_directory_planted_by_another_user_gets_no_hello_key_or_secret() {
    let (uid, gid) = other_user();
    let mut env = TestEnv::new();
    set_mode(env.root(), 0o755);
    // The other user made the directory first and listens in it.
    let planted = env.root().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(uid), Some(gid)).unwrap();
    set_mode(&planted, 0o700);
    let socket = planted.join("agent.sock");
    let (child, out) = listener(&socket, uid, gid, true);

    env.set("KEYFOB_SOCKET", socket.display().to_string());
    env.set("KEYFOB_KEY", "kfk_planted-socket-test-key");
    let run = env.keyfob_in(&["secret", "set", "s1"], "planted-socket-secret-value");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains("refusing to talk to") && err.contains(&planted.display().to_string()),
        "{err}"
    );
    let got = received(&socket, child, out);
    assert!(got.is_empty(), "the planted socket received {got:?}");
}

#[test]
fn a_listener_of_another_uid_in_our_own_directory_gets_nothing() {
    let (uid, gid) = other_user();
    let mut env = TestEnv::new();
    let dir = env.root().join("ours");
    std::fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o700);
    let socket = dir.join("agent.sock");
    let (child, out) = listener(&socket, uid, gid, false);

    env.set("KEYFOB_SOCKET", socket.display().to_string());
    env.set("KEYFOB_KEY", "kfk_planted-socket-test-key");
    let run = env.keyfob_in(&["secret", "set", "s1"], "planted-socket-secret-value");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains("refusing to talk to") && err.contains(&format!("runs as uid {uid}")),
        "{err}"
    );
    // The client connected (that is how it learned the peer's uid) and sent nothing.
    let got = received(&socket, child, out);
    assert_eq!(got, vec!["b''".to_owned()], "the listener received {got:?}");
}
