//! `keyfob account add|list|show|rm`.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use crate::input;
use clap::Subcommand;
use keyfob_proto::Sensitive;
use keyfob_proto::methods::*;

/// `--grant` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GrantArg {
    /// A person signs in.
    User,
    /// Client credentials: a service account.
    ClientCredentials,
}

/// Account actions.
#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Add an account for a provider (sign in afterwards with `keyfob login NAME`).
    Add {
        /// The account's name.
        name: String,
        /// Provider plugin: github, gitlab, google, microsoft, oidc, or a user plugin.
        #[arg(long)]
        provider: String,
        /// Issuer URL, for providers that take one (oidc, a self-managed gitlab).
        #[arg(long)]
        issuer: Option<String>,
        /// OAuth client id (OAuth and OIDC providers; exec plugins take none).
        #[arg(long, default_value = "")]
        client_id: String,
        /// Read a client secret from stdin (`--client-secret -`), for confidential clients.
        #[arg(long, value_name = "-")]
        client_secret: Option<String>,
        /// Scopes (repeat or space-separate); default: the provider's.
        #[arg(long = "scope", num_args = 1..)]
        scopes: Vec<String>,
        /// Audience or resource to request.
        #[arg(long)]
        audience: Option<String>,
        /// Plugin parameter, e.g. `--param tenant=contoso.example`.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// `user` (a person signs in; default) or `client-credentials` (a service account).
        #[arg(long, value_enum, default_value = "user")]
        grant: GrantArg,
    },
    /// List accounts and their sign-in state.
    List,
    /// Show one account.
    Show {
        /// The account's name.
        name: String,
    },
    /// Remove an account and its stored secrets (use `keyfob logout` to revoke first).
    Rm {
        /// The account's name.
        name: String,
    },
}

fn state_text(a: &AccountInfo) -> &'static str {
    match a.state {
        AccountState::SignedIn => "signed in",
        AccountState::SignedOut => "signed out",
        AccountState::NeedsLogin => "needs sign-in",
    }
}

/// Runs an account action.
pub fn run(ctx: &Ctx, action: AccountCmd) -> CliResult {
    match action {
        AccountCmd::Add {
            name,
            provider,
            issuer,
            client_id,
            client_secret,
            scopes,
            audience,
            params,
            grant,
        } => {
            let client_secret = match client_secret.as_deref() {
                None => None,
                Some("-") => Some(Sensitive::new(
                    input::secret_from_stdin("Client secret")?.trim().to_owned(),
                )),
                Some(_) => {
                    return Err(CliError::new(
                        code::INVALID,
                        "the client secret is read from stdin: use `--client-secret -`",
                    ));
                }
            };
            let mut map = std::collections::BTreeMap::new();
            for kv in params {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    CliError::new(code::INVALID, format!("--param {kv:?} must be KEY=VALUE"))
                })?;
                map.insert(k.to_owned(), v.to_owned());
            }
            let scopes = scopes
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(str::to_owned)
                .collect();
            let info = ctx.call::<AccountAdd>(&AccountAddParams {
                name,
                provider,
                issuer,
                client_id,
                client_secret,
                scopes,
                audience,
                params: map,
                grant: match grant {
                    GrantArg::User => AccountGrant::User,
                    GrantArg::ClientCredentials => AccountGrant::ClientCredentials,
                },
            })?;
            if ctx.json {
                ctx.print_json(&info)
            } else {
                if info.state == AccountState::SignedIn {
                    // An exchanged credential (aws-sts): nothing to sign in to.
                    eprintln!(
                        "added account {} ({}); ready: `keyfob token {}`",
                        info.name, info.provider, info.name
                    );
                    return Ok(());
                }
                eprintln!(
                    "added account {} ({}); sign in with `keyfob login {}`",
                    info.name, info.provider, info.name
                );
                if let Some(c) = &info.check {
                    describe_check(c);
                }
                Ok(())
            }
        }
        AccountCmd::List => {
            let list = ctx.call::<AccountList>(&Empty {})?;
            if ctx.json {
                return ctx.print_json(&list);
            }
            for a in &list {
                println!("{:<24} {:<10} {}", a.name, a.provider, state_text(a));
            }
            Ok(())
        }
        AccountCmd::Show { name } => {
            let a = ctx.call::<AccountShow>(&NameParams { name })?;
            if ctx.json {
                return ctx.print_json(&a);
            }
            println!("account:   {}", a.name);
            println!("provider:  {}", a.provider);
            if let Some(i) = &a.issuer {
                println!("issuer:    {i}");
            }
            println!(
                "client id: {}{}",
                a.client_id,
                if a.confidential { " (with secret)" } else { "" }
            );
            println!("scopes:    {}", a.scopes.join(" "));
            println!("state:     {}", state_text(&a));
            if let Some(d) = &a.detail {
                println!("note:      {d}");
            }
            Ok(())
        }
        AccountCmd::Rm { name } => {
            ctx.call::<AccountRemove>(&NameParams { name: name.clone() })?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"removed": name}))
            } else {
                eprintln!("removed account {name}");
                Ok(())
            }
        }
    }
}

/// What `account add` found at the provider, for people.
fn describe_check(c: &keyfob_proto::methods::ProviderCheck) {
    if let Some(why) = &c.unreachable {
        eprintln!(
            "  the provider could not be reached now ({why}); the first sign-in checks it again"
        );
        return;
    }
    if let Some(issuer) = &c.issuer {
        eprintln!("  issuer:     {issuer} (discovery answered)");
    }
    let flows: Vec<&str> = c
        .flows
        .iter()
        .map(|f| match f {
            LoginFlow::Device => "device code",
            LoginFlow::Browser => "browser (--browser)",
            LoginFlow::Plugin => "the plugin's own",
        })
        .collect();
    if !flows.is_empty() {
        eprintln!("  sign-in:    {}", flows.join(", "));
    }
    eprintln!(
        "  sign-out:   {}",
        if c.revocation {
            "revokes the grant at the provider"
        } else {
            "the provider cannot revoke tokens; `keyfob logout` deletes the local ones"
        }
    );
}
