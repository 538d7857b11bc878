//! Shared setup for the cnm-bridge tests: a host namespace with a runtime that finds cnm's
//! plugins first and the reference plugins after them.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cnm_core::store::{SqliteStore, Store};
use conformance::{
    cnm_plugin_dir, link_names, require_plugins, require_root, unique_ifname, Host,
    NetworkConfigList, Runtime,
};
use serde_json::{json, Value};

/// Where Debian installs the reference plugins.
pub const REF_DIR: &str = "/usr/lib/cni";

/// The versions every scenario runs in.
pub const VERSIONS: [&str; 4] = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A host namespace, a runtime, and a unique bridge name.
pub struct Setup {
    pub host: Host,
    pub runtime: Runtime,
    pub bridge: String,
}

impl Setup {
    /// `None` (after saying why) when not root or the plugins are missing.
    pub fn new(test: &str) -> Option<Self> {
        if !require_root(test)
            || !require_plugins(test, &cnm_plugin_dir(), &["cnm-bridge", "cnm-ipam"])
            || !require_plugins(test, Path::new(REF_DIR), &["bridge", "host-local"])
        {
            return None;
        }
        let host = Host::new("br").unwrap();
        let runtime = host
            .runtime(vec![cnm_plugin_dir(), PathBuf::from(REF_DIR)])
            .unwrap();
        Some(Setup {
            host,
            runtime,
            bridge: unique_ifname("cb"),
        })
    }

    /// cnm's store directory for this test.
    pub fn store_dir(&self) -> PathBuf {
        self.host.state_dir().join("cnm")
    }

    /// A one-plugin list: cnm-bridge with `extra` keys merged over a gateway + masquerade setup.
    pub fn list(&self, version: &str, ipam: Value, extra: Value) -> NetworkConfigList {
        let mut plugin = json!({
            "type": "cnm-bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "isDefaultGateway": true,
            "ipMasq": true,
            "dataDir": self.store_dir(),
            "ipam": ipam,
        });
        for (k, v) in extra.as_object().unwrap() {
            plugin[k] = v.clone();
        }
        NetworkConfigList::from_value(&json!({
            "cniVersion": version, "name": "cnmnet", "plugins": [plugin]
        }))
        .unwrap()
    }

    /// cnm-ipam over `subnet`, its store in this test's directory.
    pub fn cnm_ipam(&self, subnet: &str) -> Value {
        json!({"type": "cnm-ipam", "subnet": subnet, "dataDir": self.store_dir()})
    }

    /// Endpoints in cnm's store (none when the store was never created).
    pub fn stored_endpoints(&self) -> usize {
        if !self.store_dir().join("cnm.db").exists() {
            return 0;
        }
        let store = SqliteStore::open(&self.store_dir()).unwrap();
        store.endpoints(None).unwrap().len()
    }

    /// Links in the host namespace other than `lo`.
    pub fn host_links(&self) -> Vec<String> {
        let mut links = link_names(self.host.netns()).unwrap();
        links.retain(|l| l != "lo");
        links
    }
}

/// The first address of family `v4` in a result, without its prefix.
pub fn addr_of(result: &Value, v4: bool) -> IpAddr {
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ip| ip["address"].as_str())
        .filter_map(|a| a.split('/').next()?.parse::<IpAddr>().ok())
        .find(|a| a.is_ipv4() == v4)
        .unwrap_or_else(|| panic!("no IPv{} address in {result}", if v4 { 4 } else { 6 }))
}

/// The CNI error code of a failed runtime call.
pub fn code(err: &conformance::Error) -> u64 {
    err.plugin_error()
        .and_then(|e| e.code)
        .unwrap_or_else(|| panic!("not a CNI error: {err}"))
}
