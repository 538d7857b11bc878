#!/usr/bin/env bash
# The test command: builds every plugin binary (the conformance tests exec them as a runtime
# would), then runs the whole workspace's tests, and ends with one line that sums them up.
# Needs root: tests create throwaway network namespaces (the machine's own namespace is never
# touched).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace -- --test-threads="${CNM_TEST_THREADS:-4}" 2>&1 | tee "$log"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
