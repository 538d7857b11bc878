//! The host-device driver: an endpoint is a link of the host moved into the sandbox under the
//! container's name, and moved back under its own name with its own addresses and up state.
//!
//! ```text
//! host ns:  ph0 (mac M, 10.1.0.5/24, up)  ──ADD: one RTM_SETLINK (NET_NS_FD + IFNAME)──▶
//! sandbox:  eth0 (mac M, addresses: the original ones, or IPAM's; up; IPAM routes)
//!           ──DEL: one RTM_SETLINK from inside (host NET_NS_FD + original IFNAME)──▶ host ns
//! ```
//! The original name, MAC, addresses and up state are noted in the store before the move, so
//! DEL and GC can put the device back after a crash. The MAC identifies the device in the
//! sandbox, and in the host when the kernel returned it there under another name.

use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bridge::{format_mac, parse_mac};
use super::l3;
use crate::cni::config::{ConfigError, NetConf};
use crate::cni::env::IfName;
use crate::cni::result::{IpConfig, Route};
use crate::netlink::{Handle, IpFamily, Link, NetlinkError};
use crate::netns::Netns;

/// The reference `host-device` plugin's keys, with the same meaning, and cnm's opt-in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostDeviceConfig {
    /// Host device name.
    #[serde(default)]
    pub device: Option<String>,
    /// Host device MAC address.
    #[serde(default)]
    pub hwaddr: Option<String>,
    /// Sysfs path of the device: not implemented (code 2).
    #[serde(default)]
    pub kernelpath: Option<Value>,
    /// PCI address (DPDK): not implemented (code 2).
    #[serde(default, rename = "pciBusID")]
    pub pci_bus_id: Option<Value>,
    /// Allow moving the interface the host's default route goes through (off: refused).
    #[serde(default)]
    pub allow_default_route: bool,
    /// Directory of cnm's store (default: `ipam.dataDir`, then `/var/lib/cni/cnm`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

/// Failures of the host-device driver.
#[derive(Debug, thiserror::Error)]
pub enum HostDeviceError {
    /// A kernel request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// No link of the host matches.
    #[error("no device {what} in the host's network namespace (it does not exist, or is in another namespace)")]
    NotFound { what: String },
    /// The device was given to a container already.
    #[error("device {device} is already in container {container} (network {network}, {ifname})")]
    Taken {
        device: String,
        container: String,
        network: String,
        ifname: String,
    },
    /// `device` and `hwaddr` name two different links.
    #[error("\"device\" {device} and \"hwaddr\" {hwaddr} name different devices; name it once")]
    NamedTwice { device: String, hwaddr: String },
    /// The device carries the host's default route.
    #[error("device {name} carries the host's default route; moving it would cut the host off. Set \"allowDefaultRoute\": true to move it anyway")]
    DefaultRoute { name: String },
    /// The device cannot be given away.
    #[error("device {name} is the host's loopback and cannot be moved")]
    Loopback { name: String },
    /// `CNI_IFNAME` is taken inside the container.
    #[error("the container already has an interface {ifname} (CNI_IFNAME); choose another name")]
    IfNameTaken { ifname: String },
    /// CHECK found a difference from what ADD made.
    #[error("{0}")]
    Check(String),
}

/// How the device is named in the configuration.
#[derive(Debug, Clone)]
pub struct HostDevicePlan {
    /// By name.
    pub device: Option<String>,
    /// By MAC.
    pub hwaddr: Option<[u8; 6]>,
    /// The default-route interface may be moved.
    pub allow_default_route: bool,
}

impl HostDevicePlan {
    /// Validates the plugin's keys.
    pub fn new(conf: &NetConf<HostDeviceConfig>) -> Result<Self, ConfigError> {
        let c = &conf.plugin;
        let unsupported = |field: &str| ConfigError::Unsupported {
            field: field.into(),
            why: "cnm-host names devices by \"device\" or \"hwaddr\"".into(),
        };
        if c.kernelpath.is_some() {
            return Err(unsupported("kernelpath"));
        }
        if c.pci_bus_id.is_some() {
            return Err(unsupported("pciBusID"));
        }
        let device = match c.device.as_deref().filter(|d| !d.is_empty()) {
            None => None,
            Some(d) => Some(
                IfName::new(d)
                    .map_err(|e| ConfigError::invalid("device", e))?
                    .to_string(),
            ),
        };
        let hwaddr = match c.hwaddr.as_deref().filter(|h| !h.is_empty()) {
            None => None,
            Some(h) => Some(parse_mac(&h.to_ascii_lowercase()).ok_or_else(|| {
                ConfigError::invalid("hwaddr", format!("{h:?} is not a unicast MAC address"))
            })?),
        };
        if device.is_none() && hwaddr.is_none() {
            return Err(ConfigError::invalid(
                "device",
                "name the host device with \"device\" or \"hwaddr\"",
            ));
        }
        Ok(HostDevicePlan {
            device,
            hwaddr,
            allow_default_route: c.allow_default_route,
        })
    }

    fn what(&self) -> String {
        match (&self.device, self.hwaddr) {
            (Some(d), _) => d.clone(),
            (None, Some(m)) => format!("with hwaddr {}", format_mac(m)),
            (None, None) => String::new(),
        }
    }
}

/// The device as it was in the host, noted before it moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Original {
    /// Its name.
    pub name: String,
    /// Its MAC, `aa:bb:...`.
    pub mac: String,
    /// Its addresses (IPv6 link-local left out: the kernel makes those).
    pub addresses: Vec<IpNet>,
    /// Administratively up.
    pub up: bool,
}

fn link_by_mac(host: &mut Handle, mac: [u8; 6]) -> Result<Option<Link>, NetlinkError> {
    Ok(host.links()?.into_iter().find(|l| l.mac == Some(mac)))
}

/// Finds the device in the host, refuses what must not move, and notes its original state.
pub fn find(host: &mut Handle, plan: &HostDevicePlan) -> Result<(Link, Original), HostDeviceError> {
    let not_found = || HostDeviceError::NotFound { what: plan.what() };
    let link = match (&plan.device, plan.hwaddr) {
        (Some(name), hw) => {
            let link = host.link_by_name(name)?.ok_or_else(not_found)?;
            if let Some(hw) = hw.filter(|&m| link.mac != Some(m)) {
                return Err(HostDeviceError::NamedTwice {
                    device: name.clone(),
                    hwaddr: format_mac(hw),
                });
            }
            link
        }
        (None, Some(mac)) => link_by_mac(host, mac)?.ok_or_else(not_found)?,
        (None, None) => return Err(not_found()),
    };
    if link.name == "lo" {
        return Err(HostDeviceError::Loopback { name: link.name });
    }
    if !plan.allow_default_route {
        for family in [IpFamily::V4, IpFamily::V6] {
            if host
                .routes(family)?
                .iter()
                .any(|r| r.dst.prefix_len() == 0 && r.oif == Some(link.index))
            {
                return Err(HostDeviceError::DefaultRoute { name: link.name });
            }
        }
    }
    let addresses = host
        .addresses(Some(link.index))?
        .into_iter()
        .map(|a| a.net)
        .filter(|n| !matches!(n, IpNet::V6(v6) if v6.addr().is_unicast_link_local()))
        .collect();
    let original = Original {
        name: link.name.clone(),
        mac: link.mac.map(format_mac).unwrap_or_default(),
        addresses,
        up: link.up,
    };
    Ok((link, original))
}

/// Moves the device into the sandbox as `ifname` (one message), brings it up, and gives it
/// `ips` and `routes`. On error the caller's rollback calls [`detach`].
pub fn attach(
    host: &mut Handle,
    link: &Link,
    ifname: &IfName,
    sandbox: &Netns,
    ips: &[IpConfig],
    routes: &[Route],
) -> Result<(), HostDeviceError> {
    let mut inside = Handle::new_in(sandbox)?;
    let taken = || HostDeviceError::IfNameTaken {
        ifname: ifname.to_string(),
    };
    if inside.link_by_name(ifname.as_str())?.is_some() {
        return Err(taken());
    }
    match host.move_to_netns_as(link.index, sandbox, ifname.as_str()) {
        Ok(()) => {}
        // The kernel moves the link first and renames it after: when the name was taken in
        // between, the device is in the sandbox under its own name, and the caller's rollback
        // ([`detach`]) brings it back.
        Err(NetlinkError::Exists { .. }) => return Err(taken()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!("moved {} into the sandbox as {ifname}", link.name);
    crate::fault::side_effect("move device in");
    let moved = inside
        .link_by_name(ifname.as_str())?
        .ok_or_else(|| HostDeviceError::Check(format!("{ifname} vanished")))?;
    inside.set_up(moved.index)?;
    l3::configure(&mut inside, moved.index, ips, routes)?;
    Ok(())
}

/// Moves the device back from the sandbox (if it is there) under its original name, then
/// restores its addresses and up state in the host. Already back is success; gone (a virtual
/// device dies with its namespace) is logged and success.
pub fn detach(
    host: &mut Handle,
    host_ns: &Netns,
    sandbox: Option<&Netns>,
    ifname: &str,
    original: &Original,
) -> Result<(), HostDeviceError> {
    let mac = parse_mac(&original.mac);
    if let Some(sandbox) = sandbox {
        let mut inside = Handle::new_in(sandbox)?;
        // Under `ifname`, or still under its own name if the rename on the way in failed.
        let mut found = None;
        for name in [ifname, original.name.as_str()] {
            found = inside.link_by_name(name)?.filter(|l| l.mac == mac);
            if found.is_some() {
                break;
            }
        }
        if let Some(l) = found {
            inside.set_down(l.index)?;
            inside.move_to_netns_as(l.index, host_ns, &original.name)?;
            tracing::info!("moved {ifname} back to the host as {}", original.name);
            crate::fault::side_effect("move device out");
        }
    }
    let found = match host.link_by_name(&original.name)? {
        Some(l) if l.mac == mac => Some(l),
        _ => match mac {
            Some(m) => link_by_mac(host, m)?,
            None => None,
        },
    };
    let Some(link) = found else {
        tracing::warn!(
            "device {} is not in the host: a virtual device is destroyed with its namespace",
            original.name
        );
        return Ok(());
    };
    if link.name != original.name {
        host.set_down(link.index)?;
        host.set_name(link.index, &original.name)?;
    }
    let have = host.addresses(Some(link.index))?;
    for net in &original.addresses {
        if have.iter().any(|a| a.net == *net) {
            continue;
        }
        match host.add_address(link.index, *net) {
            Ok(()) | Err(NetlinkError::Exists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if original.up && !link.up {
        host.set_up(link.index)?;
    }
    crate::fault::side_effect("restore device");
    Ok(())
}

/// CHECK: the device is in the sandbox as `ifname`, up, with its addresses and routes.
pub fn verify(
    sandbox: &Netns,
    ifname: &str,
    original: &Original,
    ips: &[IpConfig],
    routes: &[Route],
) -> Result<(), HostDeviceError> {
    let fail = |why: String| Err(HostDeviceError::Check(why));
    let mut inside = Handle::new_in(sandbox)?;
    let Some(link) = inside.link_by_name(ifname)? else {
        return fail(format!("interface {ifname} is gone from the container"));
    };
    if link.mac != parse_mac(&original.mac) {
        return fail(format!(
            "interface {ifname} in the container is not host device {} (another MAC)",
            original.name
        ));
    }
    if !link.up {
        return fail(format!("interface {ifname} in the container is down"));
    }
    match l3::difference(&mut inside, link.index, ifname, ips, routes)? {
        Some(why) => fail(why),
        None => Ok(()),
    }
}
