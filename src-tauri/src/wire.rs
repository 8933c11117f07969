//! TypeScript declarations of every type that crosses into the web view, generated from the
//! Rust types (ts-rs) into `ui/src/wire.ts`; a test fails when that file has drifted.

use ts_rs::TS;

/// The header of the generated file.
const HEADER: &str = "// Generated from the Rust types by `cargo test -p keyfob-tray` with KEYFOB_UPDATE_WIRE=1.\n// Do not edit: change the Rust types and regenerate.\n\n";

/// The whole `ui/src/wire.ts`.
pub fn typescript() -> String {
    use crate::commands::*;
    use keyfob_proto::methods::*;
    let decls = [
        keyfob_proto::Event::decl(),
        keyfob_proto::events::Change::decl(),
        keyfob_proto::events::Resolution::decl(),
        keyfob_proto::events::LockReason::decl(),
        keyfob_proto::ErrorKind::decl(),
        VaultKind::decl(),
        StatusResult::decl(),
        UnsavedGrant::decl(),
        OtpAlgorithm::decl(),
        OtpKind::decl(),
        OtpInfo::decl(),
        AccountState::decl(),
        AccountGrant::decl(),
        AccountInfo::decl(),
        ProviderCheck::decl(),
        LoginFlow::decl(),
        LoginStarted::decl(),
        Operation::decl(),
        ClientInfo::decl(),
        ApprovalRequest::decl(),
        Approval::decl(),
        Decision::decl(),
        RememberedApproval::decl(),
        KeyInfo::decl(),
        LogoutResult::decl(),
        crate::error::TrayError::decl(),
        crate::daemon::Connection::decl(),
        TrayMode::decl(),
        Snapshot::decl(),
        OtpCodeView::decl(),
        SignInView::decl(),
        RequestKey::decl(),
        DecideArgs::decl(),
    ];
    let mut out = String::from(HEADER);
    for d in decls {
        // Integers arrive as JSON numbers; every value Keyfob sends fits in 2^53.
        out.push_str("export ");
        out.push_str(&d.replace("bigint", "number"));
        out.push_str("\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn ui(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
    }

    #[test]
    fn the_ui_wire_types_match_the_rust_types() {
        let path = ui("ui/src/wire.ts");
        let want = super::typescript();
        if std::env::var_os("KEYFOB_UPDATE_WIRE").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "ui/src/wire.ts is out of date with the Rust types: run `KEYFOB_UPDATE_WIRE=1 cargo test -p keyfob-tray --features custom-protocol wire` and commit it"
        );
    }

    #[test]
    fn the_capability_allows_exactly_the_app_commands() {
        let cap: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(ui("src-tauri/capabilities/default.json")).unwrap(),
        )
        .unwrap();
        let allowed: Vec<String> = cap["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str())
            .filter_map(|p| p.strip_prefix("allow-"))
            .map(|p| p.replace('-', "_"))
            .collect();
        let mut want: Vec<String> = crate::command_names::COMMANDS
            .iter()
            .map(|c| c.to_string())
            .collect();
        let mut have = allowed;
        want.sort();
        have.sort();
        assert_eq!(have, want);
    }
}
