//! The CNI plugins that cnm ships, each mapping the protocol onto the model. The binaries in
//! `plugins/` are one line around these.

pub mod bridge;
pub mod common;
pub mod host;
pub mod ipam;
pub mod macvlan;
pub mod null;
