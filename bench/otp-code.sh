#!/usr/bin/env bash
# Times `keyfob otp code` as a whole process (connect, hello, request, print) against a
# running keyfobd, next to /bin/true for scale. Uses the release build (scripts/build-release:
# the CLI as shipped, statically linked) and hyperfine.
#   bench/otp-code.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
need_apt hyperfine
runs="${1:-1000}"
scripts/build-release >/dev/null
bin="$PWD/dist"
dir=$(mktemp -d -t keyfob-bench.XXXXXX)
mkdir -p "$dir"/{home,run,config,data,state}; chmod 700 "$dir/run"
export HOME="$dir/home" XDG_RUNTIME_DIR="$dir/run" XDG_CONFIG_HOME="$dir/config" \
       XDG_DATA_HOME="$dir/data" XDG_STATE_HOME="$dir/state" KEYFOB_VAULT=file KEYFOB_PASSPHRASE=bench
trap '"$bin/keyfob" daemon stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
printf JBSWY3DPEHPK3PXP | "$bin/keyfob" otp add bench --secret - >/dev/null 2>&1
mkdir -p bench/results
hyperfine -N --warmup 100 --runs "$runs" --export-json bench/results/otp-code.json \
  "$bin/keyfob otp code bench" "/bin/true" >/dev/null
python3 - <<'PY'
import json, statistics
r = json.load(open("bench/results/otp-code.json"))["results"]
for x in r:
    t = sorted(x["times"])
    med = statistics.median(t) * 1e3
    p99 = t[int(len(t) * 0.99) - 1] * 1e3
    print(f"{x['command'].split('/')[-1]:<24} median {med:.3f} ms   p99 {p99:.3f} ms   ({len(t)} runs)")
PY
