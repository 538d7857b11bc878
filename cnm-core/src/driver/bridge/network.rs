//! The network side of the bridge driver: the bridge device, its gateway addresses, forwarding.
//!
//! A bridge cnm creates carries the interface alias `cnm:<network>`; only such a bridge is ever
//! deleted (when its network's last endpoint leaves). A bridge that already existed is adopted
//! and left alone. The alias lives in the kernel, so the rule holds after a crash and needs no
//! store lookup.

use std::net::IpAddr;

use ipnet::IpNet;

use super::plan::BridgePlan;
use super::{random_mac, BridgeError};
use crate::cni::config::NetworkName;
use crate::netlink::{AddrSpec, BridgeSpec, Handle, Link, NetlinkError};

/// The bridge as the endpoint side needs it.
#[derive(Debug, Clone)]
pub struct BridgeInfo {
    /// Interface index in the host namespace.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Hardware address (fixed at creation, so it does not change as ports come and go).
    pub mac: Option<[u8; 6]>,
    /// Whether this call created it (rather than finding it).
    pub created: bool,
}

/// The alias that marks a bridge as made by cnm for `network`.
pub fn bridge_alias(network: &NetworkName) -> String {
    format!("cnm:{network}")
}

/// Creates or adopts the bridge, brings it up, and gives it the gateway addresses.
pub fn ensure_bridge(
    h: &mut Handle,
    plan: &BridgePlan,
    network: &NetworkName,
    gateways: &[IpNet],
) -> Result<BridgeInfo, BridgeError> {
    let name = plan.bridge.as_str();
    let mut created = false;
    let link = match h.link_by_name(name)? {
        Some(link) => link,
        None => {
            let alias = bridge_alias(network);
            let spec = BridgeSpec {
                name,
                mtu: plan.mtu,
                mac: Some(random_mac()),
                up: true,
                alias: Some(&alias),
            };
            match h.create_bridge(&spec) {
                Ok(()) => {
                    created = true;
                    tracing::info!("created bridge {name}");
                    crate::fault::side_effect("create bridge");
                }
                // Exists: a concurrent ADD made it first; adopt theirs.
                Err(NetlinkError::Exists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            h.link_by_name(name)?.ok_or_else(|| BridgeError::Vanished {
                name: name.to_owned(),
            })?
        }
    };
    if link.kind.as_deref() != Some("bridge") {
        return Err(BridgeError::NotABridge {
            name: name.to_owned(),
            kind: link
                .kind
                .unwrap_or_else(|| "a device without a kind".into()),
        });
    }
    if !link.up {
        h.set_up(link.index)?;
    }
    if plan.promisc {
        h.set_promisc(link.index, true)?;
    }
    if !gateways.is_empty() {
        ensure_gateways(h, plan, &link, gateways)?;
    }
    Ok(BridgeInfo {
        index: link.index,
        name: link.name,
        mac: link.mac,
        created,
    })
}

/// Adds each gateway address unless present. An address of the same family that overlaps is
/// a conflict (the reference plugin's rule), replaced only with `forceAddress`.
fn ensure_gateways(
    h: &mut Handle,
    plan: &BridgePlan,
    link: &Link,
    gateways: &[IpNet],
) -> Result<(), BridgeError> {
    let existing = h.addresses(Some(link.index))?;
    for gw in gateways {
        if existing.iter().any(|a| a.net == *gw) {
            continue;
        }
        let overlapping = existing.iter().filter(|a| {
            a.net.addr().is_ipv4() == gw.addr().is_ipv4()
                && (a.net.contains(&gw.addr()) || gw.contains(&a.net.addr()))
                && !is_link_local(a.net.addr())
        });
        for old in overlapping {
            if !plan.force_address {
                return Err(BridgeError::AddressConflict {
                    bridge: link.name.clone(),
                    existing: old.net,
                    wanted: *gw,
                });
            }
            match h.del_address(link.index, old.net) {
                Ok(()) | Err(NetlinkError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // IPv6: no DAD on the gateway, so containers can use it at once.
        let spec = AddrSpec {
            net: *gw,
            nodad: gw.addr().is_ipv6(),
        };
        match h.add_address(link.index, spec) {
            Ok(()) => crate::fault::side_effect("add gateway address"),
            Err(NetlinkError::Exists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Turns on forwarding for the families in use, in the calling thread's namespace (the host's).
pub fn enable_forwarding(v4: bool, v6: bool) -> Result<(), BridgeError> {
    let mut paths = Vec::new();
    if v4 {
        paths.push("/proc/sys/net/ipv4/ip_forward");
    }
    if v6 {
        paths.push("/proc/sys/net/ipv6/conf/all/forwarding");
    }
    for path in paths {
        // Read first: most ADDs find it on already, and a write is a sysctl handler call.
        if std::fs::read(path).is_ok_and(|v| v.starts_with(b"1")) {
            continue;
        }
        std::fs::write(path, b"1").map_err(|source| BridgeError::Sysctl { path, source })?;
    }
    Ok(())
}

/// Deletes the bridge if cnm created it for `network`; an adopted bridge is left as it is.
/// Ports still on it go off it (a veth stays, unattached).
pub fn remove_bridge_if_ours(
    h: &mut Handle,
    plan: &BridgePlan,
    network: &NetworkName,
) -> Result<bool, BridgeError> {
    let ours = h
        .link_by_name(plan.bridge.as_str())?
        .is_some_and(|link| link.alias.as_deref() == Some(bridge_alias(network).as_str()));
    if !ours {
        return Ok(false);
    }
    tracing::info!(
        "deleting bridge {} (made by cnm for network {network})",
        plan.bridge
    );
    match h.delete_link_by_name(plan.bridge.as_str()) {
        Ok(()) | Err(NetlinkError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    crate::fault::side_effect("delete bridge");
    Ok(true)
}
