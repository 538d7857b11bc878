//! The endpoint side of the bridge driver: one veth pair per endpoint, the host end on the
//! bridge, the other end created directly inside the sandbox under the container's name.
//!
//! Host side (one netlink message): create `cnmXXXXXXXXXXXX` with its peer already in the
//! sandbox, attached to the bridge, up, both MACs chosen by cnm (so no lookup is needed to
//! report them); the kernel's echo of it names the peer's index. Sandbox side (a socket opened
//! inside it): the peer up, addresses (IPv6 without DAD, usable at once), routes.

use super::network::BridgeInfo;
use super::plan::{BridgePlan, Reach};
use super::BridgeError;
use crate::cni::env::IfName;
use crate::cni::result::{IpConfig, Route};
use crate::driver::l3;
use crate::netlink::{Handle, NetlinkError, VethSpec};
use crate::netns::Netns;

/// One endpoint to attach.
#[derive(Debug, Clone)]
pub struct EndpointSpec<'a> {
    /// Host end's name (derived from the endpoint key).
    pub host_veth: &'a str,
    /// Name inside the sandbox (`CNI_IFNAME`).
    pub ifname: &'a IfName,
    /// Host end's MAC.
    pub host_mac: [u8; 6],
    /// Sandbox end's MAC.
    pub mac: [u8; 6],
    /// Addresses with their gateways.
    pub ips: &'a [IpConfig],
    /// Routes inside the sandbox; a route without `gw` goes via its family's gateway.
    pub routes: &'a [Route],
}

/// Creates the veth pair and configures the sandbox end. On error the caller's rollback deletes
/// the host end (which deletes both ends).
/// `inside` is a socket opened in `sandbox` ([`Handle::new_in`]), which the caller may open
/// early, alongside other work.
pub fn attach(
    host: &mut Handle,
    bridge: &BridgeInfo,
    plan: &BridgePlan,
    spec: &EndpointSpec<'_>,
    sandbox: &Netns,
    inside: &mut Handle,
) -> Result<(), BridgeError> {
    let peer_index = host.create_veth(&VethSpec {
        name: spec.host_veth,
        peer_name: spec.ifname.as_str(),
        peer_netns: Some(sandbox),
        mtu: plan.mtu,
        mac: Some(spec.host_mac),
        peer_mac: Some(spec.mac),
        master: Some(bridge.index),
        up: true,
    })?;
    tracing::info!(
        "created veth {} (peer {} in the sandbox)",
        spec.host_veth,
        spec.ifname
    );
    crate::fault::side_effect("create veth");
    // A bridge port needs no IPv6 address of its own; without one it sends nothing that the
    // bridge would flood to every other port (set before the peer comes up and brings the
    // carrier with it).
    no_ipv6_autoconf(host, 0, Some(spec.host_veth));
    if plan.hairpin || plan.reach == Reach::NoIcc {
        let index = host
            .link_by_name(spec.host_veth)?
            .ok_or_else(|| BridgeError::Vanished {
                name: spec.host_veth.to_owned(),
            })?
            .index;
        if plan.hairpin {
            host.set_hairpin(index, true)?;
        }
        if plan.reach == Reach::NoIcc {
            host.set_isolated(index, true)?;
        }
    }
    configure_sandbox_end(
        inside,
        spec.ifname.as_str(),
        peer_index,
        spec.ips,
        spec.routes,
    )
}

/// The sandbox side of an endpoint, shared by [`attach`] and the namespace layer
/// ([`crate::namespace::NetworkNamespace::add_interface`]): inside `sandbox`, finds `ifname`
/// (unless its `index` is known), brings it up, adds `ips` (IPv6 without DAD, usable at once)
/// and `routes` (a route without `gw` goes via its family's gateway), through `inside`, a socket
/// opened in the sandbox. On error the caller undoes what it made.
pub fn configure_sandbox_end(
    inside: &mut Handle,
    ifname: &str,
    index: Option<u32>,
    ips: &[IpConfig],
    routes: &[Route],
) -> Result<(), BridgeError> {
    let index = match index {
        Some(index) => index,
        None => {
            inside
                .link_by_name(ifname)?
                .ok_or_else(|| BridgeError::Vanished {
                    name: ifname.to_owned(),
                })?
                .index
        }
    };
    // An endpoint without IPv6 addresses gets no link-local one either, as libnetwork disables
    // IPv6 on the interfaces of IPv4-only networks.
    if !ips.iter().any(|ip| ip.address.addr().is_ipv6()) {
        no_ipv6_autoconf(inside, index, None);
    }
    inside.set_up(index)?;
    l3::configure(inside, index, ips, routes)?;
    tracing::info!("configured {ifname} in the sandbox");
    Ok(())
}

/// [`Handle::set_ipv6_addr_gen_none`], where the kernel has IPv6 (booted with `ipv6.disable=1`
/// it has none, and nothing to turn off).
fn no_ipv6_autoconf(h: &mut Handle, index: u32, name: Option<&str>) {
    if let Err(e) = h.set_ipv6_addr_gen_none(index, name) {
        tracing::debug!("leaving IPv6 address generation as it is: {e}");
    }
}

/// Deletes the host end (and with it the sandbox end); already gone is success.
pub fn detach(host: &mut Handle, host_veth: &str) -> Result<(), BridgeError> {
    match host.delete_link_by_name(host_veth) {
        Ok(()) => {
            tracing::info!("deleted veth {host_veth}");
            crate::fault::side_effect("delete veth");
            Ok(())
        }
        Err(NetlinkError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// CHECK: the sandbox end exists, is up, holds its addresses and routes; the host end is on the
/// bridge. The first difference is the error, said as a person would look for it.
pub fn verify(
    host: &mut Handle,
    bridge: &BridgeInfo,
    spec: &EndpointSpec<'_>,
    sandbox: &Netns,
) -> Result<(), BridgeError> {
    let fail = |why: String| Err(BridgeError::Check(why));
    match host.link_by_name(spec.host_veth)? {
        None => return fail(format!("host interface {} is gone", spec.host_veth)),
        Some(l) if l.master != Some(bridge.index) => {
            return fail(format!(
                "host interface {} is not attached to bridge {}",
                spec.host_veth, bridge.name
            ))
        }
        Some(_) => {}
    }
    let mut inside = Handle::new_in(sandbox)?;
    let Some(link) = inside.link_by_name(spec.ifname.as_str())? else {
        return fail(format!(
            "interface {} is gone from the container",
            spec.ifname
        ));
    };
    if !link.up {
        return fail(format!(
            "interface {} in the container is down",
            spec.ifname
        ));
    }
    if link.mac != Some(spec.mac) {
        return fail(format!(
            "interface {} in the container has another MAC address than ADD gave it",
            spec.ifname
        ));
    }
    match l3::difference(
        &mut inside,
        link.index,
        spec.ifname.as_str(),
        spec.ips,
        spec.routes,
    )? {
        Some(why) => fail(why),
        None => Ok(()),
    }
}
