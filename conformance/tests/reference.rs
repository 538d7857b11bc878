//! Debian's reference plugins (bridge + host-local + portmap) driven through the whole life of
//! two containers, once per spec version, like libcni's `[0.4.0] creates a bridge` tests.

mod reference_setup;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use conformance::exec::command_in;
use conformance::{ip, link_names, ping, tcp_roundtrip, Container, Host, RuntimeConf};
use reference_setup::*;
use serde_json::{json, Value};

const VERSIONS: [&str; 2] = ["0.4.0", "1.0.0"];

/// The address of the host on the link to the outside client.
const HOST_OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The outside client's address.
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

#[test]
fn bridge_and_portmap_lifecycle() {
    for version in VERSIONS {
        eprintln!("[{version}] bridge + portmap: two containers");
        let Some(s) = RefSetup::new("bridge_and_portmap_lifecycle") else {
            return;
        };
        lifecycle(&s, version);
    }
}

fn lifecycle(s: &RefSetup, version: &str) {
    let list = s.conflist(version);
    let (c1, c2) = (Container::new("c1").unwrap(), Container::new("c2").unwrap());
    let mut rt1 = c1.runtime_conf("eth0");
    rt1.capability_args.insert(
        "portMappings".into(),
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let rt2 = c2.runtime_conf("eth0");

    let r1 = s.runtime.add_network_list(&list, &rt1).unwrap();
    let r2 = s.runtime.add_network_list(&list, &rt2).unwrap();
    let rules = iptables_save(&s.host);
    assert!(
        rules.contains(c1.id()) && rules.contains(c2.id()),
        "{rules}"
    );
    assert_result_shape(version, &r1, &c1, &s.bridge);
    assert_result_shape(version, &r2, &c2, &s.bridge);
    let (a1, a2) = (container_addr(&r1), container_addr(&r2));
    assert_ne!(a1, a2);
    for (c, a) in [(&c1, a1), (&c2, a2)] {
        let shown = ip(c.netns(), &["-4", "-o", "addr", "show", "dev", "eth0"]).unwrap();
        assert!(shown.contains(&format!("{a}/24")), "{shown}");
        assert!(s.reservation(a).is_file(), "host-local reserved {a}");
    }

    assert!(ping(c1.netns(), IpAddr::V4(a2)), "[{version}] c1 -> c2");
    assert!(ping(c2.netns(), IpAddr::V4(a1)), "[{version}] c2 -> c1");
    assert!(
        ping(c1.netns(), IpAddr::V4(GATEWAY)),
        "[{version}] c1 -> gateway"
    );
    assert!(
        ping(s.host.netns(), IpAddr::V4(a2)),
        "[{version}] host -> c2"
    );
    check_port_mapping(&s.host, &c1, a1);

    check_tolerating_portmap_819(s, version, &rt1);
    s.runtime.check_network_list(&list, &rt2).unwrap();

    let veths = [host_veths(&r1, &s.bridge), host_veths(&r2, &s.bridge)].concat();
    assert_eq!(veths.len(), 2, "one host veth per container: {veths:?}");
    s.runtime.del_network_list(&list, &rt1).unwrap();
    s.runtime.del_network_list(&list, &rt2).unwrap();

    let links = link_names(s.host.netns()).unwrap();
    for veth in &veths {
        assert!(
            !links.contains(veth),
            "[{version}] {veth} left in the host: {links:?}"
        );
    }
    for (c, rt, a) in [(&c1, &rt1, a1), (&c2, &rt2, a2)] {
        assert!(
            !s.reservation(a).exists(),
            "[{version}] reservation of {a} left"
        );
        assert_eq!(s.runtime.cached_result(&list, rt).unwrap(), None);
        let rules = iptables_save(&s.host);
        assert!(
            !rules.contains(c.id()),
            "[{version}] rules for {} left:\n{rules}",
            c.id()
        );
        assert!(!link_names(c.netns()).unwrap().contains(&"eth0".to_owned()));
        // DEL is idempotent (SPEC §DEL): a second one succeeds, now without a cached result.
        s.runtime.del_network_list(&list, rt).unwrap();
    }
}

/// CHECK, accepting one known bug of portmap before v1.2.0 (containernetworking/plugins#819): with
/// IPv4-only mappings its CHECK looks for an IPv6 chain that ADD never made. The rest of the list
/// is then checked without portmap, so the bug hides nothing else.
fn check_tolerating_portmap_819(s: &RefSetup, version: &str, rt: &RuntimeConf) {
    let Err(err) = s.runtime.check_network_list(&s.conflist(version), rt) else {
        return;
    };
    let known = err.plugin_error().is_some_and(|e| {
        e.code == Some(999)
            && e.msg
                .starts_with("could not check ipv6 dnat: chain CNI-DN-")
    });
    assert!(known, "[{version}] CHECK: {err}");
    eprintln!("[{version}] known portmap bug #819: {err}");
    let mut without_portmap = s.conflist(version);
    without_portmap
        .plugins
        .retain(|p| p.plugin_type != "portmap");
    s.runtime.check_network_list(&without_portmap, rt).unwrap();
}

fn assert_result_shape(version: &str, result: &Value, c: &Container, bridge: &str) {
    assert_eq!(result["cniVersion"], version, "{result:#}");
    let ifaces = result["interfaces"].as_array().expect("interfaces");
    let inside: Vec<usize> = (0..ifaces.len())
        .filter(|&i| ifaces[i].get("sandbox").is_some())
        .collect();
    assert_eq!(inside.len(), 1, "one interface in the sandbox: {result:#}");
    let eth0 = &ifaces[inside[0]];
    assert_eq!(eth0["name"], "eth0");
    assert_eq!(eth0["sandbox"], c.path().to_str().unwrap());
    assert_eq!(eth0["mac"].as_str().map(str::len), Some(17), "{eth0}");
    assert!(ifaces.iter().any(|i| i["name"] == bridge), "{result:#}");

    let ips = result["ips"].as_array().expect("ips");
    assert_eq!(ips.len(), 1, "{result:#}");
    let ip = &ips[0];
    assert_eq!(
        ip["interface"], inside[0],
        "ips[0] points at the sandbox interface"
    );
    assert_eq!(ip["gateway"], GATEWAY.to_string());
    let addr = container_addr(result);
    assert_eq!(
        addr.octets()[..3],
        SUBNET.0.octets()[..3],
        "{addr} in the subnet"
    );
    assert!(ip["address"].as_str().unwrap().ends_with("/24"));
    // 0.4.0 results tag each address with its IP version; 1.0.0 dropped the key.
    match version {
        "0.4.0" => assert_eq!(ip["version"], "4"),
        _ => assert!(ip.get("version").is_none(), "{ip}"),
    }
    // host-local hands out the configured default route.
    assert_eq!(result["routes"][0]["dst"], "0.0.0.0/0", "{result:#}");
}

/// Port 8080 of the host reaches port 80 of `c`: from the host itself, and from a client outside
/// the host, whose address the container must see unchanged.
fn check_port_mapping(host: &Host, c: &Container, c_addr: Ipv4Addr) {
    let listen = SocketAddr::from(([0, 0, 0, 0], 80));
    let peer = tcp_roundtrip(c.netns(), listen, host.netns(), (GATEWAY, 8080).into()).unwrap();
    assert!(peer.ip() != IpAddr::V4(c_addr));

    let client = conformance::net::outside(host, HOST_OUTSIDE, CLIENT).unwrap();
    let cn = client.netns();
    let peer = tcp_roundtrip(c.netns(), listen, cn, (HOST_OUTSIDE, 8080).into()).unwrap();
    assert_eq!(
        peer.ip(),
        IpAddr::V4(CLIENT),
        "DNAT keeps the client's address"
    );
}

fn iptables_save(host: &Host) -> String {
    let out = command_in(host.netns(), "iptables-save")
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_reports_the_supported_spec_versions() {
    let Some(s) = RefSetup::new("version_reports_the_supported_spec_versions") else {
        return;
    };
    for plugin in ["bridge", "host-local", "portmap"] {
        let info = s.runtime.version(plugin, "1.0.0").unwrap();
        for v in VERSIONS {
            assert!(
                info.supported_versions.iter().any(|s| s == v),
                "{plugin}: {info:?}"
            );
        }
    }
}
