#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 20), starting from the seed corpus in
# fuzz/corpus/<target>/; fails on the first crash, whose input is left in
# fuzz/artifacts/<target>/ (replay: cargo fuzz run -s none <target> <file>).
# Stable Rust is enough: `-s none` builds without a sanitizer, which is what needs nightly; the
# coverage instrumentation (sancov) and libFuzzer work on stable. Installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# -a: debug assertions and overflow checks, so an arithmetic overflow is a crash too.
opts=(-s none -a --codegen-units 16)
cargo fuzz build "${opts[@]}"
for target in $(cargo fuzz list); do
  # New inputs go to a scratch corpus; the seeds in the repository are only read.
  work="${CARGO_TARGET_DIR:-target}/fuzz-corpus/$target"
  mkdir -p "$work"
  log="$work.log"
  echo "fuzz: $target for ${seconds}s"
  if ! cargo fuzz run "${opts[@]}" "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" | tr '\n' ' '
  echo
done
