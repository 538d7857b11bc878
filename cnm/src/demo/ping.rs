//! ICMP echo (what `ping` does) from a raw IPv4 socket: an echo request with the Internet
//! checksum (RFC 792, RFC 1071), and the reply with the same identifier and sequence number.
//!
//! ```text
//! request (sent):  type 8 | code 0 | checksum | identifier | sequence | payload
//! reply (read):    IPv4 header (IHL × 4 bytes; TTL at byte 8, source at 12..16) | type 0 | ... same
//! ```
//! A raw socket sees every ICMP packet that reaches its namespace, so replies are matched on
//! source, type, identifier, sequence and payload. It needs CAP_NET_RAW (root).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};
use nix::sys::time::{TimeVal, TimeValLike};

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const HEADER: usize = 8;
/// 56 bytes of payload, as `ping` sends: 64 bytes of ICMP.
const PAYLOAD: usize = 56;
/// How often a wait for a reply looks at the interruption flag.
const POLL: Duration = Duration::from_millis(100);

/// An echo reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The sequence number of the request it answers.
    pub seq: u16,
    /// The reply's TTL (64, less one per router on the way).
    pub ttl: u8,
    /// Bytes of ICMP (header and payload).
    pub bytes: usize,
    /// From sending the request to reading the reply.
    pub rtt: Duration,
}

/// Sends up to `attempts` echo requests to `to` (sequence 1, 2, ...), each answered within
/// `wait` or followed by the next; returns the first reply, or `None` when none came or
/// `stop` was set. Must run inside the namespace to ping from (the socket is made there).
pub fn ping(
    to: Ipv4Addr,
    attempts: u16,
    wait: Duration,
    stop: &AtomicBool,
) -> io::Result<Option<Reply>> {
    let sock = socket::socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Icmp,
    )?;
    let poll = TimeVal::milliseconds(POLL.as_millis() as i64);
    socket::setsockopt(&sock, sockopt::ReceiveTimeout, &poll)?;
    let id = std::process::id() as u16;
    for seq in 1..=attempts {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        if let Some(reply) = exchange(&sock, to, id, seq, wait, stop)? {
            return Ok(Some(reply));
        }
    }
    Ok(None)
}

/// One request and the wait for its reply.
fn exchange(
    sock: &OwnedFd,
    to: Ipv4Addr,
    id: u16,
    seq: u16,
    wait: Duration,
    stop: &AtomicBool,
) -> io::Result<Option<Reply>> {
    let request = echo_request(id, seq);
    let dest = socket::SockaddrIn::from(SocketAddrV4::new(to, 0));
    let sent = Instant::now();
    socket::sendto(sock.as_raw_fd(), &request, &dest, MsgFlags::empty())?;
    let mut buf = [0u8; 1500];
    while sent.elapsed() < wait && !stop.load(Ordering::SeqCst) {
        let n = match socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let rtt = sent.elapsed();
        if let Some((ttl, bytes)) = parse_reply(&buf[..n], to, &request) {
            return Ok(Some(Reply {
                seq,
                ttl,
                bytes,
                rtt,
            }));
        }
    }
    Ok(None)
}

/// An echo request: header with checksum, then a payload of counting bytes.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![ECHO_REQUEST, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend((0..PAYLOAD).map(|i| i as u8));
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// If `packet` (an IPv4 datagram as a raw socket reads it) is the reply from `from` to
/// `request`, its TTL and ICMP length.
fn parse_reply(packet: &[u8], from: Ipv4Addr, request: &[u8]) -> Option<(u8, usize)> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    if packet.first()? >> 4 != 4 || ihl < 20 || packet.len() < ihl + HEADER {
        return None;
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let icmp = &packet[ihl..];
    let matches = source == from
        && icmp[0] == ECHO_REPLY
        && icmp[1] == 0
        && checksum(icmp) == 0
        // Identifier, sequence and payload as sent.
        && icmp[4..] == request[4..];
    matches.then_some((packet[8], icmp.len()))
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of
/// 16-bit big-endian words, an odd last byte padded with zero. Over a packet that carries its
/// checksum, it is 0.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example_and_of_a_checked_packet() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (ones' complement 220d).
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        assert_eq!(checksum(&[0xff]), 0x00ff);
        let request = echo_request(0x1234, 7);
        assert_eq!(request.len(), HEADER + PAYLOAD);
        assert_eq!(&request[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(
            checksum(&request),
            0,
            "a packet with its checksum sums to 0"
        );
    }

    /// The reply the kernel of `from` would send to `request`, inside an IPv4 header.
    fn reply_to(request: &[u8], from: Ipv4Addr, ttl: u8) -> Vec<u8> {
        let mut icmp = request.to_vec();
        icmp[0] = ECHO_REPLY;
        icmp[2..4].fill(0);
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, ttl, 1, 0, 0];
        packet.extend_from_slice(&from.octets());
        packet.extend_from_slice(&[10, 0, 0, 9]);
        packet.extend_from_slice(&icmp);
        packet
    }

    #[test]
    fn a_reply_matches_only_its_request_and_sender() {
        let web = Ipv4Addr::new(172, 18, 0, 2);
        let request = echo_request(42, 1);
        let reply = reply_to(&request, web, 64);
        assert_eq!(parse_reply(&reply, web, &request), Some((64, 64)));
        // Another sender, another sequence number, our own request looped back, a bad
        // checksum, a truncated packet: none is the reply.
        assert_eq!(
            parse_reply(&reply, Ipv4Addr::new(172, 18, 0, 3), &request),
            None
        );
        assert_eq!(parse_reply(&reply, web, &echo_request(42, 2)), None);
        // The request itself, as the IP layer would loop it back: valid checksum, type 8.
        let mut looped = reply[..20].to_vec();
        looped.extend_from_slice(&request);
        assert_eq!(looped[20], ECHO_REQUEST);
        assert_eq!(parse_reply(&looped, web, &request), None);
        // Only the checksum is wrong: identifier, sequence and payload still match.
        let mut corrupt = reply.clone();
        corrupt[22] ^= 0xff;
        assert_eq!(parse_reply(&corrupt, web, &request), None);
        assert_eq!(parse_reply(&reply[..24], web, &request), None);
        assert_eq!(parse_reply(&[], web, &request), None);
    }
}
