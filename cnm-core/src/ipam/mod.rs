//! IP address management: the `ipam` configuration (compatible with the reference `host-local`),
//! validated into plans, and the pure allocator that picks addresses from them. The store
//! ([`crate::store`]) runs the allocator inside its write transaction.

pub mod allocator;
pub mod config;

pub use allocator::AllocError;
pub use config::{IpamConfigError, IpamPlan, RangePlan, RangeSetPlan};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as a number, for range arithmetic over both families.
pub(crate) fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of the family of `like` with number `n` (which must fit that family).
pub(crate) fn from_u128(like: IpAddr, n: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}
