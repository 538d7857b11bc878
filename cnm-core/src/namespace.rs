//! The namespace layer, libnetwork's first API shape: a network whose [`SimpleNetwork::link`]
//! makes a container's interface and hands it back as a value ([`Interface`]), and a network
//! namespace mounted at a path ([`NetworkNamespace`]) that interfaces are added to.
//!
//! ```text
//!  host: the calling thread's netns                    NetworkNamespace: a netns bind-mounted at PATH
//!    bridge BR  (gateways 10.x.0.1/24, fd..::1/64)
//!      └─ cnmXXXXXXXXXXXX (up) ══veth══ cnpXXXXXXXXXXXX ──add_interface──▶ eth0: MAC, MTU, up,
//!         host end, stays                src_name, down   one RTM_SETLINK    addresses, default
//!                                        until added      (NET_NS_FD+IFNAME)  routes via gateways
//!  store <store_dir>/cnm.db: network NAME (driver "simplebridge"), endpoint (NAME, container, eth0)
//! ```
//!
//! Nothing is written twice: the addresses are reserved in cnm's store with cnm-ipam's plan, the
//! bridge and its gateways come from the bridge driver ([`bridge::ensure_bridge`]), the veth from
//! the netlink façade, and the configuration inside the namespace is the bridge driver's sandbox
//! side ([`bridge::configure_sandbox_end`]), which the `cnm-bridge` plugin runs on every ADD.
//!
//! The store records the network with the driver `simplebridge`, not `cnm-bridge`: its endpoint
//! records hold a source name instead of a CNI result, so the plugin must never take one for its
//! own; the store refuses a network name used with two drivers, which keeps them apart.
//!
//! Lifetimes: a [`SimpleNetwork`] value changes nothing when dropped (the network, like a CNI
//! network, lives in the kernel and the store until [`SimpleNetwork::unlink`] and
//! [`SimpleNetwork::delete`]). A [`NetworkNamespace`] is unmounted and its file removed when
//! dropped or deleted; the interfaces inside die with the namespace once nothing holds it.

use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::json;

use crate::cni::config::NetworkName;
use crate::cni::env::{ContainerId, EnvError, IfName};
use crate::cni::result::{IpConfig, Route};
use crate::driver::bridge::plan::MTU_RANGE;
use crate::driver::bridge::{self, BridgeError, BridgePlan, Masquerade, Reach};
use crate::error::Result;
use crate::ipam::{IpamConfigError, IpamPlan};
use crate::netlink::{Handle, NetlinkError, VethSpec};
use crate::netns::{Netns, NetnsError, OwnedNetns};
use crate::plugins::ipam::ip_config;
use crate::rollback::Rollback;
use crate::store::{EndpointKey, EndpointState, NetworkRecord, SqliteStore, Store};

/// The one driver this layer knows.
pub const SIMPLEBRIDGE: &str = "simplebridge";

/// The name [`SimpleNetwork::link`] gives an interface inside the container.
pub const DST_NAME: &str = "eth0";

/// Failures of the namespace layer; each says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// Creating or removing the namespace's mount.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The interface to add is not in the calling thread's namespace.
    #[error("add interface {src} to {}: there is no interface {src} in the calling thread's network namespace", path.display())]
    NoInterface { src: String, path: PathBuf },
    /// The namespace already has an interface with the destination name.
    #[error("add interface {src} to {} as {dst}: the namespace already has an interface {dst}; {src} stays where it was", path.display())]
    NameTaken {
        src: String,
        dst: String,
        path: PathBuf,
    },
    /// A gateway is not in the subnet of the interface's address of its family.
    #[error("interface {dst}: gateway {gateway} is not a neighbour in {}", address.map_or("an address of its family (there is none)".to_owned(), |a| format!("the subnet of its address {a}")))]
    Gateway {
        dst: String,
        gateway: IpAddr,
        address: Option<IpNet>,
    },
    /// A kernel request failed.
    #[error("{doing}: {source}")]
    Netlink {
        doing: String,
        #[source]
        source: NetlinkError,
    },
    /// Configuring the interface inside the namespace failed; it was moved back out.
    #[error("configure {dst} in {}: {source}; it was moved back out as {src}", path.display())]
    Configure {
        src: String,
        dst: String,
        path: PathBuf,
        // Boxed: the crate's error stays small enough to return by value everywhere.
        #[source]
        source: Box<BridgeError>,
    },
    /// `new_network` was asked for a driver this layer does not have.
    #[error("unknown network driver {0:?}; the namespace layer knows \"simplebridge\"")]
    UnknownDriver(String),
    /// A subnet option does not make an address pool.
    #[error("network option {option}: {source}")]
    Subnet {
        option: &'static str,
        #[source]
        source: IpamConfigError,
    },
    /// The MTU option is out of Linux's range.
    #[error("network option mtu: {0} is out of range; Linux accepts 68 to 65535")]
    Mtu(u32),
    /// The container ID is not valid.
    #[error("container ID: {0}")]
    ContainerId(#[source] EnvError),
    /// The container is linked to the network already.
    #[error("container {container} is already linked to network {network}; unlink it first")]
    AlreadyLinked { container: String, network: String },
    /// The network still has linked containers.
    #[error("network {network} still has linked containers ({containers}); unlink them first")]
    InUse { network: String, containers: String },
}

fn netlink(doing: String) -> impl FnOnce(NetlinkError) -> NamespaceError {
    move |source| NamespaceError::Netlink { doing, source }
}

/// One container interface as a value: where it is now (`src_name`, in the host), the name it
/// gets inside the namespace, and the settings [`NetworkNamespace::add_interface`] applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Name in the host until it is added (a temporary, unique name).
    pub src_name: IfName,
    /// Name inside the namespace.
    pub dst_name: IfName,
    /// Hardware address.
    pub mac: [u8; 6],
    /// IPv4 address with its prefix.
    pub address: Option<Ipv4Net>,
    /// IPv6 address with its prefix.
    pub address_v6: Option<Ipv6Net>,
    /// IPv4 default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 default gateway.
    pub gateway_v6: Option<Ipv6Addr>,
    /// MTU.
    pub mtu: u32,
}

impl Interface {
    /// Each gateway must be a neighbour: inside the subnet of the address of its family.
    fn validate(&self) -> Result<(), NamespaceError> {
        let pairs = [
            (self.gateway.map(IpAddr::V4), self.address.map(IpNet::V4)),
            (
                self.gateway_v6.map(IpAddr::V6),
                self.address_v6.map(IpNet::V6),
            ),
        ];
        for (gateway, address) in pairs {
            let Some(gateway) = gateway else { continue };
            if !address.is_some_and(|a| a.contains(&gateway) && a.addr() != gateway) {
                return Err(NamespaceError::Gateway {
                    dst: self.dst_name.to_string(),
                    gateway,
                    address,
                });
            }
        }
        Ok(())
    }

    /// The addresses with their gateways, as the bridge driver's sandbox side takes them.
    fn ips(&self) -> Vec<IpConfig> {
        let v4 = self.address.map(|a| IpConfig {
            address: IpNet::V4(a),
            gateway: self.gateway.map(IpAddr::V4),
            interface: None,
        });
        let v6 = self.address_v6.map(|a| IpConfig {
            address: IpNet::V6(a),
            gateway: self.gateway_v6.map(IpAddr::V6),
            interface: None,
        });
        v4.into_iter().chain(v6).collect()
    }

    /// A default route via each gateway.
    fn routes(&self) -> Vec<Route> {
        let v4 = self
            .gateway
            .map(|gw| Route::new(IpNet::V4(Ipv4Net::default()), Some(IpAddr::V4(gw))));
        let v6 = self
            .gateway_v6
            .map(|gw| Route::new(IpNet::V6(Ipv6Net::default()), Some(IpAddr::V6(gw))));
        v4.into_iter().chain(v6).collect()
    }
}

/// `cnp1a2b3c4d5e6f -> eth0 mac 02:.. inet 10.89.0.2/24 via 10.89.0.1 inet6 .. via .. mtu 1500`.
impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mac = bridge::format_mac(self.mac);
        write!(f, "{} -> {} mac {mac}", self.src_name, self.dst_name)?;
        if let Some(a) = self.address {
            write!(f, " inet {a}")?;
        }
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(a) = self.address_v6 {
            write!(f, " inet6 {a}")?;
        }
        if let Some(gw) = self.gateway_v6 {
            write!(f, " via {gw}")?;
        }
        write!(f, " mtu {}", self.mtu)
    }
}

/// A network namespace mounted at a path, and the interfaces added to it.
///
/// Dropping it (or [`NetworkNamespace::delete`], which reports failures) unmounts the namespace
/// and removes the file; the namespace and the interfaces inside it go once nothing else holds
/// it (a process inside, an open descriptor). A veth end inside takes its peer with it.
#[derive(Debug)]
pub struct NetworkNamespace {
    ns: OwnedNetns,
    interfaces: Vec<Interface>,
}

impl NetworkNamespace {
    /// Creates a new, empty network namespace mounted at `path` (missing parent directories are
    /// created); fails if `path` exists.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, NamespaceError> {
        Ok(NetworkNamespace {
            ns: OwnedNetns::create_at(path)?,
            interfaces: Vec::new(),
        })
    }

    /// Where the namespace is mounted.
    pub fn path(&self) -> &Path {
        self.ns.path()
    }

    /// The namespace, to run code inside it ([`Netns::run`]) or open sockets there.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The interfaces added so far, in order (what was added, not a look at the kernel).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Moves `iface` from the calling thread's namespace into this one, renaming it from its
    /// source to its destination name in the same netlink message, then applies its settings:
    /// MAC and MTU (set before the move), up, addresses (IPv6 without DAD), a default route via
    /// each gateway.
    ///
    /// On failure nothing is left changed: the interface is moved back out under its source
    /// name (the kernel moves a link, then renames it, so a taken destination name fails after
    /// the move), with its MAC, MTU and up state restored; as on any move, addresses it had in
    /// the calling thread's namespace do not come back.
    pub fn add_interface(&mut self, iface: &Interface) -> Result<(), NamespaceError> {
        iface.validate()?;
        let src = iface.src_name.as_str();
        let dst = iface.dst_name.as_str();
        let path = self.ns.path();
        let doing =
            |what: &str| format!("add interface {src} to {} as {dst}: {what}", path.display());
        let host = RefCell::new(Handle::new().map_err(netlink(doing("open a netlink socket")))?);
        let link = host
            .borrow_mut()
            .link_by_name(src)
            .map_err(netlink(doing("look up the interface")))?
            .ok_or_else(|| NamespaceError::NoInterface {
                src: src.to_owned(),
                path: path.to_owned(),
            })?;
        let mut undo = Rollback::new();
        if link.mac != Some(iface.mac) || link.mtu != iface.mtu {
            undo.push("restore the MAC address and MTU", || {
                let h = &mut *host.borrow_mut();
                let l = h.link_by_name(src).map_err(|e| e.to_string())?;
                let Some(l) = l else { return Ok(()) };
                if let Some(mac) = link.mac.filter(|&m| l.mac != Some(m)) {
                    h.set_mac(l.index, mac).map_err(|e| e.to_string())?;
                }
                if l.mtu != link.mtu {
                    h.set_mtu(l.index, link.mtu).map_err(|e| e.to_string())?;
                }
                Ok(())
            });
            let h = &mut *host.borrow_mut();
            if link.mac != Some(iface.mac) {
                h.set_mac(link.index, iface.mac)
                    .map_err(netlink(doing("set the MAC address")))?;
            }
            if link.mtu != iface.mtu {
                h.set_mtu(link.index, iface.mtu)
                    .map_err(netlink(doing("set the MTU")))?;
            }
        }
        undo.push("move the interface back out", || {
            move_back(&self.ns, iface, link.up).map_err(|e| e.to_string())
        });
        match host
            .borrow_mut()
            .move_to_netns_as(link.index, &self.ns, dst)
        {
            Ok(()) => {}
            Err(NetlinkError::Exists { .. }) => {
                return Err(NamespaceError::NameTaken {
                    src: src.to_owned(),
                    dst: dst.to_owned(),
                    path: path.to_owned(),
                })
            }
            Err(e) => return Err(netlink(doing("move it into the namespace"))(e)),
        }
        tracing::info!("moved {src} into {} as {dst}", path.display());
        let configure = || -> Result<(), crate::driver::bridge::BridgeError> {
            let mut inside = Handle::new_in(&self.ns)?;
            bridge::configure_sandbox_end(&mut inside, dst, None, &iface.ips(), &iface.routes())
        };
        configure().map_err(|source| NamespaceError::Configure {
            src: src.to_owned(),
            dst: dst.to_owned(),
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        undo.commit();
        self.interfaces.push(iface.clone());
        Ok(())
    }

    /// Unmounts the namespace and removes its file now, and says what failed.
    pub fn delete(self) -> Result<(), NamespaceError> {
        Ok(self.ns.remove()?)
    }
}

/// Undo of a move: the interface goes back to the calling thread's namespace under its
/// source name, up again if it was. Inside, it is found by MAC under its destination name, or
/// under its source name: the kernel moves a link under the name it has and renames it after,
/// so a destination name that is taken leaves it inside under its source name (with EEXIST).
fn move_back(ns: &Netns, iface: &Interface, was_up: bool) -> Result<(), NetlinkError> {
    let here = Netns::current()?;
    let mut inside = Handle::new_in(ns)?;
    let mut moved = None;
    for name in [&iface.dst_name, &iface.src_name] {
        moved = inside
            .link_by_name(name.as_str())?
            .filter(|l| l.mac == Some(iface.mac));
        if moved.is_some() {
            break;
        }
    }
    let Some(moved) = moved else { return Ok(()) };
    inside.move_to_netns_as(moved.index, &here, iface.src_name.as_str())?;
    tracing::info!(
        "moved {} back out of {} as {}",
        moved.name,
        ns.path().display(),
        iface.src_name
    );
    if was_up {
        let mut host = Handle::new()?;
        if let Some(l) = host.link_by_name(iface.src_name.as_str())? {
            host.set_up(l.index)?;
        }
    }
    Ok(())
}

/// Options of a `simplebridge` network.
#[derive(Debug, Clone)]
pub struct SimpleBridgeOptions {
    /// The network's name in the store.
    pub name: NetworkName,
    /// The bridge device (created, with the alias `cnm:<name>`, unless it exists).
    pub bridge: IfName,
    /// IPv4 pool; its first host is the gateway, on the bridge.
    pub subnet: Ipv4Net,
    /// IPv6 pool, if any; its first host is the gateway, on the bridge.
    pub subnet_v6: Option<Ipv6Net>,
    /// MTU of the bridge cnm creates and of every veth (1500 is Linux's and Docker's default).
    pub mtu: u32,
    /// Directory of cnm's store (an absolute path; the plugins' default is
    /// [`crate::ipam::config::DEFAULT_DATA_DIR`]).
    pub store_dir: PathBuf,
}

/// Makes a network run by `driver` (only [`SIMPLEBRIDGE`] exists): options are validated and
/// the store opened; the bridge is made by the first [`SimpleNetwork::link`].
pub fn new_network(driver: &str, options: SimpleBridgeOptions) -> Result<SimpleNetwork> {
    if driver != SIMPLEBRIDGE {
        return Err(NamespaceError::UnknownDriver(driver.to_owned()).into());
    }
    SimpleNetwork::new(options)
}

/// A `simplebridge` network: one Linux bridge in the calling thread's namespace, a veth pair
/// per linked container, addresses from cnm's store.
#[derive(Debug)]
pub struct SimpleNetwork {
    plan: BridgePlan,
    ipam: IpamPlan,
    record: NetworkRecord,
    gateways: Vec<IpNet>,
    mtu: u32,
    store: SqliteStore,
}

/// The address pool of one subnet option, validated as cnm-ipam validates `ipam.subnet`.
fn pool(option: &'static str, subnet: IpNet) -> Result<IpamPlan, NamespaceError> {
    let raw = json!({ "subnet": subnet });
    let raw = raw.as_object().expect("an object literal");
    IpamPlan::parse(raw).map_err(|source| NamespaceError::Subnet { option, source })
}

impl SimpleNetwork {
    fn new(o: SimpleBridgeOptions) -> Result<Self> {
        if !MTU_RANGE.contains(&o.mtu) {
            return Err(NamespaceError::Mtu(o.mtu).into());
        }
        let mut ipam = pool("subnet", IpNet::V4(o.subnet))?;
        if let Some(v6) = o.subnet_v6 {
            ipam.sets.extend(pool("subnet_v6", IpNet::V6(v6))?.sets);
        }
        ipam.data_dir = o.store_dir.clone();
        let gateways = ipam
            .sets
            .iter()
            .flat_map(|s| &s.ranges)
            .map(|r| IpNet::new(r.gateway, r.subnet.prefix_len()).expect("a subnet's prefix"))
            .collect();
        let plan = BridgePlan {
            bridge: o.bridge,
            is_gateway: true,
            default_route: true,
            force_address: false,
            mtu: Some(o.mtu),
            hairpin: false,
            promisc: false,
            // No firewall elements: no masquerade, no forwarding set-up, no isolation from
            // other networks; containers on the bridge reach each other and the gateway.
            masquerade: Masquerade::Off,
            reach: Reach::Icc,
            internal: false,
            isolated: false,
        };
        let record = NetworkRecord {
            name: o.name,
            driver: SIMPLEBRIDGE.into(),
            subnets: ipam.subnets(),
            config: json!({"bridge": plan.bridge.as_str(), "mtu": o.mtu}),
        };
        let store = SqliteStore::open(&o.store_dir)?;
        Ok(SimpleNetwork {
            plan,
            ipam,
            record,
            gateways,
            mtu: o.mtu,
            store,
        })
    }

    /// The network's name.
    pub fn name(&self) -> &NetworkName {
        &self.record.name
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &IfName {
        &self.plan.bridge
    }

    fn key(&self, container_id: &str) -> Result<EndpointKey> {
        Ok(EndpointKey {
            network: self.record.name.clone(),
            container_id: ContainerId::new(container_id).map_err(NamespaceError::ContainerId)?,
            ifname: IfName::new(DST_NAME).expect("a valid literal"),
        })
    }

    /// Makes the container's interface: reserves its addresses, ensures the bridge with its
    /// gateways, and creates a veth pair in the calling thread's namespace, the host end on the
    /// bridge and up, the other end (the returned [`Interface`]'s `src_name`) down until it is
    /// added to a [`NetworkNamespace`]. On failure nothing of it is left.
    pub fn link(&mut self, container_id: &str) -> Result<Interface> {
        let key = self.key(container_id)?;
        let host_veth = bridge::host_veth_name(&key);
        // The peer's temporary name: the host end's, with `cnp` for `cnm`.
        let src_name = IfName::new(&format!("cnp{}", &host_veth[3..])).expect("15 bytes of hex");
        let store = RefCell::new(&mut self.store);
        let host = RefCell::new(Handle::new().map_err(BridgeError::from)?);
        let reservation =
            store
                .borrow_mut()
                .reserve_endpoint(&self.record, &key, &self.ipam.sets, &[])?;
        if reservation.existing {
            let rec = store.borrow().endpoint(&key)?;
            if rec.is_some_and(|r| r.state == EndpointState::Created) {
                return Err(NamespaceError::AlreadyLinked {
                    container: container_id.to_owned(),
                    network: key.network.to_string(),
                }
                .into());
            }
            // An earlier link died half-way: remove what it left, then make it again.
            bridge::detach(&mut host.borrow_mut(), &host_veth)?;
        }
        let mut undo = Rollback::new();
        undo.push("release the reservation", || {
            store
                .borrow_mut()
                .release_endpoint(&key)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let ips = reservation
            .addresses
            .iter()
            .map(|a| ip_config(&self.ipam, &key, a))
            .collect::<Result<Vec<_>>>()?;
        let br = bridge::ensure_bridge(
            &mut host.borrow_mut(),
            &self.plan,
            &self.record.name,
            &self.gateways,
        )?;
        undo.push("delete the veth pair", || {
            bridge::detach(&mut host.borrow_mut(), &host_veth).map_err(|e| e.to_string())
        });
        let mac = bridge::random_mac();
        host.borrow_mut()
            .create_veth(&VethSpec {
                name: &host_veth,
                peer_name: src_name.as_str(),
                peer_netns: None,
                mtu: Some(self.mtu),
                mac: Some(bridge::random_mac()),
                peer_mac: Some(mac),
                master: Some(br.index),
                up: true,
            })
            .map_err(BridgeError::from)?;
        tracing::info!("created veth {host_veth} (peer {src_name}) on {}", br.name);
        let mut iface = Interface {
            src_name,
            dst_name: key.ifname.clone(),
            mac,
            address: None,
            address_v6: None,
            gateway: None,
            gateway_v6: None,
            mtu: self.mtu,
        };
        for ip in ips {
            match (ip.address, ip.gateway) {
                (IpNet::V4(a), gw) => {
                    iface.address = Some(a);
                    iface.gateway = match gw {
                        Some(IpAddr::V4(g)) => Some(g),
                        _ => None,
                    };
                }
                (IpNet::V6(a), gw) => {
                    iface.address_v6 = Some(a);
                    iface.gateway_v6 = match gw {
                        Some(IpAddr::V6(g)) => Some(g),
                        _ => None,
                    };
                }
            }
        }
        let data = json!({
            "hostVeth": host_veth,
            "srcName": iface.src_name.as_str(),
            "mac": bridge::format_mac(mac),
        });
        store.borrow_mut().commit_endpoint(&key, &data)?;
        undo.commit();
        Ok(iface)
    }

    /// Deletes the container's veth pair (both ends, wherever the other end is) and releases
    /// its addresses. A container that is not linked, or whose veth is gone, is done already.
    pub fn unlink(&mut self, container_id: &str) -> Result<()> {
        let key = self.key(container_id)?;
        let host_veth = self
            .store
            .endpoint(&key)?
            .and_then(|r| r.data["hostVeth"].as_str().map(str::to_owned))
            .unwrap_or_else(|| bridge::host_veth_name(&key));
        let mut host = Handle::new().map_err(BridgeError::from)?;
        bridge::detach(&mut host, &host_veth)?;
        self.store.release_endpoint(&key)?;
        Ok(())
    }

    /// Deletes the network: its bridge if cnm made it, and its record in the store. Refused
    /// while containers are linked.
    pub fn delete(mut self) -> Result<()> {
        let name = &self.record.name;
        let linked = self.store.endpoints(Some(name))?;
        if !linked.is_empty() {
            let ids: Vec<String> = linked
                .iter()
                .map(|r| r.key.container_id.to_string())
                .collect();
            return Err(NamespaceError::InUse {
                network: name.to_string(),
                containers: ids.join(", "),
            }
            .into());
        }
        let mut host = Handle::new().map_err(BridgeError::from)?;
        bridge::remove_bridge_if_ours(&mut host, &self.plan, name)?;
        self.store.remove_network_if_unused(name)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
