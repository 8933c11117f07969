//! `keyfob secret set|get|list|rm`.

use crate::ctx::Ctx;
use crate::exit::CliResult;
use crate::input;
use clap::Subcommand;
use keyfob_proto::Sensitive;
use keyfob_proto::methods::*;

/// Secret actions.
#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Store a secret; the value is read from stdin (prompted, hidden, on a terminal).
    Set {
        /// The secret's name.
        name: String,
    },
    /// Print a secret's value.
    Get {
        /// The secret's name.
        name: String,
    },
    /// List secret names (never values).
    List,
    /// Delete a secret.
    Rm {
        /// The secret's name.
        name: String,
    },
}

/// Runs a secret action.
pub fn run(ctx: &Ctx, action: SecretCmd) -> CliResult {
    match action {
        SecretCmd::Set { name } => {
            let value = input::secret_from_stdin("Value")?;
            let r = ctx.call::<SecretSet>(&SecretSetParams {
                name: name.clone(),
                value: Sensitive::new(value.to_string()),
                label: None,
            })?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"name": name, "replaced": r.replaced}))
            } else {
                eprintln!(
                    "{} secret {name}",
                    if r.replaced { "replaced" } else { "stored" }
                );
                Ok(())
            }
        }
        SecretCmd::Get { name } => {
            let r = ctx.call::<SecretGet>(&NameParams { name })?;
            if ctx.json {
                ctx.print_json(&r)
            } else {
                println!("{}", r.value.expose());
                Ok(())
            }
        }
        SecretCmd::List => {
            let list = ctx.call::<SecretList>(&Empty {})?;
            if ctx.json {
                return ctx.print_json(&list);
            }
            for s in list {
                println!("{}", s.name);
            }
            Ok(())
        }
        SecretCmd::Rm { name } => {
            ctx.call::<SecretRemove>(&NameParams { name: name.clone() })?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"removed": name}))
            } else {
                eprintln!("removed secret {name}");
                Ok(())
            }
        }
    }
}
