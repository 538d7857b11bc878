//! `cnm-bridge`: the CNM bridge driver behind CNI.
//!
//! ADD = ensure the network + create the endpoint + join the sandbox:
//! 1. validate everything into plans (bridge, IPAM, MAC, port mappings) — errors here create
//!    nothing;
//! 2. one store transaction reserves the addresses (in-process `cnm-ipam`) and records the
//!    endpoint as creating, so DEL and GC can find a half-made one after a crash; any other
//!    `ipam.type` is executed from `CNI_PATH`. (Preparing the sockets on another thread
//!    meanwhile was measured slower: 2.0 against 1.8 ms from `main` to the result, since a
//!    second thread in a process this young contends for the same pages and locks);
//! 3. ensure the bridge, its gateways and the network's nftables elements, then one netlink
//!    message creates the veth pair with its peer inside the sandbox; a socket inside the
//!    sandbox sets addresses and routes; published ports go into cnm's table in one batch;
//! 4. the endpoint is marked created with its result. Any failure after step 2 undoes what was
//!    done, newest first ([`Rollback`]), down to the network's bridge and elements when no
//!    endpoint uses them.
//!
//! DEL = leave + delete, in the reverse order, treating "already gone" as done; it needs neither
//! the netns nor `prevResult`. After the last endpoint of a network leaves, the network's
//! nftables elements go too; a bridge that cnm created stays, as libnetwork's bridge stays with
//! its network, until GC finds the network without endpoints (or the library deletes the
//! network): deleting a bridge costs the kernel two RCU grace periods (35-60 ms here), which the
//! next container's ADD would pay again to make it. nftables elements go before links, through
//! one socket closed last ([`LazyNft`]), so that the kernel's two RCU waits overlap.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cni::config::{ConfigError, GcAttachment};
use crate::cni::env::IfName;
use crate::cni::result::{Interface, IpConfig, Route};
use crate::cni::{Attach, Call, CniResult, Detach, Plugin, SpecVersion};
use crate::driver::bridge::{
    self as driver, BridgeConfig, BridgeError, BridgeInfo, BridgePlan, Masquerade,
};
use crate::error::Result;
use crate::firewall::{LazyNft, NetworkRules, Nft};
use crate::inventory::{PortBinding, PORT_MAPPINGS_KEY};
use crate::netlink::Handle;
use crate::plugins::common::{self, subnets_of, Ipam};
use crate::plugins::ipam::requested;
use crate::portmap;
use crate::rollback::Rollback;
use crate::store::{EndpointKey, EndpointRecord, NetworkLock, NetworkRecord, SqliteStore, Store};

/// The `cnm-bridge` plugin.
#[derive(Debug, Default)]
pub struct BridgePlugin;

type BridgeCall<'a> = Call<'a, BridgeConfig>;

/// Everything an operation needs, validated before the first side effect.
struct Prepared {
    plan: BridgePlan,
    ipam: Ipam,
    store_dir: PathBuf,
}

fn prepare(call: &BridgeCall<'_>) -> Result<Prepared> {
    let plan = BridgePlan::new(&call.conf)?;
    let ipam = Ipam::from_conf(&call.conf)?;
    let store_dir = ipam.store_dir(call.conf.plugin.data_dir.as_deref());
    Ok(Prepared {
        plan,
        ipam,
        store_dir,
    })
}

fn container_mac(call: &BridgeCall<'_>) -> Result<[u8; 6]> {
    match &call.conf.runtime_config.mac {
        None => Ok(driver::random_mac()),
        Some(s) => Ok(driver::parse_mac(s).ok_or_else(|| {
            ConfigError::invalid(
                "runtimeConfig.mac",
                format!("{s:?} is not a unicast MAC address like 0a:58:0a:01:00:05"),
            )
        })?),
    }
}

/// What ADD records about an endpoint, read back by CHECK, DEL and a repeated ADD (and by
/// [`crate::inventory`]).
struct Recorded {
    host_veth: String,
    mac: [u8; 6],
    result: CniResult,
    /// The published ports, for the inventory: the store's port-map elements know only the
    /// host side.
    ports: Vec<PortBinding>,
}

impl Recorded {
    fn to_json(&self) -> Value {
        json!({
            "hostVeth": self.host_veth,
            "mac": driver::format_mac(self.mac),
            "result": self.result.to_json(SpecVersion::LATEST),
            PORT_MAPPINGS_KEY: self.ports,
        })
    }

    fn from_record(rec: &EndpointRecord) -> Option<Self> {
        let d = &rec.data;
        Some(Recorded {
            host_veth: d["hostVeth"].as_str()?.to_owned(),
            mac: driver::parse_mac(d["mac"].as_str()?)?,
            result: CniResult::from_json(SpecVersion::LATEST, d["result"].clone(), "stored result")
                .ok()?,
            // Records from before ports were recorded have none.
            ports: Vec::deserialize(&d[PORT_MAPPINGS_KEY]).unwrap_or_default(),
        })
    }

    /// The driver's view of the endpoint, for CHECK.
    fn spec<'a>(&'a self, ifname: &'a IfName) -> driver::EndpointSpec<'a> {
        driver::EndpointSpec {
            host_veth: &self.host_veth,
            ifname,
            host_mac: [0; 6],
            mac: self.mac,
            ips: &self.result.ips,
            routes: &self.result.routes,
        }
    }
}

/// The routes inside the container: the IPAM's, plus default routes via the gateways.
fn container_routes(plan: &BridgePlan, ips: &[IpConfig], ipam_routes: Vec<Route>) -> Vec<Route> {
    let mut routes = ipam_routes;
    if plan.default_route {
        for ip in ips {
            let Some(gw) = ip.gateway else { continue };
            let dst: IpNet = if gw.is_ipv4() {
                "0.0.0.0/0".parse().expect("literal")
            } else {
                "::/0".parse().expect("literal")
            };
            if !routes.iter().any(|r| r.dst == dst) {
                routes.push(Route::new(dst, Some(gw)));
            }
        }
    }
    routes
}

/// The bridge's gateway addresses: each gateway with its address's prefix.
fn gateways(plan: &BridgePlan, ips: &[IpConfig]) -> Vec<IpNet> {
    if !plan.is_gateway {
        return Vec::new();
    }
    ips.iter()
        .filter_map(|ip| IpNet::new(ip.gateway?, ip.address.prefix_len()).ok())
        .collect()
}

/// What cnm's nftables table holds for this network: masquerade of its subnets (unless
/// internal or `ipMasq` is off), isolation from other cnm networks, the internal drop.
fn firewall_rules(plan: &BridgePlan, subnets: Vec<IpNet>) -> NetworkRules<'_> {
    let masq = if plan.masquerade == Masquerade::On {
        subnets
    } else {
        Vec::new()
    };
    NetworkRules {
        bridge: plan.bridge.as_str(),
        masq,
        internal: plan.internal,
    }
}

/// Ensures the network's host side for an endpoint through `host`: the bridge with `gateways`,
/// forwarding for their families, cnm's table and the network's elements for `subnets` (adding
/// what exists already is a no-op). Returns the bridge and the netfilter socket, kept for the
/// endpoint's published ports.
fn ensure_network_side(
    call: &BridgeCall<'_>,
    p: &Prepared,
    host: &mut Handle,
    gateways: &[IpNet],
    subnets: Vec<IpNet>,
) -> Result<(BridgeInfo, Nft)> {
    let bridge = driver::ensure_bridge(host, &p.plan, &call.conf.name, gateways)?;
    if p.plan.is_gateway {
        let v4 = subnets.iter().any(|s| s.addr().is_ipv4());
        driver::enable_forwarding(v4, subnets.iter().any(|s| s.addr().is_ipv6()))?;
    }
    let mut nft = Nft::new()?;
    nft.ensure_table()?;
    nft.add_network(&firewall_rules(&p.plan, subnets))?;
    Ok((bridge, nft))
}

/// The network's teardown lock, held exclusively, when no endpoint but `leaving` is left on it.
/// Most DELs leave endpoints behind: they ask without the lock and take none. The last one
/// takes it and asks again, so that no ADD is between finding the bridge and reserving.
fn last_one(
    store: &SqliteStore,
    call: &BridgeCall<'_>,
    leaving: Option<&EndpointKey>,
) -> Result<Option<NetworkLock>> {
    let name = &call.conf.name;
    if store.network_in_use(name, leaving)? {
        return Ok(None);
    }
    let lock = NetworkLock::take(store.dir(), name, true)?;
    Ok((!store.network_in_use(name, leaving)?).then_some(lock))
}

/// What goes with a network's last endpoint (under [`last_one`]'s lock): its firewall elements,
/// through `nft`, which the caller closes last (see [`LazyNft`]). The subnets come from the
/// network's record, which outlives its endpoints (a DEL killed half-way is repaired by the
/// next DEL), and from the last endpoint's result (`last`).
fn withdraw_network(
    store: &SqliteStore,
    nft: &mut LazyNft,
    call: &BridgeCall<'_>,
    plan: &BridgePlan,
    last: Option<&Recorded>,
) -> Result<()> {
    let mut subnets = last.map(|r| subnets_of(&r.result.ips)).unwrap_or_default();
    for s in store
        .network(&call.conf.name)?
        .map(|n| n.subnets)
        .unwrap_or_default()
    {
        if !subnets.contains(&s) {
            subnets.push(s);
        }
    }
    nft.get()?.remove_network(&firewall_rules(plan, subnets))?;
    Ok(())
}

/// The whole host side of a network without endpoints (under [`last_one`]'s lock), for GC and
/// for an ADD that failed: its firewall elements and a bridge that cnm made for it.
fn teardown(
    store: &SqliteStore,
    host: &mut Handle,
    nft: &mut LazyNft,
    call: &BridgeCall<'_>,
    plan: &BridgePlan,
    last: Option<&Recorded>,
) -> Result<()> {
    withdraw_network(store, nft, call, plan, last)?;
    driver::remove_bridge_if_ours(host, plan, &call.conf.name)?;
    Ok(())
}

impl Plugin for BridgePlugin {
    type Config = BridgeConfig;
    const NAME: &'static str = "cnm-bridge";
    const KNOWN_ARGS: &'static [&'static str] = &["IP"];

    fn add(&self, call: &BridgeCall<'_>, at: &Attach<'_>) -> Result<CniResult> {
        let p = prepare(call)?;
        let requested = requested(call)?;
        let mac = container_mac(call)?;
        let key = common::endpoint_key(call, at.target);
        let host_veth = driver::host_veth_name(&key);
        let network = NetworkRecord {
            name: call.conf.name.clone(),
            driver: Self::NAME.into(),
            subnets: p.ipam.subnets(),
            config: common::network_config(call),
        };
        // Held until this endpoint is reserved, so that a concurrent teardown of the network
        // (its last endpoint's DEL) waits and then finds it in use; teardown holds it exclusive.
        let lock = NetworkLock::take(&p.store_dir, &call.conf.name, false)?;
        let mut store = SqliteStore::open(&p.store_dir)?;
        let reservation = store.reserve_endpoint(&network, &key, p.ipam.sets(), &requested)?;
        drop(lock);
        if reservation.existing {
            if let Some(done) = common::created_record(&store, &key)? {
                if let Some(recorded) = Recorded::from_record(&done) {
                    // A repeated ADD: the attachment exists; answer as the first ADD did.
                    return Ok(recorded.result);
                }
            }
            // An earlier ADD died half-way: remove what it left, then make it again.
            driver::detach(&mut Handle::new().map_err(BridgeError::from)?, &host_veth)?;
        }
        let store = RefCell::new(store);
        // On any failure from here on the reservation is released and then, once the host side
        // exists, the network's bridge and elements go unless another endpoint uses them.
        let side_made = Cell::new(false);
        let mut undo = Rollback::new();
        undo.push("release the reservation and an unused network", || {
            store
                .borrow_mut()
                .release_endpoint(&key)
                .map_err(|e| e.to_string())?;
            if side_made.get() {
                let mut h = Handle::new().map_err(|e| e.to_string())?;
                let store = store.borrow();
                if let Some(_lock) = last_one(&store, call, None).map_err(|e| e.to_string())? {
                    let mut nft = LazyNft::default();
                    teardown(&store, &mut h, &mut nft, call, &p.plan, None)
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        });
        let addressing = common::acquire_addresses(
            call,
            &p.ipam,
            &key,
            &reservation,
            (at.target, at.netns.path()),
            &store,
            &mut undo,
        )?;
        let ips = addressing.ips;
        let routes = container_routes(&p.plan, &ips, addressing.routes);
        // Port mapping (runtimeConfig.portMappings): validated here, published after attach.
        let bridge_name = Some(p.plan.bridge.as_str());
        let ports = portmap::plan(&call.conf.runtime_config.port_mappings, &ips, bridge_name)?;
        side_made.set(true);
        let mut host = Handle::new().map_err(BridgeError::from)?;
        let mut inside = Handle::new_in(at.netns).map_err(BridgeError::from)?;
        let (gws, subnets) = (gateways(&p.plan, &ips), subnets_of(&ips));
        let (bridge, mut nft) = ensure_network_side(call, &p, &mut host, &gws, subnets)?;
        undo.push("delete the veth pair", || {
            // A socket of its own: this runs only on failure, after `host` is gone.
            let mut h = Handle::new().map_err(|e| e.to_string())?;
            driver::detach(&mut h, &host_veth).map_err(|e| e.to_string())
        });
        let host_mac = driver::random_mac();
        let spec = driver::EndpointSpec {
            host_veth: &host_veth,
            ifname: &at.target.ifname,
            host_mac,
            mac,
            ips: &ips,
            routes: &routes,
        };
        driver::attach(&mut host, &bridge, &p.plan, &spec, at.netns, &mut inside)?;
        portmap::publish(&mut *store.borrow_mut(), &mut nft, &key, &ports)?;
        let published = ports.clone();
        undo.push("withdraw published ports", move || {
            portmap::withdraw(&published).map_err(|e| e.to_string())
        });

        let mac_str = |m: Option<[u8; 6]>| m.map(driver::format_mac);
        let result = CniResult {
            interfaces: vec![
                Interface {
                    name: bridge.name.clone(),
                    mac: mac_str(bridge.mac),
                    ..Interface::default()
                },
                Interface {
                    name: host_veth.clone(),
                    mac: mac_str(Some(host_mac)),
                    mtu: p.plan.mtu,
                    ..Interface::default()
                },
                Interface {
                    name: at.target.ifname.to_string(),
                    mac: mac_str(Some(mac)),
                    mtu: p.plan.mtu,
                    sandbox: Some(at.netns.path().display().to_string()),
                    ..Interface::default()
                },
            ],
            ips: ips
                .into_iter()
                .map(|ip| IpConfig {
                    interface: Some(2),
                    ..ip
                })
                .collect(),
            routes,
            dns: addressing.dns,
        };
        let recorded = Recorded {
            host_veth: host_veth.clone(),
            mac,
            result,
            ports: PortBinding::list(&call.conf.runtime_config.port_mappings),
        };
        store
            .borrow_mut()
            .commit_endpoint(&key, &recorded.to_json())?;
        undo.commit();
        Ok(recorded.result)
    }

    fn check(&self, call: &BridgeCall<'_>, at: &Attach<'_>) -> Result<()> {
        let p = prepare(call)?;
        let key = common::endpoint_key(call, at.target);
        let store = SqliteStore::open(&p.store_dir)?;
        let missing = || BridgeError::Check(common::no_endpoint(call, at.target));
        let rec = common::created_record(&store, &key)?.ok_or_else(missing)?;
        let recorded = Recorded::from_record(&rec).ok_or_else(missing)?;
        if let Some(why) = common::prev_result_difference(call, &recorded.result) {
            return Err(BridgeError::Check(why).into());
        }
        let mut host = Handle::new().map_err(BridgeError::from)?;
        let link = host
            .link_by_name(p.plan.bridge.as_str())
            .map_err(BridgeError::from)?
            .ok_or_else(|| BridgeError::Check(format!("bridge {} is gone", p.plan.bridge)))?;
        let bridge = BridgeInfo {
            index: link.index,
            name: link.name,
            mac: link.mac,
            created: false,
        };
        let spec = recorded.spec(&at.target.ifname);
        driver::verify(&mut host, &bridge, &spec, at.netns)?;
        let mappings = &call.conf.runtime_config.port_mappings;
        let ports = portmap::plan(mappings, &recorded.result.ips, Some(p.plan.bridge.as_str()))?;
        portmap::verify(&store, &key, &ports)?;
        if let Ipam::Delegated(plugin) = &p.ipam {
            call.delegation(Some(at.target), Some(at.netns.path()))
                .check(plugin, call.stdin)?;
        }
        Ok(())
    }

    fn del(&self, call: &BridgeCall<'_>, at: &Detach<'_>) -> Result<()> {
        let p = prepare(call)?;
        let key = common::endpoint_key(call, at.target);
        let mut store = SqliteStore::open(&p.store_dir)?;
        let rec = store.endpoint(&key)?;
        let recorded = rec.as_ref().and_then(Recorded::from_record);
        let host_veth = recorded
            .as_ref()
            .map(|r| r.host_veth.clone())
            .unwrap_or_else(|| driver::host_veth_name(&key));
        let mut host = Handle::new().map_err(BridgeError::from)?;
        // The port mappings first, through a socket that is closed last: the kernel frees the
        // removed elements while the veth is deleted (see `LazyNft`).
        let mut nft = LazyNft::default();
        if let Some(rec) = &rec {
            portmap::unpublish(&mut nft, rec)?;
        }
        let gone = recorded.as_ref();
        let last = last_one(&store, call, Some(&key))?;
        if last.is_some() {
            withdraw_network(&store, &mut nft, call, &p.plan, gone)?;
        }
        // Deleting the host end deletes the container end too, netns or not (SPEC §DEL).
        driver::detach(&mut host, &host_veth)?;
        common::release_delegated(call, &p.ipam, at.target, at.netns_path)?;
        store.release_endpoint(&key)?;
        if last.is_none() {
            // The other endpoints may have left meanwhile, each while this one was there.
            if let Some(_lock) = last_one(&store, call, None)? {
                withdraw_network(&store, &mut nft, call, &p.plan, gone)?;
            }
        }
        Ok(())
    }

    fn validate(&self, call: &BridgeCall<'_>) -> Result<()> {
        prepare(call).map(drop)
    }

    fn status(&self, call: &BridgeCall<'_>) -> Result<()> {
        let p = prepare(call)?;
        common::status(call, &p.ipam, &p.store_dir)?;
        Handle::new().map_err(BridgeError::from)?;
        Ok(())
    }

    fn gc(&self, call: &BridgeCall<'_>, valid: &[GcAttachment]) -> Result<()> {
        let p = prepare(call)?;
        let mut host = Handle::new().map_err(BridgeError::from)?;
        let mut nft = LazyNft::default();
        let mut last = None;
        let mut store = SqliteStore::open(&p.store_dir)?;
        common::gc(call, &p.ipam, &mut store, valid, |rec| {
            let recorded = Recorded::from_record(rec);
            let veth = recorded
                .as_ref()
                .map(|r| r.host_veth.clone())
                .unwrap_or_else(|| driver::host_veth_name(&rec.key));
            portmap::unpublish(&mut nft, rec)?;
            driver::detach(&mut host, &veth)?;
            last = recorded.or(last.take());
            Ok(())
        })?;
        if let Some(_lock) = last_one(&store, call, None)? {
            // No endpoint is left: the bridge that DEL kept goes now.
            teardown(&store, &mut host, &mut nft, call, &p.plan, last.as_ref())?;
        }
        Ok(())
    }
}
