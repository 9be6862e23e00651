#!/usr/bin/env bash
# Builds every Lambda function under functions/ (phase, codedeploy-hook, soak-check) for
# arm64 with cargo-lambda (zig as the cross linker), as `sam build` does with BuildMethod
# rust-cargolambda, and reports each deployment zip's size (goal: at most 5 MB). Installs
# cargo-lambda and ziglang from PyPI when missing, at the versions infra/tools.sh pins.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-lambda >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'cargo-lambda==1.9.2' 'ziglang==0.17.1'
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    if ! rustup target add aarch64-unknown-linux-gnu; then
        echo "SKIPPED: the aarch64 standard library cannot be installed on this machine" >&2
        exit 0
    fi
fi
limit=$((5 * 1024 * 1024))
for dir in functions/*/; do
    name=$(basename "$dir")
    cargo lambda build --release --arm64 -p "$name"
    zip="target/lambda/$name.zip"
    python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[2], "bootstrap")' "$zip" "target/lambda/$name/bootstrap"
    size=$(stat -c %s "$zip")
    echo "$name: bootstrap $(stat -c %s "target/lambda/$name/bootstrap") bytes, deployment zip $size bytes"
    if [ "$size" -gt "$limit" ]; then
        echo "$name: deployment zip exceeds 5 MB" >&2
        exit 1
    fi
done
