//! IP address management: the `ipam` configuration (compatible with the reference `host-local`),
//! validated into plans, and the pure allocator that picks addresses from them. The store
//! ([`crate::store`]) runs the allocator inside its write transaction.

pub mod allocator;
pub mod config;

pub use allocator::AllocError;
pub use config::{IpamConfigError, IpamPlan, RangePlan, RangeSetPlan};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Whether two subnets share an address (one holds the other's network address; subnets of
/// different families never overlap).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

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

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn subnets_overlap_when_one_holds_the_others_network_address() {
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        assert!(overlaps(&net("10.0.0.0/16"), &net("10.0.3.0/24")));
        assert!(overlaps(&net("10.0.3.0/24"), &net("10.0.0.0/16")));
        assert!(overlaps(&net("10.0.0.0/24"), &net("10.0.0.0/24")));
        assert!(!overlaps(&net("10.0.0.0/24"), &net("10.0.1.0/24")));
        assert!(
            !overlaps(&net("0.0.0.0/0"), &net("::/0")),
            "families never overlap"
        );
        assert!(overlaps(&net("fd00::/64"), &net("fd00::/48")));
    }
}
