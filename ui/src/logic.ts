// The windows' logic, apart from the DOM so it can be unit-tested.
import type { AccountInfo, ApprovalRequest, Decision, OtpInfo } from "./wire";

/** The answers the approval window offers, in order, with their keyboard shortcuts. */
export const CHOICES = [
  { id: "once", label: "Allow once", key: "o" },
  { id: "for", label: "Allow for", key: "f" },
  { id: "always", label: "Always allow", key: "a" },
  { id: "deny", label: "Deny", key: "d" },
] as const;

export type ChoiceId = (typeof CHOICES)[number]["id"];

/** Durations offered by "Allow for…", in seconds. */
export const DURATIONS = [
  { label: "15 minutes", secs: 15 * 60 },
  { label: "1 hour", secs: 3600 },
  { label: "8 hours", secs: 8 * 3600 },
  { label: "1 day", secs: 86400 },
] as const;

/** The wire decision for a button (and the chosen duration for "Allow for…"). */
export function decisionFor(choice: ChoiceId, secs: number = 3600): Decision {
  switch (choice) {
    case "once":
      return { decision: "allow_once" };
    case "for":
      return { decision: "allow_for", secs };
    case "always":
      return { decision: "allow_always" };
    case "deny":
      return { decision: "deny" };
  }
}

/**
 * "For a while" and "always" remember a client. They are offered only where the daemon keeps
 * them: for a client the kernel names (an executable) or a terminal session; never for a
 * script or inline code (another program can imitate those), an unlock, a new agent key, or
 * when the policy asks every time.
 */
export function choicesFor(req: ApprovalRequest): ChoiceId[] {
  const remembered = ["executable", "terminal session"].includes(req.client.identified_by);
  if (req.method === "agent.unlock" || req.policy === "always" || req.detail || !remembered) {
    return ["once", "deny"];
  }
  return CHOICES.map((c) => c.id);
}

/** One line on what a request wants. */
export function wants(req: ApprovalRequest): string {
  if (req.method === "agent.unlock") return "to unlock the agent";
  // What widens access (a new agent key) says exactly what it asks.
  if (req.detail) return `to ${req.detail}`;
  const what: Record<string, string> = {
    token: "an access token",
    id_token: "an ID token",
    otp: "a one-time code",
    secret: "a secret",
    admin: "to change the agent",
  };
  return `${what[req.operation] ?? req.operation} for “${req.account}”`;
}

/** How strong the client's identity is, in words. */
export function identifiedBy(req: ApprovalRequest): string {
  switch (req.client.identified_by) {
    case "script":
      return "by the script its command line names (another program can claim that, so an answer counts once)";
    case "terminal session":
      return "by its terminal session (any program in that terminal is this client)";
    case "executable":
      return "by its executable";
    default:
      return `by its ${req.client.identified_by}`;
  }
}

/** Seconds until a TOTP code changes, counting down locally between fetches. */
export function secondsLeft(fetchedLeft: number, fetchedAtMs: number, nowMs: number): number {
  return Math.max(0, fetchedLeft - Math.floor((nowMs - fetchedAtMs) / 1000));
}

/** The countdown ring: the stroke-dashoffset of a circle of circumference `c`. */
export function ringOffset(left: number, period: number, c: number): number {
  if (period <= 0) return c;
  return c * (1 - Math.min(left, period) / period);
}

/** Entries matching a search (name, issuer or account; case-insensitive). */
export function filterOtp(entries: OtpInfo[], query: string): OtpInfo[] {
  const q = query.trim().toLowerCase();
  if (!q) return entries;
  return entries.filter((e) =>
    [e.name, e.issuer ?? "", e.account ?? ""].some((s) => s.toLowerCase().includes(q)),
  );
}

/** An account's state as the main window and tray show it. */
export function accountState(a: AccountInfo, nowSecs: number): string {
  if (a.state === "signed_in") {
    if (a.access_expires_at != null && a.access_expires_at - nowSecs <= 300) return "expires soon";
    return "signed in";
  }
  return "needs sign-in";
}

/** "in 5m", "3h ago". */
export function when(secs: number | null | undefined, nowSecs: number): string {
  if (secs == null) return "—";
  const d = secs - nowSecs;
  const a = Math.abs(d);
  const span = a < 120 ? `${a}s` : a < 7200 ? `${Math.floor(a / 60)}m` : a < 172800 ? `${Math.floor(a / 3600)}h` : `${Math.floor(a / 86400)}d`;
  return d >= 0 ? `in ${span}` : `${span} ago`;
}

/** Groups a code for reading: "123 456". */
export function groupCode(code: string): string {
  return code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code.length === 8 ? `${code.slice(0, 4)} ${code.slice(4)}` : code;
}
