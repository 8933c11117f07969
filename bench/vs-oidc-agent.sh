#!/usr/bin/env bash
# Keyfob next to oidc-agent (Debian oidc-agent-cli) against the same real OpenID provider
# (tests/idp), in one run:
#   1. a cached access token as a whole process: `keyfob token work` vs `oidc-token peer`;
#   2. one refresh with rotation, against the provider's own latency for the same request;
#   3. 50 callers waiting at once for a refresh.
# Uses the release binaries (scripts/build-release). Writes bench/results/vs-oidc-agent.*.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
need_apt hyperfine oidc-agent-cli curl
need_cmd node "install Node.js"
[ -d tests/idp/node_modules/oidc-provider ] || npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error
scripts/build-release >/dev/null
bin="$PWD/dist"
work=$(mktemp -d -t keyfob-vs.XXXXXX)
mkdir -p "$work"/{home,run,config,data,state} bench/results
chmod 700 "$work/run"
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run" XDG_CONFIG_HOME="$work/config" \
       XDG_DATA_HOME="$work/data" XDG_STATE_HOME="$work/state" KEYFOB_VAULT=file KEYFOB_PASSPHRASE=bench
# oidc-agent has no approvals: compare like with like (the policy check still runs).
mkdir -p "$work/config/keyfob"
printf '[policy]\ntoken = "never"\n' >"$work/config/keyfob/config.toml"
idp_pid=""; agent_pid=""
cleanup() {
  "$bin/keyfob" daemon stop >/dev/null 2>&1 || true
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  [ -n "$idp_pid" ] && kill "$idp_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The provider, with access tokens that live an hour (the cached case never refreshes).
IDP_AT_TTL=3600 node tests/idp/server.mjs > "$work/idp.log" 2>/dev/null &
idp_pid=$!
for _ in $(seq 1 100); do
  issuer=$(sed -n 's/.*"event":"listening","issuer":"\([^"]*\)".*/\1/p' "$work/idp.log" | head -1)
  [ -n "$issuer" ] && break; sleep 0.1
done
[ -n "$issuer" ] || { echo "provider did not start" >&2; exit 1; }
cid=keyfob-confidential; csec=keyfob-confidential-secret

# Keyfob: an account with the confidential client, signed in by the device flow.
printf '%s' "$csec" | "$bin/keyfob" account add work --provider oidc --issuer "$issuer" \
  --client-id "$cid" --client-secret - --scope "openid offline_access" 2>/dev/null
coproc LOGIN { "$bin/keyfob" login work --device --json 2>/dev/null; }
read -r started <&"${LOGIN[0]}"
node tests/idp/browser.mjs "$(printf '%s' "$started" | sed -n 's/.*"verification_uri_complete":"\([^"]*\)".*/\1/p')" >/dev/null
read -r _ <&"${LOGIN[0]}"

# oidc-agent: its own grant for the same client, made by a device flow driven the same way.
dev=$(curl -s -u "$cid:$csec" -d "scope=openid offline_access" "$issuer/device/auth")
node tests/idp/browser.mjs "$(printf '%s' "$dev" | python3 -c 'import json,sys;print(json.load(sys.stdin)["verification_uri_complete"])')" >/dev/null
dc=$(printf '%s' "$dev" | python3 -c 'import json,sys;print(json.load(sys.stdin)["device_code"])')
rt=""
for _ in $(seq 1 30); do
  resp=$(curl -s -u "$cid:$csec" -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d "device_code=$dc" "$issuer/token")
  rt=$(printf '%s' "$resp" | python3 -c 'import json,sys;print(json.load(sys.stdin).get("refresh_token",""))')
  [ -n "$rt" ] && break; sleep 1
done
[ -n "$rt" ] || { echo "could not get a refresh token for oidc-agent" >&2; exit 1; }
eval "$(oidc-agent 2>/dev/null)"
agent_pid="$OIDCD_PID"
OIDC_ENCRYPTION_PW=bench oidc-gen peer --issuer="$issuer/" --client-id="$cid" --client-secret="$csec" \
  --rt="$rt" --scope="openid offline_access" --pw-env --prompt=none --confirm-yes --no-url-call >/dev/null 2>&1
oidc-token peer >/dev/null
"$bin/keyfob" token work >/dev/null

echo "== 1. cached token, whole process (hyperfine -N, 500 runs)"
hyperfine -N --warmup 50 --runs 500 --export-json bench/results/vs-oidc-agent-cached.json \
  "$bin/keyfob token work" "oidc-token peer" "/bin/true" >/dev/null 2>&1

echo "== 2./3. refresh with rotation"
python3 - "$issuer" "$bin/keyfob" <<'PY' | tee bench/results/vs-oidc-agent-refresh.txt
import json, statistics, subprocess, sys, time, urllib.parse, urllib.request, base64
issuer, keyfob = sys.argv[1], sys.argv[2]
cid, csec = "keyfob-confidential", "keyfob-confidential-secret"
auth = "Basic " + base64.b64encode(f"{cid}:{csec}".encode()).decode()

def post(form):
    req = urllib.request.Request(issuer + "/token", data=urllib.parse.urlencode(form).encode(),
                                 headers={"Authorization": auth})
    with urllib.request.urlopen(req) as r:
        return json.load(r)

# The provider's own latency: a client that does nothing but refresh (with rotation) in-process.
dev = json.load(urllib.request.urlopen(urllib.request.Request(issuer + "/device/auth",
      data=b"scope=openid+offline_access", headers={"Authorization": auth})))
subprocess.run(["node", "tests/idp/browser.mjs", dev["verification_uri_complete"]], capture_output=True, check=True)
while True:
    try:
        rt = post({"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": dev["device_code"]})["refresh_token"]; break
    except urllib.error.HTTPError:
        time.sleep(1)
raw = []
for _ in range(30):
    t = time.perf_counter(); rt = post({"grant_type": "refresh_token", "refresh_token": rt})["refresh_token"]; raw.append(time.perf_counter() - t)

def run(cmd, n=1):
    t = time.perf_counter()
    ps = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(n)]
    for p in ps:
        if p.wait() != 0: sys.exit(f"{cmd} failed: {p.stderr.read().decode()}")
    return time.perf_counter() - t

# --min-ttl / --time beyond the token's life make each call refresh (rotating the token).
kf_one = [run([keyfob, "token", "work", "--min-ttl", "999999"]) for _ in range(30)]
oa_one = [run(["oidc-token", "peer", "--time=999999"]) for _ in range(30)]
true_50 = [run(["/bin/true"], 50) for _ in range(9)]
kf_50 = [run([keyfob, "token", "work", "--min-ttl", "999999"], 50) for _ in range(9)]
oa_50 = [run(["oidc-token", "peer", "--time=999999"], 50) for _ in range(5)]
ms = lambda xs: statistics.median(xs) * 1e3
print(f"provider refresh (in-process client)   median {ms(raw):7.2f} ms")
print(f"keyfob token, one refresh              median {ms(kf_one):7.2f} ms  (provider + {ms(kf_one) - ms(raw):.2f} ms)")
print(f"oidc-token, one refresh                median {ms(oa_one):7.2f} ms  (provider + {ms(oa_one) - ms(raw):.2f} ms)")
print(f"launching 50 x /bin/true (the floor)    median {ms(true_50):7.2f} ms")
print(f"keyfob, 50 callers waiting             median {ms(kf_50):7.2f} ms  (provider + {ms(kf_50) - ms(raw):.2f} ms; above the launch floor: provider + {ms(kf_50) - ms(true_50) - ms(raw):.2f} ms)")
print(f"oidc-token, 50 callers waiting         median {ms(oa_50):7.2f} ms  (provider + {ms(oa_50) - ms(raw):.2f} ms)")
PY

python3 - <<'PY' | tee bench/results/vs-oidc-agent-cached.txt
import json, statistics
r = json.load(open("bench/results/vs-oidc-agent-cached.json"))["results"]
med = {x["command"].split("/")[-1]: statistics.median(x["times"]) * 1e3 for x in r}
for k, v in med.items():
    print(f"{k:<28} median {v:.3f} ms")
kf = next(v for k, v in med.items() if k.startswith("keyfob"))
oa = next(v for k, v in med.items() if k.startswith("oidc-token"))
print(f"ratio keyfob / oidc-token: {kf / oa:.2f} (target <= 0.70)")
PY
