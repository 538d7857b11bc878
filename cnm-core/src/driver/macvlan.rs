//! The macvlan driver: an endpoint is a macvlan on a `master` link of the host, created by one
//! netlink message directly inside the sandbox (`IFLA_NET_NS_FD`) under the container's name,
//! with a MAC chosen by cnm (or the master's, in passthru mode), so that DEL can tell the link
//! it made from one the container had. Nothing is left in the host namespace: the macvlan
//! lives and dies with the sandbox.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::bridge::{format_mac, parse_mac, random_mac};
use super::l3;
use crate::cni::config::{ConfigError, NetConf};
use crate::cni::env::IfName;
use crate::cni::result::{IpConfig, Route};
use crate::netlink::{Handle, IpFamily, Link, MacvlanMode, MacvlanSpec, NetlinkError};
use crate::netns::Netns;

/// The reference `macvlan` plugin's keys, with the same meaning.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MacvlanConfig {
    /// The host link the macvlan sits on; the default route's link when absent (as the
    /// reference).
    #[serde(default)]
    pub master: Option<String>,
    /// `bridge` (default), `private`, `vepa` or `passthru`.
    #[serde(default)]
    pub mode: Option<String>,
    /// MTU, at most the master's; the master's when absent or 0.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The master is inside the container's namespace: not implemented (code 2).
    #[serde(default)]
    pub link_in_netns: bool,
    /// Broadcast queue length: not implemented (code 2).
    #[serde(default)]
    pub bcqueuelen: Option<Value>,
    /// Directory of cnm's store (default: `ipam.dataDir`, then `/var/lib/cni/cnm`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

/// Failures of the macvlan driver.
#[derive(Debug, thiserror::Error)]
pub enum MacvlanError {
    /// A kernel request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// `master` names no link of the host.
    #[error("master {name:?} does not exist in the host's network namespace; set \"master\" to the host interface the containers share")]
    NoMaster { name: String },
    /// No `master`, and no default route to take it from.
    #[error("\"master\" is not set and the host has no default route whose interface could be the master; set \"master\"")]
    NoDefaultRoute,
    /// `mtu` above the master's.
    #[error("mtu {mtu} is larger than master {master}'s MTU {master_mtu}")]
    MtuAboveMaster {
        mtu: u32,
        master: String,
        master_mtu: u32,
    },
    /// The kernel refused the macvlan on this master (EINVAL): passthru needs a master with no
    /// other macvlan, and a master with a passthru macvlan takes no other.
    #[error("master {master} refused a {mode} macvlan: a passthru macvlan must be its master's only one, and a master with one takes no other ({source})")]
    MasterInUse {
        master: String,
        mode: &'static str,
        #[source]
        source: NetlinkError,
    },
    /// CHECK found a difference from what ADD made.
    #[error("{0}")]
    Check(String),
}

/// The configuration, validated.
#[derive(Debug, Clone)]
pub struct MacvlanPlan {
    /// The master's name, or `None` for the default route's link.
    pub master: Option<String>,
    /// Mode.
    pub mode: MacvlanMode,
    /// MTU, when set.
    pub mtu: Option<u32>,
}

fn mode_name(mode: MacvlanMode) -> &'static str {
    match mode {
        MacvlanMode::Bridge => "bridge",
        MacvlanMode::Private => "private",
        MacvlanMode::Vepa => "vepa",
        MacvlanMode::Passthru => "passthru",
    }
}

impl MacvlanPlan {
    /// Validates the plugin's keys.
    pub fn new(conf: &NetConf<MacvlanConfig>) -> Result<Self, ConfigError> {
        let c = &conf.plugin;
        let unsupported = |field: &str, why: &str| ConfigError::Unsupported {
            field: field.into(),
            why: why.into(),
        };
        if c.link_in_netns {
            return Err(unsupported(
                "linkInNetns",
                "cnm-macvlan takes its master from the host's namespace only",
            ));
        }
        if c.bcqueuelen.is_some() {
            return Err(unsupported("bcqueuelen", "cnm-macvlan does not set it yet"));
        }
        let mode = match c.mode.as_deref().unwrap_or("") {
            "" | "bridge" => MacvlanMode::Bridge,
            "private" => MacvlanMode::Private,
            "vepa" => MacvlanMode::Vepa,
            "passthru" => MacvlanMode::Passthru,
            other => {
                return Err(ConfigError::invalid(
                    "mode",
                    format!(
                        "unknown macvlan mode {other:?}; use bridge, private, vepa or passthru"
                    ),
                ))
            }
        };
        let master = match c.master.as_deref() {
            None | Some("") => None,
            Some(name) => Some(
                IfName::new(name)
                    .map_err(|e| ConfigError::invalid("master", e))?
                    .to_string(),
            ),
        };
        Ok(MacvlanPlan {
            master,
            mode,
            mtu: c.mtu.filter(|&m| m != 0),
        })
    }

    /// The mode's name, as in the configuration.
    pub fn mode_name(&self) -> &'static str {
        mode_name(self.mode)
    }
}

/// The master link: the named one, or the IPv4 (then IPv6) default route's; its MTU fits.
pub fn resolve_master(host: &mut Handle, plan: &MacvlanPlan) -> Result<Link, MacvlanError> {
    let link = match &plan.master {
        Some(name) => host
            .link_by_name(name)?
            .ok_or_else(|| MacvlanError::NoMaster { name: name.clone() })?,
        None => {
            let mut oif = None;
            for family in [IpFamily::V4, IpFamily::V6] {
                oif = oif.or(host
                    .routes(family)?
                    .into_iter()
                    .find(|r| r.dst.prefix_len() == 0 && r.oif.is_some())
                    .and_then(|r| r.oif));
            }
            let index = oif.ok_or(MacvlanError::NoDefaultRoute)?;
            host.link_by_index(index)?
                .ok_or(MacvlanError::NoDefaultRoute)?
        }
    };
    if let Some(mtu) = plan.mtu.filter(|&m| m > link.mtu) {
        return Err(MacvlanError::MtuAboveMaster {
            mtu,
            master: link.name,
            master_mtu: link.mtu,
        });
    }
    Ok(link)
}

/// The MAC the endpoint gets: the requested one, the master's in passthru, else random.
pub fn endpoint_mac(plan: &MacvlanPlan, master: &Link, requested: Option<[u8; 6]>) -> [u8; 6] {
    match (requested, plan.mode, master.mac) {
        (Some(mac), _, _) => mac,
        (None, MacvlanMode::Passthru, Some(mac)) => mac,
        (None, _, _) => random_mac(),
    }
}

/// One endpoint to attach.
#[derive(Debug, Clone)]
pub struct EndpointSpec<'a> {
    /// Name inside the sandbox (`CNI_IFNAME`).
    pub ifname: &'a IfName,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Addresses with their gateways.
    pub ips: &'a [IpConfig],
    /// Routes; a route without `gw` goes via its family's gateway.
    pub routes: &'a [Route],
}

/// Creates the macvlan inside the sandbox and configures it. On error the caller's rollback
/// calls [`detach`].
pub fn attach(
    host: &mut Handle,
    master: &Link,
    plan: &MacvlanPlan,
    spec: &EndpointSpec<'_>,
    sandbox: &Netns,
) -> Result<(), MacvlanError> {
    host.create_macvlan(&MacvlanSpec {
        name: spec.ifname.as_str(),
        master: master.index,
        mode: plan.mode,
        netns: Some(sandbox),
        mtu: plan.mtu,
        mac: Some(spec.mac),
    })
    .map_err(|e| match e {
        NetlinkError::Kernel {
            errno: nix::errno::Errno::EINVAL,
            ..
        } => MacvlanError::MasterInUse {
            master: master.name.clone(),
            mode: plan.mode_name(),
            source: e,
        },
        e => e.into(),
    })?;
    tracing::info!(
        "created macvlan {} on {} ({}) in the sandbox",
        spec.ifname,
        master.name,
        plan.mode_name()
    );
    crate::fault::side_effect("create macvlan");
    let mut inside = Handle::new_in(sandbox)?;
    let link = inside
        .link_by_name(spec.ifname.as_str())?
        .ok_or_else(|| MacvlanError::Check(format!("{} vanished", spec.ifname)))?;
    inside.set_up(link.index)?;
    l3::configure(&mut inside, link.index, spec.ips, spec.routes)?;
    Ok(())
}

/// Deletes the container's `ifname` if it is the macvlan with `mac` that cnm made; already
/// gone (or the sandbox gone) is success.
pub fn detach(sandbox: Option<&Netns>, ifname: &str, mac: [u8; 6]) -> Result<(), MacvlanError> {
    let Some(sandbox) = sandbox else {
        return Ok(());
    };
    let mut inside = Handle::new_in(sandbox)?;
    let Some(link) = inside.link_by_name(ifname)? else {
        return Ok(());
    };
    if link.kind.as_deref() != Some("macvlan") || link.mac != Some(mac) {
        tracing::warn!("{ifname} in the sandbox is not the macvlan cnm made; left alone");
        return Ok(());
    }
    match inside.delete_link(link.index) {
        Ok(()) | Err(NetlinkError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!("deleted macvlan {ifname} ({})", format_mac(mac));
    crate::fault::side_effect("delete macvlan");
    Ok(())
}

/// CHECK: the macvlan exists in the sandbox, is up, has its MAC, addresses and routes.
pub fn verify(spec: &EndpointSpec<'_>, sandbox: &Netns) -> Result<(), MacvlanError> {
    let fail = |why: String| Err(MacvlanError::Check(why));
    let mut inside = Handle::new_in(sandbox)?;
    let name = spec.ifname.as_str();
    let Some(link) = inside.link_by_name(name)? else {
        return fail(format!("interface {name} is gone from the container"));
    };
    if link.kind.as_deref() != Some("macvlan") {
        return fail(format!(
            "interface {name} in the container is not a macvlan"
        ));
    }
    if !link.up {
        return fail(format!("interface {name} in the container is down"));
    }
    if link.mac != Some(spec.mac) {
        return fail(format!(
            "interface {name} in the container has another MAC address than ADD gave it"
        ));
    }
    match l3::difference(&mut inside, link.index, name, spec.ips, spec.routes)? {
        Some(why) => fail(why),
        None => Ok(()),
    }
}

/// Parses a MAC from the `mac` capability or `CNI_ARGS` `MAC=`.
pub fn requested_mac(field: &str, s: &str) -> Result<[u8; 6], ConfigError> {
    parse_mac(s).ok_or_else(|| {
        ConfigError::invalid(
            field,
            format!("{s:?} is not a unicast MAC address like 0a:58:0a:01:00:05"),
        )
    })
}
