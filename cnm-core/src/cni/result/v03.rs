//! Wire format of 0.3.0, 0.3.1 and 0.4.0 results: `ips[].version` is "4" or "6".

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
    sandbox: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Ip {
    version: String,
    address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
}

impl Result {
    pub(super) fn from_model(m: &CniResult, version: SpecVersion) -> Self {
        Result {
            cni_version: Some(version),
            interfaces: m
                .interfaces
                .iter()
                .map(|i| Iface {
                    name: i.name.clone(),
                    mac: i.mac.clone(),
                    sandbox: i.sandbox.clone(),
                })
                .collect(),
            ips: m
                .ips
                .iter()
                .map(|ip| Ip {
                    version: if ip.address.addr().is_ipv4() {
                        "4"
                    } else {
                        "6"
                    }
                    .into(),
                    address: ip.address,
                    gateway: ip.gateway,
                    interface: ip.interface,
                })
                .collect(),
            routes: m.routes.iter().map(Route::without_v11_attributes).collect(),
            dns: m.dns.clone(),
        }
    }

    pub(super) fn into_model(self) -> std::result::Result<CniResult, String> {
        let mut ips = Vec::with_capacity(self.ips.len());
        for (i, ip) in self.ips.into_iter().enumerate() {
            let family = if ip.address.addr().is_ipv4() {
                "4"
            } else {
                "6"
            };
            if ip.version != family {
                return Err(format!(
                    "ips[{i}].version is {:?} but address {} is IPv{family}",
                    ip.version, ip.address
                ));
            }
            ips.push(IpConfig {
                address: ip.address,
                gateway: ip.gateway,
                interface: ip.interface,
            });
        }
        Ok(CniResult {
            interfaces: self
                .interfaces
                .into_iter()
                .map(|i| Interface {
                    name: i.name,
                    mac: i.mac,
                    sandbox: i.sandbox,
                    ..Interface::default()
                })
                .collect(),
            ips,
            routes: self.routes,
            dns: self.dns,
        })
    }
}
