// Browser end-to-end tests of the built UI in headless Debian Chromium (playwright-core),
// with Tauri's IPC mocked (@tauri-apps/api/mocks, see entry.ts). Run: node --test e2e/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const DIST = fileURLToPath(new URL("./dist/", import.meta.url));
const ORIGIN = "https://keyfob.test";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };

let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/test does)`);
  assert.ok(existsSync(join(DIST, "index.html")), "e2e/dist is missing: npm run build:e2e first");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
});

const REQUEST = {
  id: 7,
  client: { pid: 4242, exe: "/usr/bin/terraform", identified_by: "executable", label: "/usr/bin/terraform" },
  account: "work",
  operation: "token",
  method: "token.get",
  policy: "new-client",
  expires_in_secs: 60,
};

const STATUS = {
  pid: 1, version: "0.1.0", protocol: 1, socket: "/run/keyfob/agent.sock", vault: "keychain", vault_detail: "",
  uptime_secs: 5, connections: 1, otp_entries: 1, secrets: 0, locked: false, approvers: 1, approvals_waiting: 0, unsaved: [],
};

/** A fixture (function source, see `open`) whose snapshot has `pending` waiting, plus `commands`. */
const waiting = (pending, commands) => `() => ({
  snapshot: { connected: true, status: ${JSON.stringify(STATUS)}, accounts: [], otp: [], keys: [], approvals: [],
    pending: ${JSON.stringify(pending)}, tray: { available: true } },
  ...${JSON.stringify(commands)},
})`;

/** The request as a window names it to decide and request_shown. */
const key = (r) => ({ id: r.id, client_pid: r.client.pid, account: r.account, method: r.method });

/** A page showing `hash`, with `fixture` (a function source returning the command table). */
async function open(hash, fixture, before = async () => {}) {
  const context = await browser.newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: ORIGIN });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.route(`${ORIGIN}/**`, async (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^\/+/, "") || "index.html";
    try {
      const body = await readFile(join(DIST, path));
      await route.fulfill({ body, contentType: TYPES[extname(path)] ?? "application/octet-stream" });
    } catch {
      await route.fulfill({ status: 404, body: "not found" });
    }
  });
  await page.addInitScript(`window.__fixture = (${fixture})();`);
  await before(page);
  await page.goto(`${ORIGIN}/index.html${hash}`);
  return { page, context, errors };
}

const calls = (page, cmd) => page.evaluate((c) => window.__calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);

test("an approval click sends the right decision, and keys answer too", async () => {
  const { page, context, errors } = await open(
    "#approval",
    waiting([REQUEST], { decide: null }),
  );
  await page.waitForSelector("#client");
  assert.equal(await page.textContent("#client"), REQUEST.client.label);
  assert.match(await page.textContent("#identified"), /executable/);
  assert.equal(await page.textContent("#account"), "work");
  assert.match(await page.textContent("h1"), /an access token for “work”/);
  // "Allow for…" with the 8 hours choice, once the prompt takes answers.
  await page.waitForSelector("section[data-armed]");
  await page.selectOption("#duration", String(8 * 3600));
  await page.click("#choice-for");
  await page.waitForSelector("text=No requests waiting");
  assert.deepEqual(await calls(page, "decide"), [{ args: { request: key(REQUEST), decision: { decision: "allow_for", secs: 28800 } } }]);

  // A second request arrives: the prompt comes back; "d" denies it from the keyboard.
  await page.evaluate((r) => window.__emit("keyfob://event", { event: "approval.requested", ...r }), { ...REQUEST, id: 8 });
  await page.waitForSelector("section[data-armed] #choice-deny");
  await page.keyboard.press("d");
  await page.waitForSelector("text=No requests waiting");
  const decided = await calls(page, "decide");
  assert.deepEqual(decided[1], { args: { request: key({ ...REQUEST, id: 8 }), decision: { decision: "deny" } } });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a key typed as the prompt pops up, a held key or a click at once answers nothing", async () => {
  // The page's clock stands still: the prompt stays unarmed until the test moves it on.
  const start = Date.now();
  const { page, context, errors } = await open(
    "#approval",
    waiting([REQUEST], { decide: null, request_shown: null }),
    (page) => page.clock.setFixedTime(start),
  );
  await page.waitForSelector("#client");
  // "a" is "Always allow", Enter the focused "Allow once": typed into the window it popped up over.
  await page.keyboard.press("a");
  await page.keyboard.press("Enter");
  await page.click("#choice-once");
  assert.deepEqual(await calls(page, "decide"), []);
  assert.equal(await page.$("section[data-armed]"), null);
  // A moment later the prompt takes answers.
  await page.clock.setFixedTime(start + 1000);
  await page.waitForSelector("section[data-armed]");
  await page.keyboard.press("d");
  await page.waitForSelector("text=No requests waiting");
  assert.deepEqual((await calls(page, "decide")).map((a) => a.args.decision), [{ decision: "deny" }]);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the approval window says which request it puts in front of the person, each once", async () => {
  const { page, context, errors } = await open(
    "#approval",
    waiting([REQUEST, { ...REQUEST, id: 8, account: "home" }], { decide: null, request_shown: null }),
  );
  const shown = async (n) => {
    await page.waitForFunction((n) => window.__calls.filter((c) => c.cmd === "request_shown").length >= n, n);
    return calls(page, "request_shown");
  };
  await page.waitForSelector("text=1 of 2 requests");
  assert.equal(await page.textContent("#account"), "work");
  // Only the request on screen: the one waiting behind it has not been seen.
  assert.deepEqual(await shown(1), [{ request: key(REQUEST) }]);
  // A third arrives and the prompt is drawn again: request 7 is not said twice.
  await page.evaluate((r) => window.__emit("keyfob://event", { event: "approval.requested", ...r }), { ...REQUEST, id: 9 });
  await page.waitForSelector("text=1 of 3 requests");
  await page.waitForSelector("section[data-armed]");
  await page.click("#choice-once");
  await page.waitForFunction(() => document.querySelector("#account")?.textContent === "home");
  assert.deepEqual(await shown(2), [{ request: key(REQUEST) }, { request: key({ ...REQUEST, id: 8, account: "home" }) }]);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the main window opens the prompt on the requests waiting: the way back to one closed unanswered", async () => {
  const { page, context, errors } = await open(
    "",
    waiting([REQUEST], { audit_tail: [], otp_codes: [], open_approval: null }),
  );
  await page.waitForSelector("#waiting");
  assert.match(await page.textContent("#waiting"), /^1 waiting for approval/);
  await page.click("#waiting");
  await page.waitForFunction(() => window.__calls.some((c) => c.cmd === "open_approval"));
  assert.deepEqual(errors, []);
  await context.close();
});

test("a device sign-in shows its code and QR code, copies the code, and reports the outcome", async () => {
  const { page, context, errors } = await open(
    "#signin",
    `() => ({
      current_signin: {
        account: "work", provider: "oidc",
        started: { login_id: "x", flow: "device", user_code: "WDJB-MJHT", verification_uri: "https://idp.example/device",
          verification_uri_complete: "https://idp.example/device?user_code=WDJB-MJHT", expires_in: 600 },
        qr_svg: '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="black"/></svg>',
      },
      open_url: null,
    })`,
  );
  await page.waitForSelector("#user-code");
  assert.equal(await page.textContent("#user-code"), "WDJB-MJHT");
  assert.equal(await page.textContent("#verification-uri"), "https://idp.example/device");
  await page.waitForFunction(() => document.querySelector("#qr")?.naturalWidth > 0);
  assert.match(await page.getAttribute("#qr", "alt"), /user_code=WDJB-MJHT/);
  await page.click("#copy-code");
  await page.waitForSelector("text=Copied");
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "WDJB-MJHT");
  await page.click("#open-browser");
  assert.deepEqual(await calls(page, "open_url"), [{ url: "https://idp.example/device?user_code=WDJB-MJHT" }]);
  await page.evaluate(() => window.__emit("keyfob://event", { event: "signin.finished", account: "work", ok: true }));
  await page.waitForSelector("#signin-status.done");
  assert.equal(await page.textContent("#signin-status"), "Signed in to work.");
  assert.deepEqual(errors, []);
  await context.close();
});

test("TOTP codes count down, refresh when they run out, and copy", async () => {
  const { page, context, errors } = await open(
    "",
    `() => {
      let n = 0;
      return {
        snapshot: { connected: true, status: ${JSON.stringify(STATUS)}, accounts: [], keys: [], approvals: [], pending: [],
          otp: [{ name: "github", kind: "totp", algorithm: "SHA1", digits: 6, period: 30, recovery_codes_left: 0 },
                { name: "bank", kind: "totp", algorithm: "SHA1", digits: 6, period: 30, issuer: "ACME", recovery_codes_left: 0 }],
          tray: { available: false, reason: "no tray support on this desktop" } },
        audit_tail: [],
        // The first code has 2 s left; each later fetch gives a new code with the full period.
        otp_codes: (a) => { n += 1; return a.names.map((name) => ({ name, code: String(100000 + n * 111 + name.length), seconds_left: n === 1 ? 2 : 30, period: 30 })); },
      };
    }`,
  );
  const code = (name) => page.textContent(`[data-otp="${name}"] .code`);
  await page.waitForSelector('[data-otp="github"] .left');
  assert.equal(await code("github"), "100 117");
  assert.match(await page.textContent("#tray-note"), /no tray support/);
  // The countdown runs, and at zero the codes are fetched again.
  await page.waitForFunction(() => document.querySelector('[data-otp="github"] .left')?.textContent === "1s");
  await page.waitForFunction(() => document.querySelector('[data-otp="github"] .code')?.textContent === "100 228");
  assert.equal(await page.textContent('[data-otp="github"] .left'), "30s");
  const offset = await page.getAttribute('[data-otp="github"] circle.fg', "stroke-dashoffset");
  assert.ok(Number(offset) < 1, `a fresh code has a full ring, offset ${offset}`);
  // Search narrows the list, and only shown entries' codes are asked for.
  await page.fill("#otp-search", "acme");
  await page.waitForFunction(() => !document.querySelector('[data-otp="github"]'));
  const asked = await calls(page, "otp_codes");
  assert.deepEqual(asked.at(-1), { names: ["bank"] });
  await page.click('[data-otp="bank"] button.copy');
  await page.waitForSelector('[data-otp="bank"] button:has-text("Copied")');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), (await code("bank")).replace(" ", ""));
  assert.deepEqual(errors, []);
  await context.close();
});
