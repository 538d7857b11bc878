//! The content of cnm's table (see the picture in `mod.rs`) as nf_tables messages: the batch that
//! creates the table, and the encoding and decoding of set elements.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::attrs::{parse_attrs, Attrs};
use super::expr::{self, Base, CmpOp, Expr, MetaKey, Verdict, REG32_00, REG32_04};
use super::netlink::{Batch, MsgType};
use super::{Element, FirewallError, Set};

/// The table's name; its family is `inet` (IPv4 and IPv6).
pub(super) const TABLE: &str = "cnm";
/// `NFPROTO_INET`.
pub(super) const FAMILY_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
/// `IFNAMSIZ`: interface names are keys of this many bytes, NUL-padded.
const IFNAMSIZ: usize = 16;

// nft's userspace datatype numbers (`enum datatypes` of nftables' datatype.h): the kernel only
// stores them, `nft list` uses them to print elements. A concatenation is `a << 6 | b`.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_IFNAME: u32 = 41;
const TYPE_BITS: u32 = 6;
// The set's byte order for `nft list` (libnftnl's NFTNL_UDATA_SET_KEYBYTEORDER = 0 in the set's
// userdata, a u8 type, u8 length, native u32 TLV; nft's enum byteorder). Without it nft prints
// every interface name as "".
const UDATA_SET_KEYBYTEORDER: u8 = 0;
const HOST_ENDIAN: u32 = 1;
const BIG_ENDIAN: u32 = 2;
// enum nft_set_flags
const NFT_SET_INTERVAL: u32 = 0x4;
// enum nft_set_elem_flags
const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;

impl Set {
    /// Every set of the table, in creation order.
    pub const ALL: [Set; 5] = [
        Set::Masq4,
        Set::Masq6,
        Set::Bridges,
        Set::SameBridge,
        Set::Internal,
    ];

    /// The set's name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Set::Masq4 => "masq4",
            Set::Masq6 => "masq6",
            Set::Bridges => "bridges",
            Set::SameBridge => "same_bridge",
            Set::Internal => "internal",
        }
    }

    /// (nft key type, key length in bytes, set flags, nft key byte order)
    fn shape(self) -> (u32, u32, u32, Option<u32>) {
        match self {
            Set::Masq4 => (TYPE_IPADDR, 4, NFT_SET_INTERVAL, Some(BIG_ENDIAN)),
            Set::Masq6 => (TYPE_IP6ADDR, 16, NFT_SET_INTERVAL, Some(BIG_ENDIAN)),
            Set::Bridges | Set::Internal => (TYPE_IFNAME, IFNAMSIZ as u32, 0, Some(HOST_ENDIAN)),
            Set::SameBridge => (
                TYPE_IFNAME << TYPE_BITS | TYPE_IFNAME,
                2 * IFNAMSIZ as u32,
                0,
                None,
            ),
        }
    }
}

/// The batch that creates the table with all its sets, chains and rules.
///
/// The table message carries `NLM_F_EXCL`: if the table exists already the kernel rejects the
/// whole batch with `EEXIST`, so concurrent callers can never append a second copy of the rules.
/// Sets and chains use `NLM_F_CREATE` alone.
pub(super) fn create_table_batch() -> Batch {
    let mut b = Batch::new(format!("create table inet {TABLE}"));
    let create = libc::NLM_F_CREATE;
    // NFTA_TABLE_NAME = 1, NFTA_TABLE_FLAGS = 2
    let mut t = Attrs::default();
    t.str(1, TABLE).u32(2, 0);
    b.push(
        MsgType::NewTable,
        FAMILY_INET,
        create | libc::NLM_F_EXCL,
        "add table",
        t,
    );
    for (id, set) in (1..).zip(Set::ALL) {
        let (key_type, key_len, flags, byteorder) = set.shape();
        // NFTA_SET_TABLE = 1, _NAME = 2, _FLAGS = 3, _KEY_TYPE = 4, _KEY_LEN = 5, _ID = 10,
        // _USERDATA = 13
        let mut a = Attrs::default();
        a.str(1, TABLE)
            .str(2, set.name())
            .u32(3, flags)
            .u32(4, key_type)
            .u32(5, key_len)
            .u32(10, id);
        if let Some(order) = byteorder {
            let mut udata = vec![UDATA_SET_KEYBYTEORDER, 4];
            udata.extend_from_slice(&order.to_ne_bytes());
            a.bytes(13, &udata);
        }
        let what = format!("add set {}", set.name());
        b.push(MsgType::NewSet, FAMILY_INET, create, what, a);
    }
    // (name, type, hook: NF_INET_POST_ROUTING = 4 / NF_INET_FORWARD = 2, priority)
    for (name, kind, hook, prio) in [("postrouting", "nat", 4, 100), ("forward", "filter", 2, 0)] {
        // NFTA_CHAIN_TABLE = 1, _NAME = 3, _HOOK = 4 {HOOKNUM = 1, PRIORITY = 2}, _POLICY = 5,
        // _TYPE = 7
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
        // NFTA_RULE_TABLE = 1, _CHAIN = 2, _EXPRESSIONS = 4
        let mut a = Attrs::default();
        a.str(1, TABLE)
            .str(2, chain)
            .nest(4, |l| expr::encode_exprs(&rule, l));
        b.push(
            MsgType::NewRule,
            FAMILY_INET,
            create | libc::NLM_F_APPEND,
            format!("add rule to chain {chain}"),
            a,
        );
    }
    super::portmap::push_table(&mut b, Set::ALL.len() as u32 + 1);
    b
}

fn rules() -> Vec<(&'static str, Vec<Expr<'static>>)> {
    let r = REG32_00;
    let nfproto = |p: &'static [u8]| {
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
    let load = |offset, len| Expr::Payload {
        base: Base::Network,
        offset,
        len,
        dreg: r,
    };
    let lookup = |set: Set, invert| Expr::Lookup {
        set: set.name(),
        sreg: r,
        invert,
    };
    let meta = |key, dreg| Expr::Meta { key, dreg };
    let drop = Expr::Verdict(Verdict::Drop);

    // ip saddr @masq4 ip daddr != @masq4 ip daddr != 224.0.0.0/4 masquerade
    let mut masq4 = nfproto(&[NFPROTO_IPV4]).to_vec();
    masq4.extend([
        load(12, 4),
        lookup(Set::Masq4, false),
        load(16, 4),
        lookup(Set::Masq4, true),
        // Masked like nft does it, so that `nft list` shows the prefix.
        load(16, 4),
        Expr::Bitwise {
            sreg: r,
            dreg: r,
            mask: &[0xf0, 0, 0, 0],
            xor: &[0; 4],
        },
        Expr::Cmp {
            sreg: r,
            op: CmpOp::Neq,
            data: &[0xe0, 0, 0, 0],
        },
        Expr::Masquerade,
    ]);
    // ip6 saddr @masq6 ip6 daddr != @masq6 ip6 daddr != ff00::/8 masquerade
    let mut masq6 = nfproto(&[NFPROTO_IPV6]).to_vec();
    masq6.extend([
        load(8, 16),
        lookup(Set::Masq6, false),
        load(24, 16),
        lookup(Set::Masq6, true),
        load(24, 1),
        Expr::Cmp {
            sreg: r,
            op: CmpOp::Neq,
            data: &[0xff],
        },
        Expr::Masquerade,
    ]);
    vec![
        ("postrouting", masq4),
        ("postrouting", masq6),
        // iifname @internal drop
        (
            "forward",
            vec![
                meta(MetaKey::IifName, r),
                lookup(Set::Internal, false),
                drop.clone(),
            ],
        ),
        // oifname @internal drop
        (
            "forward",
            vec![
                meta(MetaKey::OifName, r),
                lookup(Set::Internal, false),
                drop.clone(),
            ],
        ),
        // iifname @bridges oifname @bridges iifname . oifname != @same_bridge drop
        (
            "forward",
            vec![
                meta(MetaKey::IifName, r),
                lookup(Set::Bridges, false),
                meta(MetaKey::OifName, r),
                lookup(Set::Bridges, false),
                meta(MetaKey::IifName, r),
                meta(MetaKey::OifName, REG32_04),
                lookup(Set::SameBridge, true),
                drop,
            ],
        ),
    ]
}

/// A set element's key, and whether it ends an interval.
pub(super) type Key = (Vec<u8>, bool);

/// The key of an interface name: its bytes, NUL-padded to `IFNAMSIZ`.
pub(super) fn ifname_key(name: &str) -> Result<Vec<u8>, FirewallError> {
    // The kernel's dev_valid_name().
    let why = if name.is_empty() {
        Some("empty")
    } else if name.len() >= IFNAMSIZ {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved")
    } else if name
        .bytes()
        .any(|c| c == b'/' || c == b':' || c == 0 || c.is_ascii_whitespace())
    {
        Some("contains '/', ':', NUL or white space")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(FirewallError::InvalidName {
            name: name.to_owned(),
            why,
        });
    }
    let mut key = name.as_bytes().to_vec();
    key.resize(IFNAMSIZ, 0);
    Ok(key)
}

/// The keys of a subnet in an interval set: its first address, and the address after its last
/// flagged as the interval's end (none when the subnet reaches the top of the address space).
pub(super) fn subnet_keys(net: &IpNet) -> Vec<Key> {
    let (start, bits, width) = match net.trunc() {
        IpNet::V4(n) => (u128::from(u32::from(n.network())), 32, 4),
        IpNet::V6(n) => (u128::from(n.network()), 128, 16),
    };
    let host_bits = bits - u32::from(net.prefix_len());
    let size = 1u128.checked_shl(host_bits);
    let end = size
        .and_then(|s| start.checked_add(s))
        .filter(|&e| bits == 128 || e <= u128::from(u32::MAX));
    let bytes = |v: u128| v.to_be_bytes()[16 - width..].to_vec();
    let mut keys = vec![(bytes(start), false)];
    if let Some(end) = end {
        keys.push((bytes(end), true));
    }
    keys
}

/// Rebuilds subnets (or ranges) from an interval set's start and end elements.
pub(super) fn decode_intervals(set: Set, mut keys: Vec<(u128, bool)>) -> Vec<Element> {
    let bits = if set == Set::Masq4 { 32 } else { 128 };
    let addr = |v: u128| -> IpAddr {
        if bits == 32 {
            Ipv4Addr::from(v as u32).into()
        } else {
            Ipv6Addr::from(v).into()
        }
    };
    let max = if bits == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    // Ends sort before starts at the same key: adjacent intervals share that key.
    keys.sort_by_key(|&(k, end)| (k, !end));
    let mut out = Vec::new();
    let mut open = None;
    let mut close = |first: u128, last: u128| {
        let count = (last - first).checked_add(1);
        let cidr = match count {
            None => Some(0), // the whole IPv6 space
            Some(c) if c.is_power_of_two() && first.is_multiple_of(c) => {
                Some(bits - c.trailing_zeros() as u8)
            }
            Some(_) => None,
        };
        out.push(match cidr.and_then(|p| IpNet::new(addr(first), p).ok()) {
            Some(net) => Element::Subnet(net),
            None => Element::Range {
                first: addr(first),
                last: addr(last),
            },
        });
    };
    for (key, end) in keys {
        match (end, open.take()) {
            (false, _) => open = Some(key),
            (true, Some(first)) if key > first => close(first, key - 1),
            (true, _) => {}
        }
    }
    if let Some(first) = open {
        close(first, max);
    }
    out
}

/// The set elements message content for `keys` of `set`.
pub(super) fn elements_attrs(set: Set, keys: &[Key]) -> Attrs {
    // NFTA_SET_ELEM_LIST_TABLE = 1, _SET = 2, _ELEMENTS = 3; NFTA_SET_ELEM_KEY = 1, _FLAGS = 3
    let mut a = Attrs::default();
    a.str(1, TABLE).str(2, set.name()).nest(3, |l| {
        for (key, end) in keys {
            l.nest(1, |e| {
                e.nest(1, |k| {
                    k.bytes(expr::NFTA_DATA_VALUE, key);
                });
                if *end {
                    e.u32(3, NFT_SET_ELEM_INTERVAL_END);
                }
            });
        }
    });
    a
}

/// Parses the elements of one `NFT_MSG_NEWSETELEM` dump reply into keys.
pub(super) fn parse_elements(reply: &[u8], out: &mut Vec<Key>) {
    for (ty, list) in parse_attrs(reply) {
        if ty != 3 {
            continue;
        }
        for (_, elem) in parse_attrs(list) {
            let mut key = None;
            let mut end = false;
            for (ty, v) in parse_attrs(elem) {
                match ty {
                    1 => {
                        key = parse_attrs(v)
                            .find(|&(t, _)| t == expr::NFTA_DATA_VALUE)
                            .map(|(_, k)| k.to_vec())
                    }
                    3 if v.len() == 4 => {
                        end = u32::from_be_bytes(v.try_into().unwrap()) & NFT_SET_ELEM_INTERVAL_END
                            != 0
                    }
                    _ => {}
                }
            }
            if let Some(key) = key {
                out.push((key, end));
            }
        }
    }
}

/// A NUL-padded interface name key as a string.
pub(super) fn ifname_from_key(key: &[u8]) -> String {
    let end = key.iter().position(|&c| c == 0).unwrap_or(key.len());
    String::from_utf8_lossy(&key[..end]).into_owned()
}
