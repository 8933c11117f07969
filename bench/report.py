#!/usr/bin/env python3
"""Turns the raw figures bench/run wrote to bench/results/ into bench/RESULTS.md (stdout).

Every figure comes from that one run. A whole-process figure is the median of each round's
median; min and max are those of the round medians; a ratio is taken within each round and
its median reported."""
import json
import statistics
import sys
from pathlib import Path

raw = Path(sys.argv[1])
rounds = int(sys.argv[2])


def jsonl(name):
    return [json.loads(l) for l in (raw / name).read_text().splitlines() if l.strip()]


def stats(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt(xs, unit="ms", digits=3):
    m, lo, hi = stats(xs)
    return f"{m:.{digits}f} {unit} | {lo:.{digits}f} | {hi:.{digits}f}"


def verdict(ok):
    return "**met**" if ok else "**not met**"


machine = json.loads((raw / "machine.json").read_text())
out = []
w = out.append
w("# Keyfob next to its peers: one run")
w("")
w(f"Written by `bench/run` on {machine['date']}: {machine['cpu']} ({machine['cores']} cores), "
  f"Linux {machine['kernel']}, {rounds} rounds. Keyfob {machine['keyfob']}: the binaries "
  "inside the .deb that `scripts/package` builds (unpacked, not the build tree's). Peers: "
  f"{machine['peers']}. A private home, D-Bus session and gnome-keyring; the real OpenID "
  "provider in tests/idp on loopback. Each figure: median of the rounds' medians, then the "
  "lowest and highest round median. Raw figures: `bench/results/`.")
w("")
w("Re-run with `bench/run [ROUNDS]`; it replaces this file.")
w("")

# 1. Whole processes.
tok = jsonl("token.rounds.jsonl")
# What touching memory again after a pause cost in this run (`keyfob-bench pages`): on some
# hours of this VM, a page untouched for seconds costs tens of µs; on others, nothing.
pages_file = raw / "pages.json"
pg = json.loads(pages_file.read_text()) if pages_file.exists() else None
idle_penalty = bool(pg and pg["after_pause_us_per_page"] and pg["back_to_back_us_per_page"]
                    and statistics.median(pg["after_pause_us_per_page"]) >= 1.0)
names = list(tok[0]["median_ms"])
w("## A cached access token, as a whole process")
w("")
w("hyperfine -N, 300 runs per command per round. `keyfob token work` is served from the "
  "agent's cache; `oidc-token peer` from oidc-agent's; `secret-tool lookup` reads a stored "
  "secret from gnome-keyring. `floor: C client` (bench/floor-client.c) is a static C program "
  "that sends keyfobd the same two lines `keyfob token work` sends and waits for the replies, "
  "doing nothing else: the least a whole process that asks this keyfobd can take. The same "
  "client also asks two floor servers: `C server` (bench/floor-server.c), a blocking C "
  "program that reads the lines and writes two fixed replies, the least any server adds; and "
  "the `JSON floor` (`keyfob-bench echo --json`), tokio on one thread like keyfobd, which "
  "decodes each request and encodes a token reply as keyfobd does and does nothing else (no "
  "policy, cache, audit): the least a server speaking keyfobd's protocol adds. The `blocking "
  "JSON floor` (`--blocking`) is the same without tokio: a plain blocking loop, to see what "
  "the event loop adds.")
w("")
w("| command | median | min | max |")
w("|---|---|---|---|")
for n in names:
    w(f"| `{n}` | {fmt([r['median_ms'][n] for r in tok])} |")
kf = lambda r: r["median_ms"]["keyfob token"]
r_oidc = [kf(r) / r["median_ms"]["oidc-token"] for r in tok]
r_st = [kf(r) / r["median_ms"]["secret-tool lookup"] for r in tok]
d_true = [kf(r) - r["median_ms"]["/bin/true"] for r in tok]
w("")
w("| ratio (within each round) | median | min | max | target | |")
w("|---|---|---|---|---|---|")
w(f"| keyfob token / oidc-token | {fmt(r_oidc, '×', 2)} | ≤ 0.6 × | {verdict(statistics.median(r_oidc) <= 0.6)} |")
w(f"| keyfob token − /bin/true | {fmt(d_true, 'ms', 3)} | ≤ 0.1 ms | {verdict(statistics.median(d_true) <= 0.1)} |")
w(f"| keyfob token / secret-tool lookup | {fmt(r_st, '×', 3)} | ≤ 0.1 × | {verdict(statistics.median(r_st) <= 0.1)} |")
if "floor: C client" in names:
    floor = lambda r: r["median_ms"]["floor: C client"]
    w(f"| keyfob token − floor: C client | {fmt([kf(r) - floor(r) for r in tok], 'ms', 3)} | | |")
    w(f"| floor: C client − /bin/true | {fmt([floor(r) - r['median_ms']['/bin/true'] for r in tok], 'ms', 3)} | | |")
    w(f"| floor: C client / oidc-token | {fmt([floor(r) / r['median_ms']['oidc-token'] for r in tok], '×', 2)} | | |")
for server in ("C server", "JSON floor", "blocking JSON floor"):
    n = f"floor: C client, {server}"
    if n in names:
        w(f"| {n} − /bin/true | {fmt([r['median_ms'][n] - r['median_ms']['/bin/true'] for r in tok], 'ms', 3)} | | |")
        w(f"| {n} / oidc-token | {fmt([r['median_ms'][n] / r['median_ms']['oidc-token'] for r in tok], '×', 2)} | | |")
cli = jsonl("cli.rounds.jsonl") if (raw / "cli.rounds.jsonl").exists() else []
if cli:
    w("")
    w("The CLI itself, in a run of its own: `keyfob token` asking the C server (which answers "
      "as keyfobd would, with fixed replies) next to the static C client asking it.")
    w("")
    w("| command | median | min | max |")
    w("|---|---|---|---|")
    for n in cli[0]["median_ms"]:
        w(f"| `{n}` | {fmt([r['median_ms'][n] for r in cli])} |")
    w("")
    w("| difference (within each round) | median | min | max |")
    w("|---|---|---|---|")
    kc = lambda r: r["median_ms"]["keyfob token, C server"]
    w(f"| keyfob token, C server − /bin/true | {fmt([kc(r) - r['median_ms']['/bin/true'] for r in cli], 'ms', 3)} |")
    w(f"| keyfob token, C server − floor: C client, C server | {fmt([kc(r) - r['median_ms']['floor: C client, C server'] for r in cli], 'ms', 3)} |")
if "floor: C client, JSON floor" in names:
    jf = [r["median_ms"]["floor: C client, JSON floor"] - r["median_ms"]["/bin/true"] for r in tok]
    w("")
    w(f"The two targets ask that a whole `keyfob token` process be within about 0.1 ms of "
      f"`/bin/true`. A static C client asking a server that only speaks the protocol (the JSON "
      f"floor) is already {statistics.median(jf):.3f} ms above it in this run, before any client "
      f"or agent work: a JSON decoder touches more code than a C server writing fixed replies "
      f"does" + (", and on this machine, in this run, memory left untouched for a while was "
                 f"slow to touch again (below, and bench/README.md)." if idle_penalty else "."))
    if "floor: C client, blocking JSON floor" in names:
        bf = [r["median_ms"]["floor: C client, blocking JSON floor"] - r["median_ms"]["/bin/true"] for r in tok]
        loop_cost = statistics.median(jf) - statistics.median(bf)
        w(f"Without tokio (the blocking JSON floor) it is {statistics.median(bf):.3f} ms above "
          f"`/bin/true`: " + ("the event loop is not where the time goes." if loop_cost < 0.03
                             else f"the event loop adds {loop_cost:.3f} ms."))
    if cli:
        cli_cost = statistics.median([kc(r) - r['median_ms']['/bin/true'] for r in cli])
        w(f"Asking the C server, `keyfob token` is {cli_cost:.3f} ms above `/bin/true`"
          + (": the CLI itself costs little." if cli_cost < 0.1 else "."))
    if "floor: C client" in names:
        kd = statistics.median([floor(r) - r['median_ms']['/bin/true'] for r in tok])
        w(f"The C client asking keyfobd is {kd:.3f} ms above `/bin/true`"
          + (f", {kd - statistics.median(jf):.3f} ms more than asking the JSON floor: keyfobd's "
             f"own work on each connection (the peer's identity from /proc, policy, rate limit, "
             f"cache, audit record)." if kd > statistics.median(jf) else "."))
w("")

otp = jsonl("otp.rounds.jsonl")
w("## A one-time code")
w("")
w("| command | median | min | max |")
w("|---|---|---|---|")
for n in otp[0]["median_ms"]:
    w(f"| `{n}` | {fmt([r['median_ms'][n] for r in otp])} |")
r_otp = [r["median_ms"]["keyfob otp code"] / r["median_ms"]["oathtool --totp"] for r in otp]
w("")
w(f"keyfob otp code / oathtool --totp: {fmt(r_otp, '×', 2).replace(' | ', ' (min ', 1).replace(' | ', ', max ', 1)})")
w("")

git = jsonl("git.rounds.jsonl")
w("## git's credential helper")
w("")
w("What git runs for every fetch and push: `keyfob git-credential get` with a cached token, "
  "and git's own `git-credential-libsecret get` reading a stored password from gnome-keyring. "
  "hyperfine 1.15 has no `--input`, so each runs as `sh -c 'exec … < request'`; the same "
  "wrapping of `/bin/true` is measured and taken off.")
w("")
w("| command | median | min | max |")
w("|---|---|---|---|")
for n in git[0]["median_ms"]:
    w(f"| `{n}` | {fmt([r['median_ms'][n] for r in git])} |")
wrap = lambda r, n: r["median_ms"][n] - r["median_ms"]["wrapping"]
r_git = [wrap(r, "keyfob git-credential get") / wrap(r, "git-credential-libsecret get") for r in git]
w("")
w(f"Without the wrapping, keyfob / libsecret: {fmt(r_git, '×', 3).replace(' | ', ' (min ', 1).replace(' | ', ', max ', 1)})")
w("")

# 2. IPC.
ipc = jsonl("ipc.rounds.jsonl")
rps = jsonl("rps.rounds.jsonl")
w("## IPC")
w("")
w("`keyfob-bench` (bench/src/main.rs) against the running keyfobd: `token.get` for a cached "
  "token. The floor is a bare line echo server on the same kind of socket (a Unix stream "
  "socket through interprocess, tokio on one thread, as keyfobd runs), sent a line of the same "
  "size. The JSON floor (`keyfob-bench echo --json`) is the same server decoding each line as "
  "keyfobd decodes a request and encoding a token reply: what the protocol alone costs. All "
  "clients only write a line and read one back.")
w("")
w(f"One client, one request at a time: round trip median {fmt([r['rtt']['median_us'] for r in ipc], 'µs', 1).split(' | ')[0]}, "
  f"p99 {fmt([r['rtt']['p99_us'] for r in ipc], 'µs', 1).split(' | ')[0]} (medians over rounds).")
w("")
has_json = all("json" in r for r in rps)
span = lambda xs, f: f"{f(statistics.median(xs))} ({f(min(xs))}–{f(max(xs))})"
count = lambda x: f"{x:,.0f}"
share = lambda x: f"{x:.2f}"
if has_json:
    w("| connections | keyfobd requests/s (median, min, max) | echo floor requests/s | JSON floor requests/s | keyfobd / echo | JSON floor / echo | keyfobd / JSON floor |")
    w("|---|---|---|---|---|---|---|")
else:
    w("| connections | keyfobd requests/s (median, min, max) | echo floor requests/s | keyfobd / floor |")
    w("|---|---|---|---|")
ratio64 = json64 = None
for c in sorted({r["conns"] for r in rps}):
    rs = [r for r in rps if r["conns"] == c]
    k = [r["keyfob"]["rps"] for r in rs]
    e = [r["echo"]["rps"] for r in rs]
    q = [r["keyfob"]["rps"] / r["echo"]["rps"] for r in rs]
    if c == 64:
        ratio64 = statistics.median(q)
    row = f"| {c} | {span(k, count)} | {span(e, count)} |"
    if has_json:
        j = [r["json"]["rps"] for r in rs]
        je = [r["json"]["rps"] / r["echo"]["rps"] for r in rs]
        kj = [r["keyfob"]["rps"] / r["json"]["rps"] for r in rs]
        if c == 64:
            json64 = statistics.median(je)
        row += f" {span(j, count)} | {span(q, share)} | {span(je, share)} | {span(kj, share)} |"
    else:
        row += f" {span(q, share)} |"
    w(row)
w("")
target = f"Target at 64 connections: ≥ 0.8 × the echo floor: {verdict(ratio64 is not None and ratio64 >= 0.8)} ({ratio64:.2f} ×)."
if json64 is not None:
    target += (f" A server that does nothing but decode requests and encode replies in keyfobd's "
               f"protocol reaches {json64:.2f} × the echo floor in this run, so no server speaking "
               f"this JSON-RPC protocol meets 0.8 × here; keyfobd's own work (policy, rate limit, "
               f"cache, audit record, wiping) is the rest of the gap.")
w(target)
w("")

# 3. Waiting callers.
prov = json.loads((raw / "provider.json").read_text())
kept = json.loads((raw / "provider-kept.json").read_text())
one = json.loads((raw / "caller-one.json").read_text())["all_served_ms"]
cal = json.loads((raw / "callers.json").read_text())
served = cal["all_served_ms"]
above = [s - kept["median_ms"] for s in served]
fan = [s - statistics.median(one) for s in served]
w("## 500 callers waiting at an expired token")
w("")
w("Connected clients ask for an account's token the moment its access token has expired "
  "(a provider whose tokens live 2 s); the agent refreshes once, with rotation (the rotated "
  "refresh token is stored in gnome-keyring before anyone is served), and serves them all the "
  "same new token. The provider's own latency for that refresh is measured by a client that "
  "does nothing else: on a new connection each time, and on one kept-alive connection after "
  f"the same pause as between the agent's refreshes ({kept['pause_ms'] / 1000:.0f} s), which is "
  "how the agent's HTTP client talks to it. The agent's refresh crosses three more processes "
  "than the provider's own client (keyfobd, the D-Bus daemon and gnome-keyring)"
  + ("; in this run, memory left untouched for seconds was slow to touch again, so each of "
     "them answered more slowly after the pause (below, and bench/README.md)." if idle_penalty
     else "."))
w("")
w("| | median | min | max |")
w("|---|---|---|---|")
w(f"| provider, new connection ({prov['n']} refreshes) | {prov['median_ms']:.2f} ms | {prov['min_ms']:.2f} | {prov['max_ms']:.2f} |")
w(f"| provider, kept-alive connection after {kept['pause_ms'] / 1000:.0f} s ({kept['n']} refreshes) | {kept['median_ms']:.2f} ms | {kept['min_ms']:.2f} | {kept['max_ms']:.2f} |")
w(f"| 1 caller served | {fmt(one, 'ms', 2)} |")
if "first_served_ms" in cal:
    w(f"| first of 500 callers served | {fmt(cal['first_served_ms'], 'ms', 2)} |")
# Since first_served_ms, the clock starts when the parked callers are let go; before, it
# started before the bench made its 500 tasks.
since = "they are let go" if "first_served_ms" in cal else "before the bench made its 500 tasks"
w(f"| all 500 callers served, from when {since} | {fmt(served, 'ms', 2)} |")
if "last_asked_ms" in cal:
    w(f"| the last of the 500 callers began its request (the callers' own share) | {fmt(cal['last_asked_ms'], 'ms', 2)} |")
w(f"| 500 callers, above the provider (kept-alive) | {fmt(above, 'ms', 2)} |")
w(f"| 500 callers, above 1 caller | {fmt(fan, 'ms', 2)} |")
store_file = raw / "keychain-store.json"
store = json.loads(store_file.read_text()) if store_file.exists() else None
if store:
    w(f"| keychain store by itself, after {store['pause_ms'] / 1000:.0f} s ({store['n']} stores) | {store['median_ms']:.2f} ms | {store['min_ms']:.2f} | {store['max_ms']:.2f} |")
w("")
# Wall time less the provider's answer as keyfobd saw it in the same rounds (its log): the
# 1-caller and 500-caller rounds meet the provider in different moods, so the walls alone
# compare the provider more than the fan-out.
def rest_of(phases_file, wall):
    f = raw / phases_file
    if not f.exists():
        return None
    prov_ms = [p["provider_us"] for p in json.loads(f.read_text())["refreshes_ms"] if "provider_us" in p]
    return statistics.median(wall) - statistics.median(prov_ms) if prov_ms else None
rest_one, rest_all = rest_of("phases-one.json", one), rest_of("phases-callers.json", served)
fan_text = (f"serving 499 more callers than one costs {rest_all - rest_one:.1f} ms beyond the "
            f"provider's answer as keyfobd saw it, in the phases below"
            if rest_one is not None and rest_all is not None
            else f"serving 499 more callers than one costs {statistics.median(fan):.1f} ms")
w(f"Target: within the provider's latency + 25 ms: {verdict(statistics.median(above) <= 25)} "
  f"({statistics.median(above):.1f} ms above the kept-alive provider; {fan_text}).")
own_store = []
for f in ("phases-one.json", "phases-callers.json"):
    if (raw / f).exists():
        own_store += [p["window_us"] for p in json.loads((raw / f).read_text())["refreshes_ms"] if "window_us" in p]
if own_store:
    st = statistics.median(own_store)
    w(f"The rotated refresh token is stored in the keychain before anyone is served (a grant "
      f"is never lost): keyfobd's own stores in these rounds took {st:.1f} ms (median, its "
      f"log){', more than the 25 ms the target allows' if st > 25 else ''}.")
if pg and pg["after_pause_us_per_page"] and pg["back_to_back_us_per_page"]:
    quiet, busy = statistics.median(pg["after_pause_us_per_page"]), statistics.median(pg["back_to_back_us_per_page"])
    w(f"On this machine, in this run, touching a page of memory again after {pg['pause_ms'] / 1000:.0f} s "
      f"untouched cost {quiet:.2f} µs (back to back: {busy:.2f} µs; `keyfob-bench pages`, "
      f"{pg['pages']} pages). "
      + (f"Every process a refresh crosses pays it for every page it touches again, and 500 "
         f"waiting callers are 500 connections' memory in keyfobd and in the callers: at this "
         f"rate 25 ms is about {25000 / quiet:.0f} pages." if idle_penalty
         else "No cost of its own, then: a quiet process answered as a busy one does."))
if store:
    w(f"For reference, the same store made apart from keyfobd (`keyfob-bench keychain-store`: "
      f"the same library, an existing item, after the same pause) took {store['median_ms']:.1f} ms "
      f"in this run.")
w("")
phase_files = [(label, raw / f) for label, f in (("1 caller", "phases-one.json"), ("500 callers", "phases-callers.json"))]
if all(f.exists() for _, f in phase_files):
    w("Where a refresh waited, from keyfobd's own log of each refresh in these rounds "
      "(medians, then min and max): reading the refresh token from gnome-keyring, the "
      "provider's answer as keyfobd's HTTP client saw it (with the in-flight mark written "
      "before it), storing the rotated token in gnome-keyring, and the new ID token checked "
      "and the mark cleared, all before anyone is served. The agent's own work is the rest: "
      "from the callers' requests to the refresh, and from the cached token to the last reply.")
    w("")
    w("| rounds | refreshes | keychain read | provider | keychain store | ID token checked, mark cleared | all served, above the provider as keyfobd saw it |")
    w("|---|---|---|---|---|---|---|")
    for (label, f), wall in zip(phase_files, (one, served)):
        ph = json.loads(f.read_text())["refreshes_ms"]
        if not ph:
            w(f"| {label} | 0 | | | | | |")
            continue
        col = lambda k: [p[k] for p in ph if k in p]
        cell = lambda xs: f"{statistics.median(xs):.1f} ms ({min(xs):.1f}–{max(xs):.1f})" if xs else ""
        rest = statistics.median(wall) - statistics.median(col("provider_us"))
        w(f"| {label} | {len(ph)} | {cell(col('load_us'))} | {cell(col('provider_us'))} | "
          f"{cell(col('window_us'))} | {cell(col('settle_us'))} | {rest:.1f} ms |")
    w("")

# 4. Memory and start.
mem = json.loads((raw / "memory.json").read_text())
mb = lambda k: mem[k] / 1024
w("## keyfobd's memory (RSS)")
w("")
w("| state | RSS | target | |")
w("|---|---|---|---|")
w(f"| idle, just started (52 accounts, 1 code) | {mb('idle_kib'):.1f} MB | ≤ 10 MB | {verdict(mb('idle_kib') <= 10)} |")
w(f"| 1,000 idle connections (each past `hello`) | {mb('idle_1000_connections_kib'):.1f} MB | ≤ 20 MB | {verdict(mb('idle_1000_connections_kib') <= 20)} |")
w(f"| after 10,000 token requests across 50 accounts | {mb('after_10000_requests_50_accounts_kib'):.1f} MB | | |")
w("")
cold = json.loads((raw / "cold.json").read_text())["results"][0]["times"]
cold_ms = [t * 1e3 for t in cold]
w("## Cold start")
w("")
w(f"No keyfobd running → `keyfob token work` printed: the CLI starts keyfobd, which opens the "
  f"keychain vault and, with no access token cached yet, refreshes at the provider. "
  f"{len(cold_ms)} runs: median {statistics.median(cold_ms):.1f} ms, min {min(cold_ms):.1f}, "
  f"max {max(cold_ms):.1f}.")
w("")
tray = json.loads((raw / "tray.json").read_text())
w("## The tray (release build, under Xvfb)")
w("")
w("RSS of the tray with its child processes: `keyfob-tray --hidden` becomes the resident tray icon (keyfob-tray-resident, no WebKit), which starts the window app (keyfob-tray) for a prompt; that app ends with its last window.")
w("")
w("| state | RSS | WebKit web processes | target | |")
w("|---|---|---|---|---|")
w(f"| started `--hidden`, connected, no window | {tray['hidden_kib'] / 1024:.1f} MB | {tray['hidden_web_processes']} | ≤ 60 MB, none | "
  f"{verdict(tray['hidden_kib'] / 1024 <= 60 and tray['hidden_web_processes'] == 0)} |")
w(f"| the approval prompt open | {tray['window_kib'] / 1024:.1f} MB | {tray['window_web_processes']} | | |")
w("")
print("\n".join(out))
