// The real UI with Tauri's IPC mocked by @tauri-apps/api/mocks: commands answer from the
// fixture the test injected, every call is recorded, and the test can emit events.
import { mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";

type Fixture = Record<string, unknown>;
declare global {
  interface Window {
    __fixture: Fixture;
    __calls: { cmd: string; args: unknown }[];
    __emit: (name: string, payload: unknown) => Promise<void>;
  }
}

window.__calls = [];
mockWindows("main");
mockIPC(
  (cmd, args) => {
    window.__calls.push({ cmd, args });
    const f = window.__fixture[cmd];
    return typeof f === "function" ? (f as (a: unknown) => unknown)(args) : f;
  },
  { shouldMockEvents: true },
);
window.__emit = (name, payload) => emit(name, payload);

await import("../src/main");
