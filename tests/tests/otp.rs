//! TOTP/HOTP through the real CLI and daemon: RFC vectors, oathtool agreement, import,
//! recovery codes, QR export.

use keyfob_e2e::{TestEnv, base32, tool};

const SEED1: &[u8] = b"12345678901234567890";
const SEED256: &[u8] = b"12345678901234567890123456789012";
const SEED512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

fn code_at(env: &TestEnv, name: &str, t: u64) -> String {
    env.ok(&["otp", "code", name, "--at", &t.to_string()])
        .trim()
        .to_owned()
}

#[test]
fn totp_matches_rfc6238_appendix_b_through_the_cli() {
    let env = TestEnv::new();
    for (name, seed, alg) in [
        ("sha1", SEED1, "SHA1"),
        ("sha256", SEED256, "SHA256"),
        ("sha512", SEED512, "sha512"),
    ] {
        env.ok_in(
            &[
                "otp",
                "add",
                name,
                "--secret",
                "-",
                "--digits",
                "8",
                "--algorithm",
                alg,
            ],
            &base32(seed),
        );
    }
    let rows: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];
    for (t, a, b, c) in rows {
        assert_eq!(code_at(&env, "sha1", t), a, "SHA1 at {t}");
        assert_eq!(code_at(&env, "sha256", t), b, "SHA256 at {t}");
        assert_eq!(code_at(&env, "sha512", t), c, "SHA512 at {t}");
    }
}

#[test]
fn hotp_matches_rfc4226_and_the_counter_survives_a_restart() {
    let env = TestEnv::new();
    env.ok_in(
        &[
            "otp",
            "add",
            "h",
            "--secret",
            "-",
            "--hotp",
            "--counter",
            "0",
        ],
        &base32(SEED1),
    );
    let want = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    for w in &want[..5] {
        assert_eq!(env.ok(&["otp", "code", "h"]).trim(), *w);
    }
    env.ok(&["daemon", "stop"]);
    // The counter was saved before each code was shown: a new daemon continues at 5.
    for w in &want[5..] {
        assert_eq!(env.ok(&["otp", "code", "h"]).trim(), *w);
    }
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["otp", "list", "--json"])).unwrap();
    assert_eq!(list[0]["counter"], 10);
}

#[test]
fn totp_agrees_with_oathtool() {
    let env = TestEnv::new();
    let secret = "JBSWY3DPEHPK3PXP";
    env.ok_in(&["otp", "add", "site", "--secret", "-"], secret);
    for t in [0u64, 59, 1_700_000_000, 1_234_567_890] {
        let ours = code_at(&env, "site", t);
        let out = tool("oathtool", "oathtool")
            .args(["--totp", "-b", secret, "-N", &format!("@{t}")])
            .output()
            .unwrap();
        assert_eq!(ours, String::from_utf8_lossy(&out.stdout).trim(), "at {t}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["otp", "code", "site", "--json", "--at", "59"])).unwrap();
    assert_eq!(json["seconds_left"], 1);
    assert_eq!(json["period"], 30);
}

#[test]
fn bad_otp_input_gets_clear_errors_and_stores_nothing() {
    let env = TestEnv::new();
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["otp", "add", "x", "--secret", "-"],
            "not base32 !!",
            "not valid base32",
        ),
        (
            &["otp", "add", "x", "--secret", "-"],
            "JBSWY3DP",
            "too short",
        ),
        (
            &["otp", "add", "bad name", "--secret", "-"],
            "JBSWY3DPEHPK3PXP",
            "invalid OTP entry name",
        ),
        (
            &["otp", "add", "x", "--uri", "-"],
            "https://example.com/",
            "otpauth://",
        ),
    ];
    for (args, stdin, want) in cases {
        let out = env.keyfob_in(args, stdin);
        assert_eq!(out.status.code(), Some(8), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let out = env.keyfob(&["otp", "code", "missing"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keyfob otp list"));
    assert_eq!(env.ok(&["otp", "list", "--json"]).trim(), "[]");

    env.ok_in(&["otp", "add", "x", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    let out = env.keyfob_in(&["otp", "add", "x", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--replace"));
}

#[test]
fn import_reads_otpauth_uris_and_google_export_links() {
    let env = TestEnv::new();
    // A real Google Authenticator export payload (protobuf) for two accounts:
    // GitHub:alice (TOTP, seed "12345678901234567890") and Corp:bob (HOTP, counter 5).
    let migration = export_link();
    let file = env.root().join("codes.txt");
    std::fs::write(
        &file,
        format!(
            "# my codes\notpauth://totp/Example:carol@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example\n\nnot a uri\n{migration}\n"
        ),
    )
    .unwrap();
    let out = env.keyfob(&["otp", "import", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4: skipped"), "{err}");
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["otp", "list", "--json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Corp:bob", "Example:carol@example.com", "GitHub:alice"]
    );
    assert_eq!(code_at(&env, "GitHub:alice", 59), "287082");
    assert_eq!(env.ok(&["otp", "code", "Corp:bob"]).trim(), "254676");

    // Importing again skips what exists and says so.
    let out = env.keyfob_in(&["otp", "import", "-"], &migration);
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

/// `otpauth-migration://offline?data=...` built by hand from the protobuf wire format, so
/// the test does not trust the parser's own encoder.
fn export_link() -> String {
    fn field(tag: u8, wire: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![(tag << 3) | wire];
        if wire == 2 {
            v.push(body.len() as u8);
        }
        v.extend_from_slice(body);
        v
    }
    let entry = |secret: &[u8], name: &str, issuer: &str, hotp: bool, counter: u8| {
        let mut e = Vec::new();
        e.extend(field(1, 2, secret));
        e.extend(field(2, 2, name.as_bytes()));
        e.extend(field(3, 2, issuer.as_bytes()));
        e.extend(field(4, 0, &[1])); // SHA1
        e.extend(field(5, 0, &[1])); // six digits
        e.extend(field(6, 0, &[if hotp { 1 } else { 2 }]));
        e.extend(field(7, 0, &[counter]));
        e
    };
    let mut payload = Vec::new();
    payload.extend(field(1, 2, &entry(SEED1, "alice", "GitHub", false, 0)));
    payload.extend(field(1, 2, &entry(SEED1, "Corp:bob", "", true, 5)));
    payload.extend(field(2, 0, &[1]));
    let b64 = base64(&payload);
    let enc: String = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("otpauth-migration://offline?data={enc}")
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn recovery_codes_are_handed_out_once_each() {
    let env = TestEnv::new();
    env.ok_in(&["otp", "add", "gh", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    env.ok_in(
        &["otp", "recovery", "gh", "--add", "-"],
        "aaaa-1111\nbbbb-2222\n\ncccc-3333\n",
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(env.ok(&["otp", "recovery", "gh"]).trim().to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["aaaa-1111", "bbbb-2222", "cccc-3333"]);
    env.assert_logs_free_of(&["aaaa-1111", "JBSWY3DPEHPK3PXP"]);
    let out = env.keyfob(&["otp", "recovery", "gh"]);
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("every recovery code"));
}

#[test]
fn qr_export_needs_confirmation() {
    let env = TestEnv::new();
    env.ok_in(&["otp", "add", "gh", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    let out = env.keyfob(&["otp", "show", "gh", "--qr"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let qr = env.ok(&["otp", "show", "gh", "--qr", "--yes"]);
    assert!(qr.contains('█') && qr.lines().count() > 10, "{qr}");
    assert!(!qr.contains("JBSWY3DPEHPK3PXP"));
}

#[test]
fn completions_are_generated() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let s = env.ok(&["completions", shell]);
        assert!(s.contains("otp") && s.contains("daemon"), "{shell}");
    }
}
