//! `cnm-portmap`: a chained plugin, drop-in for the reference `portmap` after any plugin that
//! returns the container's addresses in `prevResult`. ADD publishes and echoes `prevResult`.
//!
//! Its endpoints are recorded in cnm's store under the network `<name>.portmap`, so that a
//! `cnm-bridge` before it in the same list (same store) keeps its own record, while both share
//! the ownership of published ports: a port published by either is refused to the other.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use super::{plan, publish, unpublish, verify, Published};
use crate::cni::config::{ConfigError, GcAttachment, NetworkName};
use crate::cni::env::Target;
use crate::cni::result::CniResult;
use crate::cni::{Attach, Call, Detach, Plugin};
use crate::error::Result;
use crate::firewall::{LazyNft, Nft};
use crate::inventory::{PortBinding, PORT_MAPPINGS_KEY};
use crate::ipam::config::DEFAULT_DATA_DIR;
use crate::netlink::Handle;
use crate::store::{EndpointKey, NetworkRecord, SqliteStore, Store};

/// The `cnm-portmap` plugin.
#[derive(Debug, Default)]
pub struct PortMapPlugin;

/// `cnm-portmap`'s own keys; the reference portmap's (`snat`, `masqAll`, `markMasqBit`,
/// `conditionsV4`, ...) are accepted and ignored: cnm's table decides masquerading itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapConfig {
    /// Where cnm's store lives (default `/var/lib/cni/cnm`, shared with `cnm-bridge`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

type PmCall<'a> = Call<'a, PortMapConfig>;

fn store(call: &PmCall<'_>) -> Result<SqliteStore> {
    let dir = call.conf.plugin.data_dir.clone();
    Ok(SqliteStore::open(
        &dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    )?)
}

fn network(call: &PmCall<'_>) -> Result<NetworkName> {
    Ok(NetworkName::new(&format!("{}.portmap", call.conf.name))?)
}

fn key(call: &PmCall<'_>, target: &Target) -> Result<EndpointKey> {
    Ok(EndpointKey {
        network: network(call)?,
        container_id: target.container_id.clone(),
        ifname: target.ifname.clone(),
    })
}

fn prev<'c>(call: &'c PmCall<'_>) -> Result<&'c CniResult> {
    let why = "cnm-portmap is a chained plugin: it needs the container's addresses in prevResult";
    Ok(call
        .conf
        .prev_result
        .as_ref()
        .ok_or_else(|| ConfigError::invalid("prevResult", why))?)
}

/// The host-side interface the container is reached through: a bridge in `prevResult`, the
/// bridge a host veth is attached to, or the host veth itself (point-to-point).
fn host_side(prev: &CniResult) -> Option<String> {
    let mut h = Handle::new().ok()?;
    let mut fallback = None;
    for iface in prev.interfaces.iter().filter(|i| i.sandbox.is_none()) {
        let Ok(Some(link)) = h.link_by_name(&iface.name) else {
            continue;
        };
        if link.kind.as_deref() == Some("bridge") {
            return Some(link.name);
        }
        if let Some(Ok(Some(master))) = link.master.map(|m| h.link_by_index(m)) {
            return Some(master.name);
        }
        fallback.get_or_insert(link.name);
    }
    fallback
}

fn published(call: &PmCall<'_>) -> Result<Published> {
    let prev = prev(call)?;
    let mappings = &call.conf.runtime_config.port_mappings;
    let bridge = if mappings.is_empty() {
        None
    } else {
        host_side(prev)
    };
    plan(mappings, &prev.ips, bridge.as_deref())
}

impl Plugin for PortMapPlugin {
    type Config = PortMapConfig;
    const NAME: &'static str = "cnm-portmap";

    fn add(&self, call: &PmCall<'_>, at: &Attach<'_>) -> Result<CniResult> {
        let p = published(call)?;
        let result = prev(call)?.clone();
        if p.elements.is_empty() {
            return Ok(result);
        }
        let key = key(call, at.target)?;
        let mut store = store(call)?;
        let record = NetworkRecord {
            name: key.network.clone(),
            driver: Self::NAME.into(),
            subnets: Vec::new(),
            config: json!({}),
        };
        store.reserve_endpoint(&record, &key, &[], &[])?;
        let published = Nft::new()
            .and_then(|mut nft| nft.ensure_table().map(|()| nft))
            .map_err(crate::Error::from)
            .and_then(|mut nft| publish(&mut store, &mut nft, &key, &p));
        if let Err(e) = published {
            // Nothing of this ADD stays: the batch was all or nothing, the records go here.
            if let Ok(Some(rec)) = store.release_endpoint(&key) {
                let _ = unpublish(&mut LazyNft::default(), &rec);
            }
            return Err(e);
        }
        // The published ports, for the inventory (the store's elements know only the host side).
        let ports = PortBinding::list(&call.conf.runtime_config.port_mappings);
        store.commit_endpoint(&key, &json!({ PORT_MAPPINGS_KEY: ports }))?;
        Ok(result)
    }

    fn check(&self, call: &PmCall<'_>, at: &Attach<'_>) -> Result<()> {
        let p = published(call)?;
        if p.elements.is_empty() {
            return Ok(());
        }
        verify(&store(call)?, &key(call, at.target)?, &p)
    }

    fn del(&self, call: &PmCall<'_>, at: &Detach<'_>) -> Result<()> {
        let key = key(call, at.target)?;
        let mut store = store(call)?;
        if let Some(rec) = store.endpoint(&key)? {
            unpublish(&mut LazyNft::default(), &rec)?;
            store.release_endpoint(&key)?;
        }
        store.remove_network_if_unused(&key.network)?;
        Ok(())
    }

    fn status(&self, call: &PmCall<'_>) -> Result<()> {
        store(call)?;
        Ok(())
    }

    fn gc(&self, call: &PmCall<'_>, valid: &[GcAttachment]) -> Result<()> {
        let mut store = store(call)?;
        let network = network(call)?;
        let mut nft = LazyNft::default();
        for rec in store.gc(&network, &GcAttachment::keys(valid))? {
            unpublish(&mut nft, &rec)?;
        }
        store.remove_network_if_unused(&network)?;
        Ok(())
    }
}
