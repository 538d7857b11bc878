//! Shared setup for the tests against Debian's reference plugins (`containernetworking-plugins`).

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use conformance::{require_plugins, require_root, unique_ifname, Host, NetworkConfigList, Runtime};
use serde_json::{json, Value};

/// Where Debian installs the reference plugins.
pub const REF_DIR: &str = "/usr/lib/cni";

/// The network name, also host-local's subdirectory of `dataDir`.
pub const NET: &str = "refnet";

/// The subnet; every test has its own host netns, so it may be the same in all of them.
pub const SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 99, 0, 0), 24);

/// The bridge's address (host-local's default gateway: the subnet's first address).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// A host netns with a runtime over the reference plugins, and the list's bridge name.
pub struct RefSetup {
    pub host: Host,
    pub runtime: Runtime,
    pub bridge: String,
}

impl RefSetup {
    /// `None` (after printing why) when not root or the plugins are not installed.
    pub fn new(test: &str) -> Option<Self> {
        let needed = ["bridge", "host-local", "portmap"];
        if !require_root(test) || !require_plugins(test, Path::new(REF_DIR), &needed) {
            return None;
        }
        let host = Host::new("ref").unwrap();
        let runtime = host.runtime(vec![PathBuf::from(REF_DIR)]).unwrap();
        Some(RefSetup {
            host,
            runtime,
            bridge: unique_ifname("cb"),
        })
    }

    /// host-local's `dataDir`.
    pub fn data_dir(&self) -> PathBuf {
        self.host.state_dir().join("ipam")
    }

    /// host-local's reservation file for `addr`.
    pub fn reservation(&self, addr: Ipv4Addr) -> PathBuf {
        self.data_dir().join(NET).join(addr.to_string())
    }

    /// bridge (gateway, masquerade, host-local IPAM) then portmap, in `version`.
    pub fn conflist(&self, version: &str) -> NetworkConfigList {
        NetworkConfigList::from_value(&json!({
            "cniVersion": version,
            "name": NET,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": true,
                    "ipam": {
                        "type": "host-local",
                        "subnet": format!("{}/{}", SUBNET.0, SUBNET.1),
                        "dataDir": self.data_dir(),
                        // Without a default route the container cannot answer outside clients.
                        "routes": [{"dst": "0.0.0.0/0"}],
                    }
                },
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ]
        }))
        .unwrap()
    }
}

/// The first IPv4 address of a result, without its prefix length.
pub fn container_addr(result: &Value) -> Ipv4Addr {
    let cidr = result["ips"][0]["address"]
        .as_str()
        .expect("ips[0].address");
    cidr.split('/')
        .next()
        .unwrap()
        .parse()
        .expect("an IPv4 address")
}

/// The host-side interfaces of a result: no `sandbox`, and not the bridge itself.
pub fn host_veths(result: &Value, bridge: &str) -> Vec<String> {
    result["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .filter(|i| i.get("sandbox").is_none() && i["name"] != bridge)
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}
