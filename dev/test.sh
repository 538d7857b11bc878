#!/usr/bin/env bash
# The test command: builds every plugin binary (the conformance tests exec them as a runtime
# would), then runs the whole workspace's tests. Needs root: tests create throwaway network
# namespaces (the machine's own namespace is never touched).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
cargo test --workspace -- --test-threads="${CNM_TEST_THREADS:-4}"
