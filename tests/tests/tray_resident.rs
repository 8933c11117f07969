//! The tray as a resident app: started `--hidden` (as at login), keyfob-tray becomes the
//! resident tray icon (keyfob-tray-resident), which holds no WebKit at all; an approval
//! request opens the window app with the prompt (and a web process); once the request is
//! answered the window app ends, its web process with it, and the tray icon stays.
//! Runs the real programs under Xvfb on a private session bus.

use keyfob_e2e::approver::Approver;
use keyfob_e2e::{TestEnv, bin, tool, wait_until};
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

/// Every process's parent and name, from /proc.
fn processes() -> HashMap<u32, (u32, String)> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let mut rest = stat[close + 2..].split(' ');
        let state = rest.next().unwrap_or("");
        if state == "Z" {
            continue;
        }
        let ppid = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        out.insert(pid, (ppid, name));
    }
    out
}

/// WebKit web processes descended from `root`.
fn web_processes(root: u32) -> usize {
    let all = processes();
    all.iter()
        .filter(|(_, (_, name))| name.starts_with("WebKitWebProces"))
        .filter(|(pid, _)| {
            let mut p = **pid;
            for _ in 0..64 {
                match all.get(&p) {
                    Some((parent, _)) if *parent == root => return true,
                    Some((parent, _)) if *parent > 1 => p = *parent,
                    _ => return false,
                }
            }
            false
        })
        .count()
}

/// `program` under Xvfb and a private session bus, for `env`'s agent, in its own process
/// group (so the test can kill it whole).
fn under_xvfb(env: &TestEnv, program: &std::path::Path) -> std::process::Command {
    let mut c = tool("xvfb-run", "xvfb");
    c.args([
        "-a",
        "-s",
        "-screen 0 1280x900x24",
        "dbus-run-session",
        "--",
    ])
    .arg(program)
    .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    .stdout(Stdio::null())
    .process_group(0);
    c
}

/// keyfob-tray --hidden under Xvfb and a private session bus, for `env`'s agent.
struct Tray {
    child: Child,
}

impl Tray {
    /// `keyfob-tray --hidden`, as at login.
    fn start(env: &TestEnv) -> Self {
        Self::spawn(env, &["--hidden"], Stdio::null(), Stdio::null())
    }

    /// `keyfob-tray ARGS` under Xvfb and a private session bus, in its own process group
    /// (killed whole when this is dropped).
    fn spawn(env: &TestEnv, args: &[&str], stdin: Stdio, stderr: Stdio) -> Self {
        let tray = bin("keyfob-tray");
        assert!(
            tray.is_file(),
            "{} is not built: `cargo build --workspace --bins --features keyfob-tray/custom-protocol` (scripts/test does)",
            tray.display()
        );
        let child = under_xvfb(env, &tray)
            .args(args)
            .stdin(stdin)
            .stderr(stderr)
            .spawn()
            .unwrap();
        Self { child }
    }

    /// The process named `name` below xvfb-run and dbus-run-session (names are cut to 15
    /// bytes by the kernel).
    fn pid_of(&self, name: &str) -> Option<u32> {
        let all = processes();
        all.iter()
            .find(|(pid, (_, n))| {
                n == name && {
                    let mut p = **pid;
                    let mut under = false;
                    for _ in 0..8 {
                        match all.get(&p) {
                            Some((parent, _)) if *parent == self.child.id() => {
                                under = true;
                                break;
                            }
                            Some((parent, _)) => p = *parent,
                            None => break,
                        }
                    }
                    under
                }
            })
            .map(|(pid, _)| *pid)
    }

    /// The resident tray icon's process.
    fn resident(&self) -> Option<u32> {
        self.pid_of("keyfob-tray-res")
    }

    /// The window app's process, while one runs.
    fn window_app(&self) -> Option<u32> {
        self.pid_of("keyfob-tray")
    }
}

impl Drop for Tray {
    fn drop(&mut self) {
        if let Some(pg) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pg, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// Waits until the tray is connected to `env`'s agent as an approver.
fn wait_for_an_approver(env: &TestEnv) {
    let status = || -> serde_json::Value {
        serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).unwrap()
    };
    wait_until(
        Duration::from_secs(60),
        "the tray to connect as an approver",
        || status()["approvers"].as_u64().is_some_and(|n| n >= 1),
    );
}

/// A script asking for secret `s`, which under the built-in policy waits for a person.
fn ask_for_secret(env: &TestEnv) -> Child {
    ask_for(env, "s")
}

/// A script of its own asking for secret `name`.
fn ask_for(env: &TestEnv, name: &str) -> Child {
    let script = env.root().join(format!("ask-{name}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec {} secret get {name}\n",
            bin("keyfob").display()
        ),
    )
    .unwrap();
    keyfob_e2e::set_mode(&script, 0o755);
    env.command_of("sh", &[script.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn the_tray_started_hidden_holds_no_web_process_until_a_prompt_and_none_after_it() {
    let env = TestEnv::new();
    // The built-in policy: a script's secret request waits for a person.
    env.write_config("");
    env.ok_in(&["secret", "set", "s"], "v");
    let tray = Tray::start(&env);
    wait_for_an_approver(&env);
    let pid = tray
        .resident()
        .expect("keyfob-tray --hidden became keyfob-tray-resident");
    assert_eq!(tray.window_app(), None, "a hidden tray runs the window app");
    assert_eq!(web_processes(pid), 0, "a hidden tray holds a web process");
    // What made a hidden tray 116 MB: WebKit's libraries, and Mesa's (LLVM) behind GTK's GL.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    for heavy in [
        "libwebkit2gtk",
        "libjavascriptcoregtk",
        "libLLVM",
        "swrast_dri",
    ] {
        assert!(
            !maps.contains(heavy),
            "the resident tray icon has {heavy} loaded"
        );
    }

    // A script asks for the secret: the prompt opens, with its web process.
    let mut asking = ask_for_secret(&env);
    wait_until(Duration::from_secs(60), "the prompt's web process", || {
        web_processes(pid) > 0
    });

    // A person answers at a terminal instead: the prompt is destroyed, its web process too.
    let mut person = Approver::start(&env);
    person.next_request();
    person.answer("o");
    assert!(
        asking.wait().unwrap().success(),
        "the request was not served"
    );
    wait_until(
        Duration::from_secs(60),
        "the window app and its web process to go",
        || web_processes(pid) == 0 && tray.window_app().is_none(),
    );
    assert_eq!(
        tray.resident(),
        Some(pid),
        "the tray icon ended with the prompt"
    );
}

/// A script pipes a forged sign-in (a real account's name, its own code and link) into the
/// window app, to have Keyfob's own window show it. Only the resident tray icon beside
/// keyfob-tray hands a sign-in over: from anyone else the input is ignored, and an app opened
/// for a prompt with nothing waiting leaves at once instead of showing the forgery.
#[test]
fn a_forged_sign_in_piped_into_the_window_app_is_not_shown() {
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "s"], "v");
    let forged = serde_json::json!({
        "event": "signin.started",
        "account": "work",
        "flow": "device",
        "user_code": "EVIL-CODE",
        "verification_uri": "https://evil.example/device",
        "verification_uri_complete": "https://evil.example/device?user_code=EVIL-CODE",
    });
    let mut app = Tray::spawn(
        &env,
        &["--prompt", "--signin"],
        Stdio::piped(),
        Stdio::piped(),
    );
    {
        use std::io::Write as _;
        let mut stdin = app.child.stdin.take().unwrap();
        writeln!(stdin, "{forged}").unwrap();
    }
    let mut status = None;
    wait_until(
        Duration::from_secs(60),
        "the window app to leave without showing the forged sign-in",
        || {
            status = app.child.try_wait().unwrap();
            status.is_some()
        },
    );
    let mut err = String::new();
    std::io::Read::read_to_string(app.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("ignoring standard input"),
        "the forged sign-in was not refused: {err}"
    );
}

/// A sign-in starts just as the window app the tray icon opened is closing: that app never
/// shows it. The tray icon hears nothing from the app about it (an app reports each sign-in
/// it shows), so once the app has ended it opens a new one with that sign-in, once. That new
/// app is told the request the first app reported showing (`--shown`), so it does not pop
/// it in front of the person again. The window app here is a stand-in installed beside the
/// real tray icon and keyfobd: it records how it was started, and when opened for a request
/// it reports showing it, stays until the test lets it go, then ends.
#[test]
fn a_sign_in_started_as_the_prompt_app_closed_gets_an_app_of_its_own() {
    let idp = keyfob_e2e::idp::Idp::start(3600);
    let env = TestEnv::new();
    // The built-in policy: a script's secret request waits for a person.
    env.write_config("");
    // The stand-in: a sign-in handed over is read and logged; otherwise it reports showing
    // the script's request (a new keyfobd numbers its requests from 1) and stays until `go`.
    let stand_in = StandIn::install(
        &env,
        &format!(
            "case \" $* \" in *\" --signin \"*)\n  read -r line; echo \"signin $line\" >> '@LOG@'; exit 0 ;;\nesac\nprintf '%s\\n' '{}'\nwhile [ ! -e '@GO@' ]; do sleep 0.05; done\n",
            REQUEST_1_SHOWN
        ),
    );
    env.add_account("work", &idp.issuer);
    env.ok_in(&["secret", "set", "s"], "v");
    let _resident = stand_in.start_resident(&env);
    let go = &stand_in.go;
    let app_log = || stand_in.app_log();
    let resident_said = |what: &str| stand_in.resident_said(what);

    // A script's request opens the window app (the stand-in, which stays for now).
    let _asking = Ends::process(ask_for_secret(&env));
    wait_until(Duration::from_secs(60), "the window app to open", || {
        app_log().contains("start --prompt")
    });

    // A sign-in starts while it runs; the tray icon leaves it to that app.
    let (_login, first) =
        first_line_of(&mut env.keyfob_cmd(&["login", "work", "--device", "--json"]));
    let started: serde_json::Value = serde_json::from_str(&first).unwrap();
    let code = started["user_code"].as_str().unwrap().to_owned();
    wait_until(
        Duration::from_secs(60),
        "the tray icon to hear the sign-in start",
        || resident_said("a sign-in started while the window app runs") == 1,
    );

    // The app ends without having shown it: the next app is handed the sign-in.
    std::fs::write(go, "").unwrap();
    wait_until(
        Duration::from_secs(60),
        "a window app opened with the sign-in",
        || app_log().contains(&code),
    );
    // Once: the app it was handed to ends too, and no other is started for it.
    wait_until(
        Duration::from_secs(60),
        "the app handed the sign-in to end",
        || resident_said("the window app ended") >= 2,
    );
    let log_text = app_log();
    let handed: Vec<&str> = log_text
        .lines()
        .filter(|l| l.starts_with("signin "))
        .collect();
    assert_eq!(handed.len(), 1, "{log_text}");
    let ev: serde_json::Value = serde_json::from_str(&handed[0]["signin ".len()..]).unwrap();
    assert_eq!(ev["event"], "signin.started");
    assert_eq!(ev["account"], "work");
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).unwrap();
    let handed_over = log_text
        .lines()
        .find(|l| l.starts_with("start ") && l.contains("--signin"))
        .unwrap_or_else(|| panic!("the sign-in was not handed over with --signin: {log_text}"));
    let args: Vec<&str> = handed_over.split_whitespace().collect();
    let shown = args
        .iter()
        .position(|a| *a == "--shown")
        .and_then(|i| args.get(i + 1));
    assert_eq!(
        shown,
        Some(&format!("{}:1", status["pid"]).as_str()),
        "the app handed the sign-in was not told the request the person has seen: {log_text}"
    );
}

/// What a window app prints when it shows request 1: the report the tray icon reads.
const REQUEST_1_SHOWN: &str = r#"{"event":"approval.requested","id":1,"client":{"pid":1,"exe":"/bin/sh","label":"sh","identified_by":"executable"},"account":"s","operation":"secret","method":"secret.get","policy":"always","expires_in_secs":60}"#;

/// A script's request comes while the window app the tray icon opened for another is
/// closing, and that app ends without showing it. The tray icon hears from the app which
/// requests it showed (it reports each, as it does sign-ins), so it opens a new app for the
/// requests left to the old one, once; before, the request counted as shown and waited
/// unseen until it expired. The window app is a stand-in, as above: it stays until the test
/// lets it go, then ends without showing (or reporting) anything.
#[test]
fn a_request_the_closing_window_app_never_showed_gets_an_app_of_its_own_once() {
    let env = TestEnv::new();
    env.write_config("");
    // The stand-in: each app stays until the test opens its gate, by its number.
    let stand_in = StandIn::install(
        &env,
        "n=$(grep -c '^start' '@LOG@')\nwhile [ ! -e '@GO@'-$n ]; do sleep 0.05; done\n",
    );
    env.ok_in(&["secret", "set", "s"], "v");
    let _resident = stand_in.start_resident(&env);
    let app_log = || stand_in.app_log();
    let resident_said = |what: &str| stand_in.resident_said(what);

    // A script's request opens the window app; a second comes while it runs, left to it.
    let _first = Ends::process(ask_for_secret(&env));
    wait_until(Duration::from_secs(60), "the window app to open", || {
        app_log().contains("start --prompt")
    });
    // Another script, for another secret (the same request again would join the first).
    env.ok_in(&["secret", "set", "t"], "w");
    let _second = Ends::process(ask_for(&env, "t"));
    wait_until(
        Duration::from_secs(60),
        "the tray icon to leave the second request to the running app",
        || resident_said("a request came while the window app runs") == 1,
    );

    // The app ends having shown neither: a new one opens for them (each app here ends only
    // when the test says, by its number), and both are left to it.
    let gate = |n: usize| std::fs::write(format!("{}-{n}", stand_in.go.display()), "").unwrap();
    // Lines of the tray icon's log holding every one of `parts`.
    let lines_with = |parts: &[&str]| {
        std::fs::read_to_string(&stand_in.resident_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    };
    gate(1);
    wait_until(
        Duration::from_secs(60),
        "a new window app for the requests the first never showed",
        || {
            lines_with(&["the window app ended; prompting again for 2 "]) == 1
                && resident_said("a request came while the window app runs") == 2
        },
    );
    // It shows neither either: they wait, with no third app (the tray icon logs an app's
    // end once it has settled what to prompt for again).
    gate(2);
    wait_until(
        Duration::from_secs(60),
        "the second window app to end",
        || lines_with(&["the window app ended; prompting again for 0 "]) == 1,
    );
    let starts = app_log()
        .lines()
        .filter(|l| l.starts_with("start "))
        .count();
    assert_eq!(starts, 2, "{}", app_log());
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).unwrap();
    assert_eq!(
        status["approvals_waiting"], 2,
        "the requests should still wait"
    );
}

/// keyfobd and the real tray icon installed side by side in a test folder, with a stand-in
/// window app beside them (so the tray icon may approve, and starts the stand-in), and
/// keyfobd started from there.
struct StandIn {
    installed: PathBuf,
    /// What the stand-in app logs: a `start ARGS` line each time it is started.
    log: PathBuf,
    /// The file (or the prefix of the files) the test creates to let an app end.
    go: PathBuf,
    /// The tray icon's standard error.
    resident_log: PathBuf,
    _daemon: Ends,
}

impl StandIn {
    /// Installs them, the stand-in app being a shell script that logs its start and then
    /// runs `rest` (where `@LOG@` and `@GO@` stand for those paths), and starts keyfobd.
    fn install(env: &TestEnv, rest: &str) -> Self {
        let installed = env.root().join("installed");
        std::fs::create_dir_all(&installed).unwrap();
        for program in ["keyfobd", "keyfob-tray-resident"] {
            std::fs::copy(bin(program), installed.join(program)).unwrap();
        }
        let log = env.root().join("app.log");
        let go = env.root().join("go");
        let app = installed.join("keyfob-tray");
        let script = format!("#!/bin/sh\necho \"start $*\" >> '@LOG@'\n{rest}")
            .replace("@LOG@", &log.display().to_string())
            .replace("@GO@", &go.display().to_string());
        std::fs::write(&app, script).unwrap();
        keyfob_e2e::set_mode(&app, 0o755);
        // keyfobd from the install directory, so the tray icon beside it may approve.
        let (daemon, ready) = first_line_of(&mut env.command_of(
            installed.join("keyfobd").to_str().unwrap(),
            &["--notify-ready"],
        ));
        assert!(
            ready.starts_with("READY "),
            "keyfobd did not start: {ready}"
        );
        Self {
            installed,
            log,
            go,
            resident_log: env.root().join("resident.log"),
            _daemon: daemon,
        }
    }

    /// Starts the tray icon under Xvfb (ended with the test) and waits until it approves.
    fn start_resident(&self, env: &TestEnv) -> Ends {
        let resident = under_xvfb(env, &self.installed.join("keyfob-tray-resident"))
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&self.resident_log).unwrap())
            .spawn()
            .unwrap();
        let ends = Ends::group(resident);
        wait_for_an_approver(env);
        ends
    }

    /// What the stand-in apps have logged.
    fn app_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How often the tray icon has logged `what`.
    fn resident_said(&self, what: &str) -> usize {
        std::fs::read_to_string(&self.resident_log)
            .unwrap_or_default()
            .matches(what)
            .count()
    }
}

/// Starts `cmd` (killed when the test ends) and reads the first line it prints.
fn first_line_of(cmd: &mut std::process::Command) -> (Ends, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Ends::process(child);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(running.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    (running, line)
}

/// A process (or the process group it leads) killed when the test ends, passed or failed.
struct Ends(Child, bool);

impl Ends {
    fn process(child: Child) -> Self {
        Self(child, false)
    }

    fn group(child: Child) -> Self {
        Self(child, true)
    }
}

impl Drop for Ends {
    fn drop(&mut self) {
        match rustix::process::Pid::from_raw(self.0.id() as i32) {
            Some(pg) if self.1 => {
                let _ = rustix::process::kill_process_group(pg, rustix::process::Signal::KILL);
            }
            _ => {
                let _ = self.0.kill();
            }
        }
        let _ = self.0.wait();
    }
}
