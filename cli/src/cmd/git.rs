//! `keyfob git-credential [--account NAME] get|store|erase`: git's credential-helper protocol.
//! Without `--account`, the account is the one whose provider plugin names the host among its
//! git hosts (`github.com` for GitHub).
//!
//! With git 2.46 or later (which says `capability[]=authtype`) the answer is a bearer token:
//! `authtype=Bearer`, `credential=…`, `password_expiry_utc=…`. Older git gets a username and
//! the token as password, in the host's convention. Nothing here ever prompts: an account
//! that needs a sign-in is one line on stderr, and git goes on to its next helper. `erase`
//! (git got a 401) makes the next `get` fetch a new token instead of forgetting the account;
//! `store` never overwrites a token Keyfob manages.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use keyfob_proto::Sensitive;
use keyfob_proto::methods::*;
use std::io::{BufRead, Write};

/// What git sent: its `key=value` lines, until a blank line or the end.
#[derive(Debug, Default)]
struct Request {
    authtype: bool,
    protocol: Option<String>,
    host: Option<String>,
    /// What git was refused with (`erase`): the credential or password.
    rejected: Option<Sensitive>,
}

fn read_request(input: impl BufRead) -> Result<Request, CliError> {
    let mut r = Request::default();
    for line in input.lines() {
        let line = line?;
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "capability[]" if v == "authtype" => r.authtype = true,
            "protocol" => r.protocol = Some(v.to_owned()),
            "host" => r.host = Some(v.to_owned()),
            "credential" | "password" => r.rejected = Some(Sensitive::new(v.to_owned())),
            _ => {}
        }
    }
    Ok(r)
}

/// The username older git sends with a token as password, by host.
fn username_for(host: &str) -> &'static str {
    let host = host.split(':').next().unwrap_or(host);
    if host == "bitbucket.org" {
        "x-token-auth"
    } else if host.contains("gitlab") {
        "oauth2"
    } else {
        // GitHub takes any username with a token; this one names what it is.
        "x-access-token"
    }
}

/// Runs one helper action.
pub fn run(ctx: &Ctx, account: Option<String>, action: &str) -> CliResult {
    let req = read_request(std::io::stdin().lock())?;
    if req
        .protocol
        .as_deref()
        .is_some_and(|p| p != "https" && p != "http")
    {
        return Ok(());
    }
    // Without --account, the one account whose provider serves this host (its plugin's
    // git_hosts); without one, git asks its next helper.
    let name = match account {
        Some(a) => a,
        None => match account_for_host(ctx, req.host.as_deref().unwrap_or_default())? {
            Some(a) => a,
            None => return Ok(()),
        },
    };
    match action {
        "get" => get(ctx, name, &req, None),
        // After a 401: the next `get` gets a new token, and the account stays.
        "erase" => match req.rejected.clone() {
            Some(bad) => get(ctx, name, &req, Some(bad)).map(|_| ()).or(Ok(())),
            None => Ok(()),
        },
        // git offers what worked; Keyfob keeps its own tokens and never takes one from git.
        "store" => Ok(()),
        "capability" => {
            println!("version 0\ncapability authtype");
            Ok(())
        }
        other => Err(CliError::new(
            code::USAGE,
            format!("unknown git credential action {other:?}: git runs get, store or erase"),
        )),
    }
}

/// The account whose provider names `host` among its git hosts, when exactly one does.
fn account_for_host(ctx: &Ctx, host: &str) -> CliResult<Option<String>> {
    let host = host.split(':').next().unwrap_or(host);
    let accounts = ctx.call::<AccountList>(&Empty {})?;
    let serving: Vec<String> = accounts
        .into_iter()
        .filter(|a| a.git_hosts.iter().any(|h| h == host))
        .map(|a| a.name)
        .collect();
    match serving.as_slice() {
        [one] => Ok(Some(one.clone())),
        [] => Ok(None),
        several => {
            eprintln!(
                "keyfob: several accounts serve {host} ({}): name one with `keyfob git-credential --account NAME`",
                several.join(", ")
            );
            Ok(None)
        }
    }
}

fn get(ctx: &Ctx, name: String, req: &Request, rejected: Option<Sensitive>) -> CliResult {
    let erase = rejected.is_some();
    let t = match ctx.call::<TokenGet>(&TokenParams {
        name: name.clone(),
        rejected,
        ..Default::default()
    }) {
        Ok(t) => t,
        Err(e) if e.exit_code() == code::NEEDS_LOGIN || e.exit_code() == code::DENIED => {
            // One line, no prompt: git falls through to its next helper or fails plainly.
            eprintln!("keyfob: {e}");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if erase {
        // `erase` answers nothing; it only made sure the next `get` is served a new token.
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let expiry = t
        .expires_at
        .map(|e| format!("password_expiry_utc={e}\n"))
        .unwrap_or_default();
    if req.authtype {
        write!(
            out,
            "capability[]=authtype\nauthtype=Bearer\ncredential={}\n{expiry}ephemeral=1\n",
            t.access_token.expose()
        )?;
    } else {
        let host = req.host.as_deref().unwrap_or_default();
        write!(
            out,
            "username={}\npassword={}\n{expiry}",
            username_for(host),
            t.access_token.expose()
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gits_request_is_read_up_to_the_blank_line() {
        let r = read_request(
            "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=example.com\ncredential=old\n\nignored=1\n"
                .as_bytes(),
        )
        .unwrap();
        assert!(r.authtype);
        assert_eq!(r.host.as_deref(), Some("example.com"));
        assert_eq!(
            r.rejected.map(|s| s.expose().to_owned()).as_deref(),
            Some("old")
        );
        assert_eq!(username_for("gitlab.example.com"), "oauth2");
        assert_eq!(username_for("github.com"), "x-access-token");
    }
}
