//! libnetwork's Container Network Model as a library: a [`Controller`] owns [`Network`]s, each
//! run by a [`Driver`](crate::driver::Driver); an [`Endpoint`] is one interface on a network; a
//! [`Sandbox`] is one container's network namespace, and `endpoint.join(&sandbox)` wires the one
//! into the other.
//!
//! ```text
//! Controller ── data_dir: the store (shared with the CNI plugins)
//!     │         run_dir:  netns/<container>        sandbox namespaces (bind mounts)
//!     │                   sandboxes/<container>/   hosts, resolv.conf, hostname
//!     ├── Network "network1" (driver bridge, config = the plugin's CNI configuration)
//!     │      └── Endpoint "Endpoint1" ── join ──▶ Sandbox "container1" (key = netns path)
//!     └── Network ...
//! ```
//! A network lives in the store as the CNI configuration its driver's plugin takes, so a network
//! made by a runtime's CNI ADD is visible here and the other way round; a joined endpoint is
//! the store's endpoint (network, container ID, interface), exactly what a CNI ADD makes.
//! The controller works in the calling thread's network namespace, which is the "host" of
//! every network it makes.

mod controller;
mod endpoint;
mod network;
mod options;
mod sandbox;
mod scratch;

pub use crate::inventory::PortBinding;
pub use controller::{Controller, ControllerConfig, GcReport};
pub use endpoint::{DriverInfo, Endpoint};
pub use network::Network;
pub use options::{EndpointOptions, NetworkOptions, SandboxOptions};
pub use sandbox::Sandbox;
pub use scratch::Scratch;

use std::path::PathBuf;

/// Failures of the model beyond those of the drivers, store and kernel underneath.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A network of that name exists already.
    #[error("network {0} already exists; delete it first or choose another name")]
    NetworkExists(String),
    /// The network is not in the store.
    #[error("no network named {0}")]
    NoNetwork(String),
    /// No default pool is free for a network without a subnet.
    #[error("every default pool (172.18-31.0.0/16, 192.168.0-240.0/20) overlaps a network or route; give the network a subnet")]
    NoFreeSubnet,
    /// The network's driver is not one the library can run.
    #[error("network {network} is run by {driver}, which the library cannot drive")]
    Undrivable { network: String, driver: String },
    /// The network still has endpoints.
    #[error("network {network} still has {count} endpoint(s); delete them first")]
    NetworkInUse { network: String, count: usize },
    /// An endpoint operation that needs a joined endpoint.
    #[error("endpoint {0} is not joined to a sandbox")]
    NotJoined(String),
    /// A join of an endpoint that is joined already.
    #[error("endpoint {endpoint} is already joined to sandbox {container}")]
    AlreadyJoined { endpoint: String, container: String },
    /// A sandbox for the container exists already.
    #[error("a sandbox for container {0} exists already")]
    SandboxExists(String),
    /// A `host` network's endpoint can only join a sandbox in the host's namespace.
    #[error("endpoint {0}: endpoints of host networks join sandboxes made with use_host_namespace, and only they do")]
    HostSandboxOnly(String),
    /// The sandbox has no free interface name.
    #[error("sandbox {0} has no free interface name eth0..eth99")]
    NoInterfaceName(String),
    /// A file or directory of the controller.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ModelError {
    let path = path.to_owned();
    move |source| ModelError::Io { what, path, source }
}

#[cfg(test)]
mod tests;
