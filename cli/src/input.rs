//! Reading secrets and confirmations without putting them on argv or the screen.

use crate::exit::{CliError, CliResult, code};
use std::io::{IsTerminal, Read};
use zeroize::Zeroizing;

/// Whether stdin is a terminal (a person can be asked).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks for a value without echoing it.
pub fn prompt_hidden(prompt: &str) -> CliResult<Zeroizing<String>> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| CliError::new(code::FAILURE, format!("cannot read from the terminal: {e}")))
}

/// Reads all of stdin as UTF-8 (a secret value, a list of codes).
pub fn read_stdin() -> CliResult<Zeroizing<String>> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin().read_to_end(&mut buf)?;
    let text = std::str::from_utf8(&buf)
        .map_err(|_| CliError::new(code::INVALID, "stdin is not UTF-8 text"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// A secret value from stdin: prompted (hidden) on a terminal, else read whole with one
/// trailing newline removed.
pub fn secret_from_stdin(what: &str) -> CliResult<Zeroizing<String>> {
    if stdin_is_terminal() {
        return prompt_hidden(&format!("{what}: "));
    }
    let mut v = read_stdin()?;
    if v.ends_with('\n') {
        v.pop();
        if v.ends_with('\r') {
            v.pop();
        }
    }
    Ok(v)
}

/// Asks a yes/no question on the terminal; `false` unless the answer is yes.
pub fn confirm(question: &str) -> CliResult<bool> {
    if !stdin_is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}
