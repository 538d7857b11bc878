//! An endpoint: one interface of a container on a network. Joining makes it (CNI ADD: the
//! driver creates the interface inside the sandbox, addresses it, publishes its ports);
//! leaving removes it (CNI DEL).

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

use super::network::Network;
use super::sandbox::Sandbox;
use super::{Controller, EndpointOptions, ModelError, PortBinding, SandboxOptions};
use crate::cni::config::Protocol;
use crate::cni::env::{IfName, Target};
use crate::cni::CniResult;
use crate::error::{Error, Result};
use crate::inventory::EndpointInfo;
use crate::netlink::Handle;
use crate::store::Store;

/// libnetwork's `Endpoint`.
#[derive(Debug)]
pub struct Endpoint {
    network: Network,
    name: String,
    options: EndpointOptions,
    joined: Option<Joined>,
}

#[derive(Debug)]
struct Joined {
    target: Target,
    key: PathBuf,
    result: CniResult,
}

/// An endpoint's operational data as its driver reports it (libnetwork's `DriverInfo` /
/// `EndpointInfo`): typed, and serializable for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverInfo {
    /// The interface in the sandbox.
    pub ifname: String,
    /// Its MAC address.
    pub mac: Option<String>,
    /// Its addresses with prefix.
    pub addresses: Vec<IpNet>,
    /// The gateways of those addresses.
    pub gateways: Vec<IpAddr>,
    /// Ports the container exposes.
    pub exposed_ports: Vec<(Protocol, u16)>,
    /// Ports published on the host (libnetwork's `PortMap`).
    pub port_map: Vec<PortBinding>,
    /// The sandbox key (its namespace's path).
    pub sandbox_key: PathBuf,
}

impl Endpoint {
    pub(super) fn new(network: Network, name: String, options: EndpointOptions) -> Self {
        Endpoint {
            network,
            name,
            options,
            joined: None,
        }
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The container it is joined to, if any.
    pub fn container_id(&self) -> Option<&str> {
        self.joined.as_ref().map(|j| j.target.container_id.as_str())
    }

    /// Joins the sandbox: the driver makes the interface inside it, with its addresses, routes
    /// and published ports (libnetwork's `Endpoint.Join`); the sandbox's hosts file gains the
    /// addresses. Everything is undone if a step fails.
    pub fn join(&mut self, sandbox: &Sandbox) -> Result<()> {
        if let Some(j) = &self.joined {
            return Err(ModelError::AlreadyJoined {
                endpoint: self.name.clone(),
                container: j.target.container_id.to_string(),
            }
            .into());
        }
        if self.network.is_host() != sandbox.is_host() {
            return Err(ModelError::HostSandboxOnly(self.name.clone()).into());
        }
        let netns = sandbox.netns()?;
        let ifname = match (&self.options.ifname, self.network.is_null()) {
            (Some(name), _) => IfName::new(name)?,
            (None, true) => IfName::new("lo")?,
            (None, false) => free_ifname(sandbox, &netns)?,
        };
        let target = Target {
            container_id: sandbox.container_id().clone(),
            ifname,
        };
        let runtime = self.options.runtime_config();
        let result = self.network.join(&target, &netns, &runtime)?;
        if let Err(e) = refresh_hosts(sandbox) {
            let _ = self.network.leave(&target, Some(sandbox.key()));
            return Err(e);
        }
        tracing::info!(
            "joined endpoint {} to sandbox {} as {}",
            self.name,
            target.container_id,
            target.ifname
        );
        self.joined = Some(Joined {
            target,
            key: sandbox.key().to_owned(),
            result,
        });
        Ok(())
    }

    /// Joins the sandbox of `container_id`, creating it with `options` if it does not exist
    /// (libnetwork's early `Endpoint.Join(containerID, ...)`); returns the sandbox key.
    pub fn join_container(
        &mut self,
        container_id: &str,
        options: SandboxOptions,
    ) -> Result<PathBuf> {
        let controller = Controller::from_inner(self.network.inner().clone());
        let sandbox = match controller.sandbox(container_id)? {
            Some(s) => s,
            None => controller.new_sandbox(container_id, options)?,
        };
        self.join(&sandbox)?;
        Ok(sandbox.key().to_owned())
    }

    /// Verifies the endpoint is still as the join made it (CNI CHECK).
    pub fn verify(&self) -> Result<()> {
        let j = self.joined()?;
        let netns = crate::netns::Netns::open(&j.key).map_err(Error::Netns)?;
        self.network
            .verify(&j.target, &netns, &self.options.runtime_config())
    }

    /// Leaves the sandbox: the interface, its addresses and published ports are removed
    /// (libnetwork's `Endpoint.Leave`).
    pub fn leave(&mut self, sandbox: &Sandbox) -> Result<()> {
        let j = self.joined()?;
        if j.target.container_id != *sandbox.container_id() {
            return Err(ModelError::NotJoined(format!(
                "{} (to sandbox {})",
                self.name,
                sandbox.container_id()
            ))
            .into());
        }
        self.network.leave(&j.target, Some(sandbox.key()))?;
        self.joined = None;
        refresh_hosts(sandbox)
    }

    /// Deletes the endpoint, leaving its sandbox first if it is joined (libnetwork's
    /// `Endpoint.Delete`).
    pub fn delete(self) -> Result<()> {
        if let Some(j) = &self.joined {
            self.network.leave(&j.target, Some(&j.key))?;
            let controller = Controller::from_inner(self.network.inner().clone());
            if let Some(sandbox) = controller.sandbox(j.target.container_id.as_str())? {
                refresh_hosts(&sandbox)?;
            }
        }
        Ok(())
    }

    /// The driver's operational data: MAC, addresses, gateways, port map.
    pub fn driver_info(&self) -> Result<DriverInfo> {
        let j = self.joined()?;
        let ifname = j.target.ifname.to_string();
        let iface = j.result.interfaces.iter().position(|i| i.name == ifname);
        Ok(DriverInfo {
            mac: iface.and_then(|i| j.result.interfaces[i].mac.clone()),
            addresses: j.result.ips.iter().map(|ip| ip.address).collect(),
            gateways: j.result.ips.iter().filter_map(|ip| ip.gateway).collect(),
            exposed_ports: self.options.exposed_ports.clone(),
            port_map: self.options.port_bindings.clone(),
            sandbox_key: j.key.clone(),
            ifname,
        })
    }

    fn joined(&self) -> Result<&Joined> {
        self.joined
            .as_ref()
            .ok_or_else(|| ModelError::NotJoined(self.name.clone()).into())
    }
}

/// The first `ethN` not taken in the sandbox.
fn free_ifname(sandbox: &Sandbox, netns: &crate::netns::Netns) -> Result<IfName> {
    let mut inside = Handle::new_in(netns).map_err(Error::Netlink)?;
    let links = inside.links().map_err(Error::Netlink)?;
    (0..100)
        .map(|n| format!("eth{n}"))
        .find(|name| !links.iter().any(|l| l.name == *name))
        .map(|name| IfName::new(&name).expect("ethN is a valid name"))
        .ok_or_else(|| ModelError::NoInterfaceName(sandbox.container_id().to_string()).into())
}

/// Rewrites the sandbox's hosts file from the addresses of its container's endpoints.
fn refresh_hosts(sandbox: &Sandbox) -> Result<()> {
    let controller = Controller::from_inner(sandbox.inner().clone());
    let mut addresses = Vec::new();
    for rec in controller
        .store()?
        .container_endpoints(sandbox.container_id())?
    {
        let info = EndpointInfo::from_record(&rec);
        addresses.extend(info.addresses.iter().map(IpNet::addr));
    }
    sandbox.write_hosts(&addresses)
}
