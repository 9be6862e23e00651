#!/usr/bin/env bash
# Installs the pinned fakecloud (the local AWS emulator tier 2 runs against) when it is not
# already there, and prints where it is. fakecloud is AGPL-licensed: it is only ever run as a
# separate, unmodified process; none of its code is linked into or copied into this project.
#
#   FAKECLOUD_ROOT     install root (default: ~/.cache/canary-gate/fakecloud); the binary is
#                      $FAKECLOUD_ROOT/bin/fakecloud
#   FAKECLOUD_PROFILE  debug (default) or release. A debug build takes ~18 min on 2 cores,
#                      release ~50 min; debug is fast enough for these tests.
#
# Prints the binary's path on the last line of stdout.
set -euo pipefail

FAKECLOUD_VERSION=0.51.0
root="${FAKECLOUD_ROOT:-$HOME/.cache/canary-gate/fakecloud}"
profile="${FAKECLOUD_PROFILE:-debug}"
bin="$root/bin/fakecloud"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q " $FAKECLOUD_VERSION\$"; then
    echo "fakecloud $FAKECLOUD_VERSION already installed" >&2
    echo "$bin"
    exit 0
fi

flags=(--locked --root "$root")
[ "$profile" = debug ] && flags+=(--debug)
echo "installing fakecloud $FAKECLOUD_VERSION ($profile build) into $root; this takes a while" >&2
start=$(date +%s)
# Low priority, so that it does not starve other builds on the machine.
nice -n 19 cargo install "${flags[@]}" fakecloud --version "$FAKECLOUD_VERSION" >&2
echo "fakecloud installed in $(( $(date +%s) - start )) s" >&2
echo "$bin"
