//! `cnm-macvlan`: the macvlan driver behind CNI (the reference `macvlan`'s job and keys).
//!
//! ADD: validate (mode, master, MTU, MAC) → one store transaction reserves the addresses and
//! records the endpoint as creating → the MAC and the namespace are noted on it before the link
//! exists, so DEL and GC can find (and only find) the macvlan cnm made → one netlink message
//! creates the macvlan inside the sandbox → addresses and routes → commit. Any failure after
//! the reservation undoes in reverse. DEL deletes the macvlan (netns gone: it went with it) and
//! releases the addresses; it needs neither the netns nor `prevResult`.

use std::cell::RefCell;
use std::path::Path;

use serde_json::{json, Value};

use crate::cni::config::GcAttachment;
use crate::cni::env::IfName;
use crate::cni::result::Interface;
use crate::cni::{Attach, Call, CniResult, Detach, Plugin, SpecVersion};
use crate::driver::bridge::{format_mac, parse_mac};
use crate::driver::macvlan::{self as driver, MacvlanConfig, MacvlanError, MacvlanPlan};
use crate::error::Result;
use crate::netlink::Handle;
use crate::netns::Netns;
use crate::plugins::common::{self, Ipam};
use crate::plugins::ipam::requested;
use crate::rollback::Rollback;
use crate::store::{EndpointRecord, EndpointState, NetworkRecord, SqliteStore, Store};

/// The `cnm-macvlan` plugin.
#[derive(Debug, Default)]
pub struct MacvlanPlugin;

type MacvlanCall<'a> = Call<'a, MacvlanConfig>;

/// What ADD notes before creating the link, and completes at commit.
struct Recorded {
    mac: [u8; 6],
    netns: String,
    result: Option<CniResult>,
}

impl Recorded {
    fn to_json(&self) -> Value {
        json!({
            "mac": format_mac(self.mac),
            "netns": self.netns,
            "result": self.result.as_ref().map(|r| r.to_json(SpecVersion::LATEST)),
        })
    }

    fn from_record(rec: &EndpointRecord) -> Option<Self> {
        let d = &rec.data;
        Some(Recorded {
            mac: parse_mac(d["mac"].as_str()?)?,
            netns: d["netns"].as_str()?.to_owned(),
            result: CniResult::from_json(SpecVersion::LATEST, d["result"].clone(), "stored result")
                .ok(),
        })
    }

    fn spec<'a>(&'a self, ifname: &'a IfName, result: &'a CniResult) -> driver::EndpointSpec<'a> {
        driver::EndpointSpec {
            ifname,
            mac: self.mac,
            ips: &result.ips,
            routes: &result.routes,
        }
    }
}

fn prepare(call: &MacvlanCall<'_>) -> Result<(MacvlanPlan, Ipam, std::path::PathBuf)> {
    let plan = MacvlanPlan::new(&call.conf)?;
    let ipam = Ipam::from_conf(&call.conf)?;
    let dir = ipam.store_dir(call.conf.plugin.data_dir.as_deref());
    Ok((plan, ipam, dir))
}

/// The `mac` capability, else `CNI_ARGS` `MAC=` (as the reference).
fn requested_mac(call: &MacvlanCall<'_>) -> Result<Option<[u8; 6]>> {
    if let Some(s) = &call.conf.runtime_config.mac {
        return Ok(Some(driver::requested_mac("runtimeConfig.mac", s)?));
    }
    match call.env.args.get("MAC") {
        Some(s) => Ok(Some(driver::requested_mac("CNI_ARGS MAC", s)?)),
        None => Ok(None),
    }
}

/// Deletes what a record says cnm made; nothing noted means nothing was made.
fn detach_recorded(rec: &EndpointRecord, netns: Option<&Netns>) -> Result<()> {
    let Some(r) = Recorded::from_record(rec) else {
        return Ok(());
    };
    let opened;
    let netns = match netns {
        Some(ns) => Some(ns),
        None => {
            opened = Netns::open(&r.netns).ok();
            opened.as_ref()
        }
    };
    Ok(driver::detach(netns, rec.key.ifname.as_str(), r.mac)?)
}

impl Plugin for MacvlanPlugin {
    type Config = MacvlanConfig;
    const NAME: &'static str = "cnm-macvlan";
    const KNOWN_ARGS: &'static [&'static str] = &["IP", "MAC"];

    fn add(&self, call: &MacvlanCall<'_>, at: &Attach<'_>) -> Result<CniResult> {
        let (plan, ipam, dir) = prepare(call)?;
        let requested = requested(call)?;
        let wanted_mac = requested_mac(call)?;
        let mut host = Handle::new().map_err(MacvlanError::from)?;
        let master = driver::resolve_master(&mut host, &plan)?;
        let key = common::endpoint_key(call, at.target);
        let network = NetworkRecord {
            name: call.conf.name.clone(),
            driver: Self::NAME.into(),
            subnets: ipam.subnets(),
            config: common::network_config(call),
        };
        let store = RefCell::new(SqliteStore::open(&dir)?);
        let reservation =
            store
                .borrow_mut()
                .reserve_endpoint(&network, &key, ipam.sets(), &requested)?;
        if reservation.existing {
            if let Some(rec) = store.borrow().endpoint(&key)? {
                let recorded = Recorded::from_record(&rec);
                match recorded.and_then(|r| r.result) {
                    // A repeated ADD: answer as the first ADD did.
                    Some(result) if rec.state == EndpointState::Created => return Ok(result),
                    // An earlier ADD died half-way: remove what it made, then make it again.
                    _ => detach_recorded(&rec, Some(at.netns))?,
                }
            }
        }
        let mut undo = Rollback::new();
        undo.push(
            "release the reservation",
            common::release_on_failure(&store, &key),
        );
        let netns_path: &Path = at.netns.path();
        let addressing = common::acquire_addresses(
            call,
            &ipam,
            &key,
            &reservation,
            (at.target, netns_path),
            &store,
            &mut undo,
        )?;
        let mut recorded = Recorded {
            mac: driver::endpoint_mac(&plan, &master, wanted_mac),
            netns: netns_path.display().to_string(),
            result: None,
        };
        store
            .borrow_mut()
            .note_endpoint(&key, &recorded.to_json())?;
        let ifname = at.target.ifname.as_str();
        let mac = recorded.mac;
        undo.push("delete the macvlan", move || {
            driver::detach(Some(at.netns), ifname, mac).map_err(|e| e.to_string())
        });
        let spec = driver::EndpointSpec {
            ifname: &at.target.ifname,
            mac,
            ips: &addressing.ips,
            routes: &addressing.routes,
        };
        driver::attach(&mut host, &master, &plan, &spec, at.netns)?;
        let result = common::one_interface_result(
            Interface {
                name: ifname.to_owned(),
                mac: Some(format_mac(mac)),
                mtu: plan.mtu,
                sandbox: Some(netns_path.display().to_string()),
                ..Interface::default()
            },
            addressing,
        );
        recorded.result = Some(result.clone());
        store
            .borrow_mut()
            .commit_endpoint(&key, &recorded.to_json())?;
        undo.commit();
        Ok(result)
    }

    fn check(&self, call: &MacvlanCall<'_>, at: &Attach<'_>) -> Result<()> {
        let (_, ipam, dir) = prepare(call)?;
        let key = common::endpoint_key(call, at.target);
        let store = SqliteStore::open(&dir)?;
        let missing = || MacvlanError::Check(common::no_endpoint(call, at.target));
        let rec = common::created_record(&store, &key)?.ok_or_else(missing)?;
        let recorded = Recorded::from_record(&rec).ok_or_else(missing)?;
        let result = recorded.result.as_ref().ok_or_else(missing)?;
        if let Some(why) = common::prev_result_difference(call, result) {
            return Err(MacvlanError::Check(why).into());
        }
        driver::verify(&recorded.spec(&at.target.ifname, result), at.netns)?;
        common::check_delegated(call, &ipam, at.target, at.netns.path())
    }

    fn del(&self, call: &MacvlanCall<'_>, at: &Detach<'_>) -> Result<()> {
        let (_, ipam, dir) = prepare(call)?;
        let key = common::endpoint_key(call, at.target);
        let mut store = SqliteStore::open(&dir)?;
        if let Some(rec) = store.endpoint(&key)? {
            // No netns: the macvlan went with it (SPEC §DEL: DEL succeeds all the same).
            if at.netns.is_some() {
                detach_recorded(&rec, at.netns)?;
            }
        }
        common::release_delegated(call, &ipam, at.target, at.netns_path)?;
        store.release_endpoint(&key)?;
        Ok(())
    }

    fn validate(&self, call: &MacvlanCall<'_>) -> Result<()> {
        prepare(call).map(drop)
    }

    fn status(&self, call: &MacvlanCall<'_>) -> Result<()> {
        let (plan, ipam, dir) = prepare(call)?;
        common::status(call, &ipam, &dir)?;
        let mut host = Handle::new().map_err(MacvlanError::from)?;
        driver::resolve_master(&mut host, &plan)?;
        Ok(())
    }

    fn gc(&self, call: &MacvlanCall<'_>, valid: &[GcAttachment]) -> Result<()> {
        let (_, ipam, dir) = prepare(call)?;
        let mut store = SqliteStore::open(&dir)?;
        common::gc(call, &ipam, &mut store, valid, |rec| {
            detach_recorded(rec, None)
        })
    }
}
