//! A full disk: writes fail with a clear error, and everything stored before is intact.

use keyfob_e2e::TestEnv;
use std::io::Write;
use std::process::Command;

/// Mounts a small tmpfs at `dir`; unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test mounts a small tmpfs to fill it and must run as root (CI does)"
        );
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_owned())
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        let p = self.0.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let chunk = [0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&[0u8]);
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

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
