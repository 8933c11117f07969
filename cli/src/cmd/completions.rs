//! `keyfob completions SHELL`, and what a package installs besides the binaries (`keyfob
//! package-files DIR`, hidden: scripts/package runs it): manual pages and completions
//! generated from the same clap definitions as the parser, and the systemd user units.

use clap::CommandFactory;

/// Prints the completion script for `shell`.
pub fn run(shell: clap_complete::Shell) {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(shell, &mut cmd, "keyfob", &mut std::io::stdout());
}

/// Writes `dir/man/` (keyfob(1) and a page per subcommand), `dir/completions/` (bash, zsh,
/// fish) and `dir/systemd/` (the user units, for keyfobd in /usr/bin).
pub fn package_files(dir: &std::path::Path) -> crate::exit::CliResult {
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    clap_mangen::generate_to(crate::Cli::command(), &man)?;
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut cmd = crate::Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "keyfob", &completions)?;
    }
    let systemd = dir.join("systemd");
    std::fs::create_dir_all(&systemd)?;
    // The packaged units name the runtime directory as systemd does (%t), not one user's.
    std::fs::write(
        systemd.join("keyfob.socket"),
        super::service::socket_unit(std::path::Path::new("%t/keyfob/agent.sock")),
    )?;
    std::fs::write(
        systemd.join("keyfob.service"),
        super::service::service_unit(std::path::Path::new("/usr/bin/keyfobd")),
    )?;
    Ok(())
}
