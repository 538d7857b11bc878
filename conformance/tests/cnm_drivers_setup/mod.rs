//! Shared setup for the tests of cnm's link drivers (null, macvlan, host device) next to the
//! reference plugins: a host namespace whose runtime finds cnm's plugins first and the
//! reference ones after them, and veth pairs standing in for physical devices.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cnm_core::store::{SqliteStore, Store};
use conformance::{
    cnm_plugin_dir, ip, require_plugins, require_root, unique_ifname, Container, Host,
    NetworkConfigList, Runtime,
};
use serde_json::{json, Value};

/// Where Debian installs the reference plugins.
pub const REF_DIR: &str = "/usr/lib/cni";

/// The versions every scenario runs in.
pub const VERSIONS: [&str; 4] = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The plugins a scenario runs in `version`: cnm's, then the reference one unless `version` is
/// newer than Debian's reference plugins speak (1.0.0), which is said on stderr.
pub fn plugins<'a>(version: &str, cnm: &'a str, reference: &'a str) -> Vec<&'a str> {
    if version > "1.0.0" {
        eprintln!("[{version}] {reference}: not run, the reference plugins speak up to 1.0.0");
        return vec![cnm];
    }
    vec![cnm, reference]
}

/// A host namespace and a runtime over cnm's and the reference plugins.
pub struct Setup {
    pub host: Host,
    pub runtime: Runtime,
}

impl Setup {
    /// `None` (after saying why) when not root or a plugin is missing.
    pub fn new(test: &str, cnm: &[&str], reference: &[&str]) -> Option<Self> {
        if !require_root(test)
            || !require_plugins(test, &cnm_plugin_dir(), cnm)
            || !require_plugins(test, Path::new(REF_DIR), reference)
        {
            return None;
        }
        let host = Host::new("drv").unwrap();
        let runtime = host
            .runtime(vec![cnm_plugin_dir(), PathBuf::from(REF_DIR)])
            .unwrap();
        Some(Setup { host, runtime })
    }

    /// cnm's store directory for this test.
    pub fn store_dir(&self) -> PathBuf {
        self.host.state_dir().join("cnm")
    }

    /// A one-plugin list named `name`.
    pub fn list(&self, version: &str, name: &str, plugin: Value) -> NetworkConfigList {
        NetworkConfigList::from_value(&json!({
            "cniVersion": version, "name": name, "plugins": [plugin]
        }))
        .unwrap()
    }

    /// IPAM over `subnet` with addresses from `.10` on: cnm-ipam for cnm's plugins,
    /// host-local for the reference ones, both keeping state in this test's directory.
    pub fn ipam(&self, cnm: bool, subnet: &str) -> Value {
        let start = subnet.replace(".0/24", ".10");
        let range = json!([[{"subnet": subnet, "rangeStart": start}]]);
        if cnm {
            json!({"type": "cnm-ipam", "ranges": range, "dataDir": self.store_dir()})
        } else {
            json!({"type": "host-local", "ranges": range,
                   "dataDir": self.host.state_dir().join("host-local")})
        }
    }

    /// Endpoints in cnm's store (none when the store was never created).
    pub fn stored_endpoints(&self) -> usize {
        if !self.store_dir().join("cnm.db").exists() {
            return 0;
        }
        let store = SqliteStore::open(&self.store_dir()).unwrap();
        store.endpoints(None).unwrap().len()
    }

    /// A "physical" device in the host namespace: one end of a veth pair, up, whose peer `eth0`
    /// sits in its own namespace (the physical network) with `peer_addr` (e.g. `10.1.0.1/24`).
    /// Returns the device's name and the network's namespace.
    pub fn physical(&self, peer_addr: &str) -> (String, Container) {
        let net = Container::new("phy").unwrap();
        let dev = unique_ifname("ph");
        let ns_name = net.path().file_name().unwrap().to_str().unwrap().to_owned();
        let h = self.host.netns();
        ip(
            h,
            &[
                "link", "add", &dev, "type", "veth", "peer", "name", "eth0", "netns", &ns_name,
            ],
        )
        .unwrap();
        ip(h, &["link", "set", &dev, "up"]).unwrap();
        ip(net.netns(), &["addr", "add", peer_addr, "dev", "eth0"]).unwrap();
        ip(net.netns(), &["link", "set", "eth0", "up"]).unwrap();
        (dev, net)
    }
}

/// The CNI error code of a failed runtime call.
pub fn code(err: &conformance::Error) -> u64 {
    err.plugin_error()
        .and_then(|e| e.code)
        .unwrap_or_else(|| panic!("not a CNI error: {err}"))
}

/// The message of a failed runtime call.
pub fn msg(err: &conformance::Error) -> String {
    err.plugin_error()
        .map(|e| e.msg.clone())
        .unwrap_or_else(|| panic!("not a CNI error: {err}"))
}

/// `ip -o addr show dev DEV` inside `ns`, addresses only, e.g. `["10.1.0.5/24"]` (IPv6
/// link-local left out).
pub fn addrs(ns: &cnm_core::netns::Netns, dev: &str) -> Vec<String> {
    let out = ip(ns, &["-o", "addr", "show", "dev", dev]).unwrap();
    out.lines()
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| !w.starts_with("inet"))
                .nth(1)
        })
        .filter(|a| !a.starts_with("fe80:"))
        .map(str::to_owned)
        .collect()
}

/// Whether `dev` in `ns` is up (administratively).
pub fn is_up(ns: &cnm_core::netns::Netns, dev: &str) -> bool {
    let out = ip(ns, &["-o", "link", "show", "dev", dev]).unwrap();
    out.split('<')
        .nth(1)
        .and_then(|f| f.split('>').next())
        .is_some_and(|flags| flags.split(',').any(|f| f == "UP"))
}
