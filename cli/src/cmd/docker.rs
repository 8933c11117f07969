//! `docker-credential-keyfob store|get|erase|list|version`: docker's credential-helper
//! protocol, as docker-credential-helpers define it, when `keyfob` runs under that name (a
//! link to it on PATH; `credsStore: "keyfob"` or `credHelpers` in ~/.docker/config.json).
//!
//! Each registry's credential is a Keyfob secret named `docker:HOST[+PATH]`, whose label (not
//! secret) holds the registry URL and username, so `list` reads no value and never asks for
//! approval. Errors go to stdout, as docker reads them; an unknown registry is exactly
//! `credentials not found in native keychain`.

use crate::ctx::Ctx;
use keyfob_proto::Sensitive;
use keyfob_proto::methods::*;
use serde::{Deserialize, Serialize};
use std::io::Read;

/// What docker reads as "no credentials for this registry".
pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// The name `keyfob` answers the protocol under.
pub const PROGRAM: &str = "docker-credential-keyfob";

const PREFIX: &str = "docker:";

/// A credential as docker sends and reads it.
#[derive(Debug, Serialize, Deserialize)]
struct Credential {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: Sensitive,
}

/// The non-secret half, kept as the secret's label.
#[derive(Debug, Serialize, Deserialize)]
struct Label {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
}

/// The secret name of a registry: its host and path, without scheme or trailing slash, in
/// the characters secret names take.
fn secret_name(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.trim_end_matches('/');
    let mapped: String = s
        .chars()
        .map(|c| match c {
            '/' => '+',
            c if c.is_ascii_alphanumeric() || "._@+:-".contains(c) => c,
            _ => '_',
        })
        .collect();
    format!("{PREFIX}{mapped}")
}

fn fail(msg: &str) -> u8 {
    // docker reads a helper's errors from stdout.
    println!("{msg}");
    1
}

fn read_stdin() -> Result<String, u8> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| fail(&e.to_string()))?;
    Ok(s)
}

/// Runs one action of the protocol; the exit code docker expects.
pub fn run(ctx: &Ctx, action: Option<&str>) -> u8 {
    match action {
        Some("store") => store(ctx),
        Some("get") => get(ctx),
        Some("erase") => erase(ctx),
        Some("list") => list(ctx),
        Some("version") => {
            println!("{PROGRAM} (keyfob) {}", env!("CARGO_PKG_VERSION"));
            0
        }
        _ => fail("Usage: docker-credential-keyfob <store|get|erase|list|version>"),
    }
}

fn store(ctx: &Ctx) -> u8 {
    let input = match read_stdin() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let cred: Credential = match serde_json::from_str(&input) {
        Ok(c) => c,
        Err(_) => return fail("the credential to store is not docker's JSON"),
    };
    let label = Label {
        server_url: cred.server_url.clone(),
        username: cred.username.clone(),
    };
    let params = SecretSetParams {
        name: secret_name(&cred.server_url),
        value: cred.secret,
        label: serde_json::to_string(&label).ok(),
    };
    match ctx.call::<SecretSet>(&params) {
        Ok(_) => 0,
        Err(e) => fail(&e.to_string()),
    }
}

/// The registry's stored label, read without the value.
fn label_of(ctx: &Ctx, name: &str) -> Result<Option<Label>, u8> {
    let list = ctx
        .call::<SecretList>(&Empty {})
        .map_err(|e| fail(&e.to_string()))?;
    Ok(list
        .into_iter()
        .find(|s| s.name == name)
        .and_then(|s| s.label)
        .and_then(|l| serde_json::from_str(&l).ok()))
}

fn get(ctx: &Ctx) -> u8 {
    let server = match read_stdin() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let name = secret_name(&server);
    let label = match label_of(ctx, &name) {
        Ok(Some(l)) => l,
        Ok(None) => return fail(NOT_FOUND),
        Err(code) => return code,
    };
    match ctx.call::<SecretGet>(&NameParams { name }) {
        Ok(r) => {
            let cred = Credential {
                server_url: label.server_url,
                username: label.username,
                secret: r.value,
            };
            match serde_json::to_string(&cred) {
                Ok(json) => {
                    println!("{json}");
                    0
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Err(e) if e.exit_code() == crate::exit::code::NOT_FOUND => fail(NOT_FOUND),
        Err(e) => fail(&e.to_string()),
    }
}

fn erase(ctx: &Ctx) -> u8 {
    let server = match read_stdin() {
        Ok(s) => s,
        Err(code) => return code,
    };
    match ctx.call::<SecretRemove>(&NameParams {
        name: secret_name(&server),
    }) {
        Ok(_) => 0,
        Err(e) if e.exit_code() == crate::exit::code::NOT_FOUND => fail(NOT_FOUND),
        Err(e) => fail(&e.to_string()),
    }
}

fn list(ctx: &Ctx) -> u8 {
    // Names and labels only: no value is read, so nothing asks for approval or unlocking.
    let all = match ctx.call::<SecretList>(&Empty {}) {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let map: std::collections::BTreeMap<String, String> = all
        .into_iter()
        .filter(|s| s.name.starts_with(PREFIX))
        .filter_map(|s| s.label.and_then(|l| serde_json::from_str::<Label>(&l).ok()))
        .map(|l| (l.server_url, l.username))
        .collect();
    match serde_json::to_string(&map) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => fail(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn registries_map_to_secret_names() {
        assert_eq!(
            super::secret_name("https://index.docker.io/v1/"),
            "docker:index.docker.io+v1"
        );
        assert_eq!(
            super::secret_name("localhost:5000"),
            "docker:localhost:5000"
        );
        assert_eq!(super::secret_name("ghcr.io\n"), "docker:ghcr.io");
    }
}
