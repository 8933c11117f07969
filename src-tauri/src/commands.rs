//! The Tauri commands the windows call. Each returns [`TrayError`] on failure. No command
//! returns a token or a static secret; TOTP codes only for the entries a window shows.

use crate::daemon::Link;
use crate::error::TrayError;
use keyfob_proto::methods::*;
use serde::Serialize;
use std::sync::Arc;
use tauri::State;

/// Whether the tray icon is available, and if not why (the app then runs window-only).
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct TrayMode {
    /// A tray icon is shown.
    pub available: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<String>,
}

/// Everything the main window shows, in one call.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Snapshot {
    /// Connected to keyfobd.
    pub connected: bool,
    /// The daemon's status.
    pub status: StatusResult,
    /// Accounts with their state.
    pub accounts: Vec<AccountInfo>,
    /// OTP entries (no codes: ask `otp_codes` for the ones shown).
    pub otp: Vec<OtpInfo>,
    /// Agent keys.
    pub keys: Vec<KeyInfo>,
    /// Remembered approvals.
    pub approvals: Vec<RememberedApproval>,
    /// Requests waiting for a decision.
    pub pending: Vec<ApprovalRequest>,
    /// The tray icon's state.
    pub tray: TrayMode,
}

/// A TOTP code for display.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct OtpCodeView {
    /// The entry.
    pub name: String,
    /// The code.
    pub code: String,
    /// Seconds until it changes.
    pub seconds_left: u64,
    /// The period.
    pub period: u64,
}

/// A sign-in in progress, for the sign-in window.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SignInView {
    /// The account.
    pub account: String,
    /// The provider.
    pub provider: String,
    /// What the daemon said.
    pub started: LoginStarted,
    /// An SVG QR code of `verification_uri_complete` (device flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub qr_svg: Option<String>,
}

/// A waiting request as a window shows it: its number, and who asks for what. A command acts
/// on the waiting request only while it still matches, since after keyfobd restarts the same
/// number may be another program's request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, ts_rs::TS)]
pub struct RequestKey {
    /// The request's number.
    pub id: u64,
    /// The asking process.
    pub client_pid: i32,
    /// The account, entry or secret it asks for.
    pub account: String,
    /// The method it called.
    pub method: String,
}

impl RequestKey {
    /// The request among `pending` that this names, if it still waits.
    pub fn find(&self, pending: Vec<ApprovalRequest>) -> Option<ApprovalRequest> {
        pending.into_iter().find(|r| {
            r.id == self.id
                && r.client.pid == self.client_pid
                && r.account == self.account
                && r.method == self.method
        })
    }
}

/// A decision from the approval window.
#[derive(Debug, Clone, serde::Deserialize, ts_rs::TS)]
pub struct DecideArgs {
    /// The request, as the window shows it.
    pub request: RequestKey,
    /// The answer.
    pub decision: Decision,
}

/// The app state commands share.
pub struct AppState {
    /// The daemon link.
    pub link: Arc<Link>,
    /// The tray icon's state.
    pub tray: std::sync::Mutex<TrayMode>,
}

/// The main window's data.
#[tauri::command]
pub async fn snapshot(
    state: State<'_, AppState>,
    seen: State<'_, crate::ShownBefore>,
) -> Result<Snapshot, TrayError> {
    let link = &state.link;
    let mut c = link.connect().await?;
    let status = c.call::<Status>(&Empty {}).await?;
    let accounts = c.call::<AccountList>(&Empty {}).await?;
    let otp = c.call::<OtpList>(&Empty {}).await?;
    let keys = c.call::<KeyList>(&Empty {}).await?.keys;
    let approvals = c.call::<ApprovalList>(&Empty {}).await?.approvals;
    let tray = state.tray.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // The approval window shows the first: one the person has not seen yet. (One that arrives
    // while it is open joins the end of its queue.)
    let mut pending = link.pending();
    seen.order(&mut pending);
    Ok(Snapshot {
        connected: link.connected(),
        status,
        accounts,
        otp,
        keys,
        approvals,
        pending,
        tray,
    })
}

/// Current codes of the TOTP entries `names` (the ones on screen); HOTP entries are never
/// computed here, since that would use up a counter value.
#[tauri::command]
pub async fn otp_codes(
    state: State<'_, AppState>,
    names: Vec<String>,
) -> Result<Vec<OtpCodeView>, TrayError> {
    crate::actions::otp_codes(&state.link, names).await
}

/// The approval window has put `request` in front of the person (it shows one at a time):
/// reported to the tray icon that started this app, which counts it as seen.
#[tauri::command]
pub fn request_shown(app: tauri::AppHandle, state: State<'_, AppState>, request: RequestKey) {
    if let Some(r) = request.find(state.link.pending()) {
        crate::report_shown(&app, &keyfob_proto::Event::ApprovalRequested(r));
    }
}

/// Opens the approval prompt on the requests waiting: the way back to one whose prompt the
/// person closed (the tray does not push it at them again).
/// Async: a window made in a synchronous command, which runs on the main thread, can hang.
#[tauri::command]
pub async fn open_approval(app: tauri::AppHandle) -> Result<(), TrayError> {
    crate::windows::show_approval(&app).map_err(|e| TrayError::System {
        message: format!("cannot open the approval prompt: {e}"),
    })
}

/// Answers an approval request: the one the window shows, and no other that has its number.
#[tauri::command]
pub async fn decide(state: State<'_, AppState>, args: DecideArgs) -> Result<(), TrayError> {
    let gone = || {
        TrayError::Invalid {
        message: "this request is no longer waiting: it was already answered, timed out, or keyfobd restarted".into(),
    }
    };
    // The daemon first: the waiting requests are set before its pid when the link connects,
    // and its pid is cleared before them when the link is lost, so these requests are its.
    let daemon = state.link.daemon_pid().ok_or_else(gone)?;
    let r = args.request.find(state.link.pending()).ok_or_else(gone)?;
    let mut c = state.link.connect().await?;
    // The answer goes to the daemon whose request the window shows, or nowhere: one that
    // restarted since (before the link noticed) numbers other programs' requests alike.
    if c.hello().map(|h| h.pid) != Some(daemon) {
        return Err(gone());
    }
    c.call::<ApprovalDecide>(&DecideParams {
        id: r.id,
        decision: args.decision,
    })
    .await?;
    Ok(())
}

/// Starts a sign-in. The sign-in window is filled from the daemon's `signin.started` event,
/// as for a sign-in a script starts, so this only starts it (and opens the browser flow's page).
#[tauri::command]
pub async fn sign_in(
    state: State<'_, AppState>,
    account: String,
    browser: bool,
) -> Result<LoginStarted, TrayError> {
    let started = state
        .link
        .call::<LoginStart>(&LoginStartParams {
            name: account,
            flow: Some(if browser {
                LoginFlow::Browser
            } else {
                LoginFlow::Device
            }),
        })
        .await?;
    if let Some(url) = &started.authorize_url {
        crate::actions::open_url(url)?;
    }
    Ok(started)
}

/// Signs an account out (revoking at the provider when it can).
#[tauri::command]
pub async fn sign_out(
    state: State<'_, AppState>,
    account: String,
) -> Result<LogoutResult, TrayError> {
    state
        .link
        .call::<Logout>(&NameParams { name: account })
        .await
        .map_err(TrayError::from)
}

/// Opens an http(s) URL in the default browser.
#[tauri::command]
pub fn open_url(url: String) -> Result<(), TrayError> {
    crate::actions::open_url(&url)
}

/// Revokes an agent key.
#[tauri::command]
pub async fn revoke_key(state: State<'_, AppState>, name: String) -> Result<(), TrayError> {
    state.link.call::<KeyRevoke>(&IdParams { id: name }).await?;
    Ok(())
}

/// Forgets a remembered approval.
#[tauri::command]
pub async fn revoke_approval(state: State<'_, AppState>, id: String) -> Result<(), TrayError> {
    state.link.call::<ApprovalRevoke>(&IdParams { id }).await?;
    Ok(())
}

/// The latest audit records.
#[tauri::command]
pub async fn audit_tail(
    state: State<'_, AppState>,
    lines: usize,
) -> Result<Vec<serde_json::Value>, TrayError> {
    state
        .link
        .call::<AuditTail>(&AuditTailParams {
            lines: Some(lines.min(500)),
            after_seq: None,
        })
        .await
        .map_err(TrayError::from)
}

/// Locks the agent.
#[tauri::command]
pub async fn lock(state: State<'_, AppState>) -> Result<(), TrayError> {
    state.link.call::<Lock>(&LockParams {}).await?;
    Ok(())
}

/// Unlocks: with the vault passphrase, or (without one) through an approval.
#[tauri::command]
pub async fn unlock(
    state: State<'_, AppState>,
    passphrase: Option<String>,
) -> Result<(), TrayError> {
    state
        .link
        .call::<Unlock>(&UnlockParams {
            passphrase: passphrase
                .filter(|p| !p.is_empty())
                .map(keyfob_proto::Sensitive::new),
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::RequestKey;
    use keyfob_proto::methods::ApprovalRequest;

    fn request(id: u64, pid: i32, account: &str, method: &str) -> ApprovalRequest {
        serde_json::from_value(serde_json::json!({"id": id, "client": {"pid": pid, "exe": "/bin/sh", "label": "sh", "identified_by": "executable"}, "account": account, "operation": "token", "method": method, "policy": "always", "expires_in_secs": 60})).unwrap()
    }

    #[test]
    fn an_answer_to_a_gone_daemons_request_does_not_reach_another_request_with_its_number() {
        let on_screen = RequestKey {
            id: 1,
            client_pid: 100,
            account: "work".into(),
            method: "token.get".into(),
        };
        // keyfobd restarted: its request 1 is another program's, or for another account or
        // method.
        for other in [
            request(1, 200, "work", "token.get"),
            request(1, 100, "bank", "token.get"),
            request(1, 100, "work", "secret.get"),
        ] {
            assert!(on_screen.find(vec![other]).is_none());
        }
        let found = on_screen.find(vec![
            request(2, 100, "work", "token.get"),
            request(1, 100, "work", "token.get"),
        ]);
        assert_eq!(found.map(|r| (r.id, r.client.pid)), Some((1, 100)));
    }
}
