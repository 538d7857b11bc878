//! CNM drivers: each runs networks of one kind (bridge; host, macvlan and null later) behind
//! the same lifecycle: ensure the network, join an endpoint to a sandbox, leave, check.

pub mod bridge;
pub mod host_device;
pub mod l3;
pub mod macvlan;
pub mod null;
