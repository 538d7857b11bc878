//! Addresses: add, list, delete.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;

use super::{Handle, Op, Result};

/// An address to add to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrSpec {
    /// The address and its prefix length (`10.1.0.5/24`).
    pub net: IpNet,
    /// Skip duplicate address detection (`IFA_F_NODAD`): an IPv6 address is usable at once.
    pub nodad: bool,
}

impl From<IpNet> for AddrSpec {
    fn from(net: IpNet) -> Self {
        AddrSpec { net, nodad: false }
    }
}

/// An address found on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    /// Index of the link that holds it.
    pub index: u32,
    /// The address and its prefix length.
    pub net: IpNet,
    /// IPv6 duplicate address detection has not finished: not yet usable as a source.
    pub tentative: bool,
}

const ADDR_ADD: Op = Op {
    name: "add address",
    not_found: &[Errno::ENODEV],
};
const ADDR_DEL: Op = Op {
    name: "delete address",
    not_found: &[Errno::ENODEV, Errno::EADDRNOTAVAIL],
};
const ADDR_LIST: Op = Op {
    name: "list addresses",
    not_found: &[Errno::ENODEV],
};

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn address_message(index: u32, net: IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(net.addr());
    msg.header.prefix_len = net.prefix_len();
    msg.header.index = index;
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on point-to-point links,
    // the same for everything else. IPv6 uses IFA_ADDRESS alone.
    if net.addr().is_ipv4() {
        msg.attributes.push(AddressAttribute::Local(net.addr()));
    }
    msg.attributes.push(AddressAttribute::Address(net.addr()));
    msg
}

impl Handle {
    /// Adds an address (`ip addr add`); IPv4 gets its broadcast address as well.
    pub fn add_address(&mut self, index: u32, spec: impl Into<AddrSpec>) -> Result<()> {
        let spec = spec.into();
        let mut msg = address_message(index, spec.net);
        if let IpNet::V4(v4) = spec.net {
            if v4.prefix_len() < 31 {
                msg.attributes
                    .push(AddressAttribute::Broadcast(v4.broadcast()));
            }
        }
        if spec.nodad {
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.ack(
            ADDR_ADD,
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewAddress(msg),
            || format!("{} to link {index}", spec.net),
        )
    }

    /// Deletes an address; [`super::NetlinkError::NotFound`] when the link does not hold it.
    pub fn del_address(&mut self, index: u32, net: IpNet) -> Result<()> {
        self.ack(
            ADDR_DEL,
            0,
            RouteNetlinkMessage::DelAddress(address_message(index, net)),
            || format!("{net} from link {index}"),
        )
    }

    /// Addresses of one link, or of every link with `None`.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Addr>> {
        let mut msg = AddressMessage::default();
        // With strict checking (set on every handle) the kernel filters by index itself.
        msg.header.index = index.unwrap_or(0);
        let replies = self.dump(ADDR_LIST, RouteNetlinkMessage::GetAddress(msg), || {
            index.map_or("of all links".into(), |i| format!("of link {i}"))
        })?;
        Ok(replies
            .into_iter()
            .filter_map(to_addr)
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }
}

fn to_addr(reply: RouteNetlinkMessage) -> Option<Addr> {
    let RouteNetlinkMessage::NewAddress(msg) = reply else {
        return None;
    };
    let mut local = None;
    let mut address = None;
    let mut tentative = msg.header.flags.contains(AddressHeaderFlags::Tentative);
    for attr in msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(ip),
            AddressAttribute::Address(ip) => address = Some(ip),
            AddressAttribute::Flags(flags) => tentative = flags.contains(AddressFlags::Tentative),
            _ => {}
        }
    }
    let ip = local.or(address)?;
    Some(Addr {
        index: msg.header.index,
        net: IpNet::new(ip, msg.header.prefix_len).ok()?,
        tentative,
    })
}
