//! `keyfob setup git|docker|kube|aws`: writes each tool's configuration entry so it asks Keyfob.
//! Idempotent (a second run changes nothing and says so), with a backup of the file it
//! changes and the change printed; `--dry-run` prints the change and writes nothing.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use clap::Subcommand;
use keyfob_proto::methods::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to set up.
#[derive(Subcommand, Debug)]
pub enum SetupCmd {
    /// git: a credential helper for the account's hosts (the provider's, or `--host`).
    Git {
        /// The account whose token the hosts take.
        #[arg(long)]
        account: String,
        /// A host (repeat for more); default: the provider's git hosts.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Print the change, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// docker: `credHelpers` entries naming `keyfob` in ~/.docker/config.json.
    Docker {
        /// A registry host (repeat for more).
        #[arg(long = "registry", required = true)]
        registries: Vec<String>,
        /// Print the change, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// kubectl: a kubeconfig user whose exec plugin is `keyfob kube-credential ACCOUNT`.
    Kube {
        /// The account whose token the cluster takes.
        #[arg(long)]
        account: String,
        /// The kubeconfig user's name (default: keyfob-ACCOUNT).
        #[arg(long)]
        user: Option<String>,
        /// Print the change, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// AWS CLI and SDKs: a profile whose credential_process is `keyfob
    /// aws-credential-process ACCOUNT` in ~/.aws/config.
    Aws {
        /// The account whose credentials the profile takes (provider aws-sts).
        #[arg(long)]
        account: String,
        /// The profile's name (default: the account's).
        #[arg(long)]
        profile: Option<String>,
        /// Print the change, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// This `keyfob`, as the tools should run it.
fn me() -> CliResult<String> {
    Ok(std::env::current_exe()?.display().to_string())
}

/// `$HOME`, where the tools keep their configuration.
pub(super) fn home() -> CliResult<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| CliError::new(code::USAGE, "HOME is not set"))
}

/// Copies `file` to `FILE.keyfob-backup` before it is changed (when it exists).
fn backup(file: &Path) -> CliResult<()> {
    if file.exists() {
        let mut b = file.as_os_str().to_owned();
        b.push(".keyfob-backup");
        std::fs::copy(file, &b)?;
        eprintln!(
            "backed up {} to {}",
            file.display(),
            PathBuf::from(b).display()
        );
    }
    Ok(())
}

/// Runs a tool, failing with its stderr.
fn tool(cmd: &mut Command) -> CliResult<String> {
    let out = cmd.output().map_err(|e| {
        CliError::new(
            code::FAILURE,
            format!("cannot run {:?}: {e}", cmd.get_program()),
        )
    })?;
    if !out.status.success() {
        return Err(CliError::new(
            code::FAILURE,
            format!(
                "{:?} failed: {}",
                cmd.get_program(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a setup action.
pub fn run(ctx: &Ctx, action: SetupCmd) -> CliResult {
    match action {
        SetupCmd::Git {
            account,
            hosts,
            dry_run,
        } => git(ctx, account, hosts, dry_run),
        SetupCmd::Docker {
            registries,
            dry_run,
        } => docker(registries, dry_run),
        SetupCmd::Kube {
            account,
            user,
            dry_run,
        } => kube(ctx, account, user, dry_run),
        SetupCmd::Aws {
            account,
            profile,
            dry_run,
        } => aws(ctx, account, profile, dry_run),
    }
}

fn git(ctx: &Ctx, account: String, hosts: Vec<String>, dry_run: bool) -> CliResult {
    let info = ctx.call::<AccountShow>(&NameParams {
        name: account.clone(),
    })?;
    let hosts = if hosts.is_empty() {
        info.git_hosts
    } else {
        hosts
    };
    if hosts.is_empty() {
        return Err(CliError::new(
            code::USAGE,
            format!(
                "provider {} names no git hosts: give them with --host git.example.com",
                info.provider
            ),
        ));
    }
    let helper = format!("!{} git-credential --account {account}", me()?);
    let file = home()?.join(".gitconfig");
    let mut backed_up = false;
    for host in hosts {
        let key = format!("credential.https://{host}.helper");
        let have = Command::new("git")
            .args(["config", "--global", "--get-all", &key])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if have.lines().any(|l| l == helper) {
            println!("git: {key} already asks keyfob");
            continue;
        }
        println!("+ [credential \"https://{host}\"]\n+\thelper = {helper}");
        if dry_run {
            continue;
        }
        if !backed_up {
            backup(&file)?;
            backed_up = true;
        }
        tool(Command::new("git").args(["config", "--global", "--add", &key, &helper]))?;
    }
    Ok(())
}

fn docker(registries: Vec<String>, dry_run: bool) -> CliResult {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .map_or_else(|| home().map(|h| h.join(".docker")), Ok)?;
    let file = dir.join("config.json");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|_| "{}".into());
    let mut config: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        CliError::new(
            code::INVALID,
            format!("{} is not JSON ({e}): fix it first", file.display()),
        )
    })?;
    let obj = config.as_object_mut().ok_or_else(|| {
        CliError::new(
            code::INVALID,
            format!("{} is not a JSON object", file.display()),
        )
    })?;
    let helpers = obj
        .entry("credHelpers")
        .or_insert_with(|| serde_json::json!({}));
    let helpers = helpers.as_object_mut().ok_or_else(|| {
        CliError::new(
            code::INVALID,
            format!("credHelpers in {} is not an object", file.display()),
        )
    })?;
    let mut changed = false;
    for r in registries {
        if helpers.get(&r).and_then(|v| v.as_str()) == Some("keyfob") {
            println!("docker: {r} already asks keyfob");
            continue;
        }
        match helpers.insert(r.clone(), "keyfob".into()) {
            Some(old) => println!("- \"{r}\": {old}\n+ \"{r}\": \"keyfob\""),
            None => println!("+ \"credHelpers\": {{ \"{r}\": \"keyfob\" }}"),
        }
        changed = true;
    }
    if !changed || dry_run {
        return Ok(());
    }
    std::fs::create_dir_all(&dir)?;
    backup(&file)?;
    let pretty = serde_json::to_string_pretty(&config)
        .map_err(|e| CliError::new(code::FAILURE, e.to_string()))?;
    let tmp = dir.join("config.json.keyfob-tmp");
    std::fs::write(&tmp, pretty + "\n")?;
    std::fs::rename(&tmp, &file)?;
    // docker runs `docker-credential-keyfob`: a link to this keyfob, if none is on PATH.
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| d.join(super::docker::PROGRAM).exists())
    });
    if !on_path {
        eprintln!(
            "note: docker runs {} from PATH: `ln -s {} ~/.local/bin/{}` (or any directory on PATH)",
            super::docker::PROGRAM,
            me()?,
            super::docker::PROGRAM
        );
    }
    Ok(())
}

fn kube(ctx: &Ctx, account: String, user: Option<String>, dry_run: bool) -> CliResult {
    // The account must exist: a typo should fail here, not at the cluster.
    ctx.call::<AccountShow>(&NameParams {
        name: account.clone(),
    })?;
    let user = user.unwrap_or_else(|| format!("keyfob-{account}"));
    let keyfob = me()?;
    let have = Command::new("kubectl")
        .args(["config", "view", "-o"])
        .arg(format!(
            "jsonpath={{.users[?(@.name==\"{user}\")].user.exec.args}}"
        ))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if have.contains("kube-credential") && have.contains(&format!("\"{account}\"")) {
        println!("kubectl: user {user} already asks keyfob for {account}");
        return Ok(());
    }
    println!(
        "+ users: - name: {user}\n+   exec: {{command: {keyfob}, args: [kube-credential, {account}], apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never}}"
    );
    if dry_run {
        return Ok(());
    }
    let file = std::env::var_os("KUBECONFIG")
        .map(PathBuf::from)
        .map_or_else(|| home().map(|h| h.join(".kube").join("config")), Ok)?;
    backup(&file)?;
    tool(Command::new("kubectl").args([
        "config",
        "set-credentials",
        &user,
        "--exec-api-version=client.authentication.k8s.io/v1",
        &format!("--exec-command={keyfob}"),
        "--exec-arg=kube-credential",
        &format!("--exec-arg={account}"),
        "--exec-interactive-mode=Never",
    ]))?;
    println!("kubectl: use it with `kubectl config set-context CONTEXT --user {user}`");
    Ok(())
}

fn aws(ctx: &Ctx, account: String, profile: Option<String>, dry_run: bool) -> CliResult {
    let info = ctx.call::<AccountShow>(&NameParams {
        name: account.clone(),
    })?;
    if info.provider != "aws-sts" {
        return Err(CliError::new(
            code::USAGE,
            format!(
                "account {account:?} is a {} account; an AWS profile needs one of provider aws-sts",
                info.provider
            ),
        ));
    }
    let profile = profile.unwrap_or_else(|| account.clone());
    let line = format!("{} aws-credential-process {account}", shell_quoted(&me()?));
    let file = std::env::var_os("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .map_or_else(|| home().map(|h| h.join(".aws").join("config")), Ok)?;
    let section = if profile == "default" {
        "[default]".to_owned()
    } else {
        format!("[profile {profile}]")
    };
    // The AWS CLI edits its own file (keeping the rest of it as it was); without it, the
    // lines to add are printed.
    let have = Command::new("aws")
        .args([
            "configure",
            "get",
            "credential_process",
            "--profile",
            &profile,
        ])
        .output();
    let have = match have {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Err(_) => {
            return Err(CliError::new(
                code::FAILURE,
                format!(
                    "the AWS CLI (`aws`) is not on PATH to edit {}: add these lines to it yourself:\n{section}\ncredential_process = {line}",
                    file.display()
                ),
            ));
        }
    };
    if have == line {
        println!("aws: profile {profile} already asks keyfob for {account}");
        return Ok(());
    }
    if !have.is_empty() {
        println!("  {section}\n- credential_process = {have}");
    } else {
        println!("+ {section}");
    }
    println!("+ credential_process = {line}");
    if dry_run {
        return Ok(());
    }
    backup(&file)?;
    tool(Command::new("aws").args([
        "configure",
        "set",
        "credential_process",
        &line,
        "--profile",
        &profile,
    ]))?;
    println!("aws: use it with `aws --profile {profile} …` or AWS_PROFILE={profile}");
    Ok(())
}

/// `word` as one word of a command line that the AWS CLI splits like a POSIX shell.
fn shell_quoted(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c));
    if plain && !word.is_empty() {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_with_spaces_stays_one_word() {
        assert_eq!(super::shell_quoted("/usr/bin/keyfob"), "/usr/bin/keyfob");
        assert_eq!(
            super::shell_quoted("/opt/my tools/keyfob"),
            "'/opt/my tools/keyfob'"
        );
        assert_eq!(super::shell_quoted("/a'b"), r"'/a'\''b'");
    }
}
