//! Route netlink shaped like `ip`: links, addresses and routes, one blocking request at a time.
//!
//! ```text
//!  Handle ── one NETLINK_ROUTE socket, bound for life to the netns it was opened in
//!    │  sendto(kernel)  [nlmsghdr seq=N flags=REQUEST|ACK(|CREATE|EXCL)] [ifinfomsg|ifaddrmsg|rtmsg] [attrs]
//!    │  recv ...        replies with seq=N, any number per datagram:
//!    │                    RTM_NEW*          an answer (get) or one record of a dump (multipart)
//!    │                    NLMSG_ERROR 0     the ACK: done
//!    │                    NLMSG_ERROR -e    failed with errno e (+ the kernel's extended-ack text)
//!    ▼                    NLMSG_DONE        end of a dump
//! ```
//!
//! No async runtime: a short-lived plugin makes a handful of requests, each a `sendto` and one or
//! two `recv`s. Replies carrying another sequence number (left over from a request that failed
//! half-way through a dump) are skipped. A socket opened inside a namespace ([`Handle::new_in`])
//! keeps working there from any thread; the caller's thread is inside only for `socket(2)`.
//!
//! Errors are typed where callers branch on them: [`NetlinkError::NotFound`] (teardown treats it
//! as done) and [`NetlinkError::Exists`] ("ensure" adopts what is there); everything else keeps the
//! errno and says what was being done.

mod addr;
mod link;
mod route;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::AsFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED,
    NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

use crate::netns::{Netns, NetnsError};

pub use addr::{Addr, AddrSpec};
pub use link::{BridgeSpec, Link, MacvlanMode, MacvlanSpec, VethSpec};
pub use route::{IpFamily, RouteInfo, RouteSpec, Scope, MAIN_TABLE};

/// Failures of netlink requests; each says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The link, address or route the request names does not exist.
    #[error("{op} {what}: {}", errno.desc())]
    NotFound {
        op: &'static str,
        what: String,
        errno: Errno,
    },
    /// What the request would create already exists (EEXIST).
    #[error("{op} {what}: {}", Errno::EEXIST.desc())]
    Exists { op: &'static str, what: String },
    /// Any other refusal by the kernel, with its extended-ack text when it gave one.
    #[error("{op} {what}: {}{}", errno.desc(), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kernel {
        op: &'static str,
        what: String,
        errno: Errno,
        detail: Option<String>,
    },
    /// The netlink socket itself failed.
    #[error("{op} {what}: netlink socket: {source}")]
    Io {
        op: &'static str,
        what: String,
        #[source]
        source: io::Error,
    },
    /// The kernel's reply could not be parsed.
    #[error("{op} {what}: unreadable reply from the kernel: {reason}")]
    Decode {
        op: &'static str,
        what: String,
        reason: String,
    },
    /// Entering the namespace to open a socket there failed.
    #[error("open a netlink socket: {0}")]
    Netns(#[from] NetnsError),
}

/// Shorthand for results of this module.
pub type Result<T, E = NetlinkError> = std::result::Result<T, E>;

/// Errnos that mean "no such device": the link named by index or name is gone.
const LINK_GONE: &[Errno] = &[Errno::ENODEV];

/// One kind of request: its name in messages, and which errnos mean the target does not exist.
#[derive(Clone, Copy)]
struct Op {
    name: &'static str,
    not_found: &'static [Errno],
}

/// How a request failed, before it is given its context.
enum Failure {
    Errno(Errno, Option<String>),
    Io(io::Error),
    Decode(String),
}

impl Failure {
    fn into_error(self, op: Op, what: String) -> NetlinkError {
        let op_name = op.name;
        match self {
            Failure::Errno(Errno::EEXIST, _) => NetlinkError::Exists { op: op_name, what },
            Failure::Errno(errno, _) if op.not_found.contains(&errno) => NetlinkError::NotFound {
                op: op_name,
                what,
                errno,
            },
            Failure::Errno(errno, detail) => NetlinkError::Kernel {
                op: op_name,
                what,
                errno,
                detail,
            },
            Failure::Io(source) => NetlinkError::Io {
                op: op_name,
                what,
                source,
            },
            Failure::Decode(reason) => NetlinkError::Decode {
                op: op_name,
                what,
                reason,
            },
        }
    }
}

/// Largest datagram a dump is expected to send; a longer one is reported, not silently cut.
const RECV_BUF: usize = 64 * 1024;
const NLMSG_HDRLEN: usize = 16;
/// `NLMSGERR_ATTR_MSG`: the extended ack's human-readable text.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A NETLINK_ROUTE socket in the calling thread's network namespace.
fn open_socket() -> Result<Socket> {
    let socket = Socket::new(NETLINK_ROUTE).map_err(|source| NetlinkError::Io {
        op: "open",
        what: "NETLINK_ROUTE socket".into(),
        source,
    })?;
    Ok(configure(socket))
}

/// Sets the options every socket of [`Handle`] has.
fn configure(socket: Socket) -> Socket {
    // Extended acks carry the kernel's reason ("Nexthop has invalid gateway"); capped acks keep
    // error replies small. Strict checking lets the kernel filter dumps (by ifindex). All three
    // are best effort: older kernels simply ignore them.
    let _ = socket.set_ext_ack(true);
    let _ = socket.set_cap_ack(true);
    let _ = socket.set_netlink_get_strict_chk(true);
    socket
}

/// A NETLINK_ROUTE socket in one network namespace; one request at a time.
#[derive(Debug)]
pub struct Handle {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Handle {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        Ok(Handle::on(open_socket()?))
    }

    /// Opens a socket inside `ns` ([`Netns::socket`]: the calling thread enters `ns` for the
    /// `socket(2)` call only); the socket stays in `ns` for life.
    pub fn new_in(ns: &Netns) -> Result<Self> {
        Ok(Handle::on(configure(ns.netlink_socket(NETLINK_ROUTE)?)))
    }

    fn on(socket: Socket) -> Self {
        Handle {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUF],
        }
    }

    /// Sends a request that changes something and waits for its ACK.
    fn ack(
        &mut self,
        op: Op,
        flags: u16,
        msg: RouteNetlinkMessage,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        self.exchange(msg, flags | NLM_F_ACK, &mut |_| {})
            .map_err(|f| f.into_error(op, what()))
    }

    /// Sends a get request and returns the replies before its ACK.
    fn get(
        &mut self,
        op: Op,
        msg: RouteNetlinkMessage,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.collect(op, msg, NLM_F_ACK, what)
    }

    /// Sends a dump request and returns every record up to NLMSG_DONE.
    fn dump(
        &mut self,
        op: Op,
        msg: RouteNetlinkMessage,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.collect(op, msg, NLM_F_DUMP, what)
    }

    /// Sends `msg` with `flags` and returns every reply.
    fn collect(
        &mut self,
        op: Op,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        self.exchange(msg, flags, &mut |m| out.push(m))
            .map_err(|f| f.into_error(op, what()))?;
        Ok(out)
    }

    /// The request loop: send one message, hand every reply to `each` until ACK, error or DONE.
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        each: &mut dyn FnMut(RouteNetlinkMessage),
    ) -> Result<(), Failure> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let len = packet.buffer_len();
        if len > self.buf.len() {
            self.buf.resize(len, 0);
        }
        packet.serialize(&mut self.buf[..len]);
        let kernel = SocketAddr::new(0, 0);
        self.socket
            .send_to(&self.buf[..len], &kernel, 0)
            .map_err(Failure::Io)?;
        loop {
            let n = self.recv()?;
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let bytes = &self.buf[off..n];
                let msg_len = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
                if msg_len < NLMSG_HDRLEN || msg_len > bytes.len() {
                    return Err(Failure::Decode(format!(
                        "message length {msg_len} at offset {off} of a {n}-byte datagram"
                    )));
                }
                off += (msg_len + 3) & !3;
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..msg_len])
                    .map_err(|e| Failure::Decode(e.to_string()))?;
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => each(m),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(()),
                            Some(code) => Err(Failure::Errno(
                                Errno::from_raw(-code.get()),
                                ext_ack_text(reply.header.flags, &e.header),
                            )),
                        }
                    }
                    NetlinkPayload::Done(d) if d.code < 0 => {
                        return Err(Failure::Errno(Errno::from_raw(-d.code), None))
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    _ => {}
                }
            }
        }
    }

    /// Receives one datagram into `self.buf`, and returns its length.
    fn recv(&mut self) -> Result<usize, Failure> {
        loop {
            // MSG_TRUNC makes recv return the datagram's real length, so truncation is seen.
            match self.socket.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(Failure::Decode(format!(
                        "a {n}-byte datagram exceeds the {}-byte buffer",
                        self.buf.len()
                    )))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Io(e)),
            }
        }
    }
}

impl AsFd for Handle {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// The text of an extended ack (`NLMSGERR_ATTR_MSG`), if the kernel sent one.
///
/// `after_code` is what follows the errno in NLMSG_ERROR: the request's header (and its payload
/// unless the ack is capped), then attributes when `NLM_F_ACK_TLVS` is set.
fn ext_ack_text(flags: u16, after_code: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || after_code.len() < NLMSG_HDRLEN {
        return None;
    }
    let mut off = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        u32::from_ne_bytes(after_code[..4].try_into().ok()?) as usize
    };
    while off + 4 <= after_code.len() {
        let len = u16::from_ne_bytes([after_code[off], after_code[off + 1]]) as usize;
        let kind = u16::from_ne_bytes([after_code[off + 2], after_code[off + 3]]);
        if len < 4 || off + len > after_code.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &after_code[off + 4..off + len];
            let text = text.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        off += (len + 3) & !3;
    }
    None
}
