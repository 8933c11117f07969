//! `keyfob audit [--lines N] [--follow] [--json]` and `keyfob audit verify`.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use clap::Subcommand;
use keyfob_proto::methods::*;

/// Audit actions.
#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the log's hash chain; names the first edited, removed or reordered line.
    Verify,
}

fn print(ctx: &Ctx, line: &serde_json::Value) -> CliResult {
    if ctx.json {
        return ctx.print_json(line);
    }
    let s = |k: &str| line.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let client = line
        .get("client")
        .map(|c| {
            format!(
                " pid {} {}",
                c.get("pid").map(|p| p.to_string()).unwrap_or_default(),
                c.get("exe").and_then(|e| e.as_str()).unwrap_or("")
            )
        })
        .unwrap_or_default();
    let times = line
        .get("count")
        .and_then(|c| c.as_u64())
        .filter(|c| *c > 1)
        .map(|c| format!(" ×{c}"))
        .unwrap_or_default();
    println!(
        "{:>6} {} {:<20} {:<24} {}{}{}{}",
        line.get("seq").map(|v| v.to_string()).unwrap_or_default(),
        line.get("ts").and_then(|v| v.as_u64()).unwrap_or(0) / 1000,
        s("event"),
        s("subject"),
        s("outcome"),
        line.get("detail")
            .and_then(|d| d.as_str())
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
        times,
        client
    );
    Ok(())
}

/// Shows or verifies the audit log.
pub fn run(ctx: &Ctx, action: Option<AuditCmd>, lines: usize, follow: bool) -> CliResult {
    if let Some(AuditCmd::Verify) = action {
        let v = ctx.call::<AuditVerify>(&Empty {})?;
        if ctx.json {
            ctx.print_json(&v)?;
        } else if v.intact {
            println!("audit log intact: {} lines", v.lines);
        }
        if !v.intact {
            return Err(CliError::new(
                code::FAILURE,
                format!(
                    "audit log damaged: {} line {}: {}",
                    v.file.unwrap_or_default(),
                    v.line.unwrap_or(0),
                    v.reason.unwrap_or_default()
                ),
            ));
        }
        return Ok(());
    }
    let mut last = None;
    loop {
        let batch = ctx.call::<AuditTail>(&AuditTailParams {
            lines: Some(lines),
            after_seq: last,
        })?;
        for line in &batch {
            print(ctx, line)?;
            last = line.get("seq").and_then(|v| v.as_u64()).or(last);
        }
        if !follow {
            return Ok(());
        }
        // Following: ask again shortly for what came after the last line shown.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
