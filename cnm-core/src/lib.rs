//! cnm-core: Docker libnetwork's Container Network Model in Rust, and the CNI protocol that maps
//! runtimes (containerd/CRI, kubelet, podman, cnitool) onto it.

pub mod netns;
