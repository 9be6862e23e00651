#!/usr/bin/env bash
# Lints the SAM template (cfn-lint) and validates the state machine definition
# (asl-validator), installing both when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cfn-lint >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'cfn-lint>=1,<2'
fi
cfn-lint infra/template.yaml
echo "cfn-lint: infra/template.yaml passes"
python3 infra/check_dashboard.py infra/template.yaml
tools=${ASL_VALIDATOR_DIR:-"${TMPDIR:-/tmp}/canary-gate-asl-validator"}
if [ ! -x "$tools/node_modules/.bin/asl-validator" ]; then
    mkdir -p "$tools"
    npm install --silent --prefix "$tools" asl-validator@3 >/dev/null
fi
"$tools/node_modules/.bin/asl-validator" --json-path infra/statemachine/canary.asl.json
