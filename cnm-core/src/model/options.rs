//! Typed options of the model's operations (libnetwork's `NetworkOption`, `EndpointOption`,
//! `SandboxOption`), each a plain struct with builder methods.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use crate::cni::config::Protocol;
use crate::inventory::PortBinding;

/// Options of a new network.
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    /// IPv4 subnet; `None` picks a free one for drivers that address their endpoints.
    pub ipv4: Option<IpNet>,
    /// IPv6 subnet (dual stack when both are set).
    pub ipv6: Option<IpNet>,
    /// libnetwork `internal`: no route or masquerade off the network (bridge).
    pub internal: bool,
    /// The driver's own keys, as in its plugin's configuration (e.g. `bridge`, `enableIcc`,
    /// `mtu`, `master`, `mode`, `device`); the driver validates them when the network is made.
    pub driver_options: Map<String, Value>,
}

impl NetworkOptions {
    /// The IPv4 subnet.
    pub fn ipv4(mut self, subnet: IpNet) -> Self {
        self.ipv4 = Some(subnet);
        self
    }

    /// The IPv6 subnet.
    pub fn ipv6(mut self, subnet: IpNet) -> Self {
        self.ipv6 = Some(subnet);
        self
    }

    /// One driver option (libnetwork's `NetworkOptionDriverOpts`).
    pub fn driver_option(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.driver_options.insert(key.to_owned(), value.into());
        self
    }
}

/// Options of a new endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointOptions {
    /// Ports the container exposes (libnetwork's `ExposedPorts`); informational.
    pub exposed_ports: Vec<(Protocol, u16)>,
    /// Ports published on the host (libnetwork's `PortMap`), made at join.
    pub port_bindings: Vec<PortBinding>,
    /// The interface name in the sandbox; default the first free `ethN`.
    pub ifname: Option<String>,
    /// A specific address for the endpoint (must be in the network's subnet).
    pub ips: Vec<IpAddr>,
    /// A specific MAC address.
    pub mac: Option<String>,
}

impl EndpointOptions {
    /// Publishes a port (and exposes its container port).
    pub fn publish(mut self, binding: PortBinding) -> Self {
        let exposed = (binding.protocol, binding.container_port);
        if !self.exposed_ports.contains(&exposed) {
            self.exposed_ports.push(exposed);
        }
        self.port_bindings.push(binding);
        self
    }

    /// The `runtimeConfig` of this endpoint's join.
    pub(crate) fn runtime_config(&self) -> Map<String, Value> {
        let mut rc = Map::new();
        if !self.port_bindings.is_empty() {
            let maps = self.port_bindings.iter().map(|b| b.to_cni()).collect();
            rc.insert("portMappings".into(), Value::Array(maps));
        }
        if !self.ips.is_empty() {
            let ips = self.ips.iter().map(|a| json!(a.to_string())).collect();
            rc.insert("ips".into(), Value::Array(ips));
        }
        if let Some(mac) = &self.mac {
            rc.insert("mac".into(), json!(mac));
        }
        rc
    }
}

/// Options of a new sandbox (libnetwork's `OptionHostname`, `OptionDomainname`, ...).
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// The container's host name, written to its hosts file.
    pub hostname: Option<String>,
    /// The container's domain name.
    pub domainname: Option<String>,
    /// Name servers for resolv.conf; default: the host's, without loopback ones.
    pub dns: Vec<IpAddr>,
    /// Search domains for resolv.conf; default: the host's.
    pub dns_search: Vec<String>,
    /// Use the host's own namespace instead of a new one (libnetwork's default sandbox, for
    /// endpoints of `host` networks).
    pub use_host_namespace: bool,
}

impl SandboxOptions {
    /// The host name.
    pub fn hostname(mut self, name: &str) -> Self {
        self.hostname = Some(name.to_owned());
        self
    }

    /// The domain name.
    pub fn domainname(mut self, name: &str) -> Self {
        self.domainname = Some(name.to_owned());
        self
    }

    /// The host's own namespace.
    pub fn use_host_namespace(mut self) -> Self {
        self.use_host_namespace = true;
        self
    }
}
