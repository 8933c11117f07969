// The main window: connection and lock state, accounts, TOTP codes with their countdown,
// agent keys, remembered approvals, recent activity. Codes are fetched only while shown.
import * as api from "../api";
import { h, mount, svg } from "../dom";
import { accountState, filterOtp, groupCode, ringOffset, secondsLeft, when } from "../logic";
import type { Connection, OtpCodeView, Snapshot } from "../wire";

const RING = 2 * Math.PI * 14;

let snap: Snapshot | null = null;
let connection: Connection = { connected: false };
let codes = new Map<string, { view: OtpCodeView; at: number }>();
let query = "";
let message = "";
let activity: Record<string, unknown>[] = [];
let ticking: number | undefined;

const now = () => Math.floor(Date.now() / 1000);

async function refresh() {
  try {
    snap = await api.snapshot();
    connection = { connected: snap.connected };
    activity = await api.auditTail(15);
  } catch (e) {
    snap = null;
    message = api.errorText(e);
  }
  await refreshCodes();
  render();
}

function shownTotp(): string[] {
  if (!snap || snap.status.locked || document.visibilityState === "hidden") return [];
  return filterOtp(snap.otp, query)
    .filter((e) => e.kind === "totp")
    .map((e) => e.name);
}

async function refreshCodes() {
  const names = shownTotp();
  if (names.length === 0) {
    codes = new Map();
    return;
  }
  try {
    const at = Date.now();
    codes = new Map((await api.otpCodes(names)).map((v) => [v.name, { view: v, at }]));
  } catch (e) {
    codes = new Map();
    message = api.errorText(e);
  }
}

function tick() {
  let expired = false;
  for (const { view, at } of codes.values()) {
    const left = secondsLeft(Number(view.seconds_left), at, Date.now());
    const el = document.querySelector<HTMLElement>(`[data-otp="${CSS.escape(view.name)}"]`);
    el?.querySelector(".left")?.replaceChildren(`${left}s`);
    el?.querySelector("circle.fg")?.setAttribute("stroke-dashoffset", String(ringOffset(left, Number(view.period), RING)));
    if (left === 0) expired = true;
  }
  if (expired) void refreshCodes().then(render);
}

function ring(left: number, period: number): SVGElement {
  const s = svg("svg", { class: "ring", viewBox: "0 0 32 32", width: 28, height: 28, "aria-hidden": "true" });
  s.append(
    svg("circle", { class: "bg", cx: 16, cy: 16, r: 14 }),
    svg("circle", { class: "fg", cx: 16, cy: 16, r: 14, "stroke-dasharray": RING, "stroke-dashoffset": ringOffset(left, period, RING) }),
  );
  return s;
}

function header(): HTMLElement {
  const locked = snap?.status.locked ?? false;
  const pass = h("input", { type: "password", id: "passphrase", placeholder: "Vault passphrase", "aria-label": "Vault passphrase", autocomplete: "off" }) as HTMLInputElement;
  const lockControls = locked
    ? h(
        "form",
        {
          class: "unlock",
          onsubmit: async (e: Event) => {
            e.preventDefault();
            try {
              await api.unlock(pass.value || undefined);
              message = "";
            } catch (err) {
              message = api.errorText(err);
            }
            pass.value = "";
            await refresh();
          },
        },
        snap?.status.vault === "file" ? pass : null,
        h("button", { type: "submit", id: "unlock" }, "Unlock"),
      )
    : h("button", { type: "button", id: "lock", onclick: async () => { await api.lock().catch((e) => (message = api.errorText(e))); await refresh(); } }, "Lock");
  return h(
    "header",
    {},
    h("h1", {}, "Keyfob"),
    h("span", { id: "connection", class: connection.connected ? "ok" : "bad" }, connection.connected ? "connected" : `not connected${connection.detail ? `: ${connection.detail}` : ""}`),
    h("span", { id: "lock-state", class: locked ? "bad" : "ok" }, locked ? "locked" : "unlocked"),
    // A request whose prompt was closed is not pushed again: this is the way back to it.
    snap && snap.pending.length > 0
      ? h(
          "button",
          {
            type: "button",
            id: "waiting",
            class: "bad",
            onclick: () => void api.openApproval().catch((e) => { message = api.errorText(e); render(); }),
          },
          `${snap.pending.length} waiting for approval: review`,
        )
      : null,
    lockControls,
  );
}

function accounts(): HTMLElement {
  const rows = (snap?.accounts ?? []).map((a) =>
    h(
      "tr",
      { "data-account": a.name },
      h("td", {}, a.name),
      h("td", {}, a.provider),
      h("td", { class: "state" }, accountState(a, now())),
      h("td", {}, a.access_expires_at != null ? when(Number(a.access_expires_at), now()) : "—"),
      h("td", {}, a.scopes.join(" ")),
      h(
        "td",
        {},
        a.state === "signed_in"
          ? h("button", { type: "button", onclick: async () => { await api.signOut(a.name).catch((e) => (message = api.errorText(e))); await refresh(); } }, "Sign out")
          : h("button", { type: "button", class: "primary", onclick: () => void api.signIn(a.name).catch((e) => { message = api.errorText(e); render(); }) }, "Sign in"),
      ),
    ),
  );
  return h(
    "section",
    { id: "accounts" },
    h("h2", {}, "Accounts"),
    rows.length
      ? h("table", {}, h("thead", {}, h("tr", {}, ...["Account", "Provider", "State", "Token expires", "Scopes", ""].map((t) => h("th", {}, t)))), h("tbody", {}, ...rows))
      : h("p", { class: "muted" }, "No accounts: add one with `keyfob account add`."),
  );
}

function otp(): HTMLElement {
  const search = h("input", {
    type: "search",
    id: "otp-search",
    placeholder: "Search codes",
    "aria-label": "Search codes",
    value: query,
    oninput: async (e: Event) => {
      query = (e.target as HTMLInputElement).value;
      await refreshCodes();
      render();
      document.getElementById("otp-search")?.focus();
    },
  });
  const items = filterOtp(snap?.otp ?? [], query).map((e) => {
    const c = codes.get(e.name);
    const left = c ? secondsLeft(Number(c.view.seconds_left), c.at, Date.now()) : 0;
    return h(
      "li",
      { "data-otp": e.name },
      h("span", { class: "name" }, e.name, e.issuer ? h("small", {}, ` ${e.issuer}`) : null),
      c ? h("code", { class: "code" }, groupCode(c.view.code)) : h("code", { class: "code muted" }, e.kind === "hotp" ? "HOTP: use the CLI" : "······"),
      c ? ring(left, Number(c.view.period)) : null,
      c ? h("span", { class: "left" }, `${left}s`) : null,
      c
        ? h(
            "button",
            {
              type: "button",
              class: "copy",
              "aria-label": `Copy code for ${e.name}`,
              onclick: async (ev: Event) => {
                const btn = ev.currentTarget as HTMLButtonElement;
                await navigator.clipboard.writeText(c.view.code).then(
                  () => (btn.textContent = "Copied"),
                  () => (btn.textContent = "Copy failed"),
                );
              },
            },
            "Copy",
          )
        : null,
    );
  });
  return h("section", { id: "otp" }, h("h2", {}, "One-time codes"), search, h("ul", { class: "otp" }, ...items));
}

function keys(): HTMLElement {
  const rows = (snap?.keys ?? []).map((k) =>
    h(
      "tr",
      { "data-key": k.name },
      h("td", {}, k.name),
      h("td", {}, h("code", {}, `${k.prefix}…`)),
      h("td", {}, `${k.ops.join(",")} on ${k.accounts.join(",")}`),
      h("td", {}, when(Number(k.created), now())),
      h("td", {}, when(k.last_used == null ? null : Number(k.last_used), now())),
      h("td", {}, k.expires == null ? "never" : when(Number(k.expires), now())),
      h("td", {}, h("button", { type: "button", class: "deny", onclick: async () => { await api.revokeKey(k.name).catch((e) => (message = api.errorText(e))); await refresh(); } }, "Revoke")),
    ),
  );
  return h(
    "section",
    { id: "keys" },
    h("h2", {}, "Agent keys"),
    rows.length ? h("table", {}, h("tbody", {}, ...rows)) : h("p", { class: "muted" }, "No agent keys: `keyfob key create` makes one for a script or CI job."),
  );
}

function approvals(): HTMLElement {
  const rows = (snap?.approvals ?? []).map((a) =>
    h(
      "tr",
      { "data-approval": a.id },
      h("td", {}, a.client),
      h("td", {}, `${a.operation} for ${a.account}`),
      h("td", {}, a.expires == null ? "until revoked" : when(Number(a.expires), now())),
      h("td", {}, h("button", { type: "button", class: "deny", onclick: async () => { await api.revokeApproval(a.id).catch((e) => (message = api.errorText(e))); await refresh(); } }, "Revoke")),
    ),
  );
  return h(
    "section",
    { id: "approvals" },
    h("h2", {}, "Remembered approvals"),
    rows.length ? h("table", {}, h("tbody", {}, ...rows)) : h("p", { class: "muted" }, "None."),
  );
}

function recent(): HTMLElement {
  const items = activity
    .slice()
    .reverse()
    .map((r) => {
      const client = (r.client ?? {}) as Record<string, unknown>;
      return h(
        "li",
        {},
        h("span", { class: r.outcome === "ok" ? "ok" : "bad" }, String(r.event ?? "")),
        " ",
        String(r.subject ?? ""),
        client.exe ? h("small", {}, ` ${String(client.exe)}`) : null,
      );
    });
  return h("section", { id: "activity" }, h("h2", {}, "Recent activity"), h("ul", { class: "activity" }, ...items));
}

function render() {
  const tray = snap?.tray;
  mount(
    header(),
    tray && !tray.available ? h("p", { id: "tray-note", class: "note" }, tray.reason ?? "No tray icon: running window-only.") : h("span"),
    message ? h("p", { class: "error", role: "alert" }, message) : h("span"),
    h("div", { class: "grid" }, accounts(), otp(), keys(), approvals(), recent()),
  );
}

export async function mainView() {
  await api.onConnection((c) => {
    connection = c;
    void refresh();
  });
  await api.onEvent(() => void refresh());
  document.addEventListener("visibilitychange", () => void refreshCodes().then(render));
  ticking = window.setInterval(tick, 1000);
  await refresh();
}

export function stopTicking() {
  if (ticking !== undefined) window.clearInterval(ticking);
}
