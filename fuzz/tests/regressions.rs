//! Replays every seed and every input a fuzzer crashed on (`fuzz/regressions/TARGET/`) through
//! its target: none may panic. An input scripts/fuzz finds a crash with is fixed, then kept
//! here, so the crash stays fixed.
//!
//! `KEYFOB_FUZZ_WRITE_SEEDS=1` (re)writes the seeds that are generated rather than typed: a
//! Google Authenticator export and a vault file.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("ipc", keyfob_fuzz::ipc),
    ("manifest", keyfob_fuzz::manifest),
    ("otpauth", keyfob_fuzz::otpauth),
    ("migration", keyfob_fuzz::migration),
    ("vault_file", keyfob_fuzz::vault_file),
    ("provider", keyfob_fuzz::provider),
];

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target)
}

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir(kind, target)) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep") {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_seed_and_every_crash_found_passes_through_its_target() {
    if std::env::var_os("KEYFOB_FUZZ_WRITE_SEEDS").is_some() {
        write_generated_seeds();
    }
    for (target, run) in TARGETS {
        let seeds = inputs("seeds", target);
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for (path, data) in seeds.iter().chain(inputs("regressions", target).iter()) {
            let outcome = std::panic::catch_unwind(|| run(data));
            assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
        }
    }
}

fn write_generated_seeds() {
    use keyfob_daemon::vault::Vault as _;
    use keyfob_proto::methods::OtpKind;
    let export = keyfob_daemon::otp::migration::encode(&[
        (
            "ACME",
            "alice@example.com",
            b"12345678901234567890",
            OtpKind::Totp,
            0,
        ),
        ("Bank", "bob", b"abcdefghij", OtpKind::Hotp, 7),
    ]);
    std::fs::write(dir("seeds", "migration").join("export"), export).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("v.kfv");
    let cheap = keyfob_daemon::vault::file::KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };
    let mut v =
        keyfob_daemon::vault::file::FileVault::open(&path, b"fuzz passphrase", cheap).unwrap();
    v.set("refresh:work", b"r-1").unwrap();
    drop(v);
    std::fs::copy(&path, dir("seeds", "vault_file").join("vault.kfv")).unwrap();
}
