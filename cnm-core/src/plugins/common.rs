//! Orchestration shared by cnm's plugins (`cnm-bridge`, `cnm-macvlan`, `cnm-host`): where
//! addresses come from (in-process `cnm-ipam` or a delegated IPAM), where the store lives, the
//! endpoint key, acquiring addresses under a rollback guard, releasing them, STATUS and GC over
//! the store.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::cni::config::{GcAttachment, NetConf};
use crate::cni::env::Target;
use crate::cni::result::{Dns, Interface, IpConfig, Route};
use crate::cni::{Call, CniResult};
use crate::error::Result;
use crate::ipam::config::DEFAULT_DATA_DIR;
use crate::ipam::{IpamPlan, RangeSetPlan};
use crate::plugins::ipam::{ip_config, IpamPluginError};
use crate::rollback::Rollback;
use crate::store::{EndpointKey, EndpointRecord, EndpointState, Reservation, SqliteStore, Store};

/// Where addresses come from.
#[derive(Debug)]
pub enum Ipam {
    /// `cnm-ipam`, in this process and in the same store transaction as the endpoint.
    Local(IpamPlan),
    /// Any other IPAM plugin, executed from `CNI_PATH`.
    Delegated(String),
    /// No `ipam` section: a layer-2 only attachment.
    None,
}

impl Ipam {
    /// The IPAM of a configuration.
    pub fn from_conf<C>(conf: &NetConf<C>) -> Result<Self> {
        Ok(match &conf.ipam {
            None => Ipam::None,
            Some(i) if i.plugin_type == "cnm-ipam" => Ipam::Local(IpamPlan::parse(&i.raw)?),
            Some(i) => Ipam::Delegated(i.plugin_type.clone()),
        })
    }

    /// The range sets to reserve in, one address each (none unless local).
    pub fn sets(&self) -> &[RangeSetPlan] {
        match self {
            Ipam::Local(p) => &p.sets,
            _ => &[],
        }
    }

    /// The subnets the network is known by in the store (none unless local).
    pub fn subnets(&self) -> Vec<IpNet> {
        match self {
            Ipam::Local(p) => p.subnets(),
            _ => Vec::new(),
        }
    }

    /// The store's directory: the plugin's `dataDir`, else cnm-ipam's, else the default.
    pub fn store_dir(&self, data_dir: Option<&Path>) -> PathBuf {
        match (data_dir, self) {
            (Some(dir), _) => dir.to_owned(),
            (None, Ipam::Local(p)) => p.data_dir.clone(),
            (None, _) => PathBuf::from(DEFAULT_DATA_DIR),
        }
    }
}

/// The undo step that releases an endpoint's reservation (and its addresses) after a failure.
pub fn release_on_failure<'a>(
    store: &'a RefCell<SqliteStore>,
    key: &'a EndpointKey,
) -> impl FnOnce() -> Result<(), String> + 'a {
    move || {
        store
            .borrow_mut()
            .release_endpoint(key)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// The endpoint's identity: (network, container, interface).
pub fn endpoint_key<C>(call: &Call<'_, C>, target: &Target) -> EndpointKey {
    EndpointKey {
        network: call.conf.name.clone(),
        container_id: target.container_id.clone(),
        ifname: target.ifname.clone(),
    }
}

/// What the IPAM gave an endpoint.
#[derive(Debug, Default)]
pub struct Addressing {
    /// Addresses (no `interface` index yet).
    pub ips: Vec<IpConfig>,
    /// Routes.
    pub routes: Vec<Route>,
    /// DNS.
    pub dns: Dns,
}

/// The endpoint's addresses: the reserved ones (local), or a delegated IPAM's ADD, whose DEL is
/// registered on `undo`.
pub fn acquire_addresses<'a, C>(
    call: &'a Call<'a, C>,
    ipam: &'a Ipam,
    key: &EndpointKey,
    reservation: &Reservation,
    at: (&'a Target, &'a Path),
    store: &RefCell<SqliteStore>,
    undo: &mut Rollback<'a>,
) -> Result<Addressing> {
    Ok(match ipam {
        Ipam::Local(plan) => Addressing {
            ips: reservation
                .addresses
                .iter()
                .map(|a| ip_config(plan, key, a))
                .collect::<Result<Vec<_>>>()?,
            routes: plan.routes.clone(),
            dns: plan.dns.clone(),
        },
        Ipam::Delegated(plugin) => {
            let delegation = call.delegation(Some(at.0), Some(at.1));
            let r = delegation.add(plugin, call.stdin)?;
            undo.push("release the delegated IPAM's addresses", move || {
                delegation
                    .del(plugin, call.stdin)
                    .map_err(|e| e.to_string())
            });
            store
                .borrow_mut()
                .learn_subnets(&call.conf.name, &subnets_of(&r.ips))?;
            Addressing {
                ips: r.ips,
                routes: r.routes,
                dns: r.dns,
            }
        }
        Ipam::None => Addressing::default(),
    })
}

/// DEL's part for a delegated IPAM (local addresses go with the endpoint's record).
pub fn release_delegated<C>(
    call: &Call<'_, C>,
    ipam: &Ipam,
    target: &Target,
    netns: Option<&Path>,
) -> Result<()> {
    if let Ipam::Delegated(plugin) = ipam {
        call.delegation(Some(target), netns)
            .del(plugin, call.stdin)?;
    }
    Ok(())
}

/// CHECK's part for a delegated IPAM.
pub fn check_delegated<C>(
    call: &Call<'_, C>,
    ipam: &Ipam,
    target: &Target,
    netns: &Path,
) -> Result<()> {
    if let Ipam::Delegated(plugin) = ipam {
        call.delegation(Some(target), Some(netns))
            .check(plugin, call.stdin)?;
    }
    Ok(())
}

/// The result of a plugin that gives the sandbox one interface: the addresses point at it.
pub fn one_interface_result(iface: Interface, addressing: Addressing) -> CniResult {
    CniResult {
        interfaces: vec![iface],
        ips: addressing
            .ips
            .into_iter()
            .map(|ip| IpConfig {
                interface: Some(0),
                ..ip
            })
            .collect(),
        routes: addressing.routes,
        dns: addressing.dns,
    }
}

/// CHECK: the endpoint's record if its ADD finished.
pub fn created_record(store: &impl Store, key: &EndpointKey) -> Result<Option<EndpointRecord>> {
    Ok(store
        .endpoint(key)?
        .filter(|r| r.state == EndpointState::Created))
}

/// CHECK's message when there is no finished endpoint to check.
pub fn no_endpoint<C>(call: &Call<'_, C>, target: &Target) -> String {
    format!(
        "no endpoint of container {} on network {} ({}): ADD did not finish or DEL removed it",
        target.container_id, call.conf.name, target.ifname
    )
}

/// CHECK: an address of the stored result that `prevResult` lacks, said as a difference.
pub fn prev_result_difference<C>(call: &Call<'_, C>, stored: &CniResult) -> Option<String> {
    let prev = call.conf.prev_result.as_ref()?;
    stored
        .ips
        .iter()
        .find(|ip| !prev.ips.iter().any(|p| p.address == ip.address))
        .map(|ip| {
            format!(
                "address {} of this endpoint is not in prevResult",
                ip.address
            )
        })
}

/// STATUS: the store takes a write now, and a delegated IPAM says it is ready.
pub fn status<C>(call: &Call<'_, C>, ipam: &Ipam, store_dir: &Path) -> Result<()> {
    SqliteStore::open(store_dir)
        .and_then(|mut s| s.check_writable())
        .map_err(IpamPluginError::Unavailable)?;
    if let Ipam::Delegated(plugin) = ipam {
        call.delegation(None, None).status(plugin, call.stdin)?;
    }
    Ok(())
}

/// GC: every endpoint of the network not in `valid` is torn down by `detach` (kernel objects
/// first), then released; a failure leaves its record for a retry. A delegated IPAM gets GC too.
pub fn gc<C>(
    call: &Call<'_, C>,
    ipam: &Ipam,
    store: &mut SqliteStore,
    valid: &[GcAttachment],
    mut detach: impl FnMut(&EndpointRecord) -> Result<()>,
) -> Result<()> {
    let keep = GcAttachment::keys(valid);
    for rec in store.endpoints(Some(&call.conf.name))? {
        let k = &rec.key;
        if keep
            .iter()
            .any(|(c, i)| *c == k.container_id && *i == k.ifname)
        {
            continue;
        }
        detach(&rec)?;
        store.release_endpoint(k)?;
    }
    if let Ipam::Delegated(plugin) = ipam {
        call.delegation(None, None).gc(plugin, call.stdin)?;
    }
    Ok(())
}

/// The subnets of addresses, each once.
pub fn subnets_of(ips: &[IpConfig]) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = Vec::new();
    for ip in ips {
        let net = ip.address.trunc();
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    nets
}

/// The network's configuration as the store keeps it: the configuration object of this call
/// without what belongs to the call (`runtimeConfig`, `prevResult`, `args`), so that the
/// library can run the network later with the same driver settings.
pub fn network_config<C>(call: &Call<'_, C>) -> serde_json::Value {
    let mut conf: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(call.stdin).unwrap_or_default();
    for per_call in ["runtimeConfig", "prevResult", "args"] {
        conf.remove(per_call);
    }
    serde_json::Value::Object(conf)
}
