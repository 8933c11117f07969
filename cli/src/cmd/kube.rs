//! `keyfob kube-credential NAME`: kubectl's exec credential plugin. kubectl runs it for every
//! command (it caches only inside one process); the agent's one sign-in and shared refresh
//! serve them all, and it never opens a browser: an account that needs a sign-in fails with
//! one line naming `keyfob login`.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use keyfob_proto::methods::*;

/// The API group of exec credentials.
const GROUP: &str = "client.authentication.k8s.io/";

/// Prints an ExecCredential with the account's access token and its expiry.
pub fn run(ctx: &Ctx, name: String) -> CliResult {
    // kubectl says which version it speaks in KUBERNETES_EXEC_INFO; the answer echoes it.
    let info: Option<serde_json::Value> = std::env::var("KUBERNETES_EXEC_INFO")
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let api = info
        .as_ref()
        .and_then(|v| v["apiVersion"].as_str())
        .unwrap_or("client.authentication.k8s.io/v1")
        .to_owned();
    if !api.starts_with(GROUP) {
        return Err(CliError::new(
            code::USAGE,
            format!("KUBERNETES_EXEC_INFO asks for {api:?}, not an exec credential ({GROUP}v1)"),
        ));
    }
    let t = ctx.call::<TokenGet>(&TokenParams {
        name,
        ..Default::default()
    })?;
    let mut status = serde_json::Map::new();
    status.insert("token".into(), t.access_token.expose().into());
    if let Some(exp) = t.expires_at {
        status.insert("expirationTimestamp".into(), rfc3339(exp).into());
    }
    let out = serde_json::json!({"apiVersion": api, "kind": "ExecCredential", "status": status});
    println!("{out}");
    Ok(())
}

/// Unix seconds as an RFC 3339 UTC timestamp (`2026-11-29T23:30:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_991_400), "2026-11-29T22:30:00Z");
    }
}
