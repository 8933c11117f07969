//! `keyfob token NAME [--min-ttl SECONDS] [--json]`.

use crate::ctx::Ctx;
use crate::exit::CliResult;
use keyfob_proto::methods::*;

/// Prints a fresh access token.
pub fn run(ctx: &Ctx, name: String, min_ttl: Option<u64>) -> CliResult {
    let t = ctx.call::<TokenGet>(&TokenParams { name, min_ttl })?;
    if ctx.json {
        return ctx.print_json(&t);
    }
    println!("{}", t.access_token.expose());
    Ok(())
}
