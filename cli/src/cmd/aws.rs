//! `keyfob aws-credential-process NAME`: the AWS CLI's and SDKs' `credential_process`. They
//! cache nothing between runs, so the agent does: the credentials an exec plugin (aws-sts)
//! obtained are served from its cache until shortly before they expire. Nothing secret is
//! written to stderr, and nothing ever prompts: there is no terminal here.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use keyfob_proto::methods::*;

/// Credentials handed out have at least this long left (the SDKs refresh 15 minutes ahead),
/// or, for roles whose sessions are shorter, most of their life.
const MIN_TTL_SECS: u64 = 15 * 60;

/// Prints the credential_process JSON (Version 1, with Expiration) for an account.
pub fn run(ctx: &Ctx, name: String) -> CliResult {
    let t = ctx.call::<TokenGet>(&TokenParams {
        name: name.clone(),
        min_ttl: Some(MIN_TTL_SECS),
        ..Default::default()
    })?;
    let field = |key: &str| {
        t.fields.get(key).map(|v| v.expose().to_owned()).ok_or_else(|| {
            CliError::new(
                code::INVALID,
                format!(
                    "account {name:?} holds no AWS credentials (no {key}): credential_process needs an account of provider aws-sts (`keyfob account add NAME --provider aws-sts --param source=… --param role_arn=…`)"
                ),
            )
        })
    };
    let mut out = serde_json::json!({
        "Version": 1,
        "AccessKeyId": field("access_key_id")?,
        "SecretAccessKey": field("secret_access_key")?,
        "SessionToken": field("session_token")?,
    });
    if let Some(exp) = t.expires_at {
        out["Expiration"] = super::kube::rfc3339(exp).into();
    }
    println!("{out}");
    Ok(())
}
