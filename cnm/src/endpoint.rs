//! `cnm endpoint ls [NETWORK]`.

use clap::Subcommand;
use cnm_core::cni::config::NetworkName;
use cnm_core::inventory::{EndpointInfo, PortBinding};

use crate::network::join;
use crate::output::{emit, emit_json};
use crate::table::Table;
use crate::{Global, Outcome};

/// How many characters of a container ID the table shows (as `docker ps`).
const SHORT_ID: usize = 12;

/// What to do with endpoints.
#[derive(Subcommand)]
pub enum Command {
    /// Lists endpoints: network, container ID, interface, MAC, addresses, published ports.
    #[command(visible_alias = "list")]
    Ls {
        /// Only the endpoints of this network.
        network: Option<String>,
    },
}

/// Runs a `cnm endpoint` subcommand.
pub fn run(cmd: &Command, global: &Global) -> Outcome {
    let Command::Ls { network } = cmd;
    let inventory = global.inventory()?;
    let endpoints = match network.as_deref().map(NetworkName::new) {
        None => inventory.endpoints(None)?,
        Some(Ok(name)) => inventory.endpoints(Some(&name))?,
        // A name that is not valid has no endpoints.
        Some(Err(_)) => Vec::new(),
    };
    if global.json {
        return emit_json(&endpoints);
    }
    emit(&table(&endpoints))
}

/// The endpoints as `cnm endpoint ls` prints them: one aligned row each, short container IDs.
pub fn table(endpoints: &[EndpointInfo]) -> String {
    let header = [
        "NETWORK",
        "CONTAINER ID",
        "INTERFACE",
        "MAC",
        "ADDRESSES",
        "PORTS",
    ];
    let mut table = Table::new(&header);
    for e in endpoints {
        table.row(vec![
            e.network.to_string(),
            short_id(e.container_id.as_str()),
            e.ifname.to_string(),
            e.mac.clone().unwrap_or_default(),
            join(&e.addresses),
            published(e).join(", "),
        ]);
    }
    table.render()
}

/// The first characters of a container ID, as tables show it.
pub fn short_id(id: &str) -> String {
    id.chars().take(SHORT_ID).collect()
}

/// The published ports as `docker ps` shows them: one published on every host address is
/// shown once per address family the container has (`0.0.0.0:8080->80/tcp`,
/// `[::]:8080->80/tcp`).
fn published(e: &EndpointInfo) -> Vec<String> {
    let v4 = e.addresses.iter().any(|a| a.addr().is_ipv4());
    let v6 = e.addresses.iter().any(|a| a.addr().is_ipv6());
    let mut shown = Vec::new();
    for p in &e.ports {
        if p.host_ip.is_some() || !v6 {
            shown.push(p.to_string());
            continue;
        }
        if v4 {
            shown.push(p.to_string());
        }
        let any6 = PortBinding {
            host_ip: Some(std::net::Ipv6Addr::UNSPECIFIED.into()),
            ..*p
        };
        shown.push(any6.to_string());
    }
    shown
}
