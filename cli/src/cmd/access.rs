//! `keyfob approve`, `keyfob approvals list|revoke`, `keyfob key create|list|revoke`,
//! `keyfob lock` and `keyfob unlock`.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use crate::input;
use clap::Subcommand;
use keyfob_proto::methods::*;
use keyfob_proto::{ClientError, Event, Sensitive};
use std::collections::VecDeque;
use std::io::{BufRead, Write};

/// Remembered-approval actions.
#[derive(Subcommand, Debug)]
pub enum ApprovalsCmd {
    /// List remembered decisions still in force.
    List,
    /// Forget a remembered decision (the client will be asked again).
    Revoke {
        /// The id shown by `keyfob approvals list`.
        id: String,
    },
}

/// Agent-key actions.
#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Create a scoped key; it is printed once and only its hash is kept.
    Create {
        /// A name to list and revoke it by.
        #[arg(long)]
        name: String,
        /// Accounts (or OTP entries, or secrets) it reaches, comma-separated.
        #[arg(long = "account", value_delimiter = ',', required = true)]
        accounts: Vec<String>,
        /// Operations it allows, comma-separated: token, id_token, otp, secret, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        ops: Vec<Operation>,
        /// Lifetime: 90s, 30m, 8h, 7d (default: until revoked).
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<u64>,
    },
    /// List keys: name, prefix, scope, created, last used, expiry.
    List,
    /// Revoke a key at once, on open connections too.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// Parses `90s`, `30m`, `8h`, `7d` (or plain seconds) into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 90s, 30m, 8h or 7d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: use e.g. 90s, 30m, 8h or 7d"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

fn when(secs: Option<u64>) -> String {
    let Some(t) = secs else {
        return "-".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if t >= now {
        format!("in {}", span(t - now))
    } else {
        format!("{} ago", span(now - t))
    }
}

fn span(s: u64) -> String {
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn ops_list(ops: &[Operation]) -> String {
    ops.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(",")
}

/// Runs an approvals action.
pub fn approvals(ctx: &Ctx, action: ApprovalsCmd) -> CliResult {
    match action {
        ApprovalsCmd::List => {
            let r = ctx.call::<ApprovalList>(&Empty {})?;
            if ctx.json {
                return ctx.print_json(&r);
            }
            if r.approvals.is_empty() {
                eprintln!("no remembered approvals");
            }
            for a in r.approvals {
                println!(
                    "{}  {} {}  {}  expires {}",
                    a.id,
                    a.operation,
                    a.account,
                    a.client,
                    a.expires.map_or("never".into(), |e| when(Some(e)))
                );
            }
            Ok(())
        }
        ApprovalsCmd::Revoke { id } => {
            ctx.call::<ApprovalRevoke>(&IdParams { id: id.clone() })?;
            if ctx.json {
                return ctx.print_json(&serde_json::json!({"revoked": id}));
            }
            eprintln!("revoked approval {id}");
            Ok(())
        }
    }
}

/// Runs an agent-key action.
pub fn key(ctx: &Ctx, action: KeyCmd) -> CliResult {
    match action {
        KeyCmd::Create {
            name,
            accounts,
            ops,
            ttl,
        } => {
            let r = ctx.call::<KeyCreate>(&KeyCreateParams {
                name,
                accounts,
                ops,
                ttl_secs: ttl,
            })?;
            if ctx.json {
                return ctx.print_json(&r);
            }
            println!("{}", r.key.expose());
            eprintln!(
                "agent key {:?}: {} on {}, expires {}. It is shown only now: give it to the client as KEYFOB_KEY.",
                r.info.name,
                ops_list(&r.info.ops),
                r.info.accounts.join(","),
                r.info.expires.map_or("never".into(), |e| when(Some(e)))
            );
            Ok(())
        }
        KeyCmd::List => {
            let r = ctx.call::<KeyList>(&Empty {})?;
            if ctx.json {
                return ctx.print_json(&r);
            }
            if r.keys.is_empty() {
                eprintln!("no agent keys: create one with `keyfob key create`");
            }
            for k in r.keys {
                println!(
                    "{}  {}…  {} on {}  created {}  last used {}  expires {}",
                    k.name,
                    k.prefix,
                    ops_list(&k.ops),
                    k.accounts.join(","),
                    when(Some(k.created)),
                    when(k.last_used),
                    k.expires.map_or("never".into(), |e| when(Some(e)))
                );
            }
            Ok(())
        }
        KeyCmd::Revoke { name } => {
            ctx.call::<KeyRevoke>(&IdParams { id: name.clone() })?;
            if ctx.json {
                return ctx.print_json(&serde_json::json!({"revoked": name}));
            }
            eprintln!("revoked agent key {name}");
            Ok(())
        }
    }
}

/// `keyfob lock`.
pub fn lock(ctx: &Ctx) -> CliResult {
    ctx.call::<Lock>(&LockParams {})?;
    if !ctx.json {
        eprintln!("locked: cached tokens and decrypted secrets are out of memory");
    }
    Ok(())
}

/// `keyfob unlock`: the vault passphrase (prompted on a terminal, or from stdin with
/// `--passphrase-stdin`), or else an approver's confirmation.
pub fn unlock(ctx: &Ctx, passphrase_stdin: bool) -> CliResult {
    let status = ctx.call::<Status>(&Empty {})?;
    if !status.locked {
        eprintln!("the agent is not locked");
        return Ok(());
    }
    let passphrase = if status.vault == VaultKind::File && passphrase_stdin {
        let line = input::read_stdin()?;
        Some(Sensitive::new(
            line.trim_end_matches(['\n', '\r']).to_owned(),
        ))
    } else if status.vault == VaultKind::File && input::stdin_is_terminal() {
        Some(Sensitive::new(
            input::prompt_hidden("Vault passphrase: ")?.to_string(),
        ))
    } else {
        eprintln!("waiting for an approver (`keyfob approve` or the tray) to confirm the unlock…");
        None
    };
    ctx.call::<Unlock>(&UnlockParams { passphrase })?;
    eprintln!("unlocked");
    Ok(())
}

fn describe(r: &ApprovalRequest) -> String {
    let c = &r.client;
    let mut s = format!(
        "\nApproval request #{}\n  client:   {} (pid {}, identified by {})\n",
        r.id, c.label, c.pid, c.identified_by
    );
    if let Some(exe) = &c.exe {
        s += &format!("  program:  {exe}\n");
    }
    if r.method == Unlock::NAME {
        s += "  wants:    to unlock the agent\n";
    } else if let Some(detail) = &r.detail {
        s += &format!("  wants:    to {detail} ({})\n", r.method);
    } else {
        s += &format!(
            "  wants:    {} for {:?} ({})\n",
            r.operation, r.account, r.method
        );
    }
    s += &format!("  expires:  in {} s\n", r.expires_in_secs);
    s
}

/// The answers for a script or inline code, whose answers count once.
const CHOICES_ONCE: &str =
    "Allow? [o]nce, [d]eny (a script's answer is not remembered); empty line skips: ";
/// The answers for a client whose identity the kernel vouches for.
const CHOICES: &str =
    "Allow? [o]nce, [f]or a while (f 8h), [a]lways for this client, [d]eny; empty line skips: ";

fn parse_answer(line: &str) -> Result<Option<Decision>, String> {
    let line = line.trim();
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    Ok(Some(match word.to_ascii_lowercase().as_str() {
        "" => return Ok(None),
        "o" | "once" => Decision::AllowOnce,
        "a" | "always" => Decision::AllowAlways,
        "d" | "deny" | "n" | "no" => Decision::Deny,
        "f" | "for" => Decision::AllowFor {
            secs: if rest.trim().is_empty() {
                3600
            } else {
                parse_duration(rest)?
            },
        },
        other => return Err(format!("unknown answer {other:?}")),
    }))
}

/// Applies one event from the approver connection; `Err` ends the approver.
fn take(ev: Result<Event, ClientError>, queue: &mut VecDeque<ApprovalRequest>) -> CliResult {
    match ev? {
        Event::ApprovalRequested(r) => queue.push_back(r),
        Event::ApprovalResolved { id, .. } => queue.retain(|r| r.id != id),
        Event::DaemonStopping => {
            return Err(CliError::new(code::AGENT, "the agent stopped"));
        }
        other => show_event(other)?,
    }
    Ok(())
}

fn show_event(ev: Event) -> CliResult {
    match ev {
        Event::SigninStarted {
            account,
            user_code,
            verification_uri,
            authorize_url,
            ..
        } => match (user_code, verification_uri, authorize_url) {
            (Some(code), Some(uri), _) => {
                println!("\nSign-in started for {account}: enter code {code} at {uri}")
            }
            (_, _, Some(url)) => println!("\nSign-in started for {account}: open {url}"),
            _ => println!("\nSign-in started for {account}"),
        },
        Event::SigninFinished { account, ok, error } => {
            if ok {
                println!("Sign-in finished for {account}");
            } else {
                println!(
                    "Sign-in failed for {account}: {}",
                    error.unwrap_or_default()
                );
            }
        }
        _ => {}
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// `keyfob approve`: an approver on this terminal. Shows each request and reads the answer
/// from stdin; ends at end of input. Sign-ins appear too, with their code.
///
/// One thread listens on the approver connection; the answers go on connections of their
/// own, so a request answered elsewhere (or timed out) before its turn is never shown.
pub fn approve(ctx: &Ctx) -> CliResult {
    let mut client = ctx.connect()?;
    let listen = client.call::<ApprovalListen>(&Empty {})?;
    let (tx, rx) = std::sync::mpsc::channel::<Result<Event, ClientError>>();
    std::thread::spawn(move || {
        loop {
            let ev = client.next_event();
            let stop = ev.is_err();
            if tx.send(ev).is_err() || stop {
                break;
            }
        }
    });
    let mut queue: VecDeque<ApprovalRequest> = listen.pending.into();
    eprintln!("keyfob approve: waiting for requests (end input or press Ctrl-D to stop)");
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        // Everything heard so far first, so the queue is current.
        while let Ok(ev) = rx.try_recv() {
            take(ev, &mut queue)?;
        }
        let Some(req) = queue.pop_front() else {
            let ev = rx
                .recv()
                .map_err(|_| CliError::new(code::AGENT, "lost the agent"))?;
            take(ev, &mut queue)?;
            continue;
        };
        // A script or inline code is not remembered (another program can imitate it): offer
        // what counts.
        let choices = if req.client.is_remembered() {
            CHOICES
        } else {
            CHOICES_ONCE
        };
        print!("{}{choices}", describe(&req));
        std::io::stdout().flush()?;
        let decision = loop {
            let Some(line) = lines.next() else {
                eprintln!("\nend of input: stopping");
                return Ok(());
            };
            match parse_answer(&line?) {
                Ok(d) => break d,
                Err(e) => {
                    print!("{e}. {choices}");
                    std::io::stdout().flush()?;
                }
            }
        };
        let Some(decision) = decision else {
            println!("skipped #{}", req.id);
            continue;
        };
        // A script or inline code is known by its own command line, which another program can
        // imitate: the daemon does not remember decisions about it. Say so.
        let remembered = req.client.is_remembered();
        let lasting = matches!(decision, Decision::AllowAlways | Decision::AllowFor { .. });
        match ctx.call::<ApprovalDecide>(&DecideParams {
            id: req.id,
            decision,
        }) {
            Ok(_) if lasting && !remembered => println!(
                "#{}: allowed this time only: {} is identified by its {}, which another program can imitate, so the answer is not remembered; for a script that runs unattended, create an agent key (`keyfob key create`)",
                req.id, req.client.label, req.client.identified_by
            ),
            Ok(_) => println!("#{}: {}", req.id, summary(decision)),
            Err(e) if e.exit_code() == code::NOT_FOUND => {
                println!(
                    "#{}: too late, it was answered elsewhere or timed out",
                    req.id
                )
            }
            Err(e) => return Err(e),
        }
        std::io::stdout().flush()?;
    }
}

fn summary(d: Decision) -> String {
    match d {
        Decision::AllowOnce => "allowed once".into(),
        Decision::AllowFor { secs } => format!("allowed for {}", span(secs)),
        Decision::AllowAlways => "allowed until revoked (`keyfob approvals revoke`)".into(),
        Decision::Deny => "denied".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_answers_parse() {
        assert_eq!(parse_duration("8h"), Ok(28_800));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("8 hours").is_err());
        assert_eq!(
            parse_answer("f 30m"),
            Ok(Some(Decision::AllowFor { secs: 1800 }))
        );
        assert_eq!(parse_answer("o"), Ok(Some(Decision::AllowOnce)));
        assert_eq!(parse_answer(""), Ok(None));
        assert!(parse_answer("maybe").is_err());
    }
}
