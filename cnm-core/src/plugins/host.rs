//! `cnm-host`: moves a host device into the container (the reference `host-device`'s job and
//! keys), and back on DEL.
//!
//! ADD: validate and find the device (refusing the loopback, a device already given away, and
//! the default-route interface without `allowDefaultRoute`) → reserve (IPAM, as the bridge) →
//! note the device's original name, MAC, addresses and up state in the store *before* moving
//! it → move and rename in one message → up, addresses (the original ones without IPAM, IPAM's
//! with it), routes → commit. A failure after the reservation moves the device back.
//!
//! DEL moves it back under its original name with its original addresses and up state. With
//! the container's namespace already gone, the kernel has returned a physical device to the
//! *initial* namespace (cnm then renames it back and restores its addresses when that is the
//! namespace cnm runs in) and destroyed a virtual one (a veth end, with its peer); either way
//! the store is released and DEL succeeds.

use std::cell::RefCell;

use serde_json::{json, Value};

use crate::cni::config::GcAttachment;
use crate::cni::result::{Interface, IpConfig};
use crate::cni::{Attach, Call, CniResult, Detach, Plugin, SpecVersion};
use crate::driver::host_device::{
    self as driver, HostDeviceConfig, HostDeviceError, HostDevicePlan, Original,
};
use crate::error::Result;
use crate::netlink::Handle;
use crate::netns::Netns;
use crate::plugins::common::{self, Addressing, Ipam};
use crate::plugins::ipam::requested;
use crate::rollback::Rollback;
use crate::store::{EndpointRecord, EndpointState, NetworkRecord, SqliteStore, Store};

/// The reference `host-device` plugin's keys (kept under the old name).
pub type HostConfig = HostDeviceConfig;

/// The `cnm-host` plugin.
#[derive(Debug, Default)]
pub struct HostPlugin;

type HostCall<'a> = Call<'a, HostConfig>;

/// What ADD notes before the move, and completes at commit.
struct Recorded {
    original: Original,
    netns: String,
    result: Option<CniResult>,
}

impl Recorded {
    fn to_json(&self) -> Value {
        json!({
            "device": self.original,
            "netns": self.netns,
            "result": self.result.as_ref().map(|r| r.to_json(SpecVersion::LATEST)),
        })
    }

    fn from_record(rec: &EndpointRecord) -> Option<Self> {
        let d = &rec.data;
        Some(Recorded {
            original: serde_json::from_value(d["device"].clone()).ok()?,
            netns: d["netns"].as_str()?.to_owned(),
            result: CniResult::from_json(SpecVersion::LATEST, d["result"].clone(), "stored result")
                .ok(),
        })
    }
}

fn prepare(call: &HostCall<'_>) -> Result<(HostDevicePlan, Ipam, std::path::PathBuf)> {
    let plan = HostDevicePlan::new(&call.conf)?;
    let ipam = Ipam::from_conf(&call.conf)?;
    let dir = ipam.store_dir(call.conf.plugin.data_dir.as_deref());
    Ok((plan, ipam, dir))
}

fn host() -> Result<(Handle, Netns)> {
    let handle = Handle::new().map_err(HostDeviceError::from)?;
    let ns = Netns::current()
        .map_err(|e| HostDeviceError::from(crate::netlink::NetlinkError::from(e)))?;
    Ok((handle, ns))
}

/// Puts back what a record says was moved; nothing noted means nothing was moved.
fn detach_recorded(
    host: &mut Handle,
    host_ns: &Netns,
    rec: &EndpointRecord,
    netns: Option<&Netns>,
) -> Result<()> {
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
    let ifname = rec.key.ifname.as_str();
    Ok(driver::detach(host, host_ns, netns, ifname, &r.original)?)
}

/// A device given to a container by any cnm-host endpoint in this store.
fn taken_by(store: &SqliteStore, plan: &HostDevicePlan) -> Result<Option<HostDeviceError>> {
    for rec in store.endpoints(None)? {
        let Some(r) = Recorded::from_record(&rec) else {
            continue;
        };
        let by_name = plan.device.as_deref() == Some(r.original.name.as_str());
        let by_mac = plan
            .hwaddr
            .is_some_and(|m| crate::driver::bridge::format_mac(m) == r.original.mac);
        if by_name || by_mac {
            return Ok(Some(HostDeviceError::Taken {
                device: r.original.name,
                container: rec.key.container_id.to_string(),
                network: rec.key.network.to_string(),
                ifname: rec.key.ifname.to_string(),
            }));
        }
    }
    Ok(None)
}

impl Plugin for HostPlugin {
    type Config = HostConfig;
    const NAME: &'static str = "cnm-host";
    const KNOWN_ARGS: &'static [&'static str] = &["IP"];

    fn add(&self, call: &HostCall<'_>, at: &Attach<'_>) -> Result<CniResult> {
        let (plan, ipam, dir) = prepare(call)?;
        let requested = requested(call)?;
        let key = common::endpoint_key(call, at.target);
        let (host, host_ns) = host()?;
        let host = RefCell::new(host);
        let store = RefCell::new(SqliteStore::open(&dir)?);
        if let Some(rec) = store.borrow().endpoint(&key)? {
            if let Some(result) = Recorded::from_record(&rec)
                .and_then(|r| r.result)
                .filter(|_| rec.state == EndpointState::Created)
            {
                // A repeated ADD: answer as the first ADD did.
                return Ok(result);
            }
            // An earlier ADD died half-way: put the device back first.
            detach_recorded(&mut host.borrow_mut(), &host_ns, &rec, Some(at.netns))?;
        }
        let found = driver::find(&mut host.borrow_mut(), &plan);
        let (link, original) = match found {
            Err(HostDeviceError::NotFound { what }) => {
                let store = store.borrow();
                return Err(taken_by(&store, &plan)?
                    .unwrap_or(HostDeviceError::NotFound { what })
                    .into());
            }
            other => other?,
        };
        let network = NetworkRecord {
            name: call.conf.name.clone(),
            driver: Self::NAME.into(),
            subnets: ipam.subnets(),
            config: common::network_config(call),
        };
        let reservation =
            store
                .borrow_mut()
                .reserve_endpoint(&network, &key, ipam.sets(), &requested)?;
        let mut undo = Rollback::new();
        undo.push(
            "release the reservation",
            common::release_on_failure(&store, &key),
        );
        let addressing = match ipam {
            // No IPAM: the device keeps its own addresses.
            Ipam::None => Addressing {
                ips: original
                    .addresses
                    .iter()
                    .map(|&address| IpConfig {
                        address,
                        gateway: None,
                        interface: None,
                    })
                    .collect(),
                ..Addressing::default()
            },
            _ => common::acquire_addresses(
                call,
                &ipam,
                &key,
                &reservation,
                (at.target, at.netns.path()),
                &store,
                &mut undo,
            )?,
        };
        let mut recorded = Recorded {
            original,
            netns: at.netns.path().display().to_string(),
            result: None,
        };
        // Before the move: a crash after it can be repaired from this.
        store
            .borrow_mut()
            .note_endpoint(&key, &recorded.to_json())?;
        let ifname = at.target.ifname.as_str();
        let original = recorded.original.clone();
        let (host_ref, host_ns_ref) = (&host, &host_ns);
        undo.push("move the device back", move || {
            driver::detach(
                &mut host_ref.borrow_mut(),
                host_ns_ref,
                Some(at.netns),
                ifname,
                &original,
            )
            .map_err(|e| e.to_string())
        });
        driver::attach(
            &mut host.borrow_mut(),
            &link,
            &at.target.ifname,
            at.netns,
            &addressing.ips,
            &addressing.routes,
        )?;
        let result = common::one_interface_result(
            Interface {
                name: ifname.to_owned(),
                mac: Some(recorded.original.mac.clone()),
                sandbox: Some(at.netns.path().display().to_string()),
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

    fn check(&self, call: &HostCall<'_>, at: &Attach<'_>) -> Result<()> {
        let (_, ipam, dir) = prepare(call)?;
        let key = common::endpoint_key(call, at.target);
        let store = SqliteStore::open(&dir)?;
        let missing = || HostDeviceError::Check(common::no_endpoint(call, at.target));
        let rec = common::created_record(&store, &key)?.ok_or_else(missing)?;
        let recorded = Recorded::from_record(&rec).ok_or_else(missing)?;
        let result = recorded.result.as_ref().ok_or_else(missing)?;
        if let Some(why) = common::prev_result_difference(call, result) {
            return Err(HostDeviceError::Check(why).into());
        }
        driver::verify(
            at.netns,
            at.target.ifname.as_str(),
            &recorded.original,
            &result.ips,
            &result.routes,
        )?;
        common::check_delegated(call, &ipam, at.target, at.netns.path())
    }

    fn del(&self, call: &HostCall<'_>, at: &Detach<'_>) -> Result<()> {
        let (_, ipam, dir) = prepare(call)?;
        let key = common::endpoint_key(call, at.target);
        let mut store = SqliteStore::open(&dir)?;
        if let Some(rec) = store.endpoint(&key)? {
            let (mut host, host_ns) = host()?;
            match at.netns {
                Some(ns) => detach_recorded(&mut host, &host_ns, &rec, Some(ns))?,
                // The netns is gone: nothing to move, but a device the kernel returned here
                // gets its name and addresses back.
                None => {
                    if let Some(r) = Recorded::from_record(&rec) {
                        let ifname = rec.key.ifname.as_str();
                        driver::detach(&mut host, &host_ns, None, ifname, &r.original)?;
                    }
                }
            }
        }
        common::release_delegated(call, &ipam, at.target, at.netns_path)?;
        store.release_endpoint(&key)?;
        Ok(())
    }

    fn validate(&self, call: &HostCall<'_>) -> Result<()> {
        prepare(call).map(drop)
    }

    fn status(&self, call: &HostCall<'_>) -> Result<()> {
        let (_, ipam, dir) = prepare(call)?;
        common::status(call, &ipam, &dir)?;
        host()?;
        Ok(())
    }

    fn gc(&self, call: &HostCall<'_>, valid: &[GcAttachment]) -> Result<()> {
        let (_, ipam, dir) = prepare(call)?;
        let (mut host, host_ns) = host()?;
        let mut store = SqliteStore::open(&dir)?;
        common::gc(call, &ipam, &mut store, valid, |rec| {
            detach_recorded(&mut host, &host_ns, rec, None)
        })
    }
}
