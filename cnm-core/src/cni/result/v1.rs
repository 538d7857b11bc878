//! Wire format of 1.0.0 and 1.1.0 results: no `ips[].version`; 1.1.0 adds interface and route
//! attributes, which are left out when printing 1.0.0.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{CniResult, Dns, Interface, IpConfig, Route};
use crate::cni::version::SpecVersion;

#[derive(Serialize, Deserialize)]
pub(super) struct Result {
    #[serde(rename = "cniVersion", default, skip_deserializing)]
    cni_version: Option<SpecVersion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Iface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ips: Vec<Ip>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    // Printed even when empty, as the reference plugins do.
    #[serde(default)]
    dns: Dns,
}

#[derive(Serialize, Deserialize)]
struct Iface {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sandbox: Option<String>,
    #[serde(
        rename = "socketPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    socket_path: Option<String>,
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pci_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Ip {
    address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
}

impl Result {
    pub(super) fn from_model(m: &CniResult, version: SpecVersion) -> Self {
        let v11 = version >= SpecVersion::V1_1_0;
        Result {
            cni_version: Some(version),
            interfaces: m
                .interfaces
                .iter()
                .map(|i| Iface {
                    name: i.name.clone(),
                    mac: i.mac.clone(),
                    mtu: i.mtu.filter(|_| v11),
                    sandbox: i.sandbox.clone(),
                    socket_path: i.socket_path.clone().filter(|_| v11),
                    pci_id: i.pci_id.clone().filter(|_| v11),
                })
                .collect(),
            ips: m
                .ips
                .iter()
                .map(|ip| Ip {
                    address: ip.address,
                    gateway: ip.gateway,
                    interface: ip.interface,
                })
                .collect(),
            routes: if v11 {
                m.routes.clone()
            } else {
                m.routes.iter().map(Route::without_v11_attributes).collect()
            },
            dns: m.dns.clone(),
        }
    }

    pub(super) fn into_model(self) -> std::result::Result<CniResult, String> {
        Ok(CniResult {
            interfaces: self
                .interfaces
                .into_iter()
                .map(|i| Interface {
                    name: i.name,
                    mac: i.mac,
                    mtu: i.mtu,
                    sandbox: i.sandbox,
                    socket_path: i.socket_path,
                    pci_id: i.pci_id,
                })
                .collect(),
            ips: self
                .ips
                .into_iter()
                .map(|ip| IpConfig {
                    address: ip.address,
                    gateway: ip.gateway,
                    interface: ip.interface,
                })
                .collect(),
            routes: self.routes,
            dns: self.dns,
        })
    }
}
