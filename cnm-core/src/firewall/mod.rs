//! cnm's own nftables table, programmed through netlink (no exec of `nft`).
//!
//! ```text
//! table inet cnm                                   # cnm never touches any other table
//! ├── set masq4        type ipv4_addr; flags interval    subnets of networks with ipMasq
//! ├── set masq6        type ipv6_addr; flags interval
//! ├── set bridges      type ifname                        every cnm bridge
//! ├── set same_bridge  type ifname . ifname               "br . br", one per bridge
//! ├── set internal     type ifname                        bridges of internal networks
//! │
//! ├── chain postrouting   type nat hook postrouting priority 100
//! │     ip saddr @masq4 ip daddr != @masq4 ip daddr != 224.0.0.0/4 masquerade
//! │     ip6 saddr @masq6 ip6 daddr != @masq6 ip6 daddr != ff00::/8 masquerade
//! ├── chain forward       type filter hook forward priority 0; policy accept
//! │     iifname @internal drop
//! │     oifname @internal drop
//! │     iifname @bridges oifname @bridges iifname . oifname != @same_bridge drop
//! │     ct status dnat ip daddr . iifname @pmhp4 meta mark set mark | 0x2000      (and v6)
//! │
//! │   port mapping (portmap.rs; elements owned per endpoint in the store):
//! ├── map pm4     ip daddr . inet_proto . inet_service : ipv4_addr . inet_service  (hostIP given)
//! ├── map pm6     ip6 daddr . inet_proto . inet_service : ipv6_addr . inet_service
//! ├── map pm4any  inet_proto . inet_service : ipv4_addr . inet_service        (every local address)
//! ├── map pm6any  inet_proto . inet_service : ipv6_addr . inet_service
//! ├── set pmhp4 / pmhp6   ip[6] daddr . ifname    a container with published ports . its bridge
//! ├── chain prerouting   type nat hook prerouting priority -100
//! │     dnat ip to ip daddr . meta l4proto . th dport map @pm4
//! │     fib daddr type local dnat ip to meta l4proto . th dport map @pm4any   (and v6)
//! ├── chain output       type nat hook output priority -100     (same rules: from the host)
//! ├── chain localnet     type filter hook prerouting priority -300
//! │     ip daddr 127.0.0.0/8 iifname != "lo" drop                (CVE-2020-8558)
//! └── postrouting, after the rules above:
//!       meta mark & 0x2000 != 0 masquerade                         (hairpin, marked in forward)
//!       ct status dnat ip saddr 127.0.0.0/8 masquerade             (from the host's localhost)
//! ```
//!
//! Rules never change once the table exists: networks come and go as set elements, so adding or
//! removing a network is one small batch whose cost does not grow with the number of networks.
//! Every change is one atomic batch (all or nothing).
//!
//! Measured here (kernel 6.18, medians, `tests/measure.rs`): `add_network` and `remove_network`
//! 25–50 µs (about 60 µs with 1000 other networks in the sets); `ensure_table` 6 µs when the table
//! exists, 0.3 ms to create it. Deleting the network sets' elements or the table did not wait
//! for an RCU grace period there; removing a container's port-map elements did (~20 ms in a DEL
//! under strace), which is why DEL runs it beside the veth deletion. A batch the kernel
//! *refuses* waits too (~16 ms while it frees what it had built), which is why `ensure_table`
//! looks before it builds.

mod attrs;
mod conntrack;
mod expr;
mod netlink;
mod portmap;
mod table;
#[cfg(test)]
mod tests;

use std::io;
use std::net::IpAddr;

use ipnet::IpNet;
use nix::errno::Errno;

use crate::netns::NetnsError;
use attrs::Attrs;
use netlink::{Batch, MsgType};
use table::{FAMILY_INET, TABLE};

pub use netlink::{LazyNft, Nft};
pub use portmap::{PortMapElement, PortMapKey, PortMapSet};

/// Errors of the firewall; each says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The kernel said the object exists already (`EEXIST`).
    #[error("{op}: already exists")]
    Exists { op: String },
    /// The kernel said the table, set or element does not exist (`ENOENT`).
    #[error("{op}: does not exist")]
    NotFound { op: String },
    /// The kernel rejected a message with another error.
    #[error("{op}: {errno}")]
    Kernel { op: String, errno: Errno },
    /// The netlink socket failed.
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    /// Opening the socket inside a network namespace failed.
    #[error("open nftables socket: {0}")]
    Netns(#[source] NetnsError),
    /// A bridge name that cannot be an interface name.
    #[error("invalid interface name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
}

/// Shorthand for results of this module.
pub type Result<T, E = FirewallError> = std::result::Result<T, E>;

/// A set of cnm's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Set {
    /// IPv4 subnets whose traffic leaving them is masqueraded.
    Masq4,
    /// IPv6 subnets whose traffic leaving them is masqueraded.
    Masq6,
    /// Every cnm bridge.
    Bridges,
    /// `br . br` for every cnm bridge: traffic that stays on its bridge is not isolated.
    SameBridge,
    /// Bridges of internal networks: nothing is forwarded to or from them.
    Internal,
}

/// An element read back from a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    /// A subnet of `masq4` / `masq6`.
    Subnet(IpNet),
    /// An interval of `masq4` / `masq6` that is not a subnet (cnm does not add those).
    Range { first: IpAddr, last: IpAddr },
    /// An interface name of `bridges` / `internal`.
    Ifname(String),
    /// A pair of interface names of `same_bridge`.
    IfnamePair(String, String),
}

/// What the table holds for one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules<'a> {
    /// The network's bridge.
    pub bridge: &'a str,
    /// Subnets to masquerade when leaving them (empty without ipMasq).
    pub masq: Vec<IpNet>,
    /// Whether the network is internal (no forwarding to or from its bridge).
    pub internal: bool,
}

/// How a batch removes elements (only `Destroy` is used outside tests; `Delete` is measured).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// `NFT_MSG_DESTROYSETELEM`: a missing element is success (Linux 6.3).
    Destroy,
    /// `NFT_MSG_DELSETELEM`: a missing element fails the batch with `ENOENT`.
    // Kept to test and measure against `Destroy`.
    #[cfg_attr(not(test), allow(dead_code))]
    Delete,
}

impl NetworkRules<'_> {
    /// The network's elements, per set, in table order.
    fn elements(&self) -> Result<Vec<(Set, Vec<table::Key>)>> {
        let bridge = table::ifname_key(self.bridge)?;
        let mut out = Vec::new();
        for (set, v4) in [(Set::Masq4, true), (Set::Masq6, false)] {
            let keys: Vec<_> = self
                .masq
                .iter()
                .filter(|n| matches!(n, IpNet::V4(_)) == v4)
                .flat_map(table::subnet_keys)
                .collect();
            if !keys.is_empty() {
                out.push((set, keys));
            }
        }
        out.push((Set::Bridges, vec![(bridge.clone(), false)]));
        out.push((
            Set::SameBridge,
            vec![([&bridge[..], &bridge[..]].concat(), false)],
        ));
        if self.internal {
            out.push((Set::Internal, vec![(bridge, false)]));
        }
        Ok(out)
    }
}

impl Nft {
    /// Creates cnm's table with its sets, chains and rules unless it exists; safe to race.
    pub fn ensure_table(&mut self) -> Result<()> {
        // Look first: a batch the kernel rejects costs an RCU grace period (~16 ms here) to
        // free what it had built, a get costs ~20 µs. Only racing creators pay the abort.
        if self.table_exists()? {
            return Ok(());
        }
        match self.commit(&table::create_table_batch()) {
            // Only the table message has NLM_F_EXCL, so EEXIST means the table was there and
            // the whole batch (its rules too) was discarded.
            Ok(()) | Err(FirewallError::Exists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether cnm's table exists (it may have been made by another process).
    pub fn table_exists(&mut self) -> Result<bool> {
        let mut a = Attrs::default();
        a.str(1, TABLE); // NFTA_TABLE_NAME
        let what = format!("get table inet {TABLE}");
        match self.request(MsgType::GetTable, FAMILY_INET, false, &what, &a) {
            Ok(_) => Ok(true),
            Err(FirewallError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes cnm's table and everything in it; a missing table is success.
    pub fn delete_table(&mut self) -> Result<()> {
        let mut b = Batch::new(format!("delete table inet {TABLE}"));
        let mut a = Attrs::default();
        a.str(1, TABLE); // NFTA_TABLE_NAME
        b.push(MsgType::DestroyTable, FAMILY_INET, 0, "destroy table", a);
        self.commit(&b)
    }

    /// Adds a network's elements in one batch; adding them again is success.
    pub fn add_network(&mut self, rules: &NetworkRules<'_>) -> Result<()> {
        let mut b = Batch::new(format!(
            "add network {} to table inet {TABLE}",
            rules.bridge
        ));
        for (set, keys) in rules.elements()? {
            let what = format!("add elements to set {}", set.name());
            let a = table::elements_attrs(set, &keys);
            b.push(
                MsgType::NewSetElem,
                FAMILY_INET,
                libc::NLM_F_CREATE,
                what,
                a,
            );
        }
        self.commit(&b)?;
        crate::fault::side_effect("add firewall elements");
        Ok(())
    }

    /// Removes a network's elements in one batch; missing elements or table are success.
    pub fn remove_network(&mut self, rules: &NetworkRules<'_>) -> Result<()> {
        match self.remove_network_by(rules, Removal::Destroy) {
            // With DESTROYSETELEM only a missing table or set gives ENOENT: nothing to remove.
            Err(FirewallError::NotFound { .. }) => Ok(()),
            Ok(()) => {
                crate::fault::side_effect("remove firewall elements");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn remove_network_by(
        &mut self,
        rules: &NetworkRules<'_>,
        how: Removal,
    ) -> Result<()> {
        let mut b = Batch::new(format!(
            "remove network {} from table inet {TABLE}",
            rules.bridge
        ));
        let ty = match how {
            Removal::Destroy => MsgType::DestroySetElem,
            Removal::Delete => MsgType::DelSetElem,
        };
        for (set, keys) in rules.elements()? {
            let what = format!("remove elements from set {}", set.name());
            b.push(ty, FAMILY_INET, 0, what, table::elements_attrs(set, &keys));
        }
        self.commit(&b)
    }

    /// Reads the elements of one set (for CHECK and tests).
    pub fn elements(&mut self, set: Set) -> Result<Vec<Element>> {
        let mut a = Attrs::default();
        a.str(1, TABLE).str(2, set.name()); // NFTA_SET_ELEM_LIST_TABLE, _SET
        let what = format!("list set inet {TABLE} {}", set.name());
        let replies = self.request(MsgType::GetSetElem, FAMILY_INET, true, &what, &a)?;
        let mut keys = Vec::new();
        for r in &replies {
            table::parse_elements(r, &mut keys);
        }
        Ok(match set {
            Set::Masq4 | Set::Masq6 => {
                let ints = keys
                    .into_iter()
                    .map(|(k, end)| {
                        let mut b = [0u8; 16];
                        let n = k.len().min(16);
                        b[16 - n..].copy_from_slice(&k[..n]);
                        (u128::from_be_bytes(b), end)
                    })
                    .collect();
                table::decode_intervals(set, ints)
            }
            Set::Bridges | Set::Internal => keys
                .iter()
                .map(|(k, _)| Element::Ifname(table::ifname_from_key(k)))
                .collect(),
            Set::SameBridge => keys
                .iter()
                .map(|(k, _)| {
                    let (a, b) = k.split_at(k.len() / 2);
                    Element::IfnamePair(table::ifname_from_key(a), table::ifname_from_key(b))
                })
                .collect(),
        })
    }
}
