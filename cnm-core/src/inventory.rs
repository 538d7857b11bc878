//! Read-only typed views of what cnm has made on a node, decoded from the store: for the `cnm`
//! command (`cnm network ls`, `cnm endpoint ls`) and for programs that want to look.
//!
//! Every plugin records its endpoints its own way (the `data` column of the store's `endpoints`
//! table, written at commit); this module reads all of them:
//! ```text
//! cnm-bridge   {"hostVeth", "mac", "result", "portMappings"}   result: bridge, host veth, sandbox
//! cnm-macvlan  {"mac", "netns", "result"}                       result: null until committed
//! cnm-host     {"device", "netns", "result"}                    result: null until committed
//! cnm-ipam     {}                                                addresses: the reservations only
//! cnm-portmap  {"portMappings"}   under the network "<name>.portmap"
//! ```
//! A `result` is a CNI result in the newest spec version; its container-side interface is the
//! one with a `sandbox`. Without a result (an endpoint still being created, or `cnm-ipam`), the
//! reserved addresses are shown with their network's subnet prefix.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::cni::config::{NetworkName, PortMapping, Protocol};
use crate::cni::env::{ContainerId, IfName};
use crate::cni::result::IpConfig;
use crate::cni::{CniResult, SpecVersion};
use crate::error::Result;
use crate::store::{EndpointRecord, EndpointState, NetworkRecord, SqliteStore, Store, StoreError};

/// The key under which `cnm-bridge` and `cnm-portmap` record an endpoint's published ports.
pub const PORT_MAPPINGS_KEY: &str = "portMappings";

/// A network as cnm knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInfo {
    /// The network's name.
    #[serde(serialize_with = "as_text")]
    pub name: NetworkName,
    /// The plugin that runs it (`cnm-bridge`, `cnm-ipam`, ...).
    pub driver: String,
    /// Its subnets, in config order (empty when a delegated IPAM has not said yet).
    pub subnets: Vec<IpNet>,
    /// What its plugin recorded of its configuration.
    pub config: Value,
    /// How many endpoints it has now.
    pub endpoints: usize,
}

/// One published port: a host port forwarded to a container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortBinding {
    /// tcp, udp or sctp.
    pub protocol: Protocol,
    /// The host address it is published on; `None`: every local address.
    #[serde(rename = "hostIP", default)]
    pub host_ip: Option<IpAddr>,
    /// The port on the host.
    pub host_port: u16,
    /// The port in the container.
    pub container_port: u16,
}

impl From<&PortMapping> for PortBinding {
    fn from(m: &PortMapping) -> Self {
        PortBinding {
            protocol: m.protocol,
            host_ip: m.host_ip,
            host_port: m.host_port,
            container_port: m.container_port,
        }
    }
}

impl PortBinding {
    /// `host_port` on every host address to `container_port`, TCP.
    pub fn tcp(host_port: u16, container_port: u16) -> Self {
        PortBinding {
            protocol: Protocol::Tcp,
            host_ip: None,
            host_port,
            container_port,
        }
    }

    /// The `runtimeConfig.portMappings` entry a runtime would pass for it.
    pub fn to_cni(self) -> Value {
        let mut m = serde_json::json!({
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol.as_str(),
        });
        if let Some(ip) = self.host_ip {
            m["hostIP"] = serde_json::json!(ip.to_string());
        }
        m
    }

    /// What a plugin records of validated `runtimeConfig.portMappings` (under
    /// [`PORT_MAPPINGS_KEY`]): each binding once, in config order.
    pub fn list(mappings: &[PortMapping]) -> Vec<PortBinding> {
        let mut bindings: Vec<PortBinding> = Vec::new();
        for b in mappings.iter().map(PortBinding::from) {
            if !bindings.contains(&b) {
                bindings.push(b);
            }
        }
        bindings
    }
}

/// `0.0.0.0:8080->80/tcp`, `[::1]:8080->80/udp` (no host address: `0.0.0.0`).
impl fmt::Display for PortBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            Some(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            None => f.write_str("0.0.0.0")?,
        }
        let (host, container) = (self.host_port, self.container_port);
        write!(f, ":{host}->{container}/{}", self.protocol.as_str())
    }
}

/// One endpoint: an interface of a container on a network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointInfo {
    /// The network's name.
    #[serde(serialize_with = "as_text")]
    pub network: NetworkName,
    /// The container's full ID.
    #[serde(rename = "containerID", serialize_with = "as_text")]
    pub container_id: ContainerId,
    /// The interface name inside the container.
    #[serde(serialize_with = "as_text")]
    pub ifname: IfName,
    /// `creating` (ADD has not finished, or died) or `created`.
    #[serde(serialize_with = "state_name")]
    pub state: EndpointState,
    /// The container interface's MAC, when recorded.
    pub mac: Option<String>,
    /// The container's network namespace path, when recorded.
    pub sandbox: Option<String>,
    /// Its addresses with their prefix length.
    pub addresses: Vec<IpNet>,
    /// The gateways of those addresses, each once.
    pub gateways: Vec<IpAddr>,
    /// The ports published to it.
    pub ports: Vec<PortBinding>,
}

impl EndpointInfo {
    /// Decodes a record of any cnm plugin; what a record lacks stays empty. Addresses without a
    /// stored result come from the reservations, as single addresses (`/32`, `/128`).
    pub fn from_record(rec: &EndpointRecord) -> EndpointInfo {
        let data = &rec.data;
        let result = data
            .get("result")
            .filter(|v| !v.is_null())
            .and_then(|v| CniResult::from_json(SpecVersion::LATEST, v.clone(), "result").ok());
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        let mut info = EndpointInfo {
            network: rec.key.network.clone(),
            container_id: rec.key.container_id.clone(),
            ifname: rec.key.ifname.clone(),
            state: rec.state,
            mac: text("mac"),
            sandbox: text("netns"),
            addresses: rec.addresses.iter().map(|a| IpNet::from(a.addr)).collect(),
            gateways: Vec::new(),
            ports: data
                .get(PORT_MAPPINGS_KEY)
                .and_then(|v| Vec::<PortBinding>::deserialize(v).ok())
                .unwrap_or_default(),
        };
        if let Some(result) = result {
            info.apply_result(&result);
        }
        info
    }

    /// Takes the container-side interface and its addresses from a CNI result.
    fn apply_result(&mut self, result: &CniResult) {
        let sandbox = result
            .interfaces
            .iter()
            .position(|i| i.sandbox.is_some() && i.name == self.ifname.as_str())
            .or_else(|| result.interfaces.iter().position(|i| i.sandbox.is_some()));
        if let Some(iface) = sandbox.map(|i| &result.interfaces[i]) {
            self.mac = iface.mac.clone().or(self.mac.take());
            self.sandbox = iface.sandbox.clone();
        }
        // An address belongs to the container unless it names another interface than the
        // container's (cnm's results give none to host-side interfaces, others might).
        let ours = |ip: &&IpConfig| match (ip.interface, sandbox) {
            (Some(i), Some(s)) => i == s,
            _ => true,
        };
        let ips: Vec<&IpConfig> = result.ips.iter().filter(ours).collect();
        if !ips.is_empty() {
            self.addresses = ips.iter().map(|ip| ip.address).collect();
        }
        self.gateways.clear();
        for gw in ips.iter().filter_map(|ip| ip.gateway) {
            if !self.gateways.contains(&gw) {
                self.gateways.push(gw);
            }
        }
    }

    /// Gives single addresses (from reservations) the prefix of the subnet that holds them.
    fn widen_to(&mut self, subnets: &[IpNet]) {
        for a in &mut self.addresses {
            if a.prefix_len() != a.max_prefix_len() {
                continue;
            }
            if let Some(net) = subnets.iter().find(|n| n.contains(&a.addr())) {
                *a = IpNet::new(a.addr(), net.prefix_len()).expect("a subnet's prefix fits");
            }
        }
    }
}

/// What cnm has made on a node: its networks and endpoints, read from one store.
#[derive(Debug)]
pub struct Inventory {
    /// `None`: there is no store yet, so nothing was made.
    store: Option<SqliteStore>,
}

impl Inventory {
    /// Opens the store in `dir` (`<dir>/cnm.db`). A missing store is an empty inventory, and is
    /// not created.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = dir.join("cnm.db");
        match std::fs::symlink_metadata(&db) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Inventory { store: None }),
            Err(e) => Err(StoreError::Dir {
                path: dir.display().to_string(),
                what: format!("reading {}: {e}", db.display()),
                source: Some(e),
            }
            .into()),
            Ok(_) => Ok(Inventory {
                store: Some(SqliteStore::open(dir)?),
            }),
        }
    }

    /// Every network, by name.
    pub fn networks(&self) -> Result<Vec<NetworkInfo>> {
        let Some(store) = &self.store else {
            return Ok(Vec::new());
        };
        let mut counts: HashMap<NetworkName, usize> = HashMap::new();
        for ep in store.endpoints(None)? {
            *counts.entry(ep.key.network).or_default() += 1;
        }
        let mut networks: Vec<NetworkInfo> = store
            .networks()?
            .into_iter()
            .map(|n| network_info(n, &counts))
            .collect();
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// The network called `name`, if cnm knows it.
    pub fn network(&self, name: &NetworkName) -> Result<Option<NetworkInfo>> {
        Ok(self.networks()?.into_iter().find(|n| &n.name == name))
    }

    /// Every endpoint, or those of one network; by network, container ID and interface.
    pub fn endpoints(&self, network: Option<&NetworkName>) -> Result<Vec<EndpointInfo>> {
        let Some(store) = &self.store else {
            return Ok(Vec::new());
        };
        let subnets: HashMap<NetworkName, Vec<IpNet>> = store
            .networks()?
            .into_iter()
            .map(|n| (n.name, n.subnets))
            .collect();
        let mut endpoints: Vec<EndpointInfo> = store
            .endpoints(network)?
            .iter()
            .map(|rec| {
                let mut info = EndpointInfo::from_record(rec);
                if let Some(nets) = subnets.get(&rec.key.network) {
                    info.widen_to(nets);
                }
                info
            })
            .collect();
        endpoints.sort_by(|a, b| {
            (&a.network, &a.container_id, &a.ifname).cmp(&(&b.network, &b.container_id, &b.ifname))
        });
        Ok(endpoints)
    }
}

fn network_info(n: NetworkRecord, counts: &HashMap<NetworkName, usize>) -> NetworkInfo {
    NetworkInfo {
        endpoints: counts.get(&n.name).copied().unwrap_or(0),
        name: n.name,
        driver: n.driver,
        subnets: n.subnets,
        config: n.config,
    }
}

fn as_text<T: fmt::Display, S: Serializer>(v: &T, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn state_name<S: Serializer>(st: &EndpointState, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(match st {
        EndpointState::Creating => "creating",
        EndpointState::Created => "created",
    })
}

#[cfg(test)]
mod tests;
