//! Encoders for the nf_tables expressions cnm's rules are made of.
//!
//! A rule is a list of expressions run in order over a register file: loads (`meta`, `payload`)
//! fill a register, tests (`cmp`, `lookup`) end the rule when they do not match, and the last
//! expression acts (`masq`, or `immediate` writing a verdict). Attribute numbers are those of
//! linux/netfilter/nf_tables.h.

use super::attrs::Attrs;

// enum nft_registers: the verdict register, then 4-byte registers from NFT_REG32_00. A 16-byte
// value (an interface name, an IPv6 address) fills four consecutive ones.
/// The verdict register.
pub(super) const REG_VERDICT: u32 = 0;
/// The first 4-byte data register.
pub(super) const REG32_00: u32 = 8;
/// The register right after a 16-byte value loaded into [`REG32_00`] (for concatenations).
pub(super) const REG32_04: u32 = 12;

// nft_list_attributes / nft_expression_attributes
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
// nft_data_attributes / nft_verdict_attributes
pub(super) const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

/// What `meta` loads (`enum nft_meta_keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MetaKey {
    /// The packet mark (host-endian u32).
    Mark = 3,
    IifName = 6,
    OifName = 7,
    /// The netfilter family of the packet (`NFPROTO_IPV4`, `NFPROTO_IPV6`) in an `inet` table.
    NfProto = 15,
    /// The transport protocol number (`meta l4proto`), one byte.
    L4Proto = 16,
}

/// Comparison of `cmp` (`enum nft_cmp_ops`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq = 0,
    Neq = 1,
}

/// Verdicts (`NF_DROP`, `NF_ACCEPT` of linux/netfilter.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Drop = 0,
    Accept = 1,
}

/// Payload bases (`enum nft_payload_bases`): offsets count from this header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Base {
    Network = 1,
    /// The transport header (`th`).
    Transport = 2,
}

/// One expression of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Expr<'a> {
    /// Load packet metadata into `dreg`.
    Meta { key: MetaKey, dreg: u32 },
    /// Load `len` bytes at `offset` from `base` into `dreg`.
    Payload {
        base: Base,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// Continue only if `sreg` compares to `data` by `op`.
    Cmp {
        sreg: u32,
        op: CmpOp,
        data: &'a [u8],
    },
    /// `dreg = (sreg & mask) ^ xor`, over `mask.len()` bytes.
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: &'a [u8],
        xor: &'a [u8],
    },
    /// Continue only if the key in `sreg` is (or with `invert`, is not) in the named set.
    Lookup {
        set: &'a str,
        sreg: u32,
        invert: bool,
    },
    /// Set packet metadata from `sreg`.
    MetaSet { key: MetaKey, sreg: u32 },
    /// Look the key in `sreg` up in the named map; on a hit its data goes to `dreg`, on a miss
    /// the rule ends.
    MapLookup { map: &'a str, sreg: u32, dreg: u32 },
    /// `fib daddr type`: the route type (`RTN_LOCAL`, ...) of the destination address, as a
    /// host-endian u32 in `dreg`.
    FibDaddrType { dreg: u32 },
    /// `ct status` (host-endian u32 of `IPS_*` bits) into `dreg`.
    CtStatus { dreg: u32 },
    /// Destination NAT of the given family to the address in `addr` and the port in `port`.
    Dnat { family: u8, addr: u32, port: u32 },
    /// Source NAT to the address of the outgoing interface.
    Masquerade,
    /// End the rule with a verdict.
    Verdict(Verdict),
}

impl Expr<'_> {
    /// The kernel's name of the expression type.
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Payload { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Lookup { .. } | Expr::MapLookup { .. } => "lookup",
            Expr::FibDaddrType { .. } => "fib",
            Expr::CtStatus { .. } => "ct",
            Expr::Dnat { .. } => "nat",
            Expr::Masquerade => "masq",
            Expr::Verdict(_) => "immediate",
        }
    }

    /// Writes the expression's `NFTA_EXPR_DATA` content.
    fn encode_data(&self, a: &mut Attrs) {
        match *self {
            // NFTA_META_DREG = 1, NFTA_META_KEY = 2
            Expr::Meta { key, dreg } => {
                a.u32(1, dreg).u32(2, key as u32);
            }
            // NFTA_PAYLOAD_DREG = 1, _BASE = 2, _OFFSET = 3, _LEN = 4
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                a.u32(1, dreg)
                    .u32(2, base as u32)
                    .u32(3, offset)
                    .u32(4, len);
            }
            // NFTA_CMP_SREG = 1, _OP = 2, _DATA = 3
            Expr::Cmp { sreg, op, data } => {
                a.u32(1, sreg).u32(2, op as u32).nest(3, |d| {
                    d.bytes(NFTA_DATA_VALUE, data);
                });
            }
            // NFTA_BITWISE_SREG = 1, _DREG = 2, _LEN = 3, _MASK = 4, _XOR = 5 (op defaults to
            // NFT_BITWISE_MASK_XOR)
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                a.u32(1, sreg)
                    .u32(2, dreg)
                    .u32(3, mask.len() as u32)
                    .nest(4, |d| {
                        d.bytes(NFTA_DATA_VALUE, mask);
                    })
                    .nest(5, |d| {
                        d.bytes(NFTA_DATA_VALUE, xor);
                    });
            }
            // NFTA_LOOKUP_SET = 1, _SREG = 2, _FLAGS = 5 (NFT_LOOKUP_F_INV = 1)
            Expr::Lookup { set, sreg, invert } => {
                a.str(1, set).u32(2, sreg);
                if invert {
                    a.u32(5, 1);
                }
            }
            // NFTA_META_KEY = 2, NFTA_META_SREG = 3
            Expr::MetaSet { key, sreg } => {
                a.u32(2, key as u32).u32(3, sreg);
            }
            // NFTA_LOOKUP_SET = 1, _SREG = 2, _DREG = 3
            Expr::MapLookup { map, sreg, dreg } => {
                a.str(1, map).u32(2, sreg).u32(3, dreg);
            }
            // NFTA_FIB_DREG = 1, _RESULT = 2 (NFT_FIB_RESULT_ADDRTYPE = 3), _FLAGS = 3
            // (NFTA_FIB_F_DADDR = 2)
            Expr::FibDaddrType { dreg } => {
                a.u32(1, dreg).u32(2, 3).u32(3, 2);
            }
            // NFTA_CT_DREG = 1, _KEY = 2 (NFT_CT_STATUS = 2)
            Expr::CtStatus { dreg } => {
                a.u32(1, dreg).u32(2, 2);
            }
            // NFTA_NAT_TYPE = 1 (NFT_NAT_DNAT = 1), _FAMILY = 2, _REG_ADDR_MIN = 3,
            // _REG_PROTO_MIN = 5, _FLAGS = 7 (NF_NAT_RANGE_MAP_IPS | _PROTO_SPECIFIED)
            Expr::Dnat { family, addr, port } => {
                a.u32(1, 1)
                    .u32(2, u32::from(family))
                    .u32(3, addr)
                    .u32(5, port)
                    .u32(7, 3);
            }
            Expr::Masquerade => {}
            // NFTA_IMMEDIATE_DREG = 1, _DATA = 2
            Expr::Verdict(v) => {
                a.u32(1, REG_VERDICT).nest(2, |d| {
                    d.nest(NFTA_DATA_VERDICT, |v_| {
                        v_.u32(NFTA_VERDICT_CODE, v as u32);
                    });
                });
            }
        }
    }
}

/// Writes a rule's `NFTA_RULE_EXPRESSIONS` content: one list element per expression.
pub(super) fn encode_exprs(exprs: &[Expr<'_>], a: &mut Attrs) {
    for e in exprs {
        a.nest(NFTA_LIST_ELEM, |el| {
            el.str(NFTA_EXPR_NAME, e.name());
            // `masq` without options has no data at all.
            if *e != Expr::Masquerade {
                el.nest(NFTA_EXPR_DATA, |d| e.encode_data(d));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::attrs::parse_attrs;
    use super::*;

    /// An expression as (name, its data attributes).
    type Decoded = (String, Vec<(u16, Vec<u8>)>);

    fn encoded(exprs: &[Expr<'_>]) -> Vec<Decoded> {
        let mut a = Attrs::default();
        encode_exprs(exprs, &mut a);
        parse_attrs(a.as_bytes())
            .map(|(ty, el)| {
                assert_eq!(ty, NFTA_LIST_ELEM);
                let mut name = String::new();
                let mut data = Vec::new();
                for (ty, v) in parse_attrs(el) {
                    match ty {
                        NFTA_EXPR_NAME => {
                            name =
                                String::from_utf8(v.strip_suffix(&[0]).unwrap().to_vec()).unwrap()
                        }
                        NFTA_EXPR_DATA => {
                            data = parse_attrs(v).map(|(t, v)| (t, v.to_vec())).collect()
                        }
                        _ => panic!("unexpected attribute {ty}"),
                    }
                }
                (name, data)
            })
            .collect()
    }

    #[test]
    fn meta_lookup_and_verdict() {
        let got = encoded(&[
            Expr::Meta {
                key: MetaKey::IifName,
                dreg: REG32_00,
            },
            Expr::Lookup {
                set: "internal",
                sreg: REG32_00,
                invert: true,
            },
            Expr::Verdict(Verdict::Drop),
            Expr::Masquerade,
        ]);
        assert_eq!(got[0].0, "meta");
        assert_eq!(
            got[0].1,
            vec![
                (1, 8u32.to_be_bytes().to_vec()),
                (2, 6u32.to_be_bytes().to_vec())
            ]
        );
        assert_eq!(got[1].0, "lookup");
        assert_eq!(
            got[1].1,
            vec![
                (1, b"internal\0".to_vec()),
                (2, 8u32.to_be_bytes().to_vec()),
                (5, 1u32.to_be_bytes().to_vec()),
            ]
        );
        assert_eq!(got[2].0, "immediate");
        assert_eq!(got[2].1[0], (1, 0u32.to_be_bytes().to_vec()));
        assert_eq!(got[3], ("masq".to_owned(), vec![]));
    }

    #[test]
    fn cmp_and_bitwise_carry_data_values() {
        let got = encoded(&[
            Expr::Bitwise {
                sreg: REG32_00,
                dreg: REG32_00,
                mask: &[0xf0],
                xor: &[0],
            },
            Expr::Cmp {
                sreg: REG32_00,
                op: CmpOp::Neq,
                data: &[0xe0],
            },
        ]);
        assert_eq!(got[0].1[2], (3, 1u32.to_be_bytes().to_vec()));
        let mask: Vec<_> = parse_attrs(&got[0].1[3].1).collect();
        assert_eq!(mask, vec![(NFTA_DATA_VALUE, &[0xf0u8][..])]);
        assert_eq!(got[1].1[1], (2, 1u32.to_be_bytes().to_vec()));
        let data: Vec<_> = parse_attrs(&got[1].1[2].1).collect();
        assert_eq!(data, vec![(NFTA_DATA_VALUE, &[0xe0u8][..])]);
    }
}
