//! Kernel tests, all inside throwaway namespaces: the "host" is one too, so nothing here ever
//! touches the machine's own links.

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use ipnet::IpNet;

use super::*;
use crate::netns::{OwnedNetns, NETNS_RUN_DIR};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A host namespace and a container namespace, with a handle opened inside each.
struct Lab {
    host: OwnedNetns,
    ctr: OwnedNetns,
    h: Handle,
    c: Handle,
}

impl Lab {
    /// `None` (after saying "skipped") when not root.
    fn new() -> Option<Lab> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (creates network namespaces and links)");
            return None;
        }
        let host = OwnedNetns::create(NETNS_RUN_DIR, &unique()).unwrap();
        let ctr = OwnedNetns::create(NETNS_RUN_DIR, &unique()).unwrap();
        let h = Handle::new_in(&host).unwrap();
        let c = Handle::new_in(&ctr).unwrap();
        Some(Lab { host, ctr, h, c })
    }

    /// A bridge `br0` (up) and a veth `veth0` on it whose peer is `eth0` in the container.
    fn bridge_and_veth(&mut self) -> (Link, Link, Link) {
        self.h
            .create_bridge(&BridgeSpec {
                name: "br0",
                up: true,
                ..Default::default()
            })
            .unwrap();
        let br = self.h.link_by_name("br0").unwrap().unwrap();
        let peer_index = self
            .h
            .create_veth(&VethSpec {
                name: "veth0",
                peer_name: "eth0",
                peer_netns: Some(&self.ctr),
                mtu: Some(1400),
                master: Some(br.index),
                up: true,
                ..Default::default()
            })
            .unwrap();
        let veth = self.h.link_by_name("veth0").unwrap().unwrap();
        let eth0 = self.c.link_by_name("eth0").unwrap().unwrap();
        // The echoed creation names the peer by its index inside the container; kernels older
        // than 6.3 do not echo, and then the caller looks it up.
        if kernel_at_least(6, 3) {
            assert_eq!(peer_index, Some(eth0.index));
        } else {
            assert!(peer_index.is_none() || peer_index == Some(eth0.index));
        }
        (br, veth, eth0)
    }
}

/// Whether the running kernel's release is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

fn unique() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("cnmt-nl-{}-{n}", std::process::id())
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Runs `args` inside `ns` with `ip netns exec`; returns (success, stdout).
fn exec_in(ns: &OwnedNetns, args: &[&str]) -> (bool, String) {
    let name = ns.path().file_name().unwrap().to_str().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", name])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn ping(ns: &OwnedNetns, ip: &str) -> bool {
    // The first attempt may spend its second on neighbour discovery.
    (0..3).any(|_| exec_in(ns, &["ping", "-c1", "-W1", ip]).0)
}

#[test]
fn veth_into_container_on_bridge_with_addresses_routes_and_ping() {
    let Some(mut lab) = Lab::new() else { return };
    let (br, veth, eth0) = lab.bridge_and_veth();
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert!(br.up);
    assert_eq!(veth.kind.as_deref(), Some("veth"));
    assert_eq!(
        veth.master,
        Some(br.index),
        "attached in the create message"
    );
    assert!(veth.up);
    assert_eq!(veth.mtu, 1400);
    assert!(veth.netns_id.is_some(), "peer lives in another namespace");
    assert_eq!(eth0.kind.as_deref(), Some("veth"));
    assert_eq!(eth0.mtu, 1400);
    assert!(!eth0.up);
    assert!(lab.h.link_by_name("eth0").unwrap().is_none());
    assert_eq!(lab.h.link_by_index(veth.index).unwrap(), Some(veth.clone()));

    lab.h.add_address(br.index, net("10.99.0.1/24")).unwrap();
    let v6 = |s| AddrSpec {
        net: net(s),
        nodad: true,
    };
    lab.h.add_address(br.index, v6("fd00:99::1/64")).unwrap();
    lab.c.add_address(eth0.index, net("10.99.0.2/24")).unwrap();
    lab.c.add_address(eth0.index, v6("fd00:99::2/64")).unwrap();
    lab.c.set_up(eth0.index).unwrap();
    let lo = lab.c.link_by_name("lo").unwrap().unwrap();
    lab.c.set_up(lo.index).unwrap();
    let gw4: IpAddr = "10.99.0.1".parse().unwrap();
    let gw6: IpAddr = "fd00:99::1".parse().unwrap();
    lab.c
        .add_route(&RouteSpec {
            gw: Some(gw4),
            ..RouteSpec::new(net("0.0.0.0/0"))
        })
        .unwrap();
    lab.c
        .add_route(&RouteSpec {
            gw: Some(gw6),
            oif: Some(eth0.index),
            ..RouteSpec::new(net("::/0"))
        })
        .unwrap();

    let addrs = lab.c.addresses(Some(eth0.index)).unwrap();
    let nets: Vec<IpNet> = addrs.iter().map(|a| a.net).collect();
    assert!(nets.contains(&net("10.99.0.2/24")), "{addrs:?}");
    let ours = addrs
        .iter()
        .find(|a| a.net == net("fd00:99::2/64"))
        .unwrap();
    assert!(!ours.tentative, "nodad: usable at once");
    assert!(addrs.iter().all(|a| a.index == eth0.index));
    assert!(
        lab.c.addresses(None).unwrap().len() > addrs.len(),
        "lo has 127.0.0.1"
    );

    let v4 = lab.c.routes(IpFamily::V4).unwrap();
    let default = v4
        .iter()
        .find(|r| r.dst.prefix_len() == 0 && r.table == MAIN_TABLE)
        .unwrap();
    assert_eq!(default.gw, Some(gw4));
    assert_eq!(default.oif, Some(eth0.index));
    assert_eq!(default.scope, Scope::Universe);
    let connected = v4.iter().find(|r| r.dst == net("10.99.0.0/24")).unwrap();
    assert_eq!(connected.scope, Scope::Link);
    let v6routes = lab.c.routes(IpFamily::V6).unwrap();
    assert!(v6routes
        .iter()
        .any(|r| r.dst.prefix_len() == 0 && r.gw == Some(gw6)));

    assert!(ping(&lab.ctr, "10.99.0.1"), "container reaches the bridge");
    assert!(ping(&lab.host, "10.99.0.2"), "host reaches the container");
    assert!(ping(&lab.ctr, "fd00:99::1"), "IPv6 without waiting for DAD");
}

#[test]
fn typed_not_found_and_exists() {
    let Some(mut lab) = Lab::new() else { return };
    let (br, veth, eth0) = lab.bridge_and_veth();
    let again = lab.h.create_bridge(&BridgeSpec {
        name: "br0",
        ..Default::default()
    });
    assert!(
        matches!(again, Err(NetlinkError::Exists { .. })),
        "{again:?}"
    );
    let taken = lab
        .h
        .create_veth(&VethSpec {
            name: "veth0",
            peer_name: "eth1",
            peer_netns: Some(&lab.ctr),
            ..Default::default()
        })
        .unwrap_err();
    let text = taken.to_string();
    assert!(matches!(taken, NetlinkError::Exists { .. }), "{text}");
    let expected = format!(
        "create veth veth0 (peer eth1 in {}): File exists",
        lab.ctr.path().display()
    );
    assert_eq!(text, expected);

    assert!(lab.h.link_by_name("nope").unwrap().is_none());
    assert!(lab.h.link_by_index(99_999).unwrap().is_none());
    for r in [
        lab.h.delete_link(99_999),
        lab.h.delete_link_by_name("nope"),
        lab.h.set_up(99_999),
        lab.h.set_mtu(99_999, 1500),
        lab.h.del_address(br.index, net("10.1.2.3/24")),
        lab.c.del_route(&RouteSpec::new(net("10.77.0.0/16"))),
        lab.c.add_address(99_999, net("10.1.2.3/24")),
    ] {
        assert!(matches!(r, Err(NetlinkError::NotFound { .. })), "{r:?}");
    }

    lab.c.set_up(eth0.index).unwrap();
    lab.c.add_address(eth0.index, net("10.98.0.2/24")).unwrap();
    let dup = lab.c.add_address(eth0.index, net("10.98.0.2/24"));
    assert!(matches!(dup, Err(NetlinkError::Exists { .. })), "{dup:?}");
    let route = RouteSpec {
        oif: Some(eth0.index),
        ..RouteSpec::new(net("10.77.0.0/16"))
    };
    lab.c.add_route(&route).unwrap();
    let dup = lab.c.add_route(&route);
    assert!(matches!(dup, Err(NetlinkError::Exists { .. })), "{dup:?}");
    lab.c.del_route(&route).unwrap();
    let gone = lab.c.del_route(&route);
    assert!(
        matches!(gone, Err(NetlinkError::NotFound { .. })),
        "{gone:?}"
    );

    // Any other refusal keeps its errno and, when the kernel gives one, its reason.
    let bad = lab
        .c
        .add_route(&RouteSpec {
            gw: Some("192.0.2.1".parse().unwrap()),
            ..RouteSpec::new(net("10.66.0.0/16"))
        })
        .unwrap_err();
    assert!(matches!(bad, NetlinkError::Kernel { .. }), "{bad}");
    // "... : Network is unreachable (Nexthop has invalid gateway)" on this kernel.
    assert!(
        matches!(
            &bad,
            NetlinkError::Kernel {
                detail: Some(_),
                ..
            }
        ),
        "{bad}"
    );
    assert!(bad
        .to_string()
        .starts_with("add route 10.66.0.0/16 via 192.0.2.1: "));
    let _ = veth;
}

#[test]
fn deleting_the_host_end_removes_both() {
    let Some(mut lab) = Lab::new() else { return };
    let (_, veth, _) = lab.bridge_and_veth();
    lab.h.delete_link(veth.index).unwrap();
    assert!(lab.h.link_by_name("veth0").unwrap().is_none());
    assert!(lab.c.link_by_name("eth0").unwrap().is_none());
    let again = lab.h.delete_link(veth.index);
    assert!(
        matches!(again, Err(NetlinkError::NotFound { .. })),
        "{again:?}"
    );
    // Names work too, and the bridge goes with its name.
    lab.h.delete_link_by_name("br0").unwrap();
    assert!(lab.h.links().unwrap().iter().all(|l| l.name == "lo"));
}

#[test]
fn link_setters() {
    let Some(mut lab) = Lab::new() else { return };
    let (br, veth, eth0) = lab.bridge_and_veth();
    let i = veth.index;
    let mac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x07];
    lab.h.set_mtu(i, 1300).unwrap();
    lab.h.set_mac(i, mac).unwrap();
    lab.h.set_promisc(i, true).unwrap();
    lab.h.set_hairpin(i, true).unwrap();
    let (ok, out) = exec_in(&lab.host, &["bridge", "-d", "link", "show", "dev", "veth0"]);
    assert!(ok && out.contains("hairpin on"), "{out}");
    lab.h.set_hairpin(i, false).unwrap();
    let (_, out) = exec_in(&lab.host, &["bridge", "-d", "link", "show", "dev", "veth0"]);
    assert!(out.contains("hairpin off"), "{out}");
    let (_, out) = exec_in(&lab.host, &["ip", "link", "show", "dev", "veth0"]);
    assert!(out.contains("PROMISC"), "{out}");

    lab.h.set_master(i, None).unwrap();
    lab.h.set_down(i).unwrap();
    lab.h.set_name(i, "vethz").unwrap();
    let l = lab.h.link_by_index(i).unwrap().unwrap();
    assert_eq!(
        (l.name.as_str(), l.mtu, l.mac, l.master, l.up),
        ("vethz", 1300, Some(mac), None, false)
    );
    lab.h.set_master(i, Some(br.index)).unwrap();
    assert_eq!(
        lab.h.link_by_index(i).unwrap().unwrap().master,
        Some(br.index)
    );

    // Move the container end back to the host namespace.
    lab.c.move_to_netns(eth0.index, &lab.host).unwrap();
    assert!(lab.c.link_by_name("eth0").unwrap().is_none());
    assert!(lab.h.link_by_name("eth0").unwrap().is_some());
}

#[test]
fn route_options_and_other_tables() {
    let Some(mut lab) = Lab::new() else { return };
    let (_, _, eth0) = lab.bridge_and_veth();
    lab.c.set_up(eth0.index).unwrap();
    lab.c.add_address(eth0.index, net("10.97.0.2/24")).unwrap();
    let spec = RouteSpec {
        gw: Some("10.97.0.1".parse().unwrap()),
        metric: Some(50),
        mtu: Some(1280),
        table: Some(1000),
        ..RouteSpec::new(net("10.200.0.0/16"))
    };
    lab.c.add_route(&spec).unwrap();
    let found = lab
        .c
        .routes(IpFamily::V4)
        .unwrap()
        .into_iter()
        .find(|r| r.dst == spec.dst)
        .unwrap();
    assert_eq!(
        (found.gw, found.oif, found.metric, found.mtu, found.table),
        (spec.gw, Some(eth0.index), Some(50), Some(1280), 1000)
    );
    lab.c.del_route(&spec).unwrap();
    assert!(lab
        .c
        .routes(IpFamily::V4)
        .unwrap()
        .iter()
        .all(|r| r.dst != spec.dst));
    lab.c.del_address(eth0.index, net("10.97.0.2/24")).unwrap();
    assert!(lab
        .c
        .addresses(Some(eth0.index))
        .unwrap()
        .iter()
        .all(|a| !a.net.addr().is_ipv4()));
}

#[test]
fn extended_ack_text_is_found_after_a_capped_header() {
    // NLMSG_ERROR payload after the errno: the request's 16-byte header, then attributes.
    let mut after_code = vec![0u8; 16];
    after_code.extend_from_slice(&8u16.to_ne_bytes()); // an unrelated attribute, 4 bytes of value
    after_code.extend_from_slice(&2u16.to_ne_bytes());
    after_code.extend_from_slice(&[0; 4]);
    let text = b"Nexthop has invalid gateway\0";
    after_code.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
    after_code.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
    after_code.extend_from_slice(text);
    let flags = netlink_packet_core::NLM_F_CAPPED | netlink_packet_core::NLM_F_ACK_TLVS;
    assert_eq!(
        ext_ack_text(flags, &after_code).as_deref(),
        Some("Nexthop has invalid gateway")
    );
    assert_eq!(
        ext_ack_text(netlink_packet_core::NLM_F_CAPPED, &after_code),
        None
    );
    assert_eq!(ext_ack_text(flags, &after_code[..10]), None);
}

#[test]
fn errors_say_what_was_being_done() {
    let op = Op {
        name: "delete",
        not_found: LINK_GONE,
    };
    let gone = Failure::Errno(Errno::ENODEV, None).into_error(op, "link 7".into());
    assert!(matches!(gone, NetlinkError::NotFound { .. }));
    assert_eq!(gone.to_string(), "delete link 7: No such device");
    let busy = Failure::Errno(Errno::EBUSY, Some("in use".into())).into_error(op, "link 7".into());
    assert_eq!(
        busy.to_string(),
        "delete link 7: Device or resource busy (in use)"
    );
    // ENOENT is not "not found" for an operation that does not say so.
    let other = Failure::Errno(Errno::ENOENT, None).into_error(op, "link 7".into());
    assert!(matches!(other, NetlinkError::Kernel { .. }));
}
