//! The bridge driver: a Linux bridge per network, a veth pair per endpoint.

pub mod endpoint;
pub mod network;
pub mod plan;

pub use endpoint::{attach, configure_sandbox_end, detach, verify, EndpointSpec};
pub use network::{enable_forwarding, ensure_bridge, remove_bridge_if_ours, BridgeInfo};
pub use plan::{BridgeConfig, BridgePlan, Masquerade, Reach};

use ipnet::IpNet;

use crate::netlink::NetlinkError;
use crate::store::EndpointKey;

/// Failures of the bridge driver; each says what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// A kernel request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The bridge name is taken by a device that is not a bridge.
    #[error("{name} exists and is {kind}, not a bridge; choose another \"bridge\" name")]
    NotABridge { name: String, kind: String },
    /// The bridge has an address that overlaps the gateway's.
    #[error("bridge {bridge} already has address {existing}, which conflicts with gateway {wanted}; remove it or set \"forceAddress\": true")]
    AddressConflict {
        bridge: String,
        existing: IpNet,
        wanted: IpNet,
    },
    /// A link disappeared between two requests (another process deleted it).
    #[error("{name} disappeared while it was being set up")]
    Vanished { name: String },
    /// A sysctl could not be written.
    #[error("writing {path}: {source}")]
    Sysctl {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// CHECK found a difference from what ADD made.
    #[error("{0}")]
    Check(String),
}

/// The host end's name: `cnm` and 12 hex digits of a hash of the endpoint key, so that DEL and
/// GC find it without the store, `prevResult` or the netns (and after a config change).
pub fn host_veth_name(key: &EndpointKey) -> String {
    let parts = [
        key.network.as_str(),
        key.container_id.as_str(),
        key.ifname.as_str(),
    ];
    format!("cnm{}", hash_hex12(&parts.join("\0")))
}

/// 12 hex digits (48 bits) of the FNV-1a 64-bit hash of `s`: a stable name part that fits
/// Linux's 15-byte interface names with a 3-byte prefix.
pub fn hash_hex12(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", h >> 16)
}

/// A random locally administered unicast MAC address.
pub fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = crate::random::bytes();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (the `mac` capability); `None` if it is not a unicast MAC.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    (parts.next().is_none() && mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::config::NetworkName;
    use crate::cni::env::{ContainerId, IfName};

    #[test]
    fn names_and_macs() {
        let key = |c: &str| EndpointKey {
            network: NetworkName::new("n").unwrap(),
            container_id: ContainerId::new(c).unwrap(),
            ifname: IfName::new("eth0").unwrap(),
        };
        let a = host_veth_name(&key("a"));
        assert_eq!(a.len(), 15);
        assert!(IfName::new(&a).is_ok());
        assert_eq!(a, host_veth_name(&key("a")));
        assert_ne!(a, host_veth_name(&key("b")));
        let m = random_mac();
        assert_eq!(m[0] & 0x03, 0x02);
        assert_eq!(parse_mac(&format_mac(m)), Some(m));
        for bad in [
            "",
            "01:02:03:04:05:06",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "zz:bb:cc:dd:ee:ff",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
