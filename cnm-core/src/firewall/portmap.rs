//! Port mapping in cnm's table (see the picture in `mod.rs`): the maps, chains and rules that
//! the table is created with, and the elements one container adds and removes.
//!
//! Every published port is one element of a map whose data is the DNAT target, so a packet
//! costs one hash lookup, and ADD or DEL one small batch, whatever the number of containers.

use std::net::{IpAddr, SocketAddr};

use super::attrs::{parse_attrs, Attrs};
use super::expr::{self, Base, CmpOp, Expr, MetaKey, Verdict, REG32_00};
use super::netlink::{Batch, MsgType};
use super::table::{ifname_key, FAMILY_INET, TABLE};
use super::{FirewallError, Nft, Result};
use crate::cni::config::Protocol;

const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
// nft's userspace datatypes (see table.rs): only `nft list` reads them.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_PROTO: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_IFNAME: u32 = 41;
const NFT_SET_MAP: u32 = 0x8;
/// `RTN_LOCAL`, host-endian as `fib` writes it.
static RTN_LOCAL: [u8; 4] = 2u32.to_ne_bytes();
/// `IPS_DST_NAT`, host-endian as `ct status` writes it.
static IPS_DST_NAT: [u8; 4] = 0x20u32.to_ne_bytes();
static ZERO4: [u8; 4] = [0; 4];
/// The packet mark bit that asks postrouting to masquerade hairpin traffic (bit 13, the
/// reference portmap's default `markMasqBit`).
static HAIRPIN_MARK: [u8; 4] = 0x2000u32.to_ne_bytes();
static NOT_HAIRPIN_MARK: [u8; 4] = (!0x2000u32).to_ne_bytes();

/// A map or set of the port-mapping part of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortMapSet {
    /// `ip daddr . meta l4proto . th dport : ipv4_addr . inet_service` (a given hostIP).
    Pm4,
    /// The same for IPv6.
    Pm6,
    /// `meta l4proto . th dport : ipv4_addr . inet_service` (every local address).
    Pm4Any,
    /// The same for IPv6.
    Pm6Any,
    /// `ip daddr . iifname`: a container with published ports, and its bridge (hairpin).
    Hairpin4,
    /// The same for IPv6.
    Hairpin6,
}

impl PortMapSet {
    /// Every map and set, in creation order.
    pub const ALL: [PortMapSet; 6] = [
        PortMapSet::Pm4,
        PortMapSet::Pm6,
        PortMapSet::Pm4Any,
        PortMapSet::Pm6Any,
        PortMapSet::Hairpin4,
        PortMapSet::Hairpin6,
    ];

    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            PortMapSet::Pm4 => "pm4",
            PortMapSet::Pm6 => "pm6",
            PortMapSet::Pm4Any => "pm4any",
            PortMapSet::Pm6Any => "pm6any",
            PortMapSet::Hairpin4 => "pmhp4",
            PortMapSet::Hairpin6 => "pmhp6",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// (key type, key length, data type and length for maps)
    fn shape(self) -> (u32, u32, Option<(u32, u32)>) {
        let (a4, a6, p, s, i) = (
            TYPE_IPADDR,
            TYPE_IP6ADDR,
            TYPE_INET_PROTO,
            TYPE_INET_SERVICE,
            TYPE_IFNAME,
        );
        let (d4, d6) = (Some((a4 << 6 | s, 8)), Some((a6 << 6 | s, 20)));
        match self {
            PortMapSet::Pm4 => (a4 << 12 | p << 6 | s, 12, d4),
            PortMapSet::Pm6 => (a6 << 12 | p << 6 | s, 24, d6),
            PortMapSet::Pm4Any => (p << 6 | s, 8, d4),
            PortMapSet::Pm6Any => (p << 6 | s, 8, d6),
            PortMapSet::Hairpin4 => (a4 << 6 | i, 20, None),
            PortMapSet::Hairpin6 => (a6 << 6 | i, 32, None),
        }
    }
}

/// The key of one port-mapping element; its text form is what the store records as owned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortMapKey {
    /// A published port: on `host_ip`, or on every local address of family `v6`.
    Port {
        host_ip: Option<IpAddr>,
        v6: bool,
        protocol: Protocol,
        host_port: u16,
    },
    /// A container address with published ports, and the bridge it is reached through.
    Hairpin { addr: IpAddr, bridge: String },
}

/// One element: its key and, for a published port, the container address and port to DNAT to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapElement {
    /// The key.
    pub key: PortMapKey,
    /// The DNAT target (`None` for hairpin elements).
    pub target: Option<SocketAddr>,
}

fn proto_num(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl PortMapKey {
    /// The map or set the element lives in.
    pub fn set(&self) -> PortMapSet {
        match self {
            PortMapKey::Port {
                host_ip: Some(IpAddr::V4(_)),
                ..
            } => PortMapSet::Pm4,
            PortMapKey::Port {
                host_ip: Some(IpAddr::V6(_)),
                ..
            } => PortMapSet::Pm6,
            PortMapKey::Port { v6: false, .. } => PortMapSet::Pm4Any,
            PortMapKey::Port { v6: true, .. } => PortMapSet::Pm6Any,
            PortMapKey::Hairpin {
                addr: IpAddr::V4(_),
                ..
            } => PortMapSet::Hairpin4,
            PortMapKey::Hairpin {
                addr: IpAddr::V6(_),
                ..
            } => PortMapSet::Hairpin6,
        }
    }

    /// The key as the kernel stores it: each field in its own 4-byte registers.
    fn bytes(&self) -> Result<Vec<u8>> {
        let mut k = Vec::with_capacity(32);
        match self {
            PortMapKey::Port {
                host_ip,
                protocol,
                host_port,
                ..
            } => {
                if let Some(ip) = host_ip {
                    k.extend(addr_bytes(*ip));
                }
                k.extend([proto_num(*protocol), 0, 0, 0]);
                k.extend(host_port.to_be_bytes());
                k.extend([0, 0]);
            }
            PortMapKey::Hairpin { addr, bridge } => {
                k.extend(addr_bytes(*addr));
                k.extend(ifname_key(bridge)?);
            }
        }
        Ok(k)
    }

    /// Parses the text form ([`std::fmt::Display`]) back.
    pub fn parse(s: &str) -> Option<Self> {
        let f: Vec<&str> = s.split(' ').collect();
        let set = PortMapSet::from_name(f.first()?)?;
        let proto = |p: &str| match p {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        };
        let key = match (set, &f[1..]) {
            (PortMapSet::Pm4 | PortMapSet::Pm6, [ip, p, port]) => PortMapKey::Port {
                host_ip: Some(ip.parse().ok()?),
                v6: set == PortMapSet::Pm6,
                protocol: proto(p)?,
                host_port: port.parse().ok()?,
            },
            (PortMapSet::Pm4Any | PortMapSet::Pm6Any, [p, port]) => PortMapKey::Port {
                host_ip: None,
                v6: set == PortMapSet::Pm6Any,
                protocol: proto(p)?,
                host_port: port.parse().ok()?,
            },
            (PortMapSet::Hairpin4 | PortMapSet::Hairpin6, [ip, br]) => PortMapKey::Hairpin {
                addr: ip.parse().ok()?,
                bridge: (*br).to_owned(),
            },
            _ => return None,
        };
        (key.set() == set).then_some(key)
    }
}

impl std::fmt::Display for PortMapKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.set().name();
        match self {
            PortMapKey::Port {
                host_ip: Some(ip),
                protocol,
                host_port,
                ..
            } => write!(f, "{set} {ip} {} {host_port}", protocol.as_str()),
            PortMapKey::Port {
                protocol,
                host_port,
                ..
            } => write!(f, "{set} {} {host_port}", protocol.as_str()),
            PortMapKey::Hairpin { addr, bridge } => write!(f, "{set} {addr} {bridge}"),
        }
    }
}

fn target_bytes(t: SocketAddr) -> Vec<u8> {
    let mut d = addr_bytes(t.ip());
    d.extend(t.port().to_be_bytes());
    d.extend([0, 0]);
    d
}

/// Adds the maps, chains and rules of port mapping to the batch that creates the table.
pub(super) fn push_table(b: &mut Batch, first_set_id: u32) {
    let create = libc::NLM_F_CREATE;
    for (id, set) in (first_set_id..).zip(PortMapSet::ALL) {
        let (key_type, key_len, data) = set.shape();
        // NFTA_SET_TABLE = 1, _NAME = 2, _FLAGS = 3, _KEY_TYPE = 4, _KEY_LEN = 5,
        // _DATA_TYPE = 6, _DATA_LEN = 7, _ID = 10
        let mut a = Attrs::default();
        a.str(1, TABLE).str(2, set.name());
        a.u32(3, if data.is_some() { NFT_SET_MAP } else { 0 });
        a.u32(4, key_type).u32(5, key_len);
        if let Some((data_type, data_len)) = data {
            a.u32(6, data_type).u32(7, data_len);
        }
        a.u32(10, id);
        b.push(
            MsgType::NewSet,
            FAMILY_INET,
            create,
            format!("add map {}", set.name()),
            a,
        );
    }
    // (name, type, hook: NF_INET_PRE_ROUTING = 0 / NF_INET_LOCAL_OUT = 3, priority)
    let chains = [
        ("prerouting", "nat", 0, -100),
        ("output", "nat", 3, -100),
        ("localnet", "filter", 0, -300),
    ];
    for (name, kind, hook, prio) in chains {
        let mut a = Attrs::default();
        a.str(1, TABLE)
            .str(3, name)
            .nest(4, |h| {
                h.u32(1, hook).u32(2, prio as u32);
            })
            .u32(5, Verdict::Accept as u32)
            .str(7, kind);
        b.push(
            MsgType::NewChain,
            FAMILY_INET,
            create,
            format!("add chain {name}"),
            a,
        );
    }
    for (chain, rule) in rules() {
        let mut a = Attrs::default();
        a.str(1, TABLE)
            .str(2, chain)
            .nest(4, |l| expr::encode_exprs(&rule, l));
        let what = format!("add rule to chain {chain}");
        b.push(
            MsgType::NewRule,
            FAMILY_INET,
            create | libc::NLM_F_APPEND,
            what,
            a,
        );
    }
}

fn rules() -> Vec<(&'static str, Vec<Expr<'static>>)> {
    let r = REG32_00;
    let reg = |n: u32| r + n;
    let family = |p: &'static [u8]| {
        [
            Expr::Meta {
                key: MetaKey::NfProto,
                dreg: r,
            },
            Expr::Cmp {
                sreg: r,
                op: CmpOp::Eq,
                data: p,
            },
        ]
    };
    let net = |offset, len, dreg| Expr::Payload {
        base: Base::Network,
        offset,
        len,
        dreg,
    };
    let l4proto = |dreg| Expr::Meta {
        key: MetaKey::L4Proto,
        dreg,
    };
    let dport = |dreg| Expr::Payload {
        base: Base::Transport,
        offset: 2,
        len: 2,
        dreg,
    };
    let local = [
        Expr::FibDaddrType { dreg: r },
        Expr::Cmp {
            sreg: r,
            op: CmpOp::Eq,
            data: &RTN_LOCAL,
        },
    ];
    let dnat_done = [
        Expr::CtStatus { dreg: r },
        Expr::Bitwise {
            sreg: r,
            dreg: r,
            mask: &IPS_DST_NAT,
            xor: &ZERO4,
        },
        Expr::Cmp {
            sreg: r,
            op: CmpOp::Neq,
            data: &ZERO4,
        },
    ];
    let lookup = |set: PortMapSet| Expr::MapLookup {
        map: set.name(),
        sreg: r,
        dreg: r,
    };
    let dnat = |family, port| Expr::Dnat {
        family,
        addr: r,
        port: reg(port),
    };
    let v4 = &[NFPROTO_IPV4][..];
    let v6 = &[NFPROTO_IPV6][..];

    // dnat ip to ip daddr . meta l4proto . th dport map @pm4   (a given hostIP)
    let mut pm4 = family(v4).to_vec();
    pm4.extend([net(16, 4, r), l4proto(reg(1)), dport(reg(2))]);
    pm4.extend([lookup(PortMapSet::Pm4), dnat(NFPROTO_IPV4, 1)]);
    // fib daddr type local dnat ip to meta l4proto . th dport map @pm4any
    let mut pm4any = family(v4).to_vec();
    pm4any.extend(local.clone());
    pm4any.extend([l4proto(r), dport(reg(1)), lookup(PortMapSet::Pm4Any)]);
    pm4any.push(dnat(NFPROTO_IPV4, 1));
    let mut pm6 = family(v6).to_vec();
    pm6.extend([net(24, 16, r), l4proto(reg(4)), dport(reg(5))]);
    pm6.extend([lookup(PortMapSet::Pm6), dnat(NFPROTO_IPV6, 4)]);
    let mut pm6any = family(v6).to_vec();
    pm6any.extend(local);
    pm6any.extend([l4proto(r), dport(reg(1)), lookup(PortMapSet::Pm6Any)]);
    pm6any.push(dnat(NFPROTO_IPV6, 4));

    // forward: ct status dnat ip daddr . iifname @pmhp4 meta mark set mark | 0x2000
    // (hairpin through the host; postrouting does not see the input interface)
    let hairpin = |family_: &'static [u8], set: PortMapSet, off, len, ifreg| {
        let mut e = family(family_).to_vec();
        e.extend(dnat_done.clone());
        e.extend([
            net(off, len, r),
            Expr::Meta {
                key: MetaKey::IifName,
                dreg: reg(ifreg),
            },
        ]);
        e.extend([
            Expr::Lookup {
                set: set.name(),
                sreg: r,
                invert: false,
            },
            Expr::Meta {
                key: MetaKey::Mark,
                dreg: r,
            },
            Expr::Bitwise {
                sreg: r,
                dreg: r,
                mask: &NOT_HAIRPIN_MARK,
                xor: &HAIRPIN_MARK,
            },
            Expr::MetaSet {
                key: MetaKey::Mark,
                sreg: r,
            },
        ]);
        e
    };
    // postrouting: meta mark & 0x2000 != 0 masquerade
    let marked = vec![
        Expr::Meta {
            key: MetaKey::Mark,
            dreg: r,
        },
        Expr::Bitwise {
            sreg: r,
            dreg: r,
            mask: &HAIRPIN_MARK,
            xor: &ZERO4,
        },
        Expr::Cmp {
            sreg: r,
            op: CmpOp::Neq,
            data: &ZERO4,
        },
        Expr::Masquerade,
    ];
    // ct status dnat ip saddr 127.0.0.0/8 masquerade   (from the host's localhost)
    let mut localhost = family(v4).to_vec();
    localhost.extend(dnat_done.clone());
    localhost.extend([
        net(12, 1, r),
        Expr::Cmp {
            sreg: r,
            op: CmpOp::Eq,
            data: &[127],
        },
        Expr::Masquerade,
    ]);
    // ip daddr 127.0.0.0/8 iifname != "lo" drop   (CVE-2020-8558, as kube-proxy does)
    let mut martian = family(v4).to_vec();
    martian.extend([
        net(16, 1, r),
        Expr::Cmp {
            sreg: r,
            op: CmpOp::Eq,
            data: &[127],
        },
        Expr::Meta {
            key: MetaKey::IifName,
            dreg: r,
        },
        Expr::Cmp {
            sreg: r,
            op: CmpOp::Neq,
            data: b"lo\0",
        },
        Expr::Verdict(Verdict::Drop),
    ]);
    let mut out = Vec::new();
    for chain in ["prerouting", "output"] {
        for rule in [&pm4, &pm4any, &pm6, &pm6any] {
            out.push((chain, rule.clone()));
        }
    }
    out.push(("forward", hairpin(v4, PortMapSet::Hairpin4, 16, 4, 1)));
    out.push(("forward", hairpin(v6, PortMapSet::Hairpin6, 24, 16, 4)));
    out.push(("postrouting", marked));
    out.push(("postrouting", localhost));
    out.push(("localnet", martian));
    out
}

impl Nft {
    /// Removes `remove` and adds `add` in one atomic batch. Adding an element that exists with
    /// the same target is success; with another target the kernel refuses (`Exists`).
    pub fn update_port_maps(
        &mut self,
        add: &[PortMapElement],
        remove: &[PortMapKey],
    ) -> Result<()> {
        let mut b = Batch::new(format!("update port mappings in table inet {TABLE}"));
        for set in PortMapSet::ALL {
            let keys: Vec<_> = remove.iter().filter(|k| k.set() == set).collect();
            if !keys.is_empty() {
                let elems = keys
                    .into_iter()
                    .map(|k| Ok((k.bytes()?, None)))
                    .collect::<Result<Vec<_>>>()?;
                let what = format!("remove elements from {}", set.name());
                b.push(
                    MsgType::DestroySetElem,
                    FAMILY_INET,
                    0,
                    what,
                    elements(set, &elems),
                );
            }
        }
        for set in PortMapSet::ALL {
            let elems = add
                .iter()
                .filter(|e| e.key.set() == set)
                .map(|e| Ok((e.key.bytes()?, e.target.map(target_bytes))))
                .collect::<Result<Vec<_>>>()?;
            if !elems.is_empty() {
                let what = format!("add elements to {}", set.name());
                let flags = libc::NLM_F_CREATE;
                b.push(
                    MsgType::NewSetElem,
                    FAMILY_INET,
                    flags,
                    what,
                    elements(set, &elems),
                );
            }
        }
        if b.len() == 0 {
            return Ok(());
        }
        self.commit(&b)
    }

    /// Whether the element is in its map with the same target.
    pub fn has_port_map_element(&mut self, e: &PortMapElement) -> Result<bool> {
        let set = e.key.set();
        let a = elements(set, &[(e.key.bytes()?, None)]);
        let what = format!("get element {} of {}", e.key, set.name());
        let replies = match self.request(MsgType::GetSetElem, FAMILY_INET, false, &what, &a) {
            Ok(r) => r,
            Err(FirewallError::NotFound { .. }) => return Ok(false),
            Err(err) => return Err(err),
        };
        let want = e.target.map(target_bytes);
        Ok(replies.iter().any(|r| element_data(r) == want))
    }
}

/// A set elements message for `set` with (key, data) elements.
fn elements(set: PortMapSet, elems: &[(Vec<u8>, Option<Vec<u8>>)]) -> Attrs {
    // NFTA_SET_ELEM_LIST_TABLE = 1, _SET = 2, _ELEMENTS = 3; NFTA_SET_ELEM_KEY = 1, _DATA = 2
    let mut a = Attrs::default();
    a.str(1, TABLE).str(2, set.name()).nest(3, |l| {
        for (key, data) in elems {
            l.nest(1, |e| {
                e.nest(1, |k| {
                    k.bytes(expr::NFTA_DATA_VALUE, key);
                });
                if let Some(d) = data {
                    e.nest(2, |v| {
                        v.bytes(expr::NFTA_DATA_VALUE, d);
                    });
                }
            });
        }
    });
    a
}

/// The data of the first element in a `NEWSETELEM` reply (`None` for a set without data).
fn element_data(reply: &[u8]) -> Option<Vec<u8>> {
    let (_, list) = parse_attrs(reply).find(|&(t, _)| t == 3)?;
    let (_, elem) = parse_attrs(list).next()?;
    let (_, data) = parse_attrs(elem).find(|&(t, _)| t == 2)?;
    parse_attrs(data)
        .find(|&(t, _)| t == expr::NFTA_DATA_VALUE)
        .map(|(_, v)| v.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text_and_pick_their_map() {
        let keys = [
            PortMapKey::Port {
                host_ip: Some("10.0.0.1".parse().unwrap()),
                v6: false,
                protocol: Protocol::Tcp,
                host_port: 8080,
            },
            PortMapKey::Port {
                host_ip: None,
                v6: true,
                protocol: Protocol::Udp,
                host_port: 53,
            },
            PortMapKey::Hairpin {
                addr: "fd00::5".parse().unwrap(),
                bridge: "cni0".into(),
            },
        ];
        for k in &keys {
            assert_eq!(PortMapKey::parse(&k.to_string()).as_ref(), Some(k), "{k}");
        }
        assert_eq!(keys[0].to_string(), "pm4 10.0.0.1 tcp 8080");
        assert_eq!(keys[1].set(), PortMapSet::Pm6Any);
        assert_eq!(
            keys[0].bytes().unwrap(),
            [10, 0, 0, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0]
        );
        assert_eq!(keys[2].bytes().unwrap().len(), 32);
        assert_eq!(PortMapKey::parse("pm4 nonsense"), None);
    }
}
