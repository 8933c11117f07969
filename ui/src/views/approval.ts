// The approval prompt: who asks, for what, how the client is identified; keyboard accessible.
import * as api from "../api";
import { h, mount } from "../dom";
import { CHOICES, DURATIONS, choicesFor, decisionFor, identifiedBy, wants, type ChoiceId } from "../logic";
import type { ApprovalRequest } from "../wire";

let queue: ApprovalRequest[] = [];
let error = "";
/** Requests put in front of the person, each said once: the tray icon counts those as seen. */
const told = new Set<number>();
/**
 * The prompt takes no answer until a moment after a request comes on screen or a new one
 * raises it: it pops up over whatever the person was typing into, and a key meant for that
 * window, a held key or a double click must not answer a request they have not read.
 */
const ARM_MS = 800;
let armedAt = 0;
let armedFor = -1;
let armTimer: ReturnType<typeof setTimeout> | undefined;

function arm() {
  armedAt = performance.now() + ARM_MS;
  clearTimeout(armTimer);
  armTimer = setTimeout(render, ARM_MS);
}

const armed = () => performance.now() >= armedAt;

function render() {
  const req = queue[0];
  if (!req) {
    mount(h("section", { class: "empty", role: "status" }, h("h1", {}, "No requests waiting"), h("p", {}, "This window shows programs asking for credentials.")));
    return;
  }
  if (req.id !== armedFor) {
    armedFor = req.id;
    arm();
  }
  const allowed = choicesFor(req);
  const select = h(
    "select",
    { id: "duration", "aria-label": "Allow for how long" },
    ...DURATIONS.map((d) => h("option", { value: d.secs, selected: d.secs === 3600 }, d.label)),
  ) as HTMLSelectElement;
  const answer = async (choice: ChoiceId) => {
    if (!armed()) return;
    try {
      await api.decide(req, decisionFor(choice, Number(select.value)));
      queue = queue.filter((r) => r.id !== req.id);
      error = "";
    } catch (e) {
      error = api.errorText(e);
      if (error.includes("already answered") || error.includes("timed out")) {
        queue = queue.filter((r) => r.id !== req.id);
      }
    }
    render();
  };
  const buttons = CHOICES.filter((c) => allowed.includes(c.id)).map((c) =>
    h(
      "button",
      {
        type: "button",
        id: `choice-${c.id}`,
        class: c.id === "deny" ? "deny" : c.id === "once" ? "primary" : "",
        "aria-keyshortcuts": c.key,
        onclick: () => void answer(c.id),
      },
      c.label,
      c.id === "for" ? "…" : "",
    ),
  );
  const c = req.client;
  mount(
    h(
      "section",
      { class: "approval", role: "alertdialog", "aria-labelledby": "ask", "aria-describedby": "who", "data-armed": armed() },
      h("h1", { id: "ask" }, "Allow ", h("span", { class: "wants" }, wants(req)), "?"),
      queue.length > 1 ? h("p", { class: "queue" }, `1 of ${queue.length} requests`) : null,
      h(
        "dl",
        { id: "who" },
        h("dt", {}, "Client"),
        h("dd", { id: "client" }, c.label),
        h("dt", {}, "Process"),
        h("dd", {}, `pid ${c.pid}`, c.exe ? ` · ${c.exe}` : ""),
        h("dt", {}, "Identified"),
        h("dd", { id: "identified" }, identifiedBy(req)),
        h("dt", {}, "Account"),
        h("dd", { id: "account" }, req.account),
        h("dt", {}, "Operation"),
        h("dd", { id: "operation" }, `${req.operation} (${req.method})`),
      ),
      h("p", { class: "expires" }, `Expires in ${req.expires_in_secs} s if nobody answers.`),
      h("div", { class: "choices" }, ...buttons, allowed.includes("for") ? select : null),
      error ? h("p", { class: "error", role: "alert" }, error) : null,
    ),
  );
  (document.getElementById("choice-once") as HTMLButtonElement | null)?.focus();
  // Only the request on screen counts as seen: not one waiting behind it ("1 of 2"), nor one
  // drawn while the window is minimised (it is said when the window shows again).
  if (!told.has(req.id) && document.visibilityState === "visible") {
    told.add(req.id);
    void api.requestShown(req).catch(() => {});
  }
}

function onKey(e: KeyboardEvent) {
  if (e.target instanceof HTMLSelectElement || e.ctrlKey || e.metaKey || e.altKey) return;
  // Swallowed, not passed to a focused button, while the prompt is not armed.
  if (e.repeat || !armed()) {
    e.preventDefault();
    return;
  }
  const c = CHOICES.find((c) => c.key === e.key.toLowerCase());
  const btn = c && (document.getElementById(`choice-${c.id}`) as HTMLButtonElement | null);
  if (btn) {
    e.preventDefault();
    btn.click();
  }
}

export async function approvalView() {
  document.title = "Keyfob: approve access?";
  document.addEventListener("keydown", onKey);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") render();
  });
  await api.onEvent((ev) => {
    if (ev.event === "approval.requested") {
      if (!queue.some((r) => r.id === ev.id)) queue.push(ev);
      // The window was raised for it: over whatever the person was typing into.
      arm();
      render();
    } else if (ev.event === "approval.resolved") {
      queue = queue.filter((r) => r.id !== ev.id);
      render();
    }
  });
  try {
    const snap = await api.snapshot();
    for (const r of snap.pending) if (!queue.some((q) => q.id === r.id)) queue.push(r);
  } catch (e) {
    error = api.errorText(e);
  }
  render();
}
