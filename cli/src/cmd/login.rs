//! `keyfob login NAME [--device|--browser] [--json]`.

use crate::ctx::Ctx;
use crate::exit::CliResult;
use keyfob_proto::methods::*;
use std::io::IsTerminal;

/// Signs an account in and waits until the person approved it.
pub fn run(ctx: &Ctx, name: String, device: bool, browser: bool) -> CliResult {
    let flow = match (device, browser) {
        (true, _) => Some(LoginFlow::Device),
        (_, true) => Some(LoginFlow::Browser),
        _ => None,
    };
    let started = ctx.call::<LoginStart>(&LoginStartParams {
        name: name.clone(),
        flow,
    })?;
    if ctx.json {
        // First line: what to show; last line: the outcome.
        ctx.print_json(&started)?;
    } else {
        show(&name, &started);
    }
    let spinner = (!ctx.json && std::io::stderr().is_terminal()).then(Spinner::start);
    let info = ctx.call::<LoginWait>(&LoginWaitParams {
        login_id: started.login_id.clone(),
    });
    drop(spinner);
    let info = info?;
    if ctx.json {
        ctx.print_json(&info)
    } else {
        eprintln!("signed in to {} ({})", info.name, info.provider);
        Ok(())
    }
}

/// A spinner on stderr while waiting; stops and clears its line when dropped.
struct Spinner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            use std::io::Write;
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut i = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                eprint!("\r{} waiting for approval", frames[i % frames.len()]);
                let _ = std::io::stderr().flush();
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(120));
            }
            eprint!("\r\x1b[2K");
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn show(name: &str, s: &LoginStarted) {
    if let (Some(code), Some(uri)) = (&s.user_code, &s.verification_uri) {
        eprintln!("To sign in to {name}, open {uri} and enter the code:\n\n    {code}\n");
        if let Some(complete) = &s.verification_uri_complete {
            eprintln!("or open {complete}");
            if std::io::stderr().is_terminal()
                && let Ok(qr) = qrcode::QrCode::new(complete.as_bytes())
            {
                let art = qr
                    .render::<qrcode::render::unicode::Dense1x2>()
                    .quiet_zone(true)
                    .build();
                eprintln!("{art}");
            }
        }
        eprintln!(
            "Waiting for approval (the code expires in {} s)...",
            s.expires_in
        );
    }
    if let Some(url) = &s.authorize_url {
        eprintln!("To sign in to {name}, open:\n\n    {url}\n\nWaiting for the browser...");
    }
    if s.flow == LoginFlow::Plugin {
        eprintln!("Signing in to {name} through its plugin...");
    }
}

/// `keyfob logout NAME`: revoke at the provider when possible, then delete local tokens.
pub fn logout(ctx: &Ctx, name: String) -> CliResult {
    let r = ctx.call::<Logout>(&NameParams { name: name.clone() })?;
    if ctx.json {
        return ctx.print_json(&r);
    }
    if r.revoked {
        eprintln!("revoked the grant of {name} at the provider");
    } else {
        eprintln!(
            "did not revoke at the provider ({}); the grant may stay valid there until it expires",
            r.revocation_detail.as_deref().unwrap_or("unknown reason")
        );
    }
    if r.deleted_local {
        eprintln!("deleted the local tokens of {name}");
    }
    Ok(())
}
