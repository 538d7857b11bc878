#!/usr/bin/env bash
# Installs what cnm's demo and tests need on a Debian machine (run as root). Idempotent.
#   containernetworking-plugins  the reference bridge/host-local/portmap/... in /usr/lib/cni
#   iproute2 iputils-ping        ip and ping, used by tests to look at and probe namespaces
#   nftables iptables            nft to inspect rulesets in tests; iptables for the reference portmap
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "dev/setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  containernetworking-plugins iproute2 iputils-ping nftables iptables ca-certificates
if ! command -v cargo >/dev/null 2>&1; then
  echo "dev/setup.sh: cargo not found; install Rust (rustup or Debian's cargo) first" >&2
  exit 1
fi
