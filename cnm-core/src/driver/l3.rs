//! Layer 3 inside a sandbox, shared by every driver (bridge, macvlan, host device): addresses and
//! routes on one interface, and CHECK's view of them.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::cni::result::{IpConfig, Route};
use crate::netlink::{AddrSpec, Handle, IpFamily, NetlinkError, RouteSpec};

/// The gateway of the address of `dst`'s family, if any.
fn gateway_for(ips: &[IpConfig], dst: IpNet) -> Option<IpAddr> {
    ips.iter()
        .filter(|ip| ip.address.addr().is_ipv4() == dst.addr().is_ipv4())
        .find_map(|ip| ip.gateway)
}

/// Adds the addresses (IPv6 without DAD, usable at once) then the routes to link `index`; a
/// route without `gw` goes via its family's gateway.
pub fn configure(
    inside: &mut Handle,
    index: u32,
    ips: &[IpConfig],
    routes: &[Route],
) -> Result<(), NetlinkError> {
    for ip in ips {
        let addr = AddrSpec {
            net: ip.address,
            nodad: ip.address.addr().is_ipv6(),
        };
        inside.add_address(index, addr)?;
        crate::fault::side_effect("add address");
    }
    for route in routes {
        inside.add_route(&RouteSpec {
            gw: route.gw.or_else(|| gateway_for(ips, route.dst)),
            oif: Some(index),
            metric: route.priority,
            mtu: route.mtu,
            table: route.table,
            ..RouteSpec::new(route.dst)
        })?;
        crate::fault::side_effect("add route");
    }
    Ok(())
}

/// CHECK: the first address or route of `ips`/`routes` missing from link `index` (`name` in
/// messages), said as a person would look for it.
pub fn difference(
    inside: &mut Handle,
    index: u32,
    name: &str,
    ips: &[IpConfig],
    routes: &[Route],
) -> Result<Option<String>, NetlinkError> {
    let addrs = inside.addresses(Some(index))?;
    if let Some(ip) = ips
        .iter()
        .find(|ip| !addrs.iter().any(|a| a.net == ip.address))
    {
        return Ok(Some(format!(
            "address {} is missing from {name} in the container",
            ip.address
        )));
    }
    for route in routes {
        let family = if route.dst.addr().is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        };
        let gw = route.gw.or_else(|| gateway_for(ips, route.dst));
        let present = inside
            .routes(family)?
            .iter()
            .any(|r| r.dst == route.dst && r.oif == Some(index) && (gw.is_none() || r.gw == gw));
        if !present {
            let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
            return Ok(Some(format!(
                "route {}{via} is missing from the container",
                route.dst
            )));
        }
    }
    Ok(None)
}
