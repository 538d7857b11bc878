//! One internal result model (the newest spec's), and per-version wire formats at the edge.
//!
//! A result read in any version (a delegated IPAM plugin's answer, a `prevResult`) is parsed into
//! [`CniResult`]; a result is printed in the config's `cniVersion`. Converting between versions is
//! parse-then-print, so every conversion goes through the same two functions:
//! - 0.3.0, 0.3.1, 0.4.0 ([`v03`]): `ips[].version` ("4"/"6") is present;
//! - 1.0.0 ([`v1`]): no `ips[].version`;
//! - 1.1.0 ([`v1`]): adds interface `mtu`, `socketPath`, `pciID` and route `mtu`, `advmss`,
//!   `priority`, `table`, `scope`; printing 1.0.0 drops them.

mod v03;
mod v1;

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::version::SpecVersion;

/// One interface the plugin created or moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// Interface name (in the sandbox for container interfaces).
    pub name: String,
    /// Hardware address, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// MTU (1.1.0).
    pub mtu: Option<u32>,
    /// Netns path for interfaces inside a sandbox; absent for host interfaces.
    pub sandbox: Option<String>,
    /// vhost-user socket path (1.1.0).
    pub socket_path: Option<String>,
    /// PCI ID of a device (1.1.0).
    pub pci_id: Option<String>,
}

/// One address given to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// Address with its prefix length, e.g. `10.1.0.5/24` (host bits kept).
    pub address: IpNet,
    /// Gateway for this address.
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`].
    pub interface: Option<usize>,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination network.
    pub dst: IpNet,
    /// Next hop; absent means the interface's gateway or on-link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// Route MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Advertised MSS (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// Metric (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Routing table (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Scope (1.1.0): 0 universe, 253 link, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    /// A route to `dst`, optionally via `gw`, with no 1.1.0 attributes.
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }

    /// The same route without the attributes that 1.1.0 added.
    fn without_v11_attributes(&self) -> Self {
        Route::new(self.dst, self.gw)
    }
}

/// DNS settings, the same in every version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Nameserver addresses, in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

/// The result of ADD (and of an IPAM plugin, which leaves `interfaces` empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    /// Interfaces created.
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    pub ips: Vec<IpConfig>,
    /// Routes installed.
    pub routes: Vec<Route>,
    /// DNS settings.
    pub dns: Dns,
}

/// A result that does not fit its declared version.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The JSON does not match the version's schema; `path` says where.
    #[error("{what} (cniVersion {version}) is not a valid result: at {path}: {source}")]
    Schema {
        what: &'static str,
        version: SpecVersion,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The JSON parses but its content is inconsistent.
    #[error("{what} (cniVersion {version}) is not a valid result: {why}")]
    Invalid {
        what: &'static str,
        version: SpecVersion,
        why: String,
    },
}

impl CniResult {
    /// The result as printed for `version`.
    pub fn to_json(&self, version: SpecVersion) -> Value {
        let value = if version.ips_carry_version() {
            serde_json::to_value(v03::Result::from_model(self, version))
        } else {
            serde_json::to_value(v1::Result::from_model(self, version))
        };
        value.expect("result wire structs always serialize")
    }

    /// Parses a result of `version`; `what` names it in errors (e.g. "prevResult").
    pub fn from_json(
        version: SpecVersion,
        value: Value,
        what: &'static str,
    ) -> Result<Self, ResultError> {
        let schema = |e: serde_path_to_error::Error<serde_json::Error>| ResultError::Schema {
            what,
            version,
            path: e.path().to_string(),
            source: e.into_inner(),
        };
        let model = if version.ips_carry_version() {
            serde_path_to_error::deserialize::<_, v03::Result>(value)
                .map_err(schema)?
                .into_model()
        } else {
            serde_path_to_error::deserialize::<_, v1::Result>(value)
                .map_err(schema)?
                .into_model()
        }
        .map_err(|why| ResultError::Invalid { what, version, why })?;
        model
            .validate()
            .map_err(|why| ResultError::Invalid { what, version, why })?;
        Ok(model)
    }

    fn validate(&self) -> Result<(), String> {
        for (i, ip) in self.ips.iter().enumerate() {
            if let Some(idx) = ip.interface {
                if idx >= self.interfaces.len() {
                    return Err(format!(
                        "ips[{i}].interface is {idx} but there are {} interfaces",
                        self.interfaces.len()
                    ));
                }
            }
            if let Some(gw) = ip.gateway {
                if gw.is_ipv4() != ip.address.addr().is_ipv4() {
                    return Err(format!(
                        "ips[{i}].gateway {gw} is not of the same family as {}",
                        ip.address
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
