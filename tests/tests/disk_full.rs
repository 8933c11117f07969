//! A full disk: writes fail with a clear error, and everything stored before is intact.

use keyfob_e2e::{SmallDisk, TestEnv};

#[test]
fn a_full_disk_fails_cleanly_and_keeps_what_was_stored() {
    let env = TestEnv::new();
    let disk = SmallDisk::mount(&env.data_dir(), "512k");
    env.ok_in(&["secret", "set", "kept"], "value-before");
    env.ok_in(&["otp", "add", "gh", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    let filler = disk.fill();

    for (args, stdin) in [
        (&["secret", "set", "new"][..], "x".repeat(64 * 1024)),
        (&["secret", "set", "kept"][..], "value-after".to_owned()),
        (
            &["otp", "add", "other", "--secret", "-"][..],
            "JBSWY3DPEHPK3PXP".to_owned(),
        ),
    ] {
        let out = env.keyfob_in(args, &stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(9), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
    }
    assert_eq!(env.ok(&["secret", "get", "kept"]), "value-before\n");
    assert_eq!(env.ok(&["secret", "list"]), "kept\n");
    assert!(!env.ok(&["otp", "list"]).contains("other"));

    // Nothing on disk was damaged: a new daemon reads the same, and works once there is room.
    env.ok(&["daemon", "stop"]);
    assert_eq!(env.ok(&["secret", "get", "kept"]), "value-before\n");
    std::fs::remove_file(filler).unwrap();
    env.ok_in(&["secret", "set", "kept"], "value-after");
    assert_eq!(env.ok(&["secret", "get", "kept"]), "value-after\n");
}
