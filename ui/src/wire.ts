// Generated from the Rust types by `cargo test -p keyfob-tray` with KEYFOB_UPDATE_WIRE=1.
// Do not edit: change the Rust types and regenerate.

export type Event = { "event": "otp.changed", 
/**
 * The entry's name.
 */
name: string, 
/**
 * What happened to it.
 */
change: Change, } | { "event": "secret.changed", 
/**
 * The secret's name.
 */
name: string, 
/**
 * What happened to it.
 */
change: Change, } | { "event": "daemon.stopping" } | { "event": "signin.started", 
/**
 * The account.
 */
account: string, 
/**
 * `device` or `browser`.
 */
flow: LoginFlow, 
/**
 * Device flow: the code.
 */
user_code?: string | null, 
/**
 * Device flow: where to enter it.
 */
verification_uri?: string | null, 
/**
 * Device flow: the URI with the code.
 */
verification_uri_complete?: string | null, 
/**
 * Browser flow: the URL to open.
 */
authorize_url?: string | null, } | { "event": "signin.finished", 
/**
 * The account.
 */
account: string, 
/**
 * Whether it succeeded.
 */
ok: boolean, 
/**
 * Why not, when it failed.
 */
error?: string | null, } | { "event": "approval.requested" } & ApprovalRequest | { "event": "approval.resolved", 
/**
 * The request's id.
 */
id: number, 
/**
 * How it ended.
 */
outcome: Resolution, } | { "event": "account.changed", 
/**
 * The account.
 */
name: string, 
/**
 * What happened to it.
 */
change: Change, 
/**
 * Its sign-in state now (not for a removal).
 */
state?: AccountState | null, } | { "event": "lock.changed", 
/**
 * Whether it is locked now.
 */
locked: boolean, 
/**
 * Why.
 */
reason: LockReason, };

export type Change = "added" | "updated" | "removed";

export type Resolution = "allowed" | "denied" | "timed_out";

export type LockReason = "command" | "idle" | "max_age" | "session_locked" | "suspend" | "unlock";

export type ErrorKind = "parse_error" | "invalid_request" | "method_not_found" | "invalid_params" | "internal" | "version_mismatch" | "handshake_required" | "forbidden" | "not_found" | "already_exists" | "invalid_input" | "vault_unavailable" | "storage_failed" | "locked" | "approval_required" | "denied" | "needs_login" | "provider_error" | "rate_limited" | "line_too_long" | "shutting_down" | "exhausted";

export type VaultKind = "keychain" | "file" | "memory";

export type StatusResult = { 
/**
 * The daemon's process id.
 */
pid: number, 
/**
 * The daemon's package version.
 */
version: string, 
/**
 * The protocol version.
 */
protocol: number, 
/**
 * The socket it listens on.
 */
socket: string, 
/**
 * The store in use.
 */
vault: VaultKind, 
/**
 * A sentence on the store and why it was chosen.
 */
vault_detail: string, 
/**
 * Seconds since start.
 */
uptime_secs: number, 
/**
 * Open connections, this one included.
 */
connections: number, 
/**
 * Number of OTP entries.
 */
otp_entries: number, 
/**
 * Number of static secrets.
 */
secrets: number, 
/**
 * Whether the agent is locked.
 */
locked: boolean, 
/**
 * Approvers connected (the tray, `keyfob approve`).
 */
approvers: number, 
/**
 * Requests waiting for a person's decision.
 */
approvals_waiting: number, 
/**
 * Accounts whose rotated refresh token could not be stored yet (held in memory only).
 */
unsaved: Array<UnsavedGrant>, };

export type UnsavedGrant = { 
/**
 * The account.
 */
account: string, 
/**
 * Why the store failed.
 */
cause: string, };

export type OtpAlgorithm = "SHA1" | "SHA256" | "SHA512";

export type OtpKind = "totp" | "hotp";

export type OtpInfo = { 
/**
 * The entry's name.
 */
name: string, 
/**
 * TOTP or HOTP.
 */
kind: OtpKind, 
/**
 * Hash.
 */
algorithm: OtpAlgorithm, 
/**
 * Code length.
 */
digits: number, 
/**
 * TOTP period in seconds.
 */
period?: number | null, 
/**
 * HOTP: the counter the next code will use.
 */
counter?: number | null, 
/**
 * The issuer, from an imported URI.
 */
issuer?: string | null, 
/**
 * The account label, from an imported URI.
 */
account?: string | null, 
/**
 * Unused recovery codes stored with the entry.
 */
recovery_codes_left: number, };

export type AccountState = "signed_out" | "signed_in" | "needs_login";

export type AccountGrant = "user" | "client_credentials";

export type AccountInfo = { 
/**
 * The name.
 */
name: string, 
/**
 * The plugin id.
 */
provider: string, 
/**
 * The issuer, when there is one.
 */
issuer?: string | null, 
/**
 * The client id.
 */
client_id: string, 
/**
 * User sign-in or client credentials.
 */
grant: AccountGrant, 
/**
 * Whether a client secret is stored.
 */
confidential: boolean, 
/**
 * Scopes requested.
 */
scopes: Array<string>, 
/**
 * Audience requested.
 */
audience?: string | null, 
/**
 * Sign-in state.
 */
state: AccountState, 
/**
 * Why the state is what it is (e.g. the provider's refusal), for people.
 */
detail?: string | null, 
/**
 * When the cached access token expires (Unix seconds), if one is cached.
 */
access_expires_at?: number | null, 
/**
 * What `account.add` found at the provider (only in its result).
 */
check?: ProviderCheck | null, 
/**
 * Environment variables tools read this provider's token from (`GITHUB_TOKEN`, …): the
 * names `keyfob exec` uses by default.
 */
env?: Array<string>, 
/**
 * Git hosts whose credentials come from this provider: what `keyfob setup git` sets up
 * by default.
 */
git_hosts?: Array<string>, };

export type ProviderCheck = { 
/**
 * The issuer its discovery document names (for OpenID providers).
 */
issuer?: string | null, 
/**
 * The sign-in flows both the plugin and the provider offer.
 */
flows: Array<LoginFlow>, 
/**
 * Whether the provider can revoke tokens at sign-out.
 */
revocation: boolean, 
/**
 * Why the provider could not be reached now, when it could not (the account is added;
 * the first sign-in checks again).
 */
unreachable?: string | null, };

export type LoginFlow = "device" | "browser" | "plugin";

export type LoginStarted = { 
/**
 * Pass to `login.wait`.
 */
login_id: string, 
/**
 * The flow in use.
 */
flow: LoginFlow, 
/**
 * Device flow: the code to enter.
 */
user_code?: string | null, 
/**
 * Device flow: where to enter it.
 */
verification_uri?: string | null, 
/**
 * Device flow: the URI with the code filled in.
 */
verification_uri_complete?: string | null, 
/**
 * Browser flow: the URL to open.
 */
authorize_url?: string | null, 
/**
 * Seconds until the sign-in expires.
 */
expires_in: number, };

export type Operation = "token" | "id_token" | "otp" | "secret" | "admin";

export type ClientInfo = { 
/**
 * The client process.
 */
pid: number, 
/**
 * Its executable.
 */
exe?: string | null, 
/**
 * For an interpreter, the script it runs.
 */
script?: string | null, 
/**
 * For an interactive shell, its terminal session id.
 */
terminal_session?: number | null, 
/**
 * How the client is identified, in words: "executable", "script", "terminal session".
 */
identified_by: string, 
/**
 * A short label for people ("/usr/bin/python3 deploy.py").
 */
label: string, };

export type ApprovalRequest = { 
/**
 * Pass this to `approval.decide`.
 */
id: number, 
/**
 * Who asks.
 */
client: ClientInfo, 
/**
 * The account or entry.
 */
account: string, 
/**
 * What it wants to do.
 */
operation: Operation, 
/**
 * The method it called (`token.get`, `agent.unlock`…).
 */
method: string, 
/**
 * The policy that asked: `new-client` or `always`.
 */
policy: Approval, 
/**
 * Seconds left before the request fails by itself.
 */
expires_in_secs: number, 
/**
 * Exactly what is asked, when the account and operation do not say it all (a new agent
 * key's accounts, operations and lifetime).
 */
detail?: string, };

export type Approval = "never" | "new-client" | "always";

export type Decision = { "decision": "allow_once" } | { "decision": "allow_for", 
/**
 * How long, in seconds.
 */
secs: number, } | { "decision": "allow_always" } | { "decision": "deny" };

export type RememberedApproval = { 
/**
 * Pass this to `approval.revoke`.
 */
id: string, 
/**
 * Who it allows.
 */
client: string, 
/**
 * The account or entry.
 */
account: string, 
/**
 * What it allows.
 */
operation: Operation, 
/**
 * Unix seconds.
 */
created: number, 
/**
 * Unix seconds; none means until revoked.
 */
expires?: number | null, };

export type KeyInfo = { 
/**
 * Its name.
 */
name: string, 
/**
 * The first characters of the key, to recognise it.
 */
prefix: string, 
/**
 * Accounts and entries it reaches.
 */
accounts: Array<string>, 
/**
 * Operations it allows.
 */
ops: Array<Operation>, 
/**
 * Unix seconds.
 */
created: number, 
/**
 * Unix seconds of its last use.
 */
last_used?: number | null, 
/**
 * Unix seconds; none means until revoked.
 */
expires?: number | null, };

export type LogoutResult = { 
/**
 * Whether the provider confirmed the revocation of the refresh token.
 */
revoked: boolean, 
/**
 * Why it was not revoked, when it was not.
 */
revocation_detail?: string | null, 
/**
 * Whether local secrets (refresh token, cached access token) were deleted.
 */
deleted_local: boolean, };

export type TrayError = { "kind": "disconnected", 
/**
 * What happened.
 */
message: string, } | { "kind": "agent", 
/**
 * The daemon's stable error kind.
 */
error: ErrorKind, 
/**
 * The daemon's message.
 */
message: string, } | { "kind": "invalid", 
/**
 * What is wrong with it.
 */
message: string, } | { "kind": "system", 
/**
 * What failed.
 */
message: string, };

export type Connection = { 
/**
 * Connected to keyfobd as an approver.
 */
connected: boolean, 
/**
 * Why not, when not.
 */
detail?: string, };

export type TrayMode = { 
/**
 * A tray icon is shown.
 */
available: boolean, 
/**
 * Why not, when not.
 */
reason?: string, };

export type Snapshot = { 
/**
 * Connected to keyfobd.
 */
connected: boolean, 
/**
 * The daemon's status.
 */
status: StatusResult, 
/**
 * Accounts with their state.
 */
accounts: Array<AccountInfo>, 
/**
 * OTP entries (no codes: ask `otp_codes` for the ones shown).
 */
otp: Array<OtpInfo>, 
/**
 * Agent keys.
 */
keys: Array<KeyInfo>, 
/**
 * Remembered approvals.
 */
approvals: Array<RememberedApproval>, 
/**
 * Requests waiting for a decision.
 */
pending: Array<ApprovalRequest>, 
/**
 * The tray icon's state.
 */
tray: TrayMode, };

export type OtpCodeView = { 
/**
 * The entry.
 */
name: string, 
/**
 * The code.
 */
code: string, 
/**
 * Seconds until it changes.
 */
seconds_left: number, 
/**
 * The period.
 */
period: number, };

export type SignInView = { 
/**
 * The account.
 */
account: string, 
/**
 * The provider.
 */
provider: string, 
/**
 * What the daemon said.
 */
started: LoginStarted, 
/**
 * An SVG QR code of `verification_uri_complete` (device flow).
 */
qr_svg?: string, };

export type RequestKey = { 
/**
 * The request's number.
 */
id: number, 
/**
 * The asking process.
 */
client_pid: number, 
/**
 * The account, entry or secret it asks for.
 */
account: string, 
/**
 * The method it called.
 */
method: string, };

export type DecideArgs = { 
/**
 * The request, as the window shows it.
 */
request: RequestKey, 
/**
 * The answer.
 */
decision: Decision, };

