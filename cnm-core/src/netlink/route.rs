//! Routes: add, list, delete.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;

use super::{Handle, Op, Result};

/// `RT_TABLE_MAIN`: the table `ip route` shows and changes by default.
pub const MAIN_TABLE: u32 = 254;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

/// How far a route's destination is (`ip route ... scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Reached through a gateway, or anywhere (`global`).
    Universe,
    /// Directly on the link, no gateway.
    Link,
    /// This host.
    Host,
    /// Any other value.
    Other(u8),
}

/// A route to add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination network (`0.0.0.0/0` for the default route).
    pub dst: IpNet,
    /// Next hop.
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
    /// Path MTU (`RTAX_MTU`).
    pub mtu: Option<u32>,
    /// Routing table; the main table when `None`.
    pub table: Option<u32>,
    /// Scope; as `ip route` picks it when `None` (link without a gateway, else universe).
    pub scope: Option<Scope>,
}

impl RouteSpec {
    /// A route to `dst` with nothing else set.
    pub fn new(dst: IpNet) -> Self {
        RouteSpec {
            dst,
            gw: None,
            oif: None,
            metric: None,
            mtu: None,
            table: None,
            scope: None,
        }
    }
}

/// A route found in a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// Destination network.
    pub dst: IpNet,
    /// Next hop.
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Metric.
    pub metric: Option<u32>,
    /// Path MTU.
    pub mtu: Option<u32>,
    /// Routing table ([`MAIN_TABLE`], 255 for local, ...).
    pub table: u32,
    /// Scope.
    pub scope: Scope,
}

const ROUTE_ADD: Op = Op {
    name: "add route",
    not_found: &[Errno::ENODEV],
};
const ROUTE_DEL: Op = Op {
    name: "delete route",
    not_found: &[Errno::ENODEV, Errno::ESRCH, Errno::ENOENT],
};
const ROUTE_LIST: Op = Op {
    name: "list routes",
    not_found: &[],
};

impl From<Scope> for RouteScope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Universe => RouteScope::Universe,
            Scope::Link => RouteScope::Link,
            Scope::Host => RouteScope::Host,
            Scope::Other(v) => RouteScope::Other(v),
        }
    }
}

impl From<RouteScope> for Scope {
    fn from(s: RouteScope) -> Self {
        match s {
            RouteScope::Universe => Scope::Universe,
            RouteScope::Link => Scope::Link,
            RouteScope::Host => Scope::Host,
            other => Scope::Other(u8::from(other)),
        }
    }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

/// The message both add and delete send; they differ in header defaults only.
fn route_message(spec: &RouteSpec) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let table = spec.table.unwrap_or(MAIN_TABLE);
    msg.header.address_family = match spec.dst {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = spec.dst.prefix_len();
    // Tables above 255 only fit RTA_TABLE; the header then says RT_TABLE_UNSPEC.
    msg.header.table = u8::try_from(table).unwrap_or(0);
    msg.attributes.push(RouteAttribute::Table(table));
    if spec.dst.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(route_address(
                spec.dst.network(),
            )));
    }
    if let Some(gw) = spec.gw {
        msg.attributes
            .push(RouteAttribute::Gateway(route_address(gw)));
    }
    if let Some(oif) = spec.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    if let Some(metric) = spec.metric {
        msg.attributes.push(RouteAttribute::Priority(metric));
    }
    msg
}

fn describe(spec: &RouteSpec) -> String {
    let mut s = spec.dst.to_string();
    if let Some(gw) = spec.gw {
        s += &format!(" via {gw}");
    }
    if let Some(oif) = spec.oif {
        s += &format!(" dev {oif}");
    }
    if let Some(table) = spec.table {
        s += &format!(" table {table}");
    }
    s
}

impl Handle {
    /// Adds a route; [`super::NetlinkError::Exists`] when an equal one is there.
    pub fn add_route(&mut self, spec: &RouteSpec) -> Result<()> {
        let mut msg = route_message(spec);
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = spec
            .scope
            .unwrap_or(match (spec.gw, spec.oif) {
                (None, Some(_)) => Scope::Link,
                _ => Scope::Universe,
            })
            .into();
        if let Some(mtu) = spec.mtu {
            msg.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        self.ack(
            ROUTE_ADD,
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewRoute(msg),
            || describe(spec),
        )
    }

    /// Deletes the route matching `spec`; [`super::NetlinkError::NotFound`] when none does.
    pub fn del_route(&mut self, spec: &RouteSpec) -> Result<()> {
        let mut msg = route_message(spec);
        // As `ip route del`: scope "nowhere" and type/protocol unspecified match any route.
        msg.header.scope = spec.scope.map_or(RouteScope::NoWhere, Into::into);
        self.ack(ROUTE_DEL, 0, RouteNetlinkMessage::DelRoute(msg), || {
            describe(spec)
        })
    }

    /// Every route of `family`, in every table.
    pub fn routes(&mut self, family: IpFamily) -> Result<Vec<RouteInfo>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = match family {
            IpFamily::V4 => AddressFamily::Inet,
            IpFamily::V6 => AddressFamily::Inet6,
        };
        let replies = self.dump(ROUTE_LIST, RouteNetlinkMessage::GetRoute(msg), || {
            format!("{family:?}")
        })?;
        Ok(replies.into_iter().filter_map(to_route).collect())
    }
}

fn to_route(reply: RouteNetlinkMessage) -> Option<RouteInfo> {
    let RouteNetlinkMessage::NewRoute(msg) = reply else {
        return None;
    };
    let unspecified: IpAddr = match msg.header.address_family {
        AddressFamily::Inet => std::net::Ipv4Addr::UNSPECIFIED.into(),
        AddressFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
        _ => return None,
    };
    let ip = |a: RouteAddress| match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    let mut route = RouteInfo {
        dst: IpNet::new(unspecified, 0).ok()?,
        gw: None,
        oif: None,
        metric: None,
        mtu: None,
        table: u32::from(msg.header.table),
        scope: msg.header.scope.into(),
    };
    let mut dst = unspecified;
    for attr in msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = ip(a)?,
            RouteAttribute::Gateway(a) => route.gw = ip(a),
            RouteAttribute::Oif(i) => route.oif = Some(i),
            RouteAttribute::Priority(m) => route.metric = Some(m),
            RouteAttribute::Table(t) => route.table = t,
            RouteAttribute::Metrics(metrics) => {
                route.mtu = metrics.into_iter().find_map(|m| match m {
                    RouteMetric::Mtu(mtu) => Some(mtu),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    route.dst = IpNet::new(dst, msg.header.destination_prefix_length).ok()?;
    Some(route)
}
