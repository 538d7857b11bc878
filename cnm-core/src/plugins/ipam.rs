//! `cnm-ipam`: a standalone CNI IPAM plugin over the store, usable in place of `host-local`
//! (the same `ipam` keys). The network's identity is the CNI network `name`; it never enters the
//! container's namespace.

use serde::Deserialize;
use serde_json::json;

use crate::cni::config::{GcAttachment, RequestedIp};
use crate::cni::env::Target;
use crate::cni::result::IpConfig;
use crate::cni::{Attach, Call, CniResult, Detach, Plugin};
use crate::error::Result;
use crate::ipam::IpamPlan;
use crate::store::{
    EndpointKey, EndpointRecord, EndpointState, NetworkRecord, ReservedAddress, SqliteStore, Store,
    StoreError,
};

/// The plugin's own top-level keys: none; everything is in the `ipam` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpamPluginConfig {}

/// Failures of the plugin's own checks.
#[derive(Debug, thiserror::Error)]
pub enum IpamPluginError {
    /// The configuration has no `ipam` object.
    #[error("cnm-ipam needs an \"ipam\" section with \"subnet\" or \"ranges\"")]
    NoIpamSection,
    /// `CNI_ARGS` `IP=` is not a list of addresses.
    #[error("CNI_ARGS IP={value:?}: {why}")]
    ArgsIp { value: String, why: String },
    /// CHECK: the store holds no reservation for the container.
    #[error("CHECK: no address is reserved for {0}")]
    NotReserved(EndpointKey),
    /// CHECK: the reservation does not match the configuration or the previous result.
    #[error("CHECK: the reservation of {key} does not match: {why}")]
    Mismatch { key: EndpointKey, why: String },
    /// STATUS: the store cannot be opened or written.
    #[error("STATUS: the address store cannot take a reservation now: {0}")]
    Unavailable(#[source] StoreError),
}

/// The `cnm-ipam` plugin.
#[derive(Debug, Default)]
pub struct IpamPlugin;

type IpamCall<'a> = Call<'a, IpamPluginConfig>;

fn plan(call: &IpamCall<'_>) -> Result<IpamPlan> {
    let ipam = call
        .conf
        .ipam
        .as_ref()
        .ok_or(IpamPluginError::NoIpamSection)?;
    Ok(IpamPlan::parse(&ipam.raw)?)
}

fn key(call: &IpamCall<'_>, target: &Target) -> EndpointKey {
    EndpointKey {
        network: call.conf.name.clone(),
        container_id: target.container_id.clone(),
        ifname: target.ifname.clone(),
    }
}

/// The `ips` capability followed by `CNI_ARGS` `IP=a,b`.
pub(crate) fn requested<C>(call: &Call<'_, C>) -> Result<Vec<RequestedIp>> {
    let mut out = call.conf.runtime_config.ips.clone();
    if let Some(value) = call.env.args.get("IP") {
        for part in value.split(',').filter(|p| !p.is_empty()) {
            let ip = part.parse().map_err(|why| IpamPluginError::ArgsIp {
                value: value.to_owned(),
                why,
            })?;
            out.push(ip);
        }
    }
    Ok(out)
}

/// The result entry of a reserved address: its subnet's prefix and its range's gateway.
pub(crate) fn ip_config(
    plan: &IpamPlan,
    key: &EndpointKey,
    a: &ReservedAddress,
) -> Result<IpConfig> {
    let range = plan
        .sets
        .get(a.set_index)
        .and_then(|set| set.ranges.iter().find(|r| r.subnet.contains(&a.addr)));
    let Some(range) = range else {
        let why = format!(
            "address {} (range set {}) is outside the configured subnets; DEL and ADD again",
            a.addr, a.set_index
        );
        return Err(IpamPluginError::Mismatch {
            key: key.clone(),
            why,
        }
        .into());
    };
    let address = ipnet::IpNet::new(a.addr, range.subnet.prefix_len())
        .expect("a prefix taken from a valid subnet of the same family");
    Ok(IpConfig {
        address,
        gateway: Some(range.gateway),
        interface: None,
    })
}

fn check_record(call: &IpamCall<'_>, plan: &IpamPlan, rec: &EndpointRecord) -> Result<()> {
    let mismatch = |why: String| IpamPluginError::Mismatch {
        key: rec.key.clone(),
        why,
    };
    if rec.state != EndpointState::Created {
        return Err(mismatch("its ADD did not finish".into()).into());
    }
    if rec.addresses.len() != plan.sets.len() {
        let why = format!(
            "it holds {} addresses but the configuration has {} range sets",
            rec.addresses.len(),
            plan.sets.len()
        );
        return Err(mismatch(why).into());
    }
    for a in &rec.addresses {
        let ip = ip_config(plan, &rec.key, a)?;
        let in_prev = call
            .conf
            .prev_result
            .as_ref()
            .is_none_or(|prev| prev.ips.iter().any(|p| p.address.addr() == a.addr));
        if !in_prev {
            return Err(mismatch(format!("{} is not in prevResult", ip.address)).into());
        }
    }
    Ok(())
}

impl Plugin for IpamPlugin {
    type Config = IpamPluginConfig;
    const NAME: &'static str = "cnm-ipam";
    const KNOWN_ARGS: &'static [&'static str] = &["IP"];

    fn add(&self, call: &IpamCall<'_>, at: &Attach<'_>) -> Result<CniResult> {
        let plan = plan(call)?;
        let requested = requested(call)?;
        let key = key(call, at.target);
        let network = NetworkRecord {
            name: call.conf.name.clone(),
            driver: Self::NAME.into(),
            subnets: plan.subnets(),
            config: call
                .conf
                .ipam
                .as_ref()
                .map(|i| json!(i.raw))
                .unwrap_or_default(),
        };
        let mut store = SqliteStore::open(&plan.data_dir)?;
        let reservation = store.reserve_endpoint(&network, &key, &plan.sets, &requested)?;
        let ips = reservation
            .addresses
            .iter()
            .map(|a| ip_config(&plan, &key, a))
            .collect::<Result<Vec<_>>>()?;
        store.commit_endpoint(&key, &json!({}))?;
        Ok(CniResult {
            interfaces: Vec::new(),
            ips,
            routes: plan.routes,
            dns: plan.dns,
        })
    }

    fn check(&self, call: &IpamCall<'_>, at: &Attach<'_>) -> Result<()> {
        let plan = plan(call)?;
        let key = key(call, at.target);
        let store = SqliteStore::open(&plan.data_dir)?;
        match store.endpoint(&key)? {
            None => Err(IpamPluginError::NotReserved(key).into()),
            Some(rec) => check_record(call, &plan, &rec),
        }
    }

    fn del(&self, call: &IpamCall<'_>, at: &Detach<'_>) -> Result<()> {
        // DEL succeeds when nothing is reserved (SPEC §DEL); the netns is never needed.
        let plan = plan(call)?;
        let mut store = SqliteStore::open(&plan.data_dir)?;
        store.release_endpoint(&key(call, at.target))?;
        Ok(())
    }

    fn status(&self, call: &IpamCall<'_>) -> Result<()> {
        let plan = plan(call)?;
        SqliteStore::open(&plan.data_dir)
            .and_then(|mut s| s.check_writable())
            .map_err(IpamPluginError::Unavailable)?;
        Ok(())
    }

    fn gc(&self, call: &IpamCall<'_>, valid: &[GcAttachment]) -> Result<()> {
        let plan = plan(call)?;
        let keep = GcAttachment::keys(valid);
        let mut store = SqliteStore::open(&plan.data_dir)?;
        store.gc(&call.conf.name, &keep)?;
        Ok(())
    }
}
