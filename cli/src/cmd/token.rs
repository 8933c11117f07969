//! `keyfob token NAME [--min-ttl SECONDS] [--id-token] [--claims] [--json]`.

use crate::ctx::Ctx;
use crate::exit::CliResult;
use keyfob_proto::methods::*;

/// What to print besides (or instead of) the access token.
#[derive(Debug, Default, Clone)]
pub struct Show {
    /// Print the ID token instead of the access token.
    pub id_token: bool,
    /// Print the claims instead.
    pub claims: bool,
    /// Wait for a sign-in instead of failing when the account needs one.
    pub wait: bool,
    /// Narrower scopes.
    pub scopes: Vec<String>,
    /// Another audience.
    pub audience: Option<String>,
}

/// Prints a fresh access token (or its ID token, or claims).
pub fn run(ctx: &Ctx, name: String, min_ttl: Option<u64>, show: Show) -> CliResult {
    let t = ctx.call::<TokenGet>(&TokenParams {
        name,
        min_ttl,
        id_token: show.id_token,
        claims: show.claims,
        wait: show.wait,
        scopes: show.scopes,
        audience: show.audience,
        rejected: None,
    })?;
    if ctx.json {
        return ctx.print_json(&t);
    }
    if show.claims {
        if t.claims_unverified {
            eprintln!("note: these are the access token's claims, NOT verified by Keyfob");
        }
        let claims = t.claims.unwrap_or_default();
        println!(
            "{}",
            serde_json::to_string_pretty(&claims).unwrap_or_default()
        );
    } else if let Some(id) = &t.id_token {
        println!("{}", id.expose());
    } else {
        println!("{}", t.access_token.expose());
    }
    Ok(())
}
