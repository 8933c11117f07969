//! `keyfob otp add|import|code|list|rm|show|recovery`.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use crate::input;
use clap::{Subcommand, ValueEnum};
use keyfob_proto::Sensitive;
use keyfob_proto::methods::*;
use std::io::IsTerminal;
use std::path::PathBuf;

/// The largest number of import lines sent in one request (keeps each under the line limit).
const IMPORT_BATCH: usize = 200;

/// Hash choices for `--algorithm`.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[allow(clippy::upper_case_acronyms, missing_docs)]
pub enum Algo {
    SHA1,
    SHA256,
    SHA512,
}

/// OTP actions.
#[derive(Subcommand, Debug)]
pub enum OtpCmd {
    /// Add an entry from a base32 secret or an otpauth:// URI.
    Add {
        /// The entry's name.
        name: String,
        /// Base32 secret, or `-` to read it from stdin (keeps it off the command line).
        #[arg(long, conflicts_with = "uri")]
        secret: Option<String>,
        /// An otpauth://totp/... or otpauth://hotp/... URI, or `-` to read it from stdin.
        #[arg(long)]
        uri: Option<String>,
        /// Code length.
        #[arg(long, value_parser = clap::value_parser!(u8).range(6..=8))]
        digits: Option<u8>,
        /// TOTP period in seconds.
        #[arg(long)]
        period: Option<u64>,
        /// HMAC hash.
        #[arg(long, value_enum, ignore_case = true)]
        algorithm: Option<Algo>,
        /// Counter-based (HOTP) instead of time-based.
        #[arg(long)]
        hotp: bool,
        /// HOTP starting counter.
        #[arg(long)]
        counter: Option<u64>,
        /// Replace an existing entry of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Import otpauth:// URIs (one per line) or Google Authenticator export links.
    Import {
        /// The file, or `-` for stdin.
        file: PathBuf,
        /// Replace entries that already exist instead of skipping them.
        #[arg(long)]
        replace: bool,
    },
    /// Print the current code (HOTP: the next code; its counter is saved first).
    Code {
        /// The entry's name.
        name: String,
        /// Compute the TOTP code for this Unix time instead of now.
        #[arg(long, value_name = "UNIX_SECONDS")]
        at: Option<u64>,
    },
    /// List entries (never secrets).
    List,
    /// Remove an entry and its recovery codes.
    Rm {
        /// The entry's name.
        name: String,
    },
    /// Show an entry's settings; with --qr, its secret as a terminal QR code.
    Show {
        /// The entry's name.
        name: String,
        /// Show the otpauth URI as a QR code, to move the entry to a phone.
        #[arg(long)]
        qr: bool,
        /// Do not ask for confirmation before showing the secret.
        #[arg(long)]
        yes: bool,
    },
    /// Recovery (backup) codes: with no option, print one unused code and mark it used.
    Recovery {
        /// The entry's name.
        name: String,
        /// Add codes, one per line, from stdin (`--add -`).
        #[arg(long, value_name = "-")]
        add: Option<String>,
    },
}

/// Runs an OTP action.
pub fn run(ctx: &Ctx, action: OtpCmd) -> CliResult {
    match action {
        OtpCmd::Add {
            name,
            secret,
            uri,
            digits,
            period,
            algorithm,
            hotp,
            counter,
            replace,
        } => {
            let from_arg = |v: String, what: &str| -> CliResult<Sensitive> {
                if v == "-" {
                    Ok(Sensitive::new(
                        input::secret_from_stdin(what)?.trim().to_owned(),
                    ))
                } else {
                    eprintln!(
                        "keyfob: warning: a secret on the command line is visible to other processes and kept in shell history; use `--{} -` to read it from stdin",
                        what.to_lowercase()
                    );
                    Ok(Sensitive::new(v))
                }
            };
            let (secret, uri) = match (secret, uri) {
                (Some(s), None) => (Some(from_arg(s, "Secret")?), None),
                (None, Some(u)) => (None, Some(from_arg(u, "Uri")?)),
                _ => {
                    return Err(CliError::new(
                        code::INVALID,
                        "give the secret with --secret - (read from stdin) or an otpauth URI with --uri -",
                    ));
                }
            };
            let info = ctx.call::<OtpAdd>(&OtpAddParams {
                name,
                secret,
                uri,
                kind: (hotp || counter.is_some()).then_some(OtpKind::Hotp),
                digits,
                period,
                algorithm: algorithm.map(|a| match a {
                    Algo::SHA1 => OtpAlgorithm::SHA1,
                    Algo::SHA256 => OtpAlgorithm::SHA256,
                    Algo::SHA512 => OtpAlgorithm::SHA512,
                }),
                counter,
                replace,
            })?;
            if ctx.json {
                ctx.print_json(&info)
            } else {
                eprintln!("added {} ({})", info.name, describe(&info));
                Ok(())
            }
        }
        OtpCmd::Import { file, replace } => import(ctx, file, replace),
        OtpCmd::Code { name, at } => code(ctx, name, at),
        OtpCmd::List => {
            let list = ctx.call::<OtpList>(&Empty {})?;
            if ctx.json {
                return ctx.print_json(&list);
            }
            if list.is_empty() {
                eprintln!("no OTP entries: add one with `keyfob otp add NAME --secret -`");
            }
            for e in &list {
                println!("{:<32} {}", e.name, describe(e));
            }
            Ok(())
        }
        OtpCmd::Rm { name } => {
            ctx.call::<OtpRemove>(&NameParams { name: name.clone() })?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"removed": name}))
            } else {
                eprintln!("removed {name}");
                Ok(())
            }
        }
        OtpCmd::Show { name, qr, yes } => show(ctx, name, qr, yes),
        OtpCmd::Recovery { name, add } => recovery(ctx, name, add),
    }
}

/// `otp code`; also reached by the fast path in `main`.
pub fn code(ctx: &Ctx, name: String, at: Option<u64>) -> CliResult {
    let r = ctx.call::<OtpCode>(&OtpCodeParams { name, at })?;
    if ctx.json {
        return ctx.print_json(&r);
    }
    match r.seconds_left {
        Some(left) if std::io::stdout().is_terminal() => {
            println!("{}  ({left} s left)", r.code.expose())
        }
        _ => println!("{}", r.code.expose()),
    }
    Ok(())
}

fn describe(e: &OtpInfo) -> String {
    let mut s = match e.kind {
        OtpKind::Totp => format!(
            "TOTP {:?} {} digits every {} s",
            e.algorithm,
            e.digits,
            e.period.unwrap_or(30)
        ),
        OtpKind::Hotp => format!(
            "HOTP {:?} {} digits, counter {}",
            e.algorithm,
            e.digits,
            e.counter.unwrap_or(0)
        ),
    };
    if let Some(i) = &e.issuer {
        s.push_str(&format!(", issuer {i}"));
    }
    if e.recovery_codes_left > 0 {
        s.push_str(&format!(", {} recovery codes", e.recovery_codes_left));
    }
    s
}

fn import(ctx: &Ctx, file: PathBuf, replace: bool) -> CliResult {
    let text = if file.as_os_str() == "-" {
        input::read_stdin()?
    } else {
        zeroize::Zeroizing::new(std::fs::read_to_string(&file).map_err(|e| {
            CliError::new(
                code::INVALID,
                format!("cannot read {}: {e}", file.display()),
            )
        })?)
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut added = Vec::new();
    let mut skipped = Vec::new();
    for (batch_no, batch) in lines.chunks(IMPORT_BATCH).enumerate() {
        let r = ctx.call::<OtpImport>(&OtpImportParams {
            lines: batch.iter().map(|l| Sensitive::from(*l)).collect(),
            replace,
        })?;
        added.extend(r.added);
        skipped.extend(r.skipped.into_iter().map(|mut p| {
            p.line += batch_no * IMPORT_BATCH;
            p
        }));
    }
    if ctx.json {
        return ctx.print_json(&OtpImportResult { added, skipped });
    }
    for name in &added {
        println!("added {name}");
    }
    for p in &skipped {
        eprintln!("line {}: skipped: {}", p.line, p.reason);
    }
    eprintln!("{} added, {} skipped", added.len(), skipped.len());
    if added.is_empty() && !skipped.is_empty() {
        return Err(CliError::new(code::INVALID, "nothing was imported"));
    }
    Ok(())
}

fn show(ctx: &Ctx, name: String, qr: bool, yes: bool) -> CliResult {
    if !qr {
        let list = ctx.call::<OtpList>(&Empty {})?;
        let Some(e) = list.into_iter().find(|e| e.name == name) else {
            return Err(CliError::new(
                code::NOT_FOUND,
                format!("no OTP entry named {name:?}: see `keyfob otp list`"),
            ));
        };
        return if ctx.json {
            ctx.print_json(&e)
        } else {
            println!("{}  {}", e.name, describe(&e));
            Ok(())
        };
    }
    if !yes
        && !input::confirm(&format!(
            "This shows the secret of {name} as a QR code; anyone who can see the screen can copy it. Show it?"
        ))?
    {
        return Err(CliError::new(
            code::DENIED,
            "not shown: confirm at the prompt, or pass --yes",
        ));
    }
    let r = ctx.call::<OtpUri>(&NameParams { name })?;
    let code = qrcode::QrCode::new(r.uri.expose().as_bytes())
        .map_err(|e| CliError::new(code::FAILURE, format!("cannot make a QR code: {e}")))?;
    let art = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    println!("{art}");
    Ok(())
}

fn recovery(ctx: &Ctx, name: String, add: Option<String>) -> CliResult {
    match add {
        Some(src) if src == "-" => {
            let text = input::read_stdin()?;
            let codes = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(Sensitive::from)
                .collect();
            let r = ctx.call::<RecoveryAdd>(&RecoveryAddParams { name, codes })?;
            if ctx.json {
                ctx.print_json(&r)
            } else {
                eprintln!("added {} recovery codes; {} unused", r.added, r.unused);
                Ok(())
            }
        }
        Some(_) => Err(CliError::new(
            code::INVALID,
            "recovery codes are read from stdin: use `--add -`",
        )),
        None => {
            let r = ctx.call::<RecoveryTake>(&NameParams { name })?;
            if ctx.json {
                return ctx.print_json(&r);
            }
            println!("{}", r.code.expose());
            eprintln!("this code is now marked used; {} unused left", r.unused);
            Ok(())
        }
    }
}
