// The real tray app, in a real window, against a real keyfobd and a real OpenID provider:
// a `keyfob token` request that needs approval makes the prompt appear, the test approves it
// through the window, and the token call succeeds; a sign-in started by a script shows its
// window; after the daemon stops and starts again the app reconnects by itself. Saves
// screenshots of the prompt, the sign-in window and the main window into docs/screenshots/.
//
// Needs: an X display (scripts/test runs it under xvfb-run and dbus-run-session),
// tauri-driver on PATH, WebKitWebDriver (Debian webkit2gtk-driver), the built binaries, and
// python3 (close-window.py closes a window as its close button does).
//   KEYFOB_BIN=dir with keyfob, keyfobd, keyfob-tray   (default ../target/debug)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, chmodSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { remote } from "webdriverio";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const BIN = process.env.KEYFOB_BIN ? resolve(process.env.KEYFOB_BIN) : resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target", "debug");
const SHOTS = join(ROOT, "docs", "screenshots");
const PATIENCE = 60_000;

const home = mkdtempSync(join(tmpdir(), "keyfob-window-"));
for (const d of ["home", "run", "config", "data", "state"]) mkdirSync(join(home, d), { recursive: true });
chmodSync(join(home, "run"), 0o700);
const env = {
  ...process.env,
  HOME: join(home, "home"),
  XDG_RUNTIME_DIR: join(home, "run"),
  XDG_CONFIG_HOME: join(home, "config"),
  XDG_DATA_HOME: join(home, "data"),
  XDG_STATE_HOME: join(home, "state"),
  KEYFOB_VAULT: "file",
  KEYFOB_PASSPHRASE: "window test passphrase",
  KEYFOB_LOG: "debug",
  DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(home, "no-system-bus")}`,
};
delete env.KEYFOB_SOCKET;
delete env.KEYFOB_KEY;

const children = [];
let browser;
let daemon;
let idp;
let issuer;

function exe(name) {
  const p = join(BIN, name);
  assert.ok(existsSync(p), `${p} is missing: build it first (scripts/test does)`);
  return p;
}

function keyfob(args, input = "") {
  return execFileSync(exe("keyfob"), args, { env, input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

/** A child whose stdout lines can be awaited. */
function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"], ...opts });
  children.push(child);
  const lines = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on("line", (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  child.nextLine = async (pred = () => true) => {
    const deadline = Date.now() + PATIENCE;
    for (;;) {
      const i = lines.findIndex(pred);
      if (i >= 0) return lines.splice(0, i + 1).at(-1);
      assert.ok(Date.now() < deadline, `${cmd} printed no expected line; stderr: ${err}`);
      await new Promise((r) => {
        waiters.push(r);
        setTimeout(r, 500);
      });
    }
  };
  child.done = new Promise((res) => child.on("exit", (code) => res({ code, err })));
  return child;
}

async function startDaemon() {
  daemon = start(exe("keyfobd"), ["--notify-ready"]);
  const line = await daemon.nextLine();
  assert.match(line, /^READY /, `keyfobd did not start: ${line}`);
}

async function until(what, f) {
  const deadline = Date.now() + PATIENCE;
  for (;;) {
    try {
      if (await f()) return;
    } catch {
      // The page may be reloading; try again.
    }
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Switches `b` (default: the app under test) to the window showing `hash`. */
async function windowFor(hash, b = browser) {
  let found;
  await until(`the ${hash} window`, async () => {
    for (const h of await b.getWindowHandles()) {
      await b.switchToWindow(h);
      const here = await b.execute(() => location.hash);
      if (here === hash) {
        found = h;
        return true;
      }
    }
    return false;
  });
  return found;
}

/** Whether a window of the app under test shows `hash` (the sign-in window may be open too). */
async function hasWindow(hash) {
  for (const h of await browser.getWindowHandles()) {
    await browser.switchToWindow(h);
    if ((await browser.execute(() => location.hash)) === hash) return true;
  }
  return false;
}

async function text(selector, b = browser) {
  const el = await b.$(selector);
  return (await el.isExisting()) ? el.getText() : "";
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  idp = start("node", [join(ROOT, "tests/idp/server.mjs")], { env: { ...env, IDP_AT_TTL: "3600" } });
  issuer = JSON.parse(await idp.nextLine((l) => l.includes('"listening"'))).issuer;
  await startDaemon();
  keyfob(["account", "add", "work", "--provider", "oidc", "--issuer", issuer, "--client-id", "keyfob-native", "--scope", "openid offline_access"]);
  const login = start(exe("keyfob"), ["login", "work", "--device", "--json"]);
  const started = JSON.parse(await login.nextLine());
  execFileSync("node", [join(ROOT, "tests/idp/browser.mjs"), started.verification_uri_complete], { env });
  assert.equal((await login.done).code, 0);
  keyfob(["otp", "add", "github", "--secret", "-"], "JBSWY3DPEHPK3PXP");

  const driver = start("tauri-driver", ["--port", "4444", "--native-port", "4445"]);
  await until("tauri-driver", async () => (await fetch("http://127.0.0.1:4444/status")).ok);
  browser = await remote({
    hostname: "127.0.0.1",
    port: 4444,
    logLevel: "error",
    connectionRetryTimeout: 30_000,
    connectionRetryCount: 1,
    capabilities: { "tauri:options": { application: exe("keyfob-tray") } },
  });
  void driver;
});

/** Resolves with `p`, or after `ms` if `p` hangs (a driver that died mid-run). */
const within = (p, ms) => Promise.race([p, new Promise((r) => setTimeout(r, ms))]);

/** Every process still running with this test's HOME: the apps WebKitWebDriver started. */
function killStrays() {
  const mark = Buffer.from(`HOME=${env.HOME}\0`);
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`).includes(mark)) process.kill(Number(pid), "SIGKILL");
    } catch {
      // Gone already, or not ours to read.
    }
  }
}

after(async () => {
  // Teardown is bounded: a hung driver must not hold the test run.
  await within(browser?.deleteSession().catch(() => {}), 10_000);
  for (const c of children) c.kill("SIGKILL");
  killStrays();
  rmSync(home, { recursive: true, force: true });
});

test("a token request that needs approval is approved in the window, then served", async () => {
  await windowFor("#main");
  await until("the main window to connect", async () => (await text("#connection")) === "connected");
  await until("the account to show", async () => (await text('[data-account="work"] .state')) === "signed in");
  await until("a TOTP code", async () => /^\d{3} \d{3}$/.test(await text('[data-otp="github"] .code')));
  await browser.saveScreenshot(join(SHOTS, "main.png"));

  const token = start(exe("keyfob"), ["token", "work"]);
  await windowFor("#approval");
  await until("the prompt", async () => (await text("#account")) === "work");
  assert.match(await text("#client"), /node/);
  assert.match(await text("#operation"), /token/);
  await browser.saveScreenshot(join(SHOTS, "approval.png"));
  await until("the prompt to take answers", async () => (await browser.$("section[data-armed]")).isExisting());
  await (await browser.$("#choice-once")).click();
  const { code, err } = await token.done;
  assert.equal(code, 0, `keyfob token failed after approval: ${err}`);
});

test("a sign-in started by a script shows its code in the sign-in window", async () => {
  const login = start(exe("keyfob"), ["login", "work", "--device", "--json"]);
  const started = JSON.parse(await login.nextLine());
  await windowFor("#signin");
  await until("the user code", async () => (await text("#user-code")) === started.user_code);
  await until("the QR code", async () => browser.execute(() => document.querySelector("#qr")?.naturalWidth > 0));
  await browser.saveScreenshot(join(SHOTS, "signin.png"));
  execFileSync("node", [join(ROOT, "tests/idp/browser.mjs"), started.verification_uri_complete], { env });
  await until("the sign-in to finish", async () => (await text("#signin-status")).startsWith("Signed in"));
  assert.equal((await login.done).code, 0);
});

test("a request whose prompt the person closed is reached again from the main window", async () => {
  await windowFor("#main");
  const token = start(exe("keyfob"), ["token", "work"]);
  await windowFor("#approval");
  await until("the prompt", async () => (await text("#account")) === "work");
  // Closed as with the window's close button (WebDriver's own close leaves the app's window).
  execFileSync("python3", [join(ROOT, "ui/e2e/close-window.py"), "Keyfob: approve access?"], { env });
  await until("the prompt to close", async () => !(await hasWindow("#approval")));
  // Not pushed at the person again: the main window counts it, and opens the prompt on it.
  await windowFor("#main");
  await until("the waiting count", async () => (await text("#waiting")).startsWith("1 waiting for approval"));
  await (await browser.$("#waiting")).click();
  await windowFor("#approval");
  await until("the prompt again", async () => (await text("#account")) === "work");
  await until("the prompt to take answers", async () => (await browser.$("section[data-armed]")).isExisting());
  await (await browser.$("#choice-once")).click();
  const { code, err } = await token.done;
  assert.equal(code, 0, `keyfob token failed after approval: ${err}`);
});

test("a prompt open when keyfobd restarts does not show or answer the new daemon's request that reuses its number", async () => {
  // keyfobd numbers requests from 1 each time it starts: restart it, so the next request is 1.
  const restart = async () => {
    daemon.kill("SIGTERM");
    await daemon.done;
    await startDaemon();
    await windowFor("#main");
    await until("the app to reconnect", async () => (await text("#connection")) === "connected");
  };
  await windowFor("#main");
  await restart();
  // This program's request 1 is on the prompt when keyfobd goes away.
  const first = start(exe("keyfob"), ["token", "work"]);
  await windowFor("#approval");
  await until("the first request", async () => /node/.test(await text("#client")));
  await restart();
  await first.done;
  // Another program's request is the new daemon's request 1: the prompt shows it, not the
  // gone one, and the answer given there serves it.
  const second = start("sh", ["-c", `${exe("keyfob")} token work; exit $?`]);
  await windowFor("#approval");
  await until("the new daemon's request", async () => /inline code/.test(await text("#client")));
  await until("the prompt to take answers", async () => (await browser.$("section[data-armed]")).isExisting());
  await (await browser.$("#choice-once")).click();
  const { code, err } = await second.done;
  assert.equal(code, 0, `keyfob token failed after approval: ${err}`);
});

test("after the daemon stops and starts again, the app reconnects and shows the right state", async () => {
  await windowFor("#main");
  daemon.kill("SIGTERM");
  await daemon.done;
  await until("the app to notice", async () => (await text("#connection")).startsWith("not connected"));
  await startDaemon();
  keyfob(["lock"]);
  await until("the app to reconnect", async () => (await text("#connection")) === "connected");
  await until("the lock state", async () => (await text("#lock-state")) === "locked");
  assert.equal(await text('[data-account="work"] .state'), "signed in");
});

test("without tray support the app runs window-only and says so", async () => {
  // A second app whose appindicator library cannot be found, through its own tauri-driver.
  const driver = start("tauri-driver", ["--port", "4446", "--native-port", "4447"], {
    env: { ...env, KEYFOB_TRAY_LIBDIRS: join(home, "no-libraries") },
  });
  await until("the second tauri-driver", async () => (await fetch("http://127.0.0.1:4446/status")).ok);
  const second = await remote({
    hostname: "127.0.0.1",
    port: 4446,
    logLevel: "error",
    connectionRetryTimeout: 30_000,
    connectionRetryCount: 1,
    capabilities: { "tauri:options": { application: exe("keyfob-tray") } },
  });
  try {
    await windowFor("#main", second);
    await until("the window-only note", async () => (await text("#tray-note", second)).includes("running window-only"));
    assert.match(await text("#tray-note", second), /libayatana-appindicator3/);
    await until("the connection", async () => (await text("#connection", second)) === "connected");
  } finally {
    await within(second.deleteSession().catch(() => {}), 10_000);
    driver.kill("SIGTERM");
  }
});
