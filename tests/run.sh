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
if ! git diff --quiet -- tests/fixtures examples; then
    echo "committed fixtures differ from what their scripts generate:" >&2
    git diff --stat -- tests/fixtures examples >&2
    exit 1
fi

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing Debian's chromium for the HTML report test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cargo test --workspace --locked
# The state machine executed by moto along every path recorded from the phase handler.
python3 -m unittest discover --start-directory tests/statemachine --pattern 'test_*.py'
cargo test --locked -p canary-gate-cli --test report -- --ignored
