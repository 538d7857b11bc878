//! The controller: the drivers, the store, and where sandboxes live.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::network::Network;
use super::sandbox::Sandbox;
use super::{ModelError, NetworkOptions, SandboxOptions};
use crate::cni::config::NetworkName;
use crate::cni::env::{ContainerId, IfName, Target};
use crate::cni::SpecVersion;
use crate::driver::{self, Driver, NetworkConfig};
use crate::error::{Error, Result};
use crate::ipam::config::DEFAULT_DATA_DIR;
use crate::ipam::IpamPlan;
use crate::netlink::{Handle, IpFamily};
use crate::netns::{Netns, NetnsError};
use crate::store::{EndpointKey, EndpointState, NetworkRecord, SqliteStore, Store, StoreError};

/// Where the controller keeps its state.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The store, shared with the CNI plugins (default `/var/lib/cni/cnm`).
    pub data_dir: PathBuf,
    /// Sandbox namespaces and files (default `/run/cnm`).
    pub run_dir: PathBuf,
    /// Where plugins a driver delegates to are found (an IPAM other than `cnm-ipam`).
    pub cni_path: Vec<PathBuf>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            run_dir: PathBuf::from("/run/cnm"),
            cni_path: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
        }
    }
}

impl ControllerConfig {
    /// Everything under one directory (`<dir>/data`, `<dir>/run`): for programs and tests that
    /// keep their own state apart.
    pub fn under(dir: &Path) -> Self {
        ControllerConfig {
            data_dir: dir.join("data"),
            run_dir: dir.join("run"),
            ..ControllerConfig::default()
        }
    }
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) config: ControllerConfig,
    drivers: Vec<Arc<dyn Driver>>,
    /// `configure_network_driver`: options every new network of a driver starts from.
    driver_options: Mutex<HashMap<&'static str, Map<String, Value>>>,
}

/// libnetwork's `NetworkController`: makes and finds networks and sandboxes.
#[derive(Debug, Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

/// What [`Controller::gc`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Endpoints whose container is gone, now deleted.
    pub removed: Vec<EndpointKey>,
    /// Endpoints whose container is alive.
    pub kept: usize,
    /// Endpoints left alone, with the reason (an ADD in progress, a network the library
    /// cannot drive).
    pub skipped: Vec<(EndpointKey, String)>,
}

impl Controller {
    /// A controller over the store in `config.data_dir`, with cnm's drivers.
    pub fn new(config: ControllerConfig) -> Result<Self> {
        let mut drivers = driver::builtin(&config.cni_path);
        drivers.push(Arc::new(driver::host::HostDriver));
        // Opening creates the store, so that a bad data_dir fails here and not later.
        SqliteStore::open(&config.data_dir)?;
        Ok(Controller {
            inner: Arc::new(Inner {
                config,
                drivers,
                driver_options: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub(super) fn from_inner(inner: Arc<Inner>) -> Self {
        Controller { inner }
    }

    /// The controller's configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.inner.config
    }

    /// The driver called `name` (library name, or its plugin's `type`).
    pub fn driver(&self, name: &str) -> Result<Arc<dyn Driver>> {
        let drivers = &self.inner.drivers;
        drivers
            .iter()
            .find(|d| d.name() == name || d.plugin() == name)
            .cloned()
            .ok_or_else(|| driver::unknown(name, drivers))
    }

    /// Sets options that every network of `driver` made from now on starts from (libnetwork's
    /// `ConfigureNetworkDriver`); a network's own options win.
    pub fn configure_network_driver(
        &self,
        driver: &str,
        options: Map<String, Value>,
    ) -> Result<()> {
        let d = self.driver(driver)?;
        self.inner
            .driver_options
            .lock()
            .expect("no panic while holding the lock")
            .insert(d.name(), options);
        Ok(())
    }

    pub(super) fn store(&self) -> Result<SqliteStore> {
        Ok(SqliteStore::open(&self.inner.config.data_dir)?)
    }

    /// Creates a network run by `driver` (libnetwork's `NewNetwork`). The driver checks the
    /// options now; the host changes when the first endpoint joins.
    pub fn new_network(
        &self,
        driver: &str,
        name: &str,
        options: NetworkOptions,
    ) -> Result<Network> {
        let driver = self.driver(driver)?;
        let name = NetworkName::new(name)?;
        let mut store = self.store()?;
        // The store checks name and subnets again in the transaction that creates the network;
        // a free subnet picked here may be taken by a concurrent creator first: pick again.
        let mut attempts = 0;
        let (config, subnets) = loop {
            attempts += 1;
            let existing = store.networks()?;
            if existing.iter().any(|n| n.name == name) {
                return Err(ModelError::NetworkExists(name.to_string()).into());
            }
            let picked = options.ipv4.is_none() && needs_subnet(driver.plugin());
            let ipv4 = if picked {
                Some(free_subnet(&existing)?)
            } else {
                options.ipv4
            };
            let config = self.network_config(driver.as_ref(), &name, ipv4, &options);
            driver.validate(&config)?;
            let subnets = match config.as_map().get("ipam") {
                Some(Value::Object(ipam)) => IpamPlan::parse(ipam)?.subnets(),
                _ => Vec::new(),
            };
            let created = store.create_network(&NetworkRecord {
                name: name.clone(),
                driver: driver.plugin().to_owned(),
                subnets: subnets.clone(),
                config: Value::Object(config.as_map().clone()),
            });
            match created {
                Ok(()) => break (config, subnets),
                Err(StoreError::SubnetTaken { .. }) if picked && attempts < 5 => continue,
                Err(StoreError::NetworkExists(n)) => {
                    return Err(ModelError::NetworkExists(n).into())
                }
                Err(e) => return Err(e.into()),
            }
        };
        tracing::info!("created network {name} ({})", driver.name());
        Ok(Network::new(
            self.inner.clone(),
            name,
            driver,
            config,
            subnets,
        ))
    }

    /// The configuration a library network of `driver` gets: the plugin's keys with the
    /// library's defaults (libnetwork's bridge: gateway, default route, masquerade, hairpin
    /// for published ports), then the driver's configured options, then the network's.
    fn network_config(
        &self,
        driver: &dyn Driver,
        name: &NetworkName,
        ipv4: Option<IpNet>,
        options: &NetworkOptions,
    ) -> NetworkConfig {
        let data_dir = self.inner.config.data_dir.display().to_string();
        let mut conf = Map::new();
        conf.insert("cniVersion".into(), json!(SpecVersion::LATEST));
        conf.insert("name".into(), json!(name.as_str()));
        conf.insert("type".into(), json!(driver.plugin()));
        if driver.plugin() != "cnm-null" && driver.plugin() != driver::host::PLUGIN {
            conf.insert("dataDir".into(), json!(data_dir));
        }
        let ranges: Vec<Value> = [ipv4, options.ipv6]
            .into_iter()
            .flatten()
            .map(|subnet| json!([{ "subnet": subnet.to_string() }]))
            .collect();
        if !ranges.is_empty() {
            conf.insert(
                "ipam".into(),
                json!({"type": "cnm-ipam", "ranges": ranges, "dataDir": data_dir}),
            );
        }
        if driver.plugin() == "cnm-bridge" {
            let defaults = json!({
                "bridge": bridge_name(name),
                "isGateway": true,
                "isDefaultGateway": !options.internal,
                "ipMasq": !options.internal,
                "hairpinMode": true,
                "internal": options.internal,
            });
            conf.extend(defaults.as_object().expect("an object").clone());
        }
        let configured = self.inner.driver_options.lock().expect("not poisoned");
        if let Some(o) = configured.get(driver.name()) {
            conf.extend(o.clone());
        }
        conf.extend(options.driver_options.clone());
        NetworkConfig::new(conf)
    }

    /// The network called `name`, whether the library or a runtime's CNI ADD made it.
    pub fn network(&self, name: &str) -> Result<Network> {
        let name = NetworkName::new(name)?;
        let record = self
            .store()?
            .networks()?
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| ModelError::NoNetwork(name.to_string()))?;
        self.network_of(record)
    }

    fn network_of(&self, record: NetworkRecord) -> Result<Network> {
        let undrivable = || ModelError::Undrivable {
            network: record.name.to_string(),
            driver: record.driver.clone(),
        };
        let driver = self.driver(&record.driver).map_err(|_| undrivable())?;
        let Value::Object(config) = record.config else {
            return Err(undrivable().into());
        };
        Ok(Network::new(
            self.inner.clone(),
            record.name,
            driver,
            NetworkConfig::new(config),
            record.subnets,
        ))
    }

    /// Every network the library can drive (those of other plugins, such as a standalone
    /// `cnm-ipam`, are left out).
    pub fn networks(&self) -> Result<Vec<Network>> {
        Ok(self
            .store()?
            .networks()?
            .into_iter()
            .filter_map(|r| self.network_of(r).ok())
            .collect())
    }

    /// Creates the sandbox of a container: a new network namespace (or the host's, with
    /// `use_host_namespace`) and its hosts and resolv.conf files (libnetwork's `NewSandbox`).
    pub fn new_sandbox(&self, container_id: &str, options: SandboxOptions) -> Result<Sandbox> {
        let id = ContainerId::new(container_id)?;
        Sandbox::create(&self.inner, id, options)
    }

    /// The sandbox of a container, if it exists.
    pub fn sandbox(&self, container_id: &str) -> Result<Option<Sandbox>> {
        Sandbox::open(&self.inner, ContainerId::new(container_id)?)
    }

    /// Every sandbox.
    pub fn sandboxes(&self) -> Result<Vec<Sandbox>> {
        let dir = self.inner.config.run_dir.join("sandboxes");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(super::io_err("list", &dir)(e).into()),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|s| ContainerId::new(s).ok()) else {
                continue;
            };
            out.extend(Sandbox::open(&self.inner, id)?);
        }
        Ok(out)
    }

    /// The endpoints of `container` in the store, with their networks.
    pub(super) fn attachments_of(&self, container: &ContainerId) -> Result<Vec<(Network, Target)>> {
        let store = self.store()?;
        let mut out = Vec::new();
        for rec in store.container_endpoints(container)? {
            // Records of plugins the library cannot drive (a chained cnm-portmap, a standalone
            // cnm-ipam) are theirs to delete, by their runtime's DEL or GC.
            let network = match self.network(rec.key.network.as_str()) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("leaving {} alone: {e}", rec.key);
                    continue;
                }
            };
            let target = Target {
                container_id: rec.key.container_id,
                ifname: rec.key.ifname,
            };
            out.push((network, target));
        }
        Ok(out)
    }

    /// Whether a sandbox other than `container`'s uses the host's namespace.
    pub(super) fn other_host_sandbox(&self, container: &ContainerId) -> Result<bool> {
        Ok(self
            .sandboxes()?
            .iter()
            .any(|s| s.is_host() && s.container_id() != container))
    }

    /// Deletes every endpoint whose container's namespace is gone (a runtime that crashed, a
    /// container removed without DEL): what `cnm gc` does.
    pub fn gc(&self) -> Result<GcReport> {
        let store = self.store()?;
        let mut report = GcReport::default();
        for rec in store.endpoints(None)? {
            let network = match self.network(rec.key.network.as_str()) {
                Ok(n) => n,
                Err(e) => {
                    report.skipped.push((rec.key, e.to_string()));
                    continue;
                }
            };
            let info = crate::inventory::EndpointInfo::from_record(&rec);
            let Some(sandbox) = info.sandbox.filter(|_| rec.state == EndpointState::Created) else {
                report
                    .skipped
                    .push((rec.key, "its ADD has not finished".into()));
                continue;
            };
            match Netns::open(&sandbox) {
                Ok(_) => {
                    report.kept += 1;
                    continue;
                }
                // Gone, or something else mounted there: the container is no more.
                Err(NetnsError::NotFound { .. } | NetnsError::NotNetns { .. }) => {}
                // Any other failure says nothing about the container: leave it.
                Err(e) => {
                    report
                        .skipped
                        .push((rec.key, format!("its namespace: {e}")));
                    continue;
                }
            }
            let target = Target {
                container_id: rec.key.container_id.clone(),
                ifname: rec.key.ifname.clone(),
            };
            // One endpoint that cannot be removed does not stop the others.
            if let Err(e) = network.leave(&target, None) {
                report
                    .skipped
                    .push((rec.key, format!("removing it failed: {e}")));
                continue;
            }
            tracing::info!("gc: removed {} (namespace {sandbox} is gone)", rec.key);
            report.removed.push(rec.key);
        }
        Ok(report)
    }
}

/// Drivers whose endpoints always get addresses: a network without a subnet gets a free one.
fn needs_subnet(plugin: &str) -> bool {
    matches!(plugin, "cnm-bridge" | "cnm-macvlan")
}

/// The bridge of a library network: `br-` and 12 hex digits of its name (as Docker names the
/// bridges of user networks), within Linux's 15 bytes.
fn bridge_name(network: &NetworkName) -> String {
    let name = format!("br-{}", crate::driver::bridge::hash_hex12(network.as_str()));
    debug_assert!(IfName::new(&name).is_ok());
    name
}

/// The first of libnetwork's default pools (172.18–31.0.0/16, then 192.168.N.0/20) that no
/// stored network and no route of the host's namespace overlaps.
fn free_subnet(networks: &[NetworkRecord]) -> Result<IpNet> {
    let mut taken: Vec<IpNet> = networks.iter().flat_map(|n| n.subnets.clone()).collect();
    let mut host = Handle::new().map_err(Error::Netlink)?;
    for r in host.routes(IpFamily::V4).map_err(Error::Netlink)? {
        if r.dst.prefix_len() > 0 {
            taken.push(r.dst);
        }
    }
    let candidates = (18..=31)
        .map(|b| format!("172.{b}.0.0/16"))
        .chain((0..16).map(|n| format!("192.168.{}.0/20", n * 16)));
    for c in candidates {
        let net: IpNet = c.parse().expect("a literal subnet");
        if !taken.iter().any(|t| crate::ipam::overlaps(t, &net)) {
            return Ok(net);
        }
    }
    Err(ModelError::NoFreeSubnet.into())
}
