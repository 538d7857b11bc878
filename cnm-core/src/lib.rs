//! cnm-core: Docker libnetwork's Container Network Model in Rust, and the CNI protocol that maps
//! runtimes (containerd/CRI, kubelet, podman, cnitool) onto it.

pub mod cni;
pub mod error;
pub mod firewall;
pub mod netns;
pub mod plugins;

pub use error::{Error, Result};
