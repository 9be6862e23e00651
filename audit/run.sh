#!/usr/bin/env bash
# Audits Cargo.lock against a local copy of the RustSec advisory database with the pinned
# cargo-audit (installed by infra/tools.sh when missing), without touching the network. Fails
# on any vulnerability advisory for a crate in Cargo.lock; unmaintained, unsound and yanked
# notices are printed as warnings. See audit/README.md for the database and how to refresh it.
#
#   ADVISORY_DB  the database directory (default: ../shared/advisory-db from the repository
#                root, else /work/shared/advisory-db)
set -euo pipefail
cd "$(dirname "$0")/.."
db="${ADVISORY_DB:-}"
if [ -z "$db" ]; then
    # Beside the project folder; a clone elsewhere on this machine finds the workplace's copy.
    for candidate in ../shared/advisory-db /work/shared/advisory-db; do
        if [ -d "$candidate/crates" ]; then
            db=$candidate
            break
        fi
    done
fi
db="${db:-../shared/advisory-db}"
if [ ! -d "$db/crates" ]; then
    echo "no advisory database at $db (expected its crates/ directory); see audit/README.md" >&2
    exit 1
fi
PATH="$(bash infra/tools.sh cargo-audit | tail -n 1):$PATH"
newest=$(grep -rhs '^date = ' "$db/crates" | sort | tail -n 1 | sed 's/date = //; s/"//g')
echo "advisory database $db: newest advisory dated $newest"
cargo-audit --version
# First, that this database and tool do fail a lock file with a known vulnerability
# (smallvec 1.6.0: RUSTSEC-2021-0003), so that a pass below means something.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat > "$probe/Cargo.lock" <<'LOCK'
version = 3

[[package]]
name = "probe"
version = "0.1.0"
dependencies = ["smallvec"]

[[package]]
name = "smallvec"
version = "1.6.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
LOCK
if cargo audit --db "$db" --no-fetch --file "$probe/Cargo.lock" --quiet > "$probe/out" 2>&1 \
    || ! grep -q RUSTSEC-2021-0003 "$probe/out"; then
    cat "$probe/out" >&2
    echo "cargo audit did not report RUSTSEC-2021-0003 for smallvec 1.6.0: the database or the tool is broken" >&2
    exit 1
fi
echo "probe: cargo audit fails a lock file with smallvec 1.6.0 (RUSTSEC-2021-0003), as it must"
cargo audit --db "$db" --no-fetch --file Cargo.lock
