#!/usr/bin/env bash
# Tier 2: the SAM stack deployed into fakecloud, whose Step Functions invoke our real phase
# function. Deploys what `sam build` produced (.aws-sam/build, from infra/build-functions.sh,
# which .ci/run runs first) with the pinned SAM CLI's `sam deploy`, each function's host
# build in place of its arm64 bootstrap (the stand-in runs bootstraps on this host).
# Builds the stack's functions for this host, starts fakecloud on 127.0.0.1 (a free
# port) with the container-CLI stand-in, runs canary_e2e.py (one canary started by the
# BeforeAllowTraffic hook, promoted, checked by AfterAllowTraffic and rolled back by the
# scheduled soak check; one rolled back; then operators through the approver function, with
# fakecloud checking every signature), and stops fakecloud and every process it started,
# also on failure or Ctrl-C.
#
#   FAKECLOUD_BIN      fakecloud binary to use (default: install-fakecloud.sh's, installed
#                      on first use)
#   PHASE_PROFILE      dev (default) or release build of the functions
#   TIER2_KEEP_LOGS=1  keep the work directory (fakecloud and function logs) after success
#
# Extra arguments go to canary_e2e.py (timings: --phase-seconds, --look-seconds,
# --min-samples, --rps, --first-weight, --deadline, --soak-seconds (0: no soak test),
# --soak-minutes, --soak-slack; see --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
here="$repo/tests/tier2"
total_start=$(date +%s)

built="$repo/.aws-sam/build/template.yaml"
if [ ! -f "$built" ]; then
    echo "$built is missing: tier 2 deploys what \`sam build\` produced; run infra/build-functions.sh first" >&2
    exit 1
fi

python3 -c 'import boto3' 2>/dev/null || {
    echo "installing boto3 (the test driver's AWS client)"
    python3 -m pip install --quiet --disable-pip-version-check 'boto3==1.43.11'
}
python3 -c 'import yaml' 2>/dev/null || {
    echo "installing PyYAML (the driver reads the built template)"
    python3 -m pip install --quiet --disable-pip-version-check 'PyYAML==6.0.3'
}

# The pinned SAM CLI (infra/tools.sh; build-functions.sh installed it for sam build).
sam="$(bash "$repo/infra/tools.sh" sam | tail -n 1)/sam"

fakecloud="${FAKECLOUD_BIN:-}"
if [ -z "$fakecloud" ]; then
    fakecloud=$("$here/install-fakecloud.sh" | tail -n 1)
fi

# The stack's functions for this host (sam build's are arm64; the stand-in runs each
# bootstrap as a local process, so it has to be native here): phase, codedeploy-hook (the
# BeforeAllowTraffic and AfterAllowTraffic functions), soak-check and approver, and the
# canary-gate CLI the approver scenario runs as two IAM users. canary_e2e.py puts the
# functions into the zips of the built functions' directories in place of the arm64 bootstraps.
profile="${PHASE_PROFILE:-dev}"
binaries="phase codedeploy-hook soak-check approver"
build_start=$(date +%s)
cargo build --locked $(printf -- ' -p %s' $binaries) -p canary-gate-cli --profile "$profile"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
[ "$profile" = dev ] && out_dir=debug || out_dir="$profile"
echo "functions built in $(( $(date +%s) - build_start )) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/canary-gate-tier2.XXXXXX")
export FAKE_CONTAINER_STATE="$work/containers"
mkdir -p "$work/functions"
for b in $binaries; do
    cp "$target_dir/$out_dir/$b" "$work/functions/$b"
    strip "$work/functions/$b" 2>/dev/null || true
done

fakecloud_pid=""
driver_pid=""
cleanup() {
    status=$?
    trap - EXIT INT TERM
    if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
        kill -TERM "$driver_pid" 2>/dev/null || true
        wait "$driver_pid" 2>/dev/null || true
    fi
    if [ -n "$fakecloud_pid" ] && kill -0 "$fakecloud_pid" 2>/dev/null; then
        kill -TERM "$fakecloud_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$fakecloud_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$fakecloud_pid" 2>/dev/null || true
        wait "$fakecloud_pid" 2>/dev/null || true
    fi
    # Whatever fakecloud did not remove itself: every function process the stand-in started.
    python3 "$here/fake-container-cli.py" reap-all || true
    if [ "$status" -ne 0 ] || [ "${TIER2_KEEP_LOGS:-0}" = 1 ]; then
        echo "logs kept in $work (fakecloud.log, containers-logs/*.log, history-*.json)"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start fakecloud on a port the OS picks, on loopback only, with a clean FAKECLOUD_* set
# (no SMTP, DNS or link-local listeners).
unset $(env | sed -n 's/^\(FAKECLOUD_[A-Z0-9_]*\)=.*/\1/p')
echo '{}' > "$work/endpoints.json"
FAKECLOUD_VERIFY_SIGV4=true FAKECLOUD_CONTAINER_CLI="$here/fake-container-cli.py" FAKE_CONTAINER_ENDPOINTS="$work/endpoints.json" \
    "$fakecloud" --addr 127.0.0.1:0 --log-level "${FAKECLOUD_LOG:-info}" \
    > "$work/fakecloud.out" 2> "$work/fakecloud.log" &
fakecloud_pid=$!
port=""
for _ in $(seq 300); do
    port=$(sed -n 's/^FAKECLOUD_PORT=\([0-9]*\)$/\1/p' "$work/fakecloud.out" | head -n 1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/_fakecloud/health" >/dev/null && break
    kill -0 "$fakecloud_pid" 2>/dev/null || { cat "$work/fakecloud.log" >&2; echo "fakecloud exited" >&2; exit 1; }
    sleep 0.2
done
[ -n "$port" ] || { echo "fakecloud did not start" >&2; exit 1; }
echo "fakecloud $("$fakecloud" --version | awk '{print $2}') on 127.0.0.1:$port (pid $fakecloud_pid)"

run_start=$(date +%s)
# In the background with `wait`, so that a TERM to this script is handled at once (bash runs
# traps only after a foreground command ends).
python3 "$here/canary_e2e.py" --endpoint "http://127.0.0.1:$port" --repo "$repo" \
    --functions "$work/functions" --build "$repo/.aws-sam/build" --sam "$sam" --artifacts "$work" --endpoints-file "$work/endpoints.json" \
    --cli "$target_dir/$out_dir/canary-gate" "$@" &
driver_pid=$!
wait "$driver_pid"
echo "tier 2 run took $(( $(date +%s) - run_start )) s"
echo "tier 2 took $(( $(date +%s) - total_start )) s in all (fakecloud install if any, host builds and start included)"
