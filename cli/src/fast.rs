//! The hot path: `keyfob otp code NAME [--at N] [--json]` recognised without building clap's
//! whole command tree, which costs about a fifth of a millisecond at every start. Anything
//! it does not recognise exactly (help, typos, other flags) goes to clap as usual.

use std::ffi::OsString;

/// A recognised fast-path invocation.
pub struct OtpCodeArgs {
    /// The entry's name.
    pub name: String,
    /// `--at`.
    pub at: Option<u64>,
    /// `--json`.
    pub json: bool,
}

/// Parses `otp code NAME [--at N] [--json]` (flags in any order after `code`), or `None`.
pub fn otp_code(args: &[OsString]) -> Option<OtpCodeArgs> {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let (head, rest) = args.split_at_checked(2)?;
    if head != ["otp", "code"] {
        return None;
    }
    let mut name = None;
    let mut at = None;
    let mut json = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--json" if !json => json = true,
            "--at" if at.is_none() => at = Some(it.next()?.parse().ok()?),
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
    }
}
