#!/usr/bin/env bash
# Checks the SAM template and the state machine with the pinned tools (installed by
# infra/tools.sh when missing): `sam validate --lint` from the repository root as a user runs
# it, cfn-lint, the dashboard's JSON, the template's own limits (check_hardening.py), checkov
# (its skipped checks carry their reasons in the template) and asl-validator on the state
# machine definition. Prints each tool's time.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(bash infra/tools.sh sam checkov asl-validator | tail -n 1)
PATH="$bin:$PATH"
export SAM_CLI_TELEMETRY=0
timed() {
    local start=$(date +%s)
    "$@"
    echo "  ($1: $(( $(date +%s) - start )) s)"
}

echo "sam validate --lint (samconfig.toml names infra/template.yaml)"
timed sam validate --lint
timed cfn-lint infra/template.yaml
echo "cfn-lint $(cfn-lint --version | awk '{print $2}'): infra/template.yaml passes"
python3 infra/check_dashboard.py infra/template.yaml
# The SAM CLI's Python has cfn-lint, whose YAML loader reads the intrinsic-function tags.
"$(dirname "$(readlink -f "$bin/sam")")/python" infra/check_hardening.py infra/template.yaml
# checkov exits non-zero on any failed check; --skip-download keeps it off the network.
timed checkov --file infra/template.yaml --framework cloudformation --compact --skip-download
timed asl-validator --json-path infra/statemachine/canary.asl.json
