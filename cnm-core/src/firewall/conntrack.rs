//! Conntrack entries of removed UDP mappings, flushed through ctnetlink on the same
//! `NETLINK_NETFILTER` socket: UDP has no end, so an entry DNATed to a removed container keeps
//! catching the flow's packets, and a re-created container would never see them.

use super::attrs::Attrs;
use super::{Nft, Result};
use crate::cni::config::Protocol;

// linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_FILTER: u16 = 25;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_REPLY_FLAGS: u16 = 2;
// nf_conntrack_netlink.c: CTA_FILTER_F_CTA_PROTO_NUM, CTA_FILTER_F_CTA_PROTO_DST_PORT
const FILTER_PROTO_NUM: u32 = 1 << 3;
const FILTER_PROTO_DST_PORT: u32 = 1 << 5;

impl Nft {
    /// Deletes every conntrack entry of family `v6` whose original destination port is `port`
    /// over `protocol` (a flush with a filter, Linux 6.3); none matching is success.
    pub fn flush_conntrack(&mut self, v6: bool, protocol: Protocol, port: u16) -> Result<()> {
        let proto: u8 = match protocol {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        };
        let mut a = Attrs::default();
        a.nest(CTA_TUPLE_ORIG, |t| {
            t.nest(CTA_TUPLE_PROTO, |p| {
                p.bytes(CTA_PROTO_NUM, &[proto])
                    .bytes(CTA_PROTO_DST_PORT, &port.to_be_bytes());
            });
        });
        // The filter flags are host-endian NLA_U32s, unlike nf_tables' integers.
        a.nest(CTA_FILTER, |f| {
            f.bytes(
                CTA_FILTER_ORIG_FLAGS,
                &(FILTER_PROTO_NUM | FILTER_PROTO_DST_PORT).to_ne_bytes(),
            )
            .bytes(CTA_FILTER_REPLY_FLAGS, &0u32.to_ne_bytes());
        });
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
        let what = format!(
            "flush conntrack entries to {} port {port}",
            protocol.as_str()
        );
        let ty = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE;
        self.request_raw(ty, family, false, &what, &a).map(drop)
    }
}
