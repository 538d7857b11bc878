//! The null driver: a sandbox with only its loopback up, as libnetwork's `null` network. The
//! kernel gives `lo` 127.0.0.1/8 and ::1/128 when it comes up.

use ipnet::IpNet;

use crate::netlink::{Handle, NetlinkError};
use crate::netns::Netns;

/// Failures of the null driver.
#[derive(Debug, thiserror::Error)]
pub enum NullError {
    /// A kernel request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The sandbox has no such interface.
    #[error("the container has no interface {name} (the null driver brings up the container's loopback, CNI_IFNAME \"lo\")")]
    NoLink { name: String },
    /// CHECK: the loopback is down.
    #[error("{name} in the container is down")]
    Down { name: String },
}

/// Brings `name` up inside the sandbox and returns its addresses (link-local ones left out).
pub fn bring_up(sandbox: &Netns, name: &str) -> Result<Vec<IpNet>, NullError> {
    let mut inside = Handle::new_in(sandbox)?;
    let link = inside
        .link_by_name(name)?
        .ok_or_else(|| NullError::NoLink { name: name.into() })?;
    if !link.up {
        inside.set_up(link.index)?;
        crate::fault::side_effect("set loopback up");
    }
    let addrs = inside.addresses(Some(link.index))?;
    Ok(addrs
        .into_iter()
        .map(|a| a.net)
        .filter(|n| match n {
            IpNet::V6(v6) => !v6.addr().is_unicast_link_local(),
            IpNet::V4(_) => true,
        })
        .collect())
}

/// CHECK: `name` exists in the sandbox and is up.
pub fn verify(sandbox: &Netns, name: &str) -> Result<(), NullError> {
    let mut inside = Handle::new_in(sandbox)?;
    match inside.link_by_name(name)? {
        None => Err(NullError::NoLink { name: name.into() }),
        Some(l) if !l.up => Err(NullError::Down { name: name.into() }),
        Some(_) => Ok(()),
    }
}
