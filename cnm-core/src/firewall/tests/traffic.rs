//! Packets through the table: masquerade and isolation, between throwaway namespaces.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

/// A bridge `br` with `gw/24` in `host`, and a container namespace on it at `addr`, default
/// route via `gw`.
fn container_on_bridge(host: &OwnedNetns, br: &str, gw: &str, addr: &str) -> OwnedNetns {
    let c = netns();
    let exists = Command::new("ip")
        .args(["-n", &name(host), "link", "show", br])
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        ip(host, &format!("link add {br} type bridge"));
        ip(host, &format!("addr add {gw}/24 dev {br}"));
        ip(host, &format!("link set {br} up"));
    }
    // Unique in the host: named after the container namespace's counter.
    let veth = format!("veth{}", name(&c).rsplit('-').next().unwrap());
    ip(
        host,
        &format!(
            "link add {veth} type veth peer name eth0 netns {}",
            name(&c)
        ),
    );
    ip(host, &format!("link set {veth} master {br} up"));
    ip(&c, &format!("addr add {addr}/24 dev eth0"));
    ip(&c, "link set eth0 up");
    ip(&c, "link set lo up");
    ip(&c, &format!("route add default via {gw}"));
    c
}

fn enable_forwarding(host: &OwnedNetns) {
    host.run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
        .unwrap()
        .unwrap();
}

/// Connects from `from` to the listener and returns the source address the listener saw, or
/// None when the connection did not get through within a second.
fn source_seen(from: &OwnedNetns, listener: &TcpListener) -> Option<std::net::IpAddr> {
    let to = listener.local_addr().unwrap();
    let connected = from
        .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(1)))
        .unwrap();
    let _stream = connected.ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match listener.accept() {
            Ok((_, peer)) => return Some(peer.ip()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn listen_in(ns: &OwnedNetns, addr: &str) -> TcpListener {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = ns.run(|| TcpListener::bind(addr)).unwrap().unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

#[test]
fn masquerade_rewrites_the_source_until_the_network_is_removed() {
    require_root!();
    let host = netns();
    let container = container_on_bridge(&host, "cnm-m", "10.66.0.1", "10.66.0.2");
    let outside = netns();
    ip(
        &host,
        &format!(
            "link add vout type veth peer name eth0 netns {}",
            name(&outside)
        ),
    );
    ip(&host, "addr add 198.18.0.1/24 dev vout");
    ip(&host, "link set vout up");
    ip(&outside, "addr add 198.18.0.2/24 dev eth0");
    ip(&outside, "link set eth0 up");
    ip(&outside, "link set lo up");
    // So that unmasqueraded replies find their way back too.
    ip(&outside, "route add 10.66.0.0/24 via 198.18.0.1");
    enable_forwarding(&host);
    let listener = listen_in(&outside, "198.18.0.2:0");

    let mut nft = Nft::new_in(&host).unwrap();
    nft.ensure_table().unwrap();
    let rules = NetworkRules {
        bridge: "cnm-m",
        masq: vec![net("10.66.0.0/24")],
        internal: false,
    };
    nft.add_network(&rules).unwrap();
    assert_eq!(
        source_seen(&container, &listener),
        Some("198.18.0.1".parse().unwrap())
    );
    nft.remove_network(&rules).unwrap();
    assert_eq!(
        source_seen(&container, &listener),
        Some("10.66.0.2".parse().unwrap())
    );
}

#[test]
fn networks_are_isolated_from_each_other() {
    require_root!();
    let host = netns();
    let a = container_on_bridge(&host, "cnm-ia", "10.66.1.1", "10.66.1.2");
    let b = container_on_bridge(&host, "cnm-ib", "10.66.2.1", "10.66.2.2");
    let b2 = container_on_bridge(&host, "cnm-ib", "10.66.2.1", "10.66.2.3");
    enable_forwarding(&host);
    let listener = listen_in(&b, "10.66.2.2:0");
    assert!(
        source_seen(&a, &listener).is_some(),
        "forwarded before cnm's rules"
    );

    let mut nft = Nft::new_in(&host).unwrap();
    nft.ensure_table().unwrap();
    let net_a = NetworkRules {
        bridge: "cnm-ia",
        masq: vec![],
        internal: false,
    };
    let net_b = NetworkRules {
        bridge: "cnm-ib",
        ..net_a.clone()
    };
    nft.add_network(&net_a).unwrap();
    nft.add_network(&net_b).unwrap();
    assert_eq!(source_seen(&a, &listener), None, "isolation lets a reach b");
    // Containers on the same bridge still reach each other.
    assert_eq!(
        source_seen(&b2, &listener),
        Some("10.66.2.3".parse().unwrap())
    );
    nft.remove_network(&net_b).unwrap();
    assert!(source_seen(&a, &listener).is_some());
}
