//! Links: look up, create (bridge, veth), change, delete.

use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoMacVlan, InfoVeth,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkProtoInfoBridge, MacVlanMode,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Handle, Op, Result, LINK_GONE};
use crate::netns::Netns;

/// `IFLA_BRPORT_MODE`: the bridge port's hairpin mode (`if_link.h`).
const IFLA_BRPORT_MODE: u16 = 4;

/// `IFLA_BRPORT_ISOLATED`: the bridge port's isolation flag (`if_link.h`, Linux 4.18).
const IFLA_BRPORT_ISOLATED: u16 = 33;

/// One network interface as `ip link` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index, unique within its namespace.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, when the link has an Ethernet-sized one.
    pub mac: Option<[u8; 6]>,
    /// Maximum transmission unit.
    pub mtu: u32,
    /// Link kind (`bridge`, `veth`, `macvlan`, ...); `None` for physical devices and loopback.
    pub kind: Option<String>,
    /// Index of the bridge (or bond) this link is attached to.
    pub master: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// For a veth or other stacked link: the peer's or parent's index (`IFLA_LINK`).
    pub link_index: Option<u32>,
    /// Set when `link_index` lives in another namespace: that namespace's id as seen from here.
    pub netns_id: Option<i32>,
    /// The interface alias (`ip link set ... alias`), which cnm uses to mark what it created.
    pub alias: Option<String>,
}

/// A bridge to create.
#[derive(Debug, Clone, Default)]
pub struct BridgeSpec<'a> {
    /// Interface name.
    pub name: &'a str,
    /// MTU; the kernel's default when `None`.
    pub mtu: Option<u32>,
    /// Hardware address; random when `None`.
    pub mac: Option<[u8; 6]>,
    /// Bring it up in the same message.
    pub up: bool,
    /// Interface alias; set right after creation (the kernel ignores it in the create message).
    pub alias: Option<&'a str>,
}

/// A veth pair to create in one message: host end here, peer possibly in another namespace.
#[derive(Debug, Clone, Default)]
pub struct VethSpec<'a> {
    /// Name of the end that stays in this handle's namespace.
    pub name: &'a str,
    /// Name of the peer (e.g. `eth0`), unique within `peer_netns`.
    pub peer_name: &'a str,
    /// Namespace the peer is created in (`IFLA_NET_NS_FD`); this handle's when `None`.
    pub peer_netns: Option<&'a Netns>,
    /// MTU of both ends.
    pub mtu: Option<u32>,
    /// Hardware address of the host end.
    pub mac: Option<[u8; 6]>,
    /// Hardware address of the peer.
    pub peer_mac: Option<[u8; 6]>,
    /// Bridge to attach the host end to (`IFLA_MASTER`), in the same message.
    pub master: Option<u32>,
    /// Bring the host end up in the same message.
    ///
    /// The peer cannot be brought up this way: the kernel configures it before the two ends
    /// are linked, so `veth_open` refuses with ENOTCONN (`ip link add ... peer ... up` too).
    pub up: bool,
}

/// How a macvlan shares its master with its siblings (`ip link ... type macvlan mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// Siblings talk to each other directly, inside the master.
    Bridge,
    /// Siblings cannot talk to each other at all.
    Private,
    /// Every frame leaves through the master; an external switch may hairpin it back.
    Vepa,
    /// The one macvlan of the master takes over the master's MAC address.
    Passthru,
}

impl From<MacvlanMode> for MacVlanMode {
    fn from(m: MacvlanMode) -> Self {
        match m {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
        }
    }
}

/// A macvlan to create in one message, possibly directly inside another namespace.
#[derive(Debug, Clone)]
pub struct MacvlanSpec<'a> {
    /// Name, unique within `netns`.
    pub name: &'a str,
    /// Index of the master link in this handle's namespace.
    pub master: u32,
    /// Mode.
    pub mode: MacvlanMode,
    /// Namespace the macvlan is created in (`IFLA_NET_NS_FD`); this handle's when `None`.
    pub netns: Option<&'a Netns>,
    /// MTU; the master's when `None`.
    pub mtu: Option<u32>,
    /// Hardware address; random when `None` (passthru: the master's).
    pub mac: Option<[u8; 6]>,
}

const LINK_ADD: Op = Op {
    name: "create",
    not_found: LINK_GONE,
};

fn op(name: &'static str) -> Op {
    Op {
        name,
        not_found: LINK_GONE,
    }
}

fn up_flags(msg: &mut LinkMessage, up: bool) {
    if up {
        msg.header.flags |= LinkFlags::Up;
        msg.header.change_mask |= LinkFlags::Up;
    }
}

/// A new link's name, and its MTU, MAC and namespace when given.
fn new_link_attributes(
    msg: &mut LinkMessage,
    name: &str,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    netns: Option<&Netns>,
) {
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = mac {
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(ns) = netns {
        // The descriptor is only read by the kernel while the caller holds `ns`.
        msg.attributes
            .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
    }
}

fn link_message(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

impl Handle {
    /// The link called `name`, or `None`.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        let mut msg = link_message(0);
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.get_link(msg, || format!("link {name}"))
    }

    /// The link with index `index`, or `None`.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        self.get_link(link_message(index), || format!("link {index}"))
    }

    fn get_link(
        &mut self,
        msg: LinkMessage,
        what: impl FnOnce() -> String,
    ) -> Result<Option<Link>> {
        match self.get(op("get"), RouteNetlinkMessage::GetLink(msg), what) {
            Ok(replies) => Ok(replies.into_iter().find_map(to_link)),
            Err(super::NetlinkError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link in this handle's namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.dump(
            op("list"),
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            || "links".into(),
        )?;
        Ok(replies.into_iter().filter_map(to_link).collect())
    }

    /// Creates a bridge; [`super::NetlinkError::Exists`] when the name is taken.
    pub fn create_bridge(&mut self, spec: &BridgeSpec<'_>) -> Result<()> {
        let mut msg = link_message(0);
        up_flags(&mut msg, spec.up);
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.to_owned()));
        if let Some(mtu) = spec.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.ack(
            LINK_ADD,
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewLink(msg),
            || format!("bridge {}", spec.name),
        )?;
        if let Some(alias) = spec.alias {
            let index = self
                .link_by_name(spec.name)?
                .map(|l| l.index)
                .ok_or_else(|| super::NetlinkError::NotFound {
                    op: "set alias of",
                    what: format!("bridge {}", spec.name),
                    errno: nix::errno::Errno::ENODEV,
                })?;
            self.set_alias(index, alias)?;
        }
        Ok(())
    }

    /// Sets the interface alias (`ip link set ... alias`).
    pub fn set_alias(&mut self, index: u32, alias: &str) -> Result<()> {
        self.set_link("set alias of", index, |m| {
            m.attributes.push(LinkAttribute::IfAlias(alias.to_owned()))
        })
    }

    /// Creates a veth pair in one message: peer already in its namespace, host end on its bridge.
    /// Returns the peer's index in its namespace when the kernel echoes the new link (Linux 6.3
    /// and later honour `NLM_F_ECHO` here), which saves looking the peer up by name.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<Option<u32>> {
        let mut peer = link_message(0);
        new_link_attributes(
            &mut peer,
            spec.peer_name,
            spec.mtu,
            spec.peer_mac,
            spec.peer_netns,
        );
        let mut msg = link_message(0);
        up_flags(&mut msg, spec.up);
        new_link_attributes(&mut msg, spec.name, spec.mtu, spec.mac, None);
        if let Some(master) = spec.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let echoed = self.collect(
            LINK_ADD,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO | NLM_F_ACK,
            || {
                let ns = spec
                    .peer_netns
                    .map(|ns| format!(" in {}", ns.path().display()))
                    .unwrap_or_default();
                format!("veth {} (peer {}{ns})", spec.name, spec.peer_name)
            },
        )?;
        Ok(echoed
            .into_iter()
            .filter_map(to_link)
            .find(|l| l.name == spec.name)
            .and_then(|l| l.link_index))
    }

    /// Creates a macvlan on `master` in one message, directly inside its namespace.
    pub fn create_macvlan(&mut self, spec: &MacvlanSpec<'_>) -> Result<()> {
        let mut msg = link_message(0);
        new_link_attributes(&mut msg, spec.name, spec.mtu, spec.mac, spec.netns);
        msg.attributes.push(LinkAttribute::Link(spec.master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(spec.mode.into())])),
        ]));
        self.ack(
            LINK_ADD,
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewLink(msg),
            || {
                let ns = spec
                    .netns
                    .map(|ns| format!(" in {}", ns.path().display()))
                    .unwrap_or_default();
                format!("macvlan {} on link {}{ns}", spec.name, spec.master)
            },
        )
    }

    /// Changes one link with RTM_SETLINK; `edit` fills in what changes.
    fn set_link(
        &mut self,
        name: &'static str,
        index: u32,
        edit: impl FnOnce(&mut LinkMessage),
    ) -> Result<()> {
        let mut msg = link_message(index);
        edit(&mut msg);
        self.ack(op(name), 0, RouteNetlinkMessage::SetLink(msg), || {
            format!("link {index}")
        })
    }

    /// Brings the link up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        self.set_link("set up", index, |m| up_flags(m, true))
    }

    /// Brings the link down.
    pub fn set_down(&mut self, index: u32) -> Result<()> {
        self.set_link("set down", index, |m| m.header.change_mask |= LinkFlags::Up)
    }

    /// Turns promiscuous mode on or off.
    pub fn set_promisc(&mut self, index: u32, on: bool) -> Result<()> {
        self.set_link("set promisc", index, |m| {
            m.header.change_mask |= LinkFlags::Promisc;
            if on {
                m.header.flags |= LinkFlags::Promisc;
            }
        })
    }

    /// Sets the MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        self.set_link("set mtu of", index, |m| {
            m.attributes.push(LinkAttribute::Mtu(mtu))
        })
    }

    /// Sets the hardware address.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        self.set_link("set address of", index, |m| {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()))
        })
    }

    /// Renames the link (it must be down).
    pub fn set_name(&mut self, index: u32, name: &str) -> Result<()> {
        self.set_link("rename", index, |m| {
            m.attributes.push(LinkAttribute::IfName(name.to_owned()))
        })
    }

    /// Stops the kernel from giving the link IPv6 addresses of its own (`ip link set ...
    /// addrgenmode none`): no link-local address, so none of the duplicate-address probes,
    /// router solicitations and multicast reports that a bridge floods to every port. Takes
    /// effect when the link comes up, so set it before. `name` when `index` is 0.
    pub fn set_ipv6_addr_gen_none(&mut self, index: u32, name: Option<&str>) -> Result<()> {
        let mut msg = link_message(index);
        if let Some(name) = name {
            msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        }
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        self.ack(
            op("set addrgenmode of"),
            0,
            RouteNetlinkMessage::SetLink(msg),
            || name.map_or(format!("link {index}"), str::to_owned),
        )
    }

    /// Attaches the link to bridge `master`, or detaches it with `None`.
    pub fn set_master(&mut self, index: u32, master: Option<u32>) -> Result<()> {
        self.set_link("set master of", index, |m| {
            m.attributes
                .push(LinkAttribute::Controller(master.unwrap_or(0)))
        })
    }

    /// Moves the link into namespace `ns`.
    pub fn move_to_netns(&mut self, index: u32, ns: &Netns) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes
            .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
        self.ack(op("move"), 0, RouteNetlinkMessage::SetLink(msg), || {
            format!("link {index} to {}", ns.path().display())
        })
    }

    /// Moves the link into namespace `ns` under the name `name`, in one message. The kernel
    /// moves it under its current name (`name` only if that one is taken in `ns`), then renames
    /// it: when `ns` already has a link called `name`, the request fails with EEXIST *after*
    /// the move, and the link is left in `ns` under its current name.
    pub fn move_to_netns_as(&mut self, index: u32, ns: &Netns, name: &str) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes
            .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.ack(op("move"), 0, RouteNetlinkMessage::SetLink(msg), || {
            format!("link {index} to {} as {name}", ns.path().display())
        })
    }

    /// Turns hairpin mode of a bridge port on or off (`bridge link set ... hairpin`).
    pub fn set_hairpin(&mut self, index: u32, on: bool) -> Result<()> {
        self.set_bridge_port_flag("set hairpin of", index, IFLA_BRPORT_MODE, on)
    }

    /// Isolates a bridge port (`bridge link set ... isolated`): isolated ports cannot reach
    /// each other, only ports that are not isolated and the bridge itself.
    pub fn set_isolated(&mut self, index: u32, on: bool) -> Result<()> {
        self.set_bridge_port_flag("set isolation of", index, IFLA_BRPORT_ISOLATED, on)
    }

    fn set_bridge_port_flag(
        &mut self,
        name: &'static str,
        index: u32,
        attr: u16,
        on: bool,
    ) -> Result<()> {
        let mut msg = link_message(index);
        msg.header.interface_family = AddressFamily::Bridge;
        // The crate emits IFLA_PROTINFO with NLA_F_NESTED, which br_setlink requires.
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
            LinkProtoInfoBridge::Other(DefaultNla::new(attr, vec![u8::from(on)])),
        ]));
        self.ack(op(name), 0, RouteNetlinkMessage::SetLink(msg), || {
            format!("bridge port {index}")
        })
    }

    /// Deletes the link (both ends of a veth); [`super::NetlinkError::NotFound`] when missing.
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        self.ack(
            op("delete"),
            0,
            RouteNetlinkMessage::DelLink(link_message(index)),
            || format!("link {index}"),
        )
    }

    /// Deletes the link called `name`; [`super::NetlinkError::NotFound`] when missing.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<()> {
        let mut msg = link_message(0);
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.ack(op("delete"), 0, RouteNetlinkMessage::DelLink(msg), || {
            format!("link {name}")
        })
    }
}

fn to_link(reply: RouteNetlinkMessage) -> Option<Link> {
    let RouteNetlinkMessage::NewLink(msg) = reply else {
        return None;
    };
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        kind: None,
        master: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        link_index: None,
        netns_id: None,
        alias: None,
    };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Address(mac) => link.mac = mac.try_into().ok(),
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::Controller(master) if master != 0 => link.master = Some(master),
            LinkAttribute::Link(index) if index != 0 => link.link_index = Some(index),
            LinkAttribute::LinkNetNsId(id) => link.netns_id = Some(id),
            LinkAttribute::IfAlias(alias) if !alias.is_empty() => link.alias = Some(alias),
            LinkAttribute::LinkInfo(infos) => {
                link.kind = infos.into_iter().find_map(|info| match info {
                    LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    Some(link)
}
