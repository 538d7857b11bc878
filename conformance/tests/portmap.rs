//! Published ports through the CNI protocol, in throwaway namespaces: the same scenario for
//! `[cnm-bridge]` with the capability, `[cnm-bridge, cnm-portmap]` and
//! `[reference bridge, cnm-portmap]`.

mod cnm_bridge_setup;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use cnm_bridge_setup::*;
use cnm_core::netns::Netns;
use conformance::{cnm_plugin_dir, require_plugins, tcp_roundtrip, Container, NetworkConfigList};
use serde_json::{json, Value};

const HOST_OUT: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 2);

#[derive(Clone, Copy, Debug)]
enum Chain {
    Native,
    CnmBridgeCnmPortmap,
    ReferenceBridgeCnmPortmap,
}

fn list(s: &Setup, chain: Chain, subnet: &str) -> NetworkConfigList {
    let caps = json!({"portMappings": true});
    let portmap = json!({"type": "cnm-portmap", "capabilities": caps, "dataDir": s.store_dir()});
    let cnm = json!({"type": "cnm-bridge", "bridge": s.bridge, "isGateway": true,
        "isDefaultGateway": true, "ipMasq": true, "dataDir": s.store_dir(), "hairpinMode": true,
        "ipam": s.cnm_ipam(subnet)});
    let plugins = match chain {
        Chain::Native => {
            let mut b = cnm;
            b["capabilities"] = caps;
            vec![b]
        }
        Chain::CnmBridgeCnmPortmap => vec![cnm, portmap],
        Chain::ReferenceBridgeCnmPortmap => vec![
            json!({"type": "bridge", "bridge": s.bridge, "isGateway": true,
                "isDefaultGateway": true, "ipMasq": true, "hairpinMode": true,
                "ipam": {"type": "host-local", "subnet": subnet,
                         "dataDir": s.host.state_dir().join("host-local")}}),
            portmap,
        ],
    };
    NetworkConfigList::from_value(&json!({"cniVersion": "1.0.0", "name": "pmnet",
        "plugins": plugins}))
    .unwrap()
}

fn add(
    s: &Setup,
    l: &NetworkConfigList,
    c: &Container,
    maps: Value,
) -> Result<Value, conformance::Error> {
    let mut rt = c.runtime_conf("eth0");
    rt.capability_args.insert("portMappings".into(), maps);
    s.runtime.add_network_list(l, &rt)
}

fn rt(c: &Container, maps: Value) -> conformance::RuntimeConf {
    let mut rt = c.runtime_conf("eth0");
    rt.capability_args.insert("portMappings".into(), maps);
    rt
}

/// Sends one datagram from `client_ns` to `to`; returns the source the server in `server_ns`
/// (bound to `listen`) saw.
fn udp_roundtrip(
    server_ns: &Netns,
    listen: SocketAddr,
    client_ns: &Netns,
    to: SocketAddr,
) -> io::Result<SocketAddr> {
    let server = server_ns
        .run(|| UdpSocket::bind(listen))
        .map_err(io::Error::other)??;
    let client = client_ns
        .run(|| UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0))))
        .map_err(io::Error::other)??;
    server.set_read_timeout(Some(Duration::from_secs(2)))?;
    client.send_to(b"ping", to)?;
    let mut buf = [0; 16];
    let (n, from) = server.recv_from(&mut buf)?;
    assert_eq!(&buf[..n], b"ping");
    Ok(from)
}

fn pm_elements(s: &Setup) -> String {
    let out = conformance::exec::command_in(s.host.netns(), "nft")
        .unwrap()
        .args(["list", "table", "inet", "cnm"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Element lines of the port-mapping maps and sets.
    text.lines()
        .filter(|l| l.contains("elements = ") && (l.contains(" : ") || l.contains(". \"")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn scenario(chain: Chain, test: &str) {
    let Some(s) = Setup::new(test) else { return };
    if !require_plugins(test, &cnm_plugin_dir(), &["cnm-portmap"]) {
        return;
    }
    eprintln!("[{chain:?}]");
    let outside = conformance::net::outside(&s.host, HOST_OUT, CLIENT).unwrap();
    let l = list(&s, chain, "10.93.0.0/24");
    let gw = IpAddr::from([10, 93, 0, 1]);
    let (c1, c2, c3) = (
        Container::new("p1").unwrap(),
        Container::new("p2").unwrap(),
        Container::new("p3").unwrap(),
    );
    let m1 = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                    {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]);
    let r1 = add(&s, &l, &c1, m1.clone()).unwrap();
    let r2 = add(
        &s,
        &l,
        &c2,
        json!([{"hostPort": 8081, "containerPort": 80}]),
    )
    .unwrap();
    let (a1, a2) = (addr_of(&r1, true), addr_of(&r2, true));
    let listen = SocketAddr::from(([0, 0, 0, 0], 80));
    let host_port = |ip: IpAddr| SocketAddr::new(ip, 8080);

    // From another namespace through the host's address: the real source is kept.
    let seen = tcp_roundtrip(
        c1.netns(),
        listen,
        outside.netns(),
        host_port(HOST_OUT.into()),
    )
    .unwrap();
    assert_eq!(seen.ip(), IpAddr::from(CLIENT), "[{chain:?}] outside");
    let seen = udp_roundtrip(
        c1.netns(),
        SocketAddr::from(([0, 0, 0, 0], 53)),
        outside.netns(),
        (HOST_OUT, 5353).into(),
    )
    .unwrap();
    assert_eq!(seen.ip(), IpAddr::from(CLIENT), "[{chain:?}] outside, UDP");
    // From the host itself: localhost (masqueraded) and the bridge address.
    let seen = tcp_roundtrip(
        c1.netns(),
        listen,
        s.host.netns(),
        host_port([127, 0, 0, 1].into()),
    )
    .unwrap();
    assert_eq!(seen.ip(), gw, "[{chain:?}] host via 127.0.0.1");
    let seen = tcp_roundtrip(c1.netns(), listen, s.host.netns(), host_port(gw)).unwrap();
    assert_eq!(seen.ip(), gw, "[{chain:?}] host via the bridge address");
    // Hairpin: a neighbour and the container itself, through the host's address. To itself
    // needs hairpinMode on its port when br_netfilter is loaded (it bridges the DNATed frame
    // back out of the port it came in on), as with the reference plugins.
    let seen = tcp_roundtrip(c1.netns(), listen, c2.netns(), host_port(HOST_OUT.into())).unwrap();
    assert_eq!(seen.ip(), gw, "[{chain:?}] hairpin from the neighbour {a2}");
    let seen = tcp_roundtrip(c1.netns(), listen, c1.netns(), host_port(HOST_OUT.into())).unwrap();
    assert_eq!(seen.ip(), gw, "[{chain:?}] hairpin to itself {a1}");
    // CVE-2020-8558: 127.0.0.1 is not reachable from outside through the host.
    conformance::ip(
        outside.netns(),
        &["route", "add", "127.0.0.0/8", "via", &HOST_OUT.to_string()],
    )
    .ok();
    let from_out = tcp_roundtrip(
        c1.netns(),
        listen,
        outside.netns(),
        (Ipv4Addr::LOCALHOST, 8080).into(),
    );
    assert!(
        from_out.is_err(),
        "[{chain:?}] 127.0.0.1 from outside must be dropped"
    );

    s.runtime
        .check_network_list(&l, &rt(&c1, m1.clone()))
        .unwrap();

    // A port another container published is refused (104) and nothing of c3 stays.
    let err = add(
        &s,
        &l,
        &c3,
        json!([{"hostPort": 8080, "containerPort": 80}]),
    )
    .unwrap_err();
    assert_eq!(code(&err), 104, "[{chain:?}] {err}");
    s.runtime.del_network_list(&l, &rt(&c3, json!([]))).unwrap();
    let seen = tcp_roundtrip(
        c1.netns(),
        listen,
        outside.netns(),
        host_port(HOST_OUT.into()),
    )
    .unwrap();
    assert_eq!(
        seen.ip(),
        IpAddr::from(CLIENT),
        "[{chain:?}] c1 still published"
    );

    // DEL (twice), and DEL of c2 with its netns gone.
    s.runtime
        .del_network_list(&l, &rt(&c1, m1.clone()))
        .unwrap();
    s.runtime.del_network_list(&l, &rt(&c1, m1)).unwrap();
    let rt2 = rt(&c2, json!([{"hostPort": 8081, "containerPort": 80}]));
    drop(c2);
    s.runtime.del_network_list(&l, &rt2).unwrap();
    assert_eq!(
        pm_elements(&s),
        "",
        "[{chain:?}] no element of them is left"
    );
    assert_eq!(s.stored_endpoints(), 0, "[{chain:?}]");
}

#[test]
fn native_cnm_bridge_publishes_ports() {
    scenario(Chain::Native, "native_cnm_bridge_publishes_ports");
}

#[test]
fn cnm_bridge_then_cnm_portmap_publishes_ports() {
    scenario(
        Chain::CnmBridgeCnmPortmap,
        "cnm_bridge_then_cnm_portmap_publishes_ports",
    );
}

#[test]
fn reference_bridge_then_cnm_portmap_publishes_ports() {
    scenario(
        Chain::ReferenceBridgeCnmPortmap,
        "reference_bridge_then_cnm_portmap_publishes_ports",
    );
}

#[test]
fn bad_port_mappings_are_refused_with_code_7_naming_the_entry() {
    let test = "bad_port_mappings_are_refused_with_code_7_naming_the_entry";
    let Some(s) = Setup::new(test) else { return };
    let l = list(&s, Chain::Native, "10.94.0.0/24");
    let c = Container::new("bad").unwrap();
    let ok = json!({"hostPort": 80, "containerPort": 80});
    let cases = [
        (
            json!([ok, {"hostPort": 0, "containerPort": 80}]),
            "portMappings[1].hostPort",
        ),
        (
            json!([{"hostPort": -1, "containerPort": 80}]),
            "portMappings[0].hostPort",
        ),
        (
            json!([{"hostPort": 65536, "containerPort": 80}]),
            "portMappings[0].hostPort",
        ),
        (
            json!([{"hostPort": 80, "containerPort": 0}]),
            "portMappings[0].containerPort",
        ),
        (
            json!([{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]),
            "portMappings[0].protocol",
        ),
        (
            json!([{"hostPort": 80, "containerPort": 80, "hostIP": "nope"}]),
            "portMappings[0].hostIP",
        ),
        (
            json!([{"hostPort": 80, "containerPort": 80, "hostIP": "fd00::1"}]),
            "portMappings[0].hostIP",
        ),
        (json!({"hostPort": 80}), "portMappings"),
    ];
    for (maps, field) in cases {
        let err = add(&s, &l, &c, maps.clone()).unwrap_err();
        assert_eq!(code(&err), 7, "{maps}: {err}");
        let msg = err.plugin_error().unwrap().msg.clone();
        assert!(msg.contains(field), "{maps}: {msg} does not name {field}");
        assert_eq!(s.stored_endpoints(), 0, "{maps}: nothing recorded");
        assert_eq!(s.host_links(), Vec::<String>::new(), "{maps}: nothing made");
    }
}

#[test]
fn a_recreated_container_receives_the_same_udp_flow() {
    let Some(s) = Setup::new("a_recreated_container_receives_the_same_udp_flow") else {
        return;
    };
    let outside = conformance::net::outside(&s.host, HOST_OUT, CLIENT).unwrap();
    let l = list(&s, Chain::Native, "10.81.0.0/24");
    let maps = json!([{"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]);
    let listen = SocketAddr::from(([0, 0, 0, 0], 53));
    let to = SocketAddr::from((HOST_OUT, 5353));
    // One client socket: every datagram has the same 5-tuple, so conntrack keeps one entry.
    let client = outside
        .run(|| UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 40053))))
        .unwrap()
        .unwrap();
    let receive = |c: &Container| -> io::Result<SocketAddr> {
        let server = c
            .run(|| UdpSocket::bind(listen))
            .map_err(io::Error::other)??;
        server.set_read_timeout(Some(Duration::from_millis(300)))?;
        let mut buf = [0; 16];
        // The flow is a stream of datagrams; a few tries cover a freshly brought-up link.
        for _ in 0..5 {
            client.send_to(b"ping", to)?;
            if let Ok((_, from)) = server.recv_from(&mut buf) {
                return Ok(from);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no datagram arrived",
        ))
    };
    let c1 = Container::new("u1").unwrap();
    let r1 = add(&s, &l, &c1, maps.clone()).unwrap();
    assert_eq!(receive(&c1).unwrap().ip(), IpAddr::from(CLIENT));
    s.runtime
        .del_network_list(&l, &rt(&c1, maps.clone()))
        .unwrap();

    let c2 = Container::new("u2").unwrap();
    let r2 = add(&s, &l, &c2, maps.clone()).unwrap();
    assert_ne!(
        addr_of(&r1, true),
        addr_of(&r2, true),
        "the new container has a new address"
    );
    let seen = receive(&c2).expect("the same UDP flow reaches the re-created container");
    assert_eq!(seen.ip(), IpAddr::from(CLIENT));
    s.runtime.del_network_list(&l, &rt(&c2, maps)).unwrap();
}
