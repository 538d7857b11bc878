//! The nf_tables wire: a `NETLINK_NETFILTER` socket, attribute encoding, atomic batches with one
//! acknowledgement per message, and dumps.
//!
//! A batch is `NFNL_MSG_BATCH_BEGIN`, the messages (each with `NLM_F_ACK`), `NFNL_MSG_BATCH_END`,
//! sent in one `send`. The kernel applies all of it or none of it, under the per-netns nf_tables
//! mutex, so two processes never see each other's half-done batch. It processes the batch inside
//! that `send` (also when it must load a module and replay), so by the time `send` returns every
//! reply is queued on the socket: the ack loop drains the socket without blocking and then checks
//! that every message was answered.

use std::io;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use nix::errno::Errno;

use super::attrs::{align4, Attrs};
use super::FirewallError;
use crate::netns::Netns;

// linux/netfilter/nfnetlink.h
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10; // NLMSG_MIN_TYPE
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNETLINK_V0: u8 = 0;
// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
const RECV_BUF: usize = 64 * 1024;

/// nf_tables message types (`enum nf_tables_msg_types`, linux/netfilter/nf_tables.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MsgType {
    NewTable = 0,
    GetTable = 1,
    NewChain = 3,
    NewRule = 6,
    NewSet = 9,
    NewSetElem = 12,
    GetSetElem = 13,
    DelSetElem = 14,
    DestroyTable = 26,
    /// Like `DelSetElem`, but a missing element is not an error (Linux 6.3).
    DestroySetElem = 30,
}

/// One message of a batch, with what it does in words for error messages.
#[derive(Debug)]
struct BatchMsg {
    ty: MsgType,
    flags: u16,
    family: u8,
    what: String,
    attrs: Attrs,
}

/// Messages to be applied atomically by [`Nft::commit`].
#[derive(Debug)]
pub(super) struct Batch {
    context: String,
    msgs: Vec<BatchMsg>,
}

impl Batch {
    /// An empty batch; `context` says what the whole batch does ("add network br0").
    pub fn new(context: impl Into<String>) -> Self {
        Batch {
            context: context.into(),
            msgs: Vec::new(),
        }
    }

    /// Adds a message; `flags` are `NLM_F_*` beyond `NLM_F_REQUEST | NLM_F_ACK`.
    pub fn push(
        &mut self,
        ty: MsgType,
        family: u8,
        flags: i32,
        what: impl Into<String>,
        attrs: Attrs,
    ) {
        self.msgs.push(BatchMsg {
            ty,
            flags: flags as u16,
            family,
            what: what.into(),
            attrs,
        });
    }

    /// How many messages the batch holds.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }
}

fn put_header(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by `finish`
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    buf.extend_from_slice(&[family, NFNETLINK_V0]);
    buf.extend_from_slice(&res_id.to_be_bytes());
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn nft_type(ty: MsgType) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | ty as u16
}

/// A reply message: its header fields and the bytes after the header.
struct Reply<'a> {
    ty: u16,
    seq: u32,
    payload: &'a [u8],
}

fn parse_replies(mut buf: &[u8]) -> impl Iterator<Item = Reply<'_>> {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        let reply = Reply {
            ty: u16::from_ne_bytes([buf[4], buf[5]]),
            seq: u32::from_ne_bytes(buf[8..12].try_into().unwrap()),
            payload: &buf[NLMSG_HDRLEN..len],
        };
        buf = &buf[align4(len).min(buf.len())..];
        Some(reply)
    })
}

/// The errno of an `NLMSG_ERROR` payload (0 for an acknowledgement).
fn error_code(payload: &[u8]) -> Option<i32> {
    payload
        .get(0..4)
        .map(|b| -i32::from_ne_bytes(b.try_into().unwrap()))
}

/// A netfilter socket opened on first use and closed when dropped; a DEL keeps one for its
/// whole run and drops it last. The kernel frees the elements a batch removed only after an
/// RCU grace period (~15 ms here), and closing a netfilter socket waits for that while it holds
/// the lock that deleting a link also needs: closed before a link's deletion, the socket makes
/// the two waits add up; closed after it, the free has overlapped the link's own wait.
#[derive(Debug, Default)]
pub struct LazyNft(Option<Nft>);

impl LazyNft {
    /// The socket, opened now if it is not yet.
    pub fn get(&mut self) -> Result<&mut Nft, FirewallError> {
        let nft = match self.0.take() {
            Some(nft) => nft,
            None => Nft::new()?,
        };
        Ok(self.0.insert(nft))
    }
}

/// A netlink socket speaking nf_tables, bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct Nft {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Nft {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self, FirewallError> {
        let socket = Socket::new(NETLINK_NETFILTER).map_err(|source| FirewallError::Io {
            op: "open nftables socket".to_owned(),
            source,
        })?;
        Nft::on(socket)
    }

    /// Opens a socket inside `netns` ([`Netns::socket`]: the calling thread enters it for the
    /// `socket(2)` call alone); it keeps acting on that namespace from any thread.
    pub fn new_in(netns: &Netns) -> Result<Self, FirewallError> {
        Nft::on(
            netns
                .netlink_socket(NETLINK_NETFILTER)
                .map_err(FirewallError::Netns)?,
        )
    }

    /// Binds and connects `socket` to the kernel, with capped acks.
    fn on(mut socket: Socket) -> Result<Self, FirewallError> {
        let io = |op: &str| {
            let op = op.to_owned();
            move |source| FirewallError::Io { op, source }
        };
        socket.bind_auto().map_err(io("bind nftables socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connect nftables socket"))?;
        // Acks echo only the header of the message they answer, not all of it.
        socket
            .set_cap_ack(true)
            .map_err(io("set NETLINK_CAP_ACK on nftables socket"))?;
        Ok(Nft {
            socket,
            seq: std::process::id().wrapping_mul(7919),
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn recv(&mut self, flags: i32) -> io::Result<usize> {
        self.buf.clear();
        let n = self.socket.recv(&mut self.buf, flags)?;
        if n > self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "netlink reply larger than the receive buffer",
            ));
        }
        Ok(n)
    }

    /// Sends `batch` as one transaction and reads one answer per message. The first message the
    /// kernel rejected decides the error; nothing of the batch is applied then.
    pub(super) fn commit(&mut self, batch: &Batch) -> Result<(), FirewallError> {
        let ack = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let mut buf = Vec::with_capacity(256 * (batch.len() + 2));
        let begin_seq = self.next_seq();
        let at = put_header(
            &mut buf,
            NFNL_MSG_BATCH_BEGIN,
            libc::NLM_F_REQUEST as u16,
            begin_seq,
            libc::AF_UNSPEC as u8,
            NFNL_SUBSYS_NFTABLES,
        );
        finish(&mut buf, at);
        let first_seq = begin_seq.wrapping_add(1);
        for msg in &batch.msgs {
            let seq = self.next_seq();
            let at = put_header(
                &mut buf,
                nft_type(msg.ty),
                ack | msg.flags,
                seq,
                msg.family,
                0,
            );
            buf.extend_from_slice(msg.attrs.as_bytes());
            finish(&mut buf, at);
        }
        let at = put_header(
            &mut buf,
            NFNL_MSG_BATCH_END,
            libc::NLM_F_REQUEST as u16,
            self.next_seq(),
            libc::AF_UNSPEC as u8,
            NFNL_SUBSYS_NFTABLES,
        );
        finish(&mut buf, at);

        let io_err = |source| FirewallError::Io {
            op: format!("{}: send nftables batch", batch.context),
            source,
        };
        self.socket.send(&buf, 0).map_err(io_err)?;

        let mut answered = vec![false; batch.len()];
        // (message index or None for the batch itself, errno)
        let mut first_error: Option<(Option<usize>, i32)> = None;
        loop {
            match self.recv(libc::MSG_DONTWAIT) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err(e)),
            }
            for reply in parse_replies(&self.buf) {
                if reply.ty != libc::NLMSG_ERROR as u16 {
                    continue;
                }
                let errno = error_code(reply.payload).unwrap_or(libc::EPROTO);
                let index = reply.seq.wrapping_sub(first_seq) as usize;
                let index = (index < answered.len()).then_some(index);
                if let Some(i) = index {
                    answered[i] = true;
                }
                // The earliest failure explains the batch best; `None` (the batch itself,
                // e.g. EPERM) sorts before every message.
                if errno != 0 && first_error.is_none_or(|(prev, _)| index < prev) {
                    first_error = Some((index, errno));
                }
            }
        }
        if let Some((index, errno)) = first_error {
            let what = index.map_or("batch", |i| batch.msgs[i].what.as_str());
            return Err(FirewallError::from_errno(
                format!("{}: {what}", batch.context),
                errno,
            ));
        }
        if let Some(i) = answered.iter().position(|a| !a) {
            return Err(FirewallError::Io {
                op: format!("{}: {}", batch.context, batch.msgs[i].what),
                source: io::Error::new(io::ErrorKind::InvalidData, "the kernel sent no ack"),
            });
        }
        Ok(())
    }

    /// Sends one request outside any batch (a dump, or a get of one object) and returns the
    /// attribute bytes of every reply message. It ends at `NLMSG_DONE` (dumps) or at the ack
    /// that `NLM_F_ACK` asks for (gets).
    pub(super) fn request(
        &mut self,
        ty: MsgType,
        family: u8,
        dump: bool,
        what: &str,
        attrs: &Attrs,
    ) -> Result<Vec<Vec<u8>>, FirewallError> {
        self.request_raw(nft_type(ty), family, dump, what, attrs)
    }

    /// [`Nft::request`] for any nfnetlink subsystem: `ty` is `subsystem << 8 | message`.
    pub(super) fn request_raw(
        &mut self,
        ty: u16,
        family: u8,
        dump: bool,
        what: &str,
        attrs: &Attrs,
    ) -> Result<Vec<Vec<u8>>, FirewallError> {
        let seq = self.next_seq();
        let mut buf = Vec::with_capacity(64 + attrs.as_bytes().len());
        let kind = if dump {
            libc::NLM_F_DUMP
        } else {
            libc::NLM_F_ACK
        };
        let flags = (libc::NLM_F_REQUEST | kind) as u16;
        let at = put_header(&mut buf, ty, flags, seq, family, 0);
        buf.extend_from_slice(attrs.as_bytes());
        finish(&mut buf, at);
        let io_err = |source| FirewallError::Io {
            op: what.to_owned(),
            source,
        };
        self.socket.send(&buf, 0).map_err(io_err)?;
        let mut out = Vec::new();
        loop {
            self.recv(0).map_err(io_err)?;
            for reply in parse_replies(&self.buf) {
                if reply.seq != seq {
                    continue;
                }
                match i32::from(reply.ty) {
                    libc::NLMSG_DONE => return Ok(out),
                    libc::NLMSG_ERROR => match error_code(reply.payload) {
                        Some(0) => return Ok(out),
                        errno => {
                            return Err(FirewallError::from_errno(
                                what.to_owned(),
                                errno.unwrap_or(libc::EPROTO),
                            ))
                        }
                    },
                    _ => out.push(reply.payload.get(NFGENMSG_LEN..).unwrap_or(&[]).to_vec()),
                }
            }
        }
    }
}

impl FirewallError {
    fn from_errno(op: String, errno: i32) -> Self {
        match Errno::from_raw(errno) {
            Errno::EEXIST => FirewallError::Exists { op },
            Errno::ENOENT => FirewallError::NotFound { op },
            errno => FirewallError::Kernel { op, errno },
        }
    }
}
