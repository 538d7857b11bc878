//! cnm-core: Docker libnetwork's Container Network Model in Rust, and the CNI protocol that maps
//! runtimes (containerd/CRI, kubelet, podman, cnitool) onto it.

pub mod alloc;
pub mod cni;
pub mod driver;
pub mod error;
pub mod fault;
pub mod firewall;
pub mod inventory;
pub mod ipam;
pub mod log;
pub mod model;
pub mod namespace;
pub mod netlink;
pub mod netns;
pub mod plugins;
pub mod portmap;
pub mod random;
pub mod rollback;
pub mod store;

pub use error::{Error, Result};
