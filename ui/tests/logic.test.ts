import { describe, expect, it } from "vitest";
import {
  accountState,
  choicesFor,
  decisionFor,
  filterOtp,
  groupCode,
  identifiedBy,
  ringOffset,
  secondsLeft,
  wants,
  when,
} from "../src/logic";
import type { AccountInfo, ApprovalRequest, OtpInfo } from "../src/wire";

const request = (over: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
  id: 7,
  client: { pid: 42, exe: "/usr/bin/python3", script: "/home/me/deploy.py", identified_by: "script", label: "/usr/bin/python3 /home/me/deploy.py" },
  account: "work",
  operation: "token",
  method: "token.get",
  policy: "new-client",
  expires_in_secs: 60,
  ...over,
});

describe("approval decisions", () => {
  it("maps each button to the wire decision", () => {
    expect(decisionFor("once")).toEqual({ decision: "allow_once" });
    expect(decisionFor("for", 900)).toEqual({ decision: "allow_for", secs: 900 });
    expect(decisionFor("always")).toEqual({ decision: "allow_always" });
    expect(decisionFor("deny")).toEqual({ decision: "deny" });
  });

  it("offers remembering only for clients the daemon remembers", () => {
    const exe = { pid: 42, exe: "/usr/bin/terraform", identified_by: "executable", label: "/usr/bin/terraform" };
    expect(choicesFor(request({ client: exe }))).toEqual(["once", "for", "always", "deny"]);
    // A script can be imitated by another program: its answers count once.
    expect(choicesFor(request())).toEqual(["once", "deny"]);
    expect(choicesFor(request({ client: exe, policy: "always" }))).toEqual(["once", "deny"]);
    expect(choicesFor(request({ client: exe, method: "agent.unlock", operation: "admin" }))).toEqual(["once", "deny"]);
    expect(choicesFor(request({ client: exe, detail: "create agent key \"ci\"" }))).toEqual(["once", "deny"]);
  });

  it("says what is asked and how the client is known", () => {
    expect(wants(request())).toBe("an access token for “work”");
    expect(wants(request({ method: "agent.unlock" }))).toBe("to unlock the agent");
    expect(
      wants(
        request({
          method: "key.create",
          operation: "admin",
          policy: "always",
          detail: "create agent key “ci” allowing token on “work”, valid for 8 h",
        }),
      ),
    ).toBe("to create agent key “ci” allowing token on “work”, valid for 8 h");
    expect(identifiedBy(request())).toContain("script");
    expect(identifiedBy(request({ client: { pid: 1, identified_by: "terminal session", label: "bash" } }))).toContain("terminal");
  });
});

describe("TOTP display", () => {
  it("counts down from the fetched value and never below zero", () => {
    expect(secondsLeft(20, 1_000, 1_000)).toBe(20);
    expect(secondsLeft(20, 1_000, 6_500)).toBe(15);
    expect(secondsLeft(3, 0, 10_000)).toBe(0);
  });

  it("empties the ring as the period runs out", () => {
    expect(ringOffset(30, 30, 100)).toBe(0);
    expect(ringOffset(15, 30, 100)).toBe(50);
    expect(ringOffset(0, 30, 100)).toBe(100);
  });

  it("searches names, issuers and accounts", () => {
    const e = (name: string, issuer?: string): OtpInfo => ({ name, kind: "totp", algorithm: "SHA1", digits: 6, period: 30, issuer, recovery_codes_left: 0 });
    const all = [e("github"), e("bank", "ACME Bank"), e("aws")];
    expect(filterOtp(all, "acme").map((x) => x.name)).toEqual(["bank"]);
    expect(filterOtp(all, " GIT ").map((x) => x.name)).toEqual(["github"]);
    expect(filterOtp(all, "")).toHaveLength(3);
  });

  it("groups codes for reading", () => {
    expect(groupCode("123456")).toBe("123 456");
    expect(groupCode("12345678")).toBe("1234 5678");
  });
});

describe("accounts", () => {
  const acct = (over: Partial<AccountInfo>): AccountInfo => ({
    name: "work", provider: "oidc", client_id: "c", grant: "user", confidential: false, scopes: [], state: "signed_in", ...over,
  });
  it("shows signed in, expires soon, needs sign-in", () => {
    expect(accountState(acct({ access_expires_at: 10_000 }), 1_000)).toBe("signed in");
    expect(accountState(acct({ access_expires_at: 1_200 }), 1_000)).toBe("expires soon");
    expect(accountState(acct({ state: "needs_login" }), 1_000)).toBe("needs sign-in");
  });
  it("says when", () => {
    expect(when(1_300, 1_000)).toBe("in 5m");
    expect(when(1_000 - 3 * 3600, 1_000)).toBe("3h ago");
    expect(when(null, 1_000)).toBe("—");
  });
});
