//! Per-program request limits: a flooding program is slowed down, others are not.

use keyfob_e2e::TestEnv;
use keyfob_proto::{Client, ErrorKind};

#[test]
fn a_flooding_program_is_limited_and_others_are_not() {
    let env = TestEnv::new();
    env.write_config("[limits]\nrequests_per_second = 1\nburst = 20\n");
    let _d = env.spawn_daemon();

    // This test program floods: after its burst it is told to wait.
    let mut c = Client::connect(&env.socket(), "flood").unwrap();
    let mut limited = None;
    for _ in 0..40 {
        if let Err(e) = c.call::<keyfob_proto::methods::Status>(&Default::default()) {
            limited = Some(e);
            break;
        }
    }
    let e = limited.expect("40 requests in a burst of 20 must be limited");
    assert_eq!(e.kind(), Some(ErrorKind::RateLimited));
    assert!(e.to_string().contains("retry after"), "{e}");

    // Another program (a script) is not affected.
    let sh = env.root().join("other.sh");
    std::fs::write(
        &sh,
        format!(
            "#!/bin/bash\n{} otp list --json\n",
            keyfob_e2e::bin("keyfob").display()
        ),
    )
    .unwrap();
    keyfob_e2e::set_mode(&sh, 0o755);
    let mut cmd = std::process::Command::new(&sh);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap());
    for (k, v) in &env.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.logs().contains("\"event\":\"rate_limited\""));
}
