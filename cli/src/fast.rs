//! The hot paths: `keyfob otp code NAME [--at N] [--json]` and `keyfob token NAME
//! [--min-ttl N] [--json]` recognised without building clap's
//! whole command tree, which costs about a fifth of a millisecond at every start. Anything
//! it does not recognise exactly (help, typos, other flags) goes to clap as usual.

use std::ffi::OsString;

/// A recognised fast-path invocation.
pub struct OtpCodeArgs {
    /// The entry's or account's name.
    pub name: String,
    /// `--at` (otp code) or `--min-ttl` (token).
    pub at: Option<u64>,
    /// `--json`.
    pub json: bool,
}

/// Parses `otp code NAME [--at N] [--json]` (flags in any order after `code`), or `None`.
pub fn otp_code(args: &[OsString]) -> Option<OtpCodeArgs> {
    parse(args, &["otp", "code"], "--at")
}

/// Parses `token NAME [--min-ttl N] [--json]` (`at` holds the min-ttl), or `None`.
pub fn token(args: &[OsString]) -> Option<OtpCodeArgs> {
    parse(args, &["token"], "--min-ttl")
}

fn parse(args: &[OsString], command: &[&str], number_flag: &str) -> Option<OtpCodeArgs> {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let (head, rest) = args.split_at_checked(command.len())?;
    if head != command {
        return None;
    }
    let mut name = None;
    let mut at = None;
    let mut json = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--json" if !json => json = true,
            f if f == number_flag && at.is_none() => at = Some(it.next()?.parse().ok()?),
            s if !s.starts_with('-') && name.is_none() => name = Some(s.to_owned()),
            _ => return None,
        }
    }
    Some(OtpCodeArgs {
        name: name?,
        at,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<OtpCodeArgs> {
        let v: Vec<OsString> = std::iter::once("keyfob")
            .chain(s.split_whitespace())
            .map(OsString::from)
            .collect();
        otp_code(&v)
    }

    #[test]
    fn recognises_only_the_exact_shape() {
        let a = parse("otp code gh --at 59 --json").unwrap();
        assert_eq!((a.name.as_str(), a.at, a.json), ("gh", Some(59), true));
        assert!(parse("otp code gh").is_some());
        assert!(parse("otp code").is_none());
        assert!(parse("otp code gh --help").is_none());
        assert!(parse("otp code gh --at x").is_none());
        assert!(parse("otp code gh extra").is_none());
        assert!(parse("--json otp code gh").is_none());
        assert!(parse("otp list").is_none());
        let v: Vec<OsString> = ["keyfob", "token", "work", "--min-ttl", "30"]
            .map(OsString::from)
            .to_vec();
        let t = token(&v).unwrap();
        assert_eq!((t.name.as_str(), t.at), ("work", Some(30)));
        let v: Vec<OsString> = ["keyfob", "token", "work", "--min-ttl", "30"]
            .map(OsString::from)
            .to_vec();
        let t = token(&v).unwrap();
        assert_eq!((t.name.as_str(), t.at), ("work", Some(30)));
    }
}
