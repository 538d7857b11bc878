#!/usr/bin/env bash
# Installs what cnm's demo and tests need on a Debian machine (run as root). Idempotent.
#   containernetworking-plugins  the reference bridge/host-local/portmap/... in /usr/lib/cni
#   iproute2 iputils-ping        ip and ping, used by tests to look at and probe namespaces
#   nftables iptables            nft to inspect rulesets in tests; iptables for the reference portmap
#   musl-tools                   musl-gcc, for the shipped plugins' C code (SQLite) built with musl
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "dev/setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  containernetworking-plugins iproute2 iputils-ping nftables iptables ca-certificates musl-tools
if ! command -v cargo >/dev/null 2>&1; then
  echo "dev/setup.sh: cargo not found; install Rust (rustup or Debian's cargo) first" >&2
  exit 1
fi
# The shipped plugins link musl (dev/build-plugins.sh says why); its Rust target comes from
# rustup. Without it the plugins are built with glibc instead, so a failure here is not fatal.
if command -v rustup >/dev/null 2>&1; then
  host=$(rustc -vV | sed -n 's/^host: //p')
  timeout 600 rustup target add "${host%-gnu}-musl" \
    || echo "dev/setup.sh: could not add the musl target; the plugins will be built with glibc" >&2
fi
