//! The bridge driver: a Linux bridge per network, a veth pair per endpoint.

pub mod plan;

pub use plan::{BridgeConfig, BridgePlan, Masquerade, Reach};
