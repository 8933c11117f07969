// Typed calls into the tray app's Rust side. Every command rejects with a TrayError.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  AccountInfo,
  ApprovalRequest,
  Connection,
  Decision,
  Event,
  LoginStarted,
  LogoutResult,
  OtpCodeView,
  RequestKey,
  SignInView,
  Snapshot,
  TrayError,
} from "./wire";

export type { AccountInfo };

export const snapshot = () => invoke<Snapshot>("snapshot");
export const otpCodes = (names: string[]) => invoke<OtpCodeView[]>("otp_codes", { names });
/** A waiting request as the window shows it: commands act on it only while it still matches. */
export const keyOf = (r: ApprovalRequest): RequestKey => ({
  id: r.id,
  client_pid: r.client.pid,
  account: r.account,
  method: r.method,
});
export const decide = (r: ApprovalRequest, decision: Decision) =>
  invoke<void>("decide", { args: { request: keyOf(r), decision } });
export const signIn = (account: string, browser = false) =>
  invoke<LoginStarted>("sign_in", { account, browser });
export const currentSignIn = () => invoke<SignInView | null>("current_signin");
/** The approval window has put request `r` in front of the person. */
export const requestShown = (r: ApprovalRequest) => invoke<void>("request_shown", { request: keyOf(r) });
export const signOut = (account: string) => invoke<LogoutResult>("sign_out", { account });
export const openUrl = (url: string) => invoke<void>("open_url", { url });
export const revokeKey = (name: string) => invoke<void>("revoke_key", { name });
export const revokeApproval = (id: string) => invoke<void>("revoke_approval", { id });
export const auditTail = (lines: number) => invoke<Record<string, unknown>[]>("audit_tail", { lines });
export const lock = () => invoke<void>("lock");
/** Opens the approval prompt on the requests waiting. */
export const openApproval = () => invoke<void>("open_approval");
export const unlock = (passphrase?: string) => invoke<void>("unlock", { passphrase: passphrase ?? null });

/** Daemon events (approvals, sign-ins, changes). */
export const onEvent = (f: (e: Event) => void): Promise<UnlistenFn> =>
  listen<Event>("keyfob://event", (m) => f(m.payload));
/** Connection state changes. */
export const onConnection = (f: (c: Connection) => void): Promise<UnlistenFn> =>
  listen<Connection>("keyfob://connection", (m) => f(m.payload));
/** The sign-in window has a new sign-in to show. */
export const onSignInView = (f: () => void): Promise<UnlistenFn> =>
  listen<null>("keyfob://signin-view", () => f());

/** A person-readable message from whatever a command rejected with. */
export function errorText(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) {
    return String((e as TrayError).message);
  }
  return String(e);
}
