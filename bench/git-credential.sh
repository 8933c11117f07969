#!/usr/bin/env bash
# `keyfob git-credential get` as a whole process (what git runs for every fetch and push) next
# to git's own libsecret helper answering from a real gnome-keyring, in one run, hyperfine -N.
# Keyfob answers with a cached bearer token of an account signed in at tests/idp; libsecret
# with a stored password. Uses the release binaries (scripts/build-release) and builds
# git-credential-libsecret from git's contrib sources. Writes bench/results/git-credential.*.
#   bench/git-credential.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
need_apt hyperfine libsecret-1-dev libglib2.0-dev gnome-keyring dbus-daemon dbus-bin make gcc
need_cmd node "install Node.js"
need_cmd git "install git"
runs="${1:-500}"
[ -d tests/idp/node_modules/oidc-provider ] || npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error
scripts/build-release >/dev/null
bin="$PWD/dist"
work=$(mktemp -d -t keyfob-gitbench.XXXXXX)
mkdir -p "$work"/{home,run,config,data,state,libsecret} bench/results
chmod 700 "$work/run"
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run" XDG_CONFIG_HOME="$work/config" \
       XDG_DATA_HOME="$work/data" XDG_STATE_HOME="$work/state" KEYFOB_VAULT=file KEYFOB_PASSPHRASE=bench
mkdir -p "$work/config/keyfob"
printf '[policy]\ntoken = "never"\n' >"$work/config/keyfob/config.toml"

# git's libsecret helper, built from the sources git ships.
src=/usr/share/doc/git/contrib/credential/libsecret
[ -f "$src/git-credential-libsecret.c" ] || { echo "error: $src is missing (Debian package git)" >&2; exit 1; }
cp "$src"/* "$work/libsecret/"
make -s -C "$work/libsecret" >/dev/null
libsecret="$work/libsecret/git-credential-libsecret"

idp_pid=""
cleanup() {
  "$bin/keyfob" daemon stop >/dev/null 2>&1 || true
  [ -n "$idp_pid" ] && kill "$idp_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

IDP_AT_TTL=3600 node tests/idp/server.mjs > "$work/idp.log" 2>/dev/null &
idp_pid=$!
for _ in $(seq 1 100); do
  issuer=$(sed -n 's/.*"event":"listening","issuer":"\([^"]*\)".*/\1/p' "$work/idp.log" | head -1)
  [ -n "$issuer" ] && break; sleep 0.1
done
[ -n "$issuer" ] || { echo "provider did not start" >&2; exit 1; }
"$bin/keyfob" account add work --provider oidc --issuer "$issuer" --client-id keyfob-native \
  --scope "openid offline_access" 2>/dev/null
coproc LOGIN { "$bin/keyfob" login work --device --json 2>/dev/null; }
read -r started <&"${LOGIN[0]}"
node tests/idp/browser.mjs "$(printf '%s' "$started" | sed -n 's/.*"verification_uri_complete":"\([^"]*\)".*/\1/p')" >/dev/null
read -r _ <&"${LOGIN[0]}"

ask='capability[]=authtype\nprotocol=https\nhost=git.example.test\n'
printf "$ask" >"$work/ask"

# Both inside one private D-Bus session with an unlocked keyring, so libsecret has a store.
dbus-run-session -- bash -s "$bin" "$libsecret" "$work" "$runs" <<'INNER'
set -euo pipefail
bin="$1"; libsecret="$2"; work="$3"; runs="$4"
printf 'bench\n' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
printf 'protocol=https\nhost=git.example.test\nusername=u\npassword=p\n\n' | "$libsecret" store
got=$("$libsecret" get <"$work/ask")
case "$got" in *password=p*) ;; *) echo "libsecret did not answer" >&2; exit 1 ;; esac
got=$("$bin/keyfob" git-credential --account work get <"$work/ask")
case "$got" in *credential=*) ;; *) echo "keyfob did not answer" >&2; exit 1 ;; esac
# git feeds the helper on stdin; this hyperfine has no --input, so each command is
# `sh -c 'exec … < ask'`, and the same with /bin/true measures what that wrapping costs.
hyperfine -N --warmup 50 --runs "$runs" \
  --export-json bench/results/git-credential.json \
  -n "keyfob git-credential get" "sh -c 'exec $bin/keyfob git-credential --account work get < $work/ask'" \
  -n "git-credential-libsecret get" "sh -c 'exec $libsecret get < $work/ask'" \
  -n "wrapping (sh, exec /bin/true)" "sh -c 'exec /bin/true < $work/ask'" >/dev/null
INNER

python3 - <<'PY' | tee bench/results/git-credential.txt
import json, statistics
r = json.load(open("bench/results/git-credential.json"))["results"]
med = {}
for x in r:
    t = sorted(x["times"])
    med[x["command"]] = statistics.median(t) * 1e3
    p99 = t[int(len(t) * 0.99) - 1] * 1e3
    print(f"{x['command']:<30} median {med[x['command']]:.3f} ms   p99 {p99:.3f} ms   ({len(t)} runs)")
w = med["wrapping (sh, exec /bin/true)"]
k, l = med["keyfob git-credential get"] - w, med["git-credential-libsecret get"] - w
print(f"without the wrapping: keyfob {k:.3f} ms, libsecret {l:.3f} ms; keyfob / libsecret = {k / l:.2f} (target <= 0.2)")
PY
