#!/usr/bin/env bash
# The project's test command: regenerates the scipy reference fixtures to prove the committed
# ones come from the committed script, runs every Rust test in the workspace, runs the state
# machine in moto along the recorded paths, then opens the HTML report in headless Chromium
# (Debian's package, installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import scipy, numpy' 2>/dev/null; then
    echo "installing scipy and numpy for the reference fixtures"
    python3 -m pip install --quiet --disable-pip-version-check 'scipy==1.17.1' 'numpy==2.4.6'
fi
if ! command -v moto_server >/dev/null 2>&1; then
    echo "installing moto (the local AWS-API emulator the adapter tests start on 127.0.0.1)"
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1'
fi
for script in tests/fixtures/gen_*.py; do
    [ -e "$script" ] || continue
    python3 "$script"
done
python3 examples/windows/make_windows.py
# The regenerated files must equal the committed ones; floating-point results may differ in
# the last bits between machines (scipy/numpy builds, CPU paths), so numbers are compared to
# 1e-12 relative and the committed file is kept when that is the only difference.
for f in $(git diff --name-only -- tests/fixtures examples); do
    if ! git show "HEAD:$f" | python3 -c '
import json, math, sys
def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
sys.exit(0 if same(json.load(sys.stdin), json.load(open(sys.argv[1]))) else 1)
' "$f"; then
        echo "committed fixture $f differs from what its script generates:" >&2
        git diff --stat -- "$f" >&2
        exit 1
    fi
    echo "$f: regenerated equal to the committed one within 1e-12 (last-bit differences only)"
    git checkout -- "$f"
done

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing Debian's chromium for the HTML report test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cargo test --workspace --locked
# The state machine executed by moto along every path recorded from the phase handler.
python3 -m unittest discover --start-directory tests/statemachine --pattern 'test_*.py'
cargo test --locked -p canary-gate-cli --test report -- --ignored
