//! The allocator: pure functions from (range set, taken addresses, cursor) to an address. No
//! I/O; the store calls it inside its write transaction and records the result.
//!
//! Order is round-robin as in host-local: the search starts just AFTER the cursor (the last
//! address handed out in that set), so an address that was just released is not handed straight
//! back to the next container (stale ARP/conntrack entries would point at the wrong one).

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::config::RangeSetPlan;
use super::{from_u128, to_u128};
use crate::cni::config::RequestedIp;

/// Why no address could be picked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// Every address of the set is taken.
    #[error("no free address in {ranges}: {in_use} in use")]
    Exhausted { ranges: String, in_use: usize },
    /// A requested address is in none of the configured ranges.
    #[error("requested address {addr} is in none of the configured ranges ({ranges})")]
    RequestedOutside { addr: IpAddr, ranges: String },
    /// A requested address carries a prefix other than its subnet's.
    #[error("requested address {addr}/{given} does not match its subnet {subnet}; request {addr}/{} or {addr}", .subnet.prefix_len())]
    RequestedPrefix {
        addr: IpAddr,
        given: u8,
        subnet: IpNet,
    },
    /// A requested address is a gateway.
    #[error("requested address {addr} is the gateway of its range and is never handed out")]
    RequestedGateway { addr: IpAddr },
    /// A requested address is held by another endpoint.
    #[error("requested address {addr} is already in use")]
    RequestedInUse { addr: IpAddr },
    /// Two requested addresses fall into one range set.
    #[error("requested addresses {first} and {second} are in the same range set ({ranges}); request at most one address per set")]
    RequestedTwice {
        first: IpAddr,
        second: IpAddr,
        ranges: String,
    },
}

/// Matches requested addresses to range sets: entry `i` is the address requested for set `i`.
pub fn assign_requests(
    sets: &[RangeSetPlan],
    requested: &[RequestedIp],
) -> Result<Vec<Option<IpAddr>>, AllocError> {
    let mut out = vec![None; sets.len()];
    for req in requested {
        let found = sets
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.range_for(req.addr).map(|r| (i, r)));
        let Some((i, range)) = found else {
            let all: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            return Err(AllocError::RequestedOutside {
                addr: req.addr,
                ranges: all.join("; "),
            });
        };
        if let Some(given) = req.prefix.filter(|p| *p != range.subnet.prefix_len()) {
            return Err(AllocError::RequestedPrefix {
                addr: req.addr,
                given,
                subnet: range.subnet,
            });
        }
        if let Some(first) = out[i] {
            return Err(AllocError::RequestedTwice {
                first,
                second: req.addr,
                ranges: sets[i].to_string(),
            });
        }
        out[i] = Some(req.addr);
    }
    Ok(out)
}

/// Picks the address for one set: `requested` if given and free, else the next free address
/// after `cursor` in round-robin order, skipping gateways and everything in `taken`.
pub fn allocate(
    set: &RangeSetPlan,
    taken: &HashSet<IpAddr>,
    cursor: Option<IpAddr>,
    requested: Option<IpAddr>,
) -> Result<IpAddr, AllocError> {
    if let Some(addr) = requested {
        if set.is_gateway(addr) {
            return Err(AllocError::RequestedGateway { addr });
        }
        if taken.contains(&addr) {
            return Err(AllocError::RequestedInUse { addr });
        }
        return Ok(addr);
    }
    let found = candidates(set, cursor).find(|a| !taken.contains(a));
    found.ok_or_else(|| AllocError::Exhausted {
        ranges: set.to_string(),
        in_use: taken
            .iter()
            .filter(|a| set.range_for(**a).is_some())
            .count(),
    })
}

/// The addresses [`allocate`] tries when none is requested, in its order: round-robin from
/// just after `cursor`, gateways skipped. A store can look the first few up one by one instead of
/// reading every taken address, which costs as much as the endpoints on the network.
pub fn candidates(set: &RangeSetPlan, cursor: Option<IpAddr>) -> impl Iterator<Item = IpAddr> + '_ {
    let bounds: Vec<(u128, u128)> = set
        .ranges
        .iter()
        .map(|r| (to_u128(r.start), to_u128(r.end)))
        .collect();
    let like = set.ranges[0].start;
    search_order(&bounds, cursor.filter(|c| set.range_for(*c).is_some()))
        .map(move |n| from_u128(like, n))
        .filter(|a| !set.is_gateway(*a))
}

/// Every address of `bounds` once, starting after `cursor` and wrapping round to it.
fn search_order(bounds: &[(u128, u128)], cursor: Option<IpAddr>) -> impl Iterator<Item = u128> {
    let at = cursor.and_then(|c| {
        let n = to_u128(c);
        bounds
            .iter()
            .position(|(lo, hi)| (*lo..=*hi).contains(&n))
            .map(|i| (i, n))
    });
    let mut segments = Vec::with_capacity(bounds.len() + 2);
    match at {
        None => segments.extend_from_slice(bounds),
        Some((i, n)) => {
            let (lo, hi) = bounds[i];
            if n < hi {
                segments.push((n + 1, hi));
            }
            segments.extend_from_slice(&bounds[i + 1..]);
            segments.extend_from_slice(&bounds[..i]);
            segments.push((lo, n));
        }
    }
    segments.into_iter().flat_map(|(lo, hi)| lo..=hi)
}

#[cfg(test)]
mod tests;
