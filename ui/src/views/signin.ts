// The sign-in window: the provider, the code to enter (with copy), a QR code of the
// verification link, "Open browser", and the live status until the daemon says done.
import * as api from "../api";
import { h, mount } from "../dom";
import type { SignInView } from "../wire";

let view: SignInView | null = null;
let status: { text: string; kind: "waiting" | "done" | "failed" } = { text: "", kind: "waiting" };

function render() {
  if (!view) {
    mount(h("section", { class: "empty", role: "status" }, h("h1", {}, "No sign-in in progress")));
    return;
  }
  const s = view.started;
  const link = s.verification_uri_complete ?? s.authorize_url ?? s.verification_uri ?? null;
  const copied = h("span", { class: "copied", role: "status" });
  mount(
    h(
      "section",
      { class: "signin" },
      h("h1", {}, `Sign in to ${view.account}`),
      h("p", { class: "provider" }, `Provider: ${view.provider || "unknown"}`),
      s.user_code
        ? h(
            "div",
            { class: "code-box" },
            h("p", {}, "Enter this code at ", h("span", { id: "verification-uri" }, s.verification_uri ?? ""), ":"),
            h("output", { id: "user-code", class: "user-code" }, s.user_code),
            h(
              "button",
              {
                type: "button",
                id: "copy-code",
                onclick: async () => {
                  try {
                    await navigator.clipboard.writeText(s.user_code ?? "");
                    copied.textContent = "Copied";
                  } catch {
                    copied.textContent = "Copy failed: select the code instead";
                  }
                },
              },
              "Copy code",
            ),
            copied,
          )
        : h("p", {}, "Finish signing in in your browser."),
      view.qr_svg
        ? h("img", {
            id: "qr",
            class: "qr",
            alt: `QR code of ${s.verification_uri_complete ?? "the sign-in link"}`,
            src: `data:image/svg+xml;base64,${btoa(view.qr_svg)}`,
          })
        : null,
      link
        ? h("button", { type: "button", id: "open-browser", class: "primary", onclick: () => void api.openUrl(link).catch((e) => setStatus(api.errorText(e), "failed")) }, "Open browser")
        : null,
      h("p", { id: "signin-status", class: `status ${status.kind}`, role: "status" }, status.text),
    ),
  );
}

function setStatus(text: string, kind: "waiting" | "done" | "failed") {
  status = { text, kind };
  render();
}

async function load() {
  view = await api.currentSignIn();
  status = { text: "Waiting for you to finish signing in…", kind: "waiting" };
  render();
}

export async function signinView() {
  document.title = "Keyfob: sign in";
  await api.onSignInView(() => void load());
  await api.onEvent((ev) => {
    if (ev.event === "signin.finished" && view && ev.account === view.account) {
      if (ev.ok) setStatus(`Signed in to ${ev.account}.`, "done");
      else setStatus(`Sign-in failed: ${ev.error ?? "unknown error"}`, "failed");
    }
  });
  await load();
}
