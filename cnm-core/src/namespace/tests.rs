//! The namespace layer: option checks without a kernel; the rest in throwaway namespaces, the
//! "host" one of them, each test checking that what it did not keep is gone.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::driver::bridge::random_mac;
use crate::error::Error;
use crate::netlink::{IpFamily, Link};
use crate::netns::NETNS_RUN_DIR;
use crate::store::StoreError;

/// A throwaway host namespace and a directory for the store and the namespaces' mounts.
struct Lab {
    host: OwnedNetns,
    dir: tempfile::TempDir,
}

impl Lab {
    /// `None` (after saying "skipped") when not root.
    fn new() -> Option<Lab> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (creates network namespaces and links)");
            return None;
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("cnmt-ns-{}-{n}", std::process::id());
        Some(Lab {
            host: OwnedNetns::create(NETNS_RUN_DIR, &name).unwrap(),
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn options(&self, subnet: &str, subnet_v6: Option<&str>) -> SimpleBridgeOptions {
        SimpleBridgeOptions {
            name: NetworkName::new("lab").unwrap(),
            bridge: IfName::new("cnmt-br0").unwrap(),
            subnet: subnet.parse().unwrap(),
            subnet_v6: subnet_v6.map(|s| s.parse().unwrap()),
            mtu: 1400,
            store_dir: self.dir.path().join("store"),
        }
    }

    /// Runs `f` on a thread inside the host namespace (the calling thread never moves).
    fn in_host<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.host
            .run(f)
            .expect("the test body inside the host namespace")
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("store")).unwrap()
    }
}

fn links(ns: &Netns) -> Vec<Link> {
    Handle::new_in(ns).unwrap().links().unwrap()
}

fn names(ns: &Netns) -> Vec<String> {
    let mut names: Vec<String> = links(ns).into_iter().map(|l| l.name).collect();
    names.sort();
    names
}

fn host_link(name: &str) -> Option<Link> {
    Handle::new().unwrap().link_by_name(name).unwrap()
}

fn iface(src: &str) -> Interface {
    Interface {
        src_name: IfName::new(src).unwrap(),
        dst_name: IfName::new("eth0").unwrap(),
        mac: random_mac(),
        address: Some("10.91.0.2/24".parse().unwrap()),
        address_v6: None,
        gateway: Some("10.91.0.1".parse().unwrap()),
        gateway_v6: None,
        mtu: 1500,
    }
}

#[test]
fn options_and_interfaces_are_checked_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let good = || SimpleBridgeOptions {
        name: NetworkName::new("n").unwrap(),
        bridge: IfName::new("br0").unwrap(),
        subnet: "10.91.0.0/24".parse().unwrap(),
        subnet_v6: None,
        mtu: 1500,
        store_dir: dir.path().join("store"),
    };
    let err = |driver: &str, o: SimpleBridgeOptions| new_network(driver, o).unwrap_err();
    let e = err("overlay", good());
    assert!(matches!(
        e,
        Error::Namespace(NamespaceError::UnknownDriver(_))
    ));
    assert_eq!(
        e.to_string(),
        "unknown network driver \"overlay\"; the namespace layer knows \"simplebridge\""
    );
    let e = err("simplebridge", SimpleBridgeOptions { mtu: 67, ..good() });
    assert!(e.to_string().contains("mtu: 67 is out of range"), "{e}");
    let e = err(
        "simplebridge",
        SimpleBridgeOptions {
            subnet: "10.91.0.5/24".parse().unwrap(),
            ..good()
        },
    );
    assert!(e.to_string().starts_with("network option subnet: "), "{e}");
    assert!(e.to_string().contains("write 10.91.0.0/24"), "{e}");
    let e = err(
        "simplebridge",
        SimpleBridgeOptions {
            subnet_v6: Some("fd91::/127".parse().unwrap()),
            ..good()
        },
    );
    assert!(
        e.to_string().starts_with("network option subnet_v6: "),
        "{e}"
    );
    let e = err(
        "simplebridge",
        SimpleBridgeOptions {
            store_dir: "relative".into(),
            ..good()
        },
    );
    assert!(matches!(e, Error::Store(StoreError::Dir { .. })), "{e}");
    assert!(!dir.path().join("store").exists());

    let mut i = iface("cnp0");
    assert!(i.validate().is_ok());
    i.gateway = Some("10.92.0.1".parse().unwrap());
    let e = i.validate().unwrap_err().to_string();
    assert_eq!(
        e,
        "interface eth0: gateway 10.92.0.1 is not a neighbour in the subnet of its address 10.91.0.2/24"
    );
    i.gateway_v6 = Some("fd91::1".parse().unwrap());
    i.gateway = None;
    assert!(i
        .validate()
        .unwrap_err()
        .to_string()
        .contains("(there is none)"));
}

#[test]
fn an_interface_prints_as_one_line() {
    let i = Interface {
        mac: [2, 0, 0, 0, 0, 1],
        address_v6: Some("fd91::2/64".parse().unwrap()),
        gateway_v6: Some("fd91::1".parse().unwrap()),
        ..iface("cnp0")
    };
    assert_eq!(
        i.to_string(),
        "cnp0 -> eth0 mac 02:00:00:00:00:01 inet 10.91.0.2/24 via 10.91.0.1 inet6 fd91::2/64 via fd91::1 mtu 1500"
    );
}

#[test]
fn link_add_interface_unlink_and_delete() {
    let Some(lab) = Lab::new() else { return };
    let options = lab.options("10.91.0.0/24", Some("fd91::/64"));
    let again = options.clone();
    let ns_path = lab.dir.path().join("netns").join("c1");
    lab.in_host(|| {
        let mut net = new_network(SIMPLEBRIDGE, options).unwrap();
        let i1 = net.link("c1").unwrap();
        let i2 = net.link("c2").unwrap();
        assert_eq!(i1.address, Some("10.91.0.2/24".parse().unwrap()));
        assert_eq!(i1.gateway, Some("10.91.0.1".parse().unwrap()));
        assert_eq!(i1.address_v6, Some("fd91::2/64".parse().unwrap()));
        assert_eq!(i1.gateway_v6, Some("fd91::1".parse().unwrap()));
        assert_eq!(i2.address, Some("10.91.0.3/24".parse().unwrap()));
        assert_eq!((i1.dst_name.as_str(), i1.mtu), ("eth0", 1400));
        assert!(i1.src_name.as_str().starts_with("cnp"));
        assert_ne!(i1.src_name, i2.src_name);
        let e = net.link("c1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "container c1 is already linked to network lab; unlink it first"
        );
        let e = net.link("-bad").unwrap_err();
        assert!(e.to_string().starts_with("container ID: "), "{e}");

        // Host side: the bridge with both gateways, the peer down in the host until added.
        let br = host_link("cnmt-br0").unwrap();
        let mut h = Handle::new().unwrap();
        let gws: Vec<String> = h
            .addresses(Some(br.index))
            .unwrap()
            .iter()
            .map(|a| a.net.to_string())
            .collect();
        assert!(gws.contains(&"10.91.0.1/24".into()), "{gws:?}");
        assert!(gws.contains(&"fd91::1/64".into()), "{gws:?}");
        let peer = host_link(i1.src_name.as_str()).unwrap();
        assert_eq!((peer.mac, peer.mtu, peer.up), (Some(i1.mac), 1400, false));

        let mut ns = NetworkNamespace::create(&ns_path).unwrap();
        assert_eq!(ns.path(), ns_path);
        ns.add_interface(&i1).unwrap();
        assert_eq!(ns.interfaces(), std::slice::from_ref(&i1));
        assert!(host_link(i1.src_name.as_str()).is_none());
        let mut inside = Handle::new_in(ns.netns()).unwrap();
        let eth0 = inside.link_by_name("eth0").unwrap().unwrap();
        assert_eq!((eth0.mac, eth0.mtu, eth0.up), (Some(i1.mac), 1400, true));
        let addrs: Vec<String> = inside
            .addresses(Some(eth0.index))
            .unwrap()
            .iter()
            .map(|a| a.net.to_string())
            .collect();
        assert!(addrs.contains(&"10.91.0.2/24".into()), "{addrs:?}");
        assert!(addrs.contains(&"fd91::2/64".into()), "{addrs:?}");
        for (family, gw) in [(IpFamily::V4, "10.91.0.1"), (IpFamily::V6, "fd91::1")] {
            let routes = inside.routes(family).unwrap();
            assert!(
                routes.iter().any(|r| r.dst.prefix_len() == 0
                    && r.gw == Some(gw.parse().unwrap())
                    && r.oif == Some(eth0.index)),
                "no default route via {gw}: {routes:?}"
            );
        }
        drop(inside);

        // Another value for the same network (as another process would have) refuses too.
        let e = new_network(SIMPLEBRIDGE, again).unwrap().delete();
        let e = e.unwrap_err().to_string();
        assert_eq!(
            e,
            "network lab still has linked containers (c1, c2); unlink them first"
        );
        net.unlink("c1").unwrap();
        net.unlink("c2").unwrap();
        // Deleting the host end took the end inside the namespace with it.
        assert_eq!(names(ns.netns()), ["lo"]);
        net.unlink("c1").unwrap();
        net.delete().unwrap();
        assert_eq!(names(&Netns::current().unwrap()), ["lo"]);
        ns.delete().unwrap();
    });
    assert!(!ns_path.exists());
    let store = lab.store();
    assert!(store.endpoints(None).unwrap().is_empty());
    assert!(store.networks().unwrap().is_empty());
}

#[test]
fn a_missing_interface_is_refused_and_nothing_changes() {
    let Some(lab) = Lab::new() else { return };
    let path = lab.dir.path().join("c1");
    lab.in_host(|| {
        let mut ns = NetworkNamespace::create(&path).unwrap();
        let e = ns.add_interface(&iface("nope0")).unwrap_err();
        assert!(matches!(e, NamespaceError::NoInterface { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "add interface nope0 to {}: there is no interface nope0 in the calling thread's network namespace",
                path.display()
            )
        );
        assert!(ns.interfaces().is_empty());
        assert_eq!(names(ns.netns()), ["lo"]);
    });
    assert!(!path.exists(), "dropping the namespace removes its mount");
}

#[test]
fn a_taken_name_is_refused_and_the_interface_stays_as_it_was() {
    let Some(lab) = Lab::new() else { return };
    let options = lab.options("10.91.0.0/24", None);
    let path = lab.dir.path().join("c1");
    lab.in_host(|| {
        let mut net = new_network(SIMPLEBRIDGE, options).unwrap();
        let i1 = net.link("c1").unwrap();
        let mut ns = NetworkNamespace::create(&path).unwrap();
        Handle::new_in(ns.netns())
            .unwrap()
            .create_veth(&VethSpec {
                name: "eth0",
                peer_name: "other0",
                ..Default::default()
            })
            .unwrap();
        // Another MAC and MTU too: they are set before the move, so they must be undone.
        let wanted = Interface {
            mac: random_mac(),
            mtu: 1300,
            ..i1.clone()
        };
        let e = ns.add_interface(&wanted).unwrap_err();
        assert!(matches!(e, NamespaceError::NameTaken { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("the namespace already has an interface eth0"),
            "{e}"
        );
        let peer = host_link(i1.src_name.as_str()).expect("still in the host");
        assert_eq!((peer.mac, peer.mtu, peer.up), (Some(i1.mac), 1400, false));
        assert!(ns.interfaces().is_empty());
        assert_eq!(names(ns.netns()), ["eth0", "lo", "other0"]);
        let theirs = Handle::new_in(ns.netns())
            .unwrap()
            .link_by_name("eth0")
            .unwrap()
            .unwrap();
        assert_ne!(theirs.mac, Some(i1.mac));
        net.unlink("c1").unwrap();
        net.delete().unwrap();
        assert_eq!(names(&Netns::current().unwrap()), ["lo"]);
    });
    assert!(lab.store().endpoints(None).unwrap().is_empty());
}

#[test]
fn a_failure_inside_moves_the_interface_back_out() {
    let Some(lab) = Lab::new() else { return };
    let options = lab.options("10.91.0.0/24", None);
    let path = lab.dir.path().join("c1");
    lab.in_host(|| {
        let mut net = new_network(SIMPLEBRIDGE, options).unwrap();
        let i1 = net.link("c1").unwrap();
        let mut ns = NetworkNamespace::create(&path).unwrap();
        // The kernel refuses a multicast address: a failure after the move, inside.
        let wanted = Interface {
            mtu: 1300,
            address_v6: Some("ff05::1/64".parse().unwrap()),
            ..i1.clone()
        };
        let e = ns.add_interface(&wanted).unwrap_err();
        assert!(matches!(e, NamespaceError::Configure { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("configure eth0 in {}: ", path.display())),
            "{msg}"
        );
        assert!(
            msg.ends_with(&format!("it was moved back out as {}", i1.src_name)),
            "{msg}"
        );
        let peer = host_link(i1.src_name.as_str()).expect("back in the host");
        assert_eq!((peer.mac, peer.mtu, peer.up), (Some(i1.mac), 1400, false));
        assert!(ns.interfaces().is_empty());
        assert_eq!(names(ns.netns()), ["lo"]);
        // The value still works once corrected.
        ns.add_interface(&i1).unwrap();
        net.unlink("c1").unwrap();
        net.delete().unwrap();
    });
}

#[test]
fn an_exhausted_pool_leaves_nothing_of_the_failed_link() {
    let Some(lab) = Lab::new() else { return };
    // A /30 holds two hosts: the gateway and one container.
    let options = lab.options("10.91.0.0/30", None);
    lab.in_host(|| {
        let mut net = new_network(SIMPLEBRIDGE, options).unwrap();
        let i1 = net.link("c1").unwrap();
        let host = Netns::current().unwrap();
        let before = names(&host);
        let e = net.link("c2").unwrap_err();
        assert!(matches!(e, Error::Store(StoreError::Alloc { .. })), "{e}");
        assert_eq!(e.code(), crate::cni::error::ErrorCode::AddressUnavailable);
        assert_eq!(names(&host), before);
        assert!(before.contains(&i1.src_name.to_string()));
        net.unlink("c1").unwrap();
        net.delete().unwrap();
        assert_eq!(names(&host), ["lo"]);
    });
    let store = lab.store();
    assert!(store.endpoints(None).unwrap().is_empty());
    assert!(store.networks().unwrap().is_empty());
}
