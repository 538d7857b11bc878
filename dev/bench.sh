#!/usr/bin/env bash
# The benchmarks, run against the plugins as they are shipped (dev/build-plugins.sh: release,
# static). Needs root: each side runs in throwaway network namespaces. Arguments name the benches
# (default: cni portmap); CNM_BENCH_N is passed on (cni: one N, default 200; portmap: a list,
# default 50,500).
set -euo pipefail
cd "$(dirname "$0")/.."
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(cni portmap)
CNM_PLUGIN_DIR=$(./dev/build-plugins.sh)
export CNM_PLUGIN_DIR
for b in "${benches[@]}"; do
    cargo bench -p conformance --bench "$b"
done
