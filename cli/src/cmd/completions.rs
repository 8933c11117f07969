//! `keyfob completions SHELL`.

use clap::CommandFactory;

/// Prints the completion script for `shell`.
pub fn run(shell: clap_complete::Shell) {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(shell, &mut cmd, "keyfob", &mut std::io::stdout());
}
