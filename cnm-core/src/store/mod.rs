//! The crash-safe store of networks, endpoints, address reservations and firewall-element
//! ownership, shared by concurrent short-lived plugin processes.
//!
//! [`Store`] speaks in domain operations so that a cluster store (etcd) can implement it later;
//! [`SqliteStore`] is the local one: `<dataDir>/cnm.db` (directory 0700), WAL, `busy_timeout`
//! 10 s, and `BEGIN IMMEDIATE` for every write so that writers queue instead of failing.
//!
//! ```text
//! meta               key TEXT PK ─ value TEXT      ("schema_version" = 1, "boot_id")
//! networks           name TEXT PK │ driver │ subnets (JSON list) │ config (JSON)
//! endpoints          (network, container_id, ifname) PK │ state 'creating'|'created' │ data (JSON)
//! addresses          (network, addr) PK │ container_id │ ifname │ set_index
//! cursors            (network, set_index) PK │ last_addr        round-robin position per set
//! firewall_elements  (kind, key) PK │ network │ container_id │ ifname   who owns which nft element
//! ```
//! An endpoint is written as 'creating' with its addresses in one transaction before any host
//! object exists, so DEL and GC can find and undo a half-made endpoint after a crash. After a
//! reboot (the kernel's boot id changed) every namespace is gone, so opening the store drops all
//! endpoints, their addresses and firewall elements; networks and cursors stay.

mod lock;
mod sqlite;

pub use lock::NetworkLock;
pub use sqlite::{allocate_through_rust, SqliteStore};

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::cni::config::{NetworkName, RequestedIp};
use crate::cni::env::{ContainerId, IfName};
use crate::ipam::{AllocError, RangeSetPlan};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's directory could not be created or used.
    #[error("store directory {path}: {what}")]
    Dir {
        path: String,
        what: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// SQLite failed while doing `doing`.
    #[error("store: {doing}: {source}")]
    Sqlite {
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer cnm.
    #[error("store schema version {found} is newer than this cnm understands ({supported}); upgrade cnm")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A row does not decode (hand-edited or corrupt database).
    #[error("store row is corrupt: {what}")]
    Corrupt { what: String },
    /// The network exists with another address plan or driver.
    #[error("network {name} already exists with {what} {existing}; this config says {wanted}")]
    NetworkConflict {
        name: String,
        what: &'static str,
        existing: String,
        wanted: String,
    },
    /// No address could be allocated.
    #[error("allocating an address on network {network}: {source}")]
    Alloc {
        network: String,
        #[source]
        source: AllocError,
    },
    /// `create_network` of a name that exists.
    #[error("network {0} already exists")]
    NetworkExists(String),
    /// `create_network` with a subnet that overlaps another network's.
    #[error("subnet {subnet} overlaps {existing} of network {network}; choose another subnet")]
    SubnetTaken {
        subnet: IpNet,
        network: String,
        existing: IpNet,
    },
    /// A firewall element (a published port) is owned by another endpoint.
    #[error("{} {} is already taken by endpoint {owner}", element.kind, element.key)]
    ElementTaken {
        element: FirewallElement,
        owner: String,
    },
    /// The endpoint to update is not in the store (a DEL ran in between).
    #[error("endpoint {0} is not in the store; it was deleted while being created")]
    EndpointMissing(EndpointKey),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// One endpoint's identity: (network, container ID, interface name), each already validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    /// The network's name.
    pub network: NetworkName,
    /// The container.
    pub container_id: ContainerId,
    /// The interface inside the container.
    pub ifname: IfName,
}

impl std::fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.network, self.container_id, self.ifname)
    }
}

/// A network as stored: its driver, its address plan's subnets, and its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRecord {
    /// The network's name.
    pub name: NetworkName,
    /// The driver (or plugin) that runs it.
    pub driver: String,
    /// Every range's subnet, in config order: the address identity of the network.
    pub subnets: Vec<IpNet>,
    /// The latest configuration that used it.
    pub config: Value,
}

/// Lifecycle of an endpoint in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    /// Reserved; host objects may be partly made.
    Creating,
    /// ADD finished.
    Created,
}

/// One reserved address and the range set it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedAddress {
    /// Index of the range set in the config.
    pub set_index: usize,
    /// The address.
    pub addr: IpAddr,
}

/// One nftables element owned by an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FirewallElement {
    /// What it is (e.g. `masquerade`, `portmap`).
    pub kind: String,
    /// Its key in its set or map.
    pub key: String,
}

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRecord {
    /// Its identity.
    pub key: EndpointKey,
    /// Creating or created.
    pub state: EndpointState,
    /// Addresses, by set index.
    pub addresses: Vec<ReservedAddress>,
    /// Firewall elements it owns.
    pub firewall: Vec<FirewallElement>,
    /// What the driver recorded at commit (host interface names, ...); null until then.
    pub data: Value,
}

/// What [`Store::reserve_endpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The endpoint's addresses, by set index.
    pub addresses: Vec<ReservedAddress>,
    /// The endpoint already existed (a repeated ADD); nothing new was reserved.
    pub existing: bool,
}

/// The store's operations; every write is one atomic transaction.
pub trait Store {
    /// Creates a network that does not exist yet and whose subnets overlap no other network's,
    /// in one transaction (the library's `new_network`; a CNI ADD ensures its network instead,
    /// and may share subnets as the reference plugins allow).
    fn create_network(&mut self, network: &NetworkRecord) -> StoreResult<()>;
    /// Ensures the network, then returns the endpoint's addresses, reserving one per set
    /// (honouring `requested`) and recording it as creating if it did not exist.
    fn reserve_endpoint(
        &mut self,
        network: &NetworkRecord,
        key: &EndpointKey,
        sets: &[RangeSetPlan],
        requested: &[RequestedIp],
    ) -> StoreResult<Reservation>;
    /// Stores the driver's `data` on an endpoint still being created: what DEL and GC need to
    /// repair a crash in the middle of ADD (e.g. a host device's original name and addresses,
    /// written before the device is moved).
    fn note_endpoint(&mut self, key: &EndpointKey, data: &Value) -> StoreResult<()>;
    /// Marks the endpoint created and stores the driver's `data`.
    fn commit_endpoint(&mut self, key: &EndpointKey, data: &Value) -> StoreResult<()>;
    /// Records firewall elements as owned by the endpoint; one owned by another endpoint fails
    /// the whole call with [`StoreError::ElementTaken`], one it owns already is kept.
    fn add_firewall_elements(
        &mut self,
        key: &EndpointKey,
        elements: &[FirewallElement],
    ) -> StoreResult<()>;
    /// Removes the endpoint with its addresses and firewall elements; `None` if it was not there.
    fn release_endpoint(&mut self, key: &EndpointKey) -> StoreResult<Option<EndpointRecord>>;
    /// The endpoint, if stored.
    fn endpoint(&self, key: &EndpointKey) -> StoreResult<Option<EndpointRecord>>;
    /// All endpoints, or those of one network.
    fn endpoints(&self, network: Option<&NetworkName>) -> StoreResult<Vec<EndpointRecord>>;
    /// The endpoints of one container, on any network (reading no other endpoint's record).
    fn container_endpoints(&self, container: &ContainerId) -> StoreResult<Vec<EndpointRecord>>;
    /// All networks.
    fn networks(&self) -> StoreResult<Vec<NetworkRecord>>;
    /// The network called `name`, if stored (one indexed lookup).
    fn network(&self, name: &NetworkName) -> StoreResult<Option<NetworkRecord>>;
    /// Adds subnets that a delegated IPAM handed out to the network's record, so that its
    /// teardown knows them even after every endpoint record is gone.
    fn learn_subnets(&mut self, network: &NetworkName, subnets: &[IpNet]) -> StoreResult<()>;
    /// Whether any endpoint of the network but `besides` is stored (one indexed lookup, whatever
    /// their number).
    fn network_in_use(
        &self,
        name: &NetworkName,
        besides: Option<&EndpointKey>,
    ) -> StoreResult<bool>;
    /// Removes the network if no endpoint uses it; whether it was removed.
    fn remove_network_if_unused(&mut self, name: &NetworkName) -> StoreResult<bool>;
    /// Removes every endpoint of `network` not in `keep`; returns what was removed.
    fn gc(
        &mut self,
        network: &NetworkName,
        keep: &[(ContainerId, IfName)],
    ) -> StoreResult<Vec<EndpointRecord>>;
}

#[cfg(test)]
mod tests;
