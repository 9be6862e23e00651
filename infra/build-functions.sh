#!/usr/bin/env bash
# Builds the stack's Lambda functions (phase, codedeploy-hook, soak-check, approver) the way the README's
# deploy does: the real `sam build` from the repository root (samconfig.toml names
# infra/template.yaml and turns on the beta feature that BuildMethod rust-cargolambda needs),
# which runs `cargo lambda build --release --arm64 --bin <Binary>` in the workspace for each
# function, with zig as the cross linker, into the workspace's own target/ directory, and
# copies each bootstrap to .aws-sam/build/<LogicalId>/. Then checks every function's
# deployment zip as Lambda gets it (the bootstrap alone, deflated): at most 5 MB.
#
# The SAM CLI, cargo-lambda and zig are the versions infra/tools.sh pins (installed there when
# missing). SAM's cargo-lambda builder passes no `--locked`, so the lock file is made binding
# here: `cargo metadata --locked` fails on a Cargo.lock that does not match the manifests, and
# the build must leave Cargo.lock as it was. Prints the time each part took.
#
# Prints SKIPPED and succeeds when the aarch64 standard library cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
total_start=$(date +%s)
part_start=$total_start
took() {
    local now=$(date +%s)
    echo "  ($1: $(( now - part_start )) s)"
    part_start=$now
}

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    if ! rustup target add aarch64-unknown-linux-gnu; then
        echo "SKIPPED: the aarch64 standard library cannot be installed on this machine" >&2
        exit 0
    fi
fi
bin=$(bash infra/tools.sh sam cargo-lambda | tail -n 1)
PATH="$bin:$PATH"
export SAM_CLI_TELEMETRY=0
echo "$(sam --version), $(cargo lambda --version), zig $(zig version)"
took "tools"

cargo metadata --locked --format-version 1 >/dev/null
lock=$(sha256sum Cargo.lock)
took "cargo metadata --locked: Cargo.lock matches the manifests"

sam build
if [ "$(sha256sum Cargo.lock)" != "$lock" ]; then
    echo "sam build changed Cargo.lock: the lock file is out of date" >&2
    exit 1
fi
took "sam build"

# Every function in the built template, its build directory's bootstrap zipped as Lambda
# would (the SAM CLI's Python, which has PyYAML and reads the template's intrinsic tags).
python="$(dirname "$(readlink -f "$bin/sam")")/python"
"$python" - .aws-sam/build <<'EOF'
import io, os, sys, zipfile
from samcli.yamlhelper import yaml_parse

LIMIT = 5 * 1024 * 1024
build = sys.argv[1]
template = yaml_parse(open(os.path.join(build, "template.yaml")).read())
functions = {k: r for k, r in template["Resources"].items()
             if r["Type"] == "AWS::Serverless::Function"}
if not functions:
    sys.exit(f"{build}/template.yaml has no functions")
failed = False
for logical_id, r in sorted(functions.items()):
    code = os.path.join(build, r["Properties"]["CodeUri"])
    bootstrap = os.path.join(code, "bootstrap")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(bootstrap, "bootstrap")
    size = len(buf.getvalue())
    binary = r.get("Metadata", {}).get("BuildProperties", {}).get("Binary", "?")
    print(f"{logical_id} ({binary}): bootstrap {os.path.getsize(bootstrap)} bytes, "
          f"deployment zip {size} bytes")
    if size > LIMIT:
        print(f"{logical_id}: deployment zip exceeds 5 MB", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
EOF
took "zip sizes"
echo "functions built and checked in $(( $(date +%s) - total_start )) s"
