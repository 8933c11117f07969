/// Every Tauri command the UI may call; the capability file allows exactly these.
pub const COMMANDS: &[&str] = &[
    "snapshot",
    "otp_codes",
    "decide",
    "sign_in",
    "sign_out",
    "open_url",
    "revoke_key",
    "revoke_approval",
    "audit_tail",
    "lock",
    "unlock",
    "current_signin",
    "request_shown",
    "open_approval",
];
