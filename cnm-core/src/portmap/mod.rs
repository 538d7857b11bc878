//! Published ports (`runtimeConfig.portMappings`), one implementation for `cnm-bridge`'s native
//! capability and for the chainable `cnm-portmap` plugin.
//!
//! A container's mappings become elements of cnm's table (see `firewall/mod.rs`): one map
//! element per (host address or any, protocol, host port) whose data is the container's address
//! and port, plus one hairpin element (container address . bridge). ADD records every element
//! as owned by the endpoint in the store first — an element owned by another endpoint is a
//! conflict (code 104), refused before any kernel change — then adds them all in one batch.
//! DEL removes exactly the recorded elements in one batch, also without the netns, and twice.

pub mod plugin;

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::cni::config::{ConfigError, PortMapping, Protocol};
use crate::cni::result::IpConfig;
use crate::error::Result;
use crate::firewall::{FirewallError, LazyNft, Nft, PortMapElement, PortMapKey};
use crate::store::{EndpointKey, EndpointRecord, FirewallElement, Store};

/// The store's `kind` of port-mapping elements.
pub const KIND: &str = "portmap";

/// Failures of port mapping beyond configuration, firewall and store errors.
#[derive(Debug, thiserror::Error)]
pub enum PortMapError {
    /// Writing a sysctl (`route_localnet`) failed.
    #[error("set {path} to 1 for localhost port mapping: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// CHECK found a mapping missing.
    #[error("published port {0} is missing from cnm's nftables table or store")]
    Missing(String),
}

/// What one container publishes: the elements and the host-side interface they go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The table elements.
    pub elements: Vec<PortMapElement>,
    /// The host-side interface (bridge) of the container, if known.
    pub bridge: Option<String>,
}

/// Validates `mappings` against the container's addresses into table elements; every error
/// names the entry (`runtimeConfig.portMappings[i]`) and happens before any side effect.
pub fn plan(mappings: &[PortMapping], ips: &[IpConfig], bridge: Option<&str>) -> Result<Published> {
    let first = |v6: bool| {
        ips.iter()
            .map(|ip| ip.address.addr())
            .find(|a| a.is_ipv6() == v6)
    };
    let mut elements: Vec<PortMapElement> = Vec::new();
    let mut seen: HashMap<PortMapKey, usize> = HashMap::new();
    for (i, m) in mappings.iter().enumerate() {
        let field = format!("runtimeConfig.portMappings[{i}]");
        let families: Vec<bool> = match m.host_ip {
            Some(ip) => vec![ip.is_ipv6()],
            None => [false, true]
                .into_iter()
                .filter(|&v6| first(v6).is_some())
                .collect(),
        };
        if families.is_empty() {
            return Err(ConfigError::invalid(field, "the container has no IP address").into());
        }
        for v6 in families {
            let Some(dest) = first(v6) else {
                let why = format!(
                    "hostIP {} is IPv{} but the container has no IPv{} address",
                    m.host_ip.expect("only a hostIP picks a missing family"),
                    if v6 { 6 } else { 4 },
                    if v6 { 6 } else { 4 },
                );
                return Err(ConfigError::invalid(format!("{field}.hostIP"), why).into());
            };
            let key = PortMapKey::Port {
                host_ip: m.host_ip,
                v6,
                protocol: m.protocol,
                host_port: m.host_port,
            };
            let target = Some(SocketAddr::new(dest, m.container_port));
            if let Some(&j) = seen.get(&key) {
                if elements[j].target != target {
                    let why = format!("publishes {key} again, to another port than entry before");
                    return Err(ConfigError::invalid(field, why).into());
                }
                continue;
            }
            seen.insert(key.clone(), elements.len());
            elements.push(PortMapElement { key, target });
        }
    }
    if let (Some(bridge), false) = (bridge, elements.is_empty()) {
        for v6 in [false, true] {
            if let Some(addr) = first(v6) {
                let key = PortMapKey::Hairpin {
                    addr,
                    bridge: bridge.to_owned(),
                };
                elements.push(PortMapElement { key, target: None });
            }
        }
    }
    Ok(Published {
        elements,
        bridge: bridge.map(str::to_owned),
    })
}

fn owned(p: &Published) -> Vec<FirewallElement> {
    p.elements
        .iter()
        .map(|e| FirewallElement {
            kind: KIND.into(),
            key: e.key.to_string(),
        })
        .collect()
}

/// ADD: records the elements as the endpoint's (refusing another endpoint's), then adds them
/// in one batch through `nft`, whose table the caller has ensured (ADD already holds that
/// socket: no second one on the hot path). The caller's rollback releasing the endpoint also
/// releases the records.
pub fn publish(
    store: &mut impl Store,
    nft: &mut Nft,
    key: &EndpointKey,
    p: &Published,
) -> Result<()> {
    if p.elements.is_empty() {
        return Ok(());
    }
    store.add_firewall_elements(key, &owned(p))?;
    let v4 = p
        .elements
        .iter()
        .any(|e| matches!(e.key, PortMapKey::Port { v6: false, .. }));
    if let (Some(bridge), true) = (&p.bridge, v4) {
        // Packets from 127.0.0.1 may then be routed out of the bridge (and answered).
        enable_route_localnet(bridge)?;
    }
    nft.update_port_maps(&p.elements, &[])?;
    flush_udp(nft, p.elements.iter().map(|e| &e.key))
}

/// DEL and GC: removes the port-mapping elements the store records for `rec`, in one batch,
/// through `nft` (opened only if there is something to remove, and left open: see
/// [`LazyNft`]); elements or a table already gone are success.
pub fn unpublish(nft: &mut LazyNft, rec: &EndpointRecord) -> Result<()> {
    let keys: Vec<PortMapKey> = rec
        .firewall
        .iter()
        .filter(|e| e.kind == KIND)
        .filter_map(|e| PortMapKey::parse(&e.key))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let nft = nft.get()?;
    match nft.update_port_maps(&[], &keys) {
        Ok(()) | Err(FirewallError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    flush_udp(nft, keys.iter())
}

/// Removes what [`publish`] added (a rollback after a later step of ADD failed).
pub fn withdraw(p: &Published) -> Result<()> {
    let keys: Vec<PortMapKey> = p.elements.iter().map(|e| e.key.clone()).collect();
    if keys.is_empty() {
        return Ok(());
    }
    Nft::new()?.update_port_maps(&[], &keys)?;
    Ok(())
}

/// CHECK: every element of `p` is recorded as this endpoint's and present in the table.
pub fn verify(store: &impl Store, key: &EndpointKey, p: &Published) -> Result<()> {
    let rec = store.endpoint(key)?;
    let recorded = rec
        .as_ref()
        .map(|r| r.firewall.as_slice())
        .unwrap_or_default();
    let mut nft = Nft::new()?;
    for (e, o) in p.elements.iter().zip(owned(p)) {
        if !recorded.contains(&o) || !nft.has_port_map_element(e)? {
            return Err(PortMapError::Missing(e.key.to_string()).into());
        }
    }
    Ok(())
}

/// UDP has no end: flush conntrack entries of the published UDP ports, so that flows do not
/// stick to a removed container's address (and a re-created one receives them).
fn flush_udp<'a>(nft: &mut Nft, keys: impl Iterator<Item = &'a PortMapKey>) -> Result<()> {
    for k in keys {
        if let PortMapKey::Port {
            v6,
            protocol: Protocol::Udp,
            host_port,
            ..
        } = k
        {
            nft.flush_conntrack(*v6, Protocol::Udp, *host_port)?;
        }
    }
    Ok(())
}

fn enable_route_localnet(bridge: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    if std::fs::read(&path).is_ok_and(|v| v.starts_with(b"1")) {
        return Ok(());
    }
    std::fs::write(&path, b"1").map_err(|source| PortMapError::Sysctl { path, source })?;
    Ok(())
}

#[cfg(test)]
mod tests;
