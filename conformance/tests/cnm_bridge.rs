//! cnm-bridge through the CNI protocol, exactly as a runtime drives it, in throwaway namespaces.

mod cnm_bridge_setup;

use std::net::{IpAddr, SocketAddr};

use cnm_bridge_setup::*;
use conformance::{ip, link_names, ping, tcp_roundtrip, Container};
use serde_json::{json, Value};

#[test]
fn two_containers_talk_check_and_delete() {
    for version in VERSIONS {
        eprintln!("[{version}] two containers on one cnm bridge");
        let Some(s) = Setup::new("two_containers_talk_check_and_delete") else {
            return;
        };
        two_containers(&s, version);
    }
}

fn two_containers(s: &Setup, version: &str) {
    let list = s.list(version, s.cnm_ipam("10.99.0.0/24"), json!({}));
    let (c1, c2) = (Container::new("c1").unwrap(), Container::new("c2").unwrap());
    let (rt1, rt2) = (c1.runtime_conf("eth0"), c2.runtime_conf("eth0"));
    let r1 = s.runtime.add_network_list(&list, &rt1).unwrap();
    let r2 = s.runtime.add_network_list(&list, &rt2).unwrap();

    // The result: bridge, host veth, container interface in its sandbox; ips point at it.
    for (r, c) in [(&r1, &c1), (&r2, &c2)] {
        assert_eq!(r["cniVersion"], version);
        let ifaces = r["interfaces"].as_array().unwrap();
        assert_eq!(ifaces.len(), 3, "{r}");
        assert_eq!(ifaces[0]["name"], s.bridge.as_str());
        assert_eq!(ifaces[2]["name"], "eth0");
        assert_eq!(ifaces[2]["sandbox"], c.path().to_str().unwrap());
        let ip0 = &r["ips"][0];
        assert_eq!(ip0["interface"], 2);
        assert_eq!(ip0["gateway"], "10.99.0.1");
        assert_eq!(ip0.get("version").is_some(), version < "1.0.0", "{r}");
        // What the result says is what the kernel has.
        let mac = ifaces[2]["mac"].as_str().unwrap();
        let shown = ip(c.netns(), &["-o", "link", "show", "dev", "eth0"]).unwrap();
        assert!(shown.contains(mac), "{shown} lacks {mac}");
        let addrs = ip(c.netns(), &["-4", "-o", "addr", "show", "dev", "eth0"]).unwrap();
        assert!(addrs.contains(ip0["address"].as_str().unwrap()), "{addrs}");
        let routes = ip(c.netns(), &["-4", "route", "show", "default"]).unwrap();
        assert!(routes.contains("via 10.99.0.1 dev eth0"), "{routes}");
        // An IPv4-only endpoint has no IPv6 address, not even a link-local one (libnetwork's
        // rule), and the bridge port none either: nothing for the bridge to flood.
        let v6 = ip(c.netns(), &["-6", "-o", "addr", "show", "dev", "eth0"]).unwrap();
        assert_eq!(v6.trim(), "", "{v6}");
        let host_end = ifaces[1]["name"].as_str().unwrap();
        let v6 = ip(
            s.host.netns(),
            &["-6", "-o", "addr", "show", "dev", host_end],
        )
        .unwrap();
        assert_eq!(v6.trim(), "", "{v6}");
    }
    let (a1, a2) = (addr_of(&r1, true), addr_of(&r2, true));
    assert_ne!(a1, a2);

    assert!(ping(c1.netns(), a2), "[{version}] c1 -> c2");
    assert!(ping(c2.netns(), a1), "[{version}] c2 -> c1");
    assert!(
        ping(c1.netns(), "10.99.0.1".parse().unwrap()),
        "[{version}] c1 -> gateway"
    );
    let seen = tcp_roundtrip(
        c1.netns(),
        SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 8080),
        c2.netns(),
        SocketAddr::new(a1, 8080),
    )
    .unwrap();
    assert_eq!(seen.ip(), a2, "[{version}] TCP shows c2's real address");

    if version >= "0.4.0" {
        s.runtime.check_network_list(&list, &rt1).unwrap();
        s.runtime.check_network_list(&list, &rt2).unwrap();
        ip(c1.netns(), &["route", "del", "default"]).unwrap();
        let err = s.runtime.check_network_list(&list, &rt1).unwrap_err();
        assert_eq!(code(&err), 103, "{err}");
        let msg = &err.plugin_error().unwrap().msg;
        assert!(
            msg.contains("route 0.0.0.0/0 via 10.99.0.1 is missing"),
            "{msg}"
        );
    }

    // A repeated ADD answers as the first did and makes nothing new.
    let again = s.runtime.add_network_list(&list, &rt2).unwrap();
    assert_eq!(again["ips"], r2["ips"]);
    assert_eq!(s.stored_endpoints(), 2);

    s.runtime.del_network_list(&list, &rt1).unwrap();
    s.runtime.del_network_list(&list, &rt2).unwrap();
    // The veths go; the bridge stays with the network, as libnetwork's does, until GC.
    assert_eq!(
        s.host_links(),
        [s.bridge.as_str()],
        "[{version}] the veths are gone, the bridge stays"
    );
    assert_eq!(s.stored_endpoints(), 0);
    for c in [&c1, &c2] {
        assert_eq!(link_names(c.netns()).unwrap(), ["lo"]);
    }
    // DEL is idempotent (SPEC §DEL).
    s.runtime.del_network_list(&list, &rt1).unwrap();
    if version >= "1.1.0" {
        // GC with nothing valid finds the network without endpoints: its bridge goes.
        s.runtime.gc_network_list(&list, &[]).unwrap();
        assert_eq!(s.host_links(), Vec::<String>::new(), "[{version}] after GC");
    }
}

#[test]
fn a_pool_of_two_refuses_the_third_and_leaves_nothing() {
    let Some(s) = Setup::new("a_pool_of_two_refuses_the_third_and_leaves_nothing") else {
        return;
    };
    // 10.97.0.0/29 with range .2-.3: exactly two addresses.
    let ipam = json!({"type": "cnm-ipam", "dataDir": s.store_dir(), "ranges": [[{
        "subnet": "10.97.0.0/29", "rangeStart": "10.97.0.2", "rangeEnd": "10.97.0.3"}]]});
    let list = s.list("1.0.0", ipam, json!({}));
    let cs: Vec<Container> = (0..3)
        .map(|i| Container::new(&format!("p{i}")).unwrap())
        .collect();
    s.runtime
        .add_network_list(&list, &cs[0].runtime_conf("eth0"))
        .unwrap();
    s.runtime
        .add_network_list(&list, &cs[1].runtime_conf("eth0"))
        .unwrap();
    let links_before = s.host_links();
    let err = s
        .runtime
        .add_network_list(&list, &cs[2].runtime_conf("eth0"))
        .unwrap_err();
    assert_eq!(code(&err), 102, "{err}");
    assert!(err.to_string().contains("no free address"), "{err}");
    assert_eq!(
        s.host_links(),
        links_before,
        "no interface left by the failed ADD"
    );
    assert_eq!(link_names(cs[2].netns()).unwrap(), ["lo"]);
    assert_eq!(
        s.stored_endpoints(),
        2,
        "no reservation left by the failed ADD"
    );
    s.runtime
        .del_network_list(&list, &cs[0].runtime_conf("eth0"))
        .unwrap();
    let r = s
        .runtime
        .add_network_list(&list, &cs[2].runtime_conf("eth0"))
        .unwrap();
    assert_eq!(addr_of(&r, true).to_string(), "10.97.0.2");
    for c in &cs[1..] {
        s.runtime
            .del_network_list(&list, &c.runtime_conf("eth0"))
            .unwrap();
    }
    assert_eq!(
        s.host_links(),
        [s.bridge.as_str()],
        "the bridge stays until GC"
    );
}

#[test]
fn dual_stack() {
    let Some(s) = Setup::new("dual_stack") else {
        return;
    };
    let ipam = json!({"type": "cnm-ipam", "dataDir": s.store_dir(), "ranges": [
        [{"subnet": "10.96.0.0/24"}], [{"subnet": "fd00:96::/64"}]]});
    let list = s.list("1.1.0", ipam, json!({}));
    let (c1, c2) = (Container::new("d1").unwrap(), Container::new("d2").unwrap());
    let r1 = s
        .runtime
        .add_network_list(&list, &c1.runtime_conf("eth0"))
        .unwrap();
    let r2 = s
        .runtime
        .add_network_list(&list, &c2.runtime_conf("eth0"))
        .unwrap();
    for r in [&r1, &r2] {
        assert_eq!(r["ips"].as_array().unwrap().len(), 2, "{r}");
        let routes: Vec<&str> = r["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["dst"].as_str())
            .collect();
        assert!(
            routes.contains(&"0.0.0.0/0") && routes.contains(&"::/0"),
            "{r}"
        );
    }
    for v4 in [true, false] {
        assert!(ping(c1.netns(), addr_of(&r2, v4)), "c1 -> c2 (v4: {v4})");
        assert!(ping(c2.netns(), addr_of(&r1, v4)), "c2 -> c1 (v4: {v4})");
    }
    assert!(
        ping(c1.netns(), "fd00:96::1".parse().unwrap()),
        "c1 -> v6 gateway"
    );
    let v6 = ip(c1.netns(), &["-6", "route", "show", "default"]).unwrap();
    assert!(v6.contains("via fd00:96::1"), "{v6}");
    // An endpoint with IPv6 keeps its link-local address.
    let ll = ip(
        c1.netns(),
        &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"],
    )
    .unwrap();
    assert!(ll.contains("fe80::"), "{ll}");
    s.runtime
        .check_network_list(&list, &c1.runtime_conf("eth0"))
        .unwrap();
    for c in [&c1, &c2] {
        s.runtime
            .del_network_list(&list, &c.runtime_conf("eth0"))
            .unwrap();
    }
    assert_eq!(
        s.host_links(),
        [s.bridge.as_str()],
        "the bridge stays until GC"
    );
}

#[test]
fn host_local_by_delegation_and_cnm_ipam_under_the_reference_bridge() {
    let Some(s) = Setup::new("host_local_by_delegation_and_cnm_ipam_under_the_reference_bridge")
    else {
        return;
    };
    let data = s.host.state_dir().join("host-local");
    let hl = json!({"type": "host-local", "subnet": "10.95.0.0/24", "dataDir": data});
    let list = s.list("1.0.0", hl, json!({}));
    let c = Container::new("hl").unwrap();
    let r = s
        .runtime
        .add_network_list(&list, &c.runtime_conf("eth0"))
        .unwrap();
    let a = addr_of(&r, true);
    assert!(
        data.join("cnmnet").join(a.to_string()).is_file(),
        "host-local reserved {a}"
    );
    assert!(ping(c.netns(), "10.95.0.1".parse().unwrap()));
    s.runtime
        .check_network_list(&list, &c.runtime_conf("eth0"))
        .unwrap();
    s.runtime
        .del_network_list(&list, &c.runtime_conf("eth0"))
        .unwrap();
    assert!(
        !data.join("cnmnet").join(a.to_string()).exists(),
        "host-local released {a}"
    );
    assert_eq!(
        s.host_links(),
        [s.bridge.as_str()],
        "the bridge stays until GC"
    );

    // The other way round: the reference bridge with cnm-ipam as its IPAM plugin, on a bridge
    // of its own (cnmnet's stays, with cnmnet's gateway, until GC).
    let ref_bridge = conformance::unique_ifname("rb");
    let reference = conformance::NetworkConfigList::from_value(&json!({
        "cniVersion": "1.0.0", "name": "refnet", "plugins": [{
            "type": "bridge", "bridge": ref_bridge, "isGateway": true,
            "ipam": s.cnm_ipam("10.94.0.0/24")}]
    }))
    .unwrap();
    let (c1, c2) = (Container::new("r1").unwrap(), Container::new("r2").unwrap());
    let r1 = s
        .runtime
        .add_network_list(&reference, &c1.runtime_conf("eth0"))
        .unwrap();
    let r2 = s
        .runtime
        .add_network_list(&reference, &c2.runtime_conf("eth0"))
        .unwrap();
    assert!(ping(c1.netns(), addr_of(&r2, true)));
    assert!(ping(c2.netns(), addr_of(&r1, true)));
    assert_eq!(s.stored_endpoints(), 2);
    for c in [&c1, &c2] {
        s.runtime
            .del_network_list(&reference, &c.runtime_conf("eth0"))
            .unwrap();
    }
    assert_eq!(s.stored_endpoints(), 0);
}

#[test]
fn bad_config_gets_code_7_and_creates_nothing() {
    let Some(s) = Setup::new("bad_config_gets_code_7_and_creates_nothing") else {
        return;
    };
    let c = Container::new("bad").unwrap();
    let ipam = |extra: Value| {
        let mut v = s.cnm_ipam("10.93.0.0/24");
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let cases = [
        (
            "subnet not a network",
            ipam(json!({"subnet": "10.93.0.1/24"})),
            json!({}),
            "10.93.0.0/24",
        ),
        (
            "overlapping ranges",
            json!({"type": "cnm-ipam", "dataDir": s.store_dir(), "ranges": [
            [{"subnet": "10.93.0.0/24"}], [{"subnet": "10.93.0.0/25"}]]}),
            json!({}),
            "overlap",
        ),
        (
            "gateway outside",
            ipam(json!({"gateway": "10.1.1.1"})),
            json!({}),
            "gateway",
        ),
        (
            "bridge name",
            ipam(json!({})),
            json!({"bridge": "a-very-long-bridge-name"}),
            "bridge",
        ),
        (
            "bridge slash",
            ipam(json!({})),
            json!({"bridge": "br/0"}),
            "bridge",
        ),
        ("mtu low", ipam(json!({})), json!({"mtu": 10}), "mtu"),
        ("mtu high", ipam(json!({})), json!({"mtu": 70000}), "mtu"),
        (
            "bad mac",
            ipam(json!({})),
            json!({"runtimeConfig": {"mac": "zz"}}),
            "mac",
        ),
    ];
    for (what, ipam, extra, needle) in cases {
        let list = s.list("1.0.0", ipam, extra);
        let err = s
            .runtime
            .add_network_list(&list, &c.runtime_conf("eth0"))
            .unwrap_err();
        assert_eq!(code(&err), 7, "{what}: {err}");
        assert!(err.to_string().contains(needle), "{what}: {err}");
        assert_eq!(s.host_links(), Vec::<String>::new(), "{what}: links made");
        assert_eq!(link_names(c.netns()).unwrap(), ["lo"], "{what}");
        assert_eq!(s.stored_endpoints(), 0, "{what}: reservation made");
    }
}

/// cnm's nftables table in the host namespace, as `nft list` prints it.
fn ruleset(s: &Setup) -> String {
    let out = conformance::exec::command_in(s.host.netns(), "nft")
        .unwrap()
        .args(["list", "table", "inet", "cnm"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn masquerade_to_the_outside_isolation_internal_and_a_clean_ruleset() {
    let Some(s) = Setup::new("masquerade_to_the_outside_isolation_internal_and_a_clean_ruleset")
    else {
        return;
    };
    let (host_out, client) = ([198, 18, 0, 1].into(), [198, 18, 0, 2].into());
    let outside = conformance::net::outside(&s.host, host_out, client).unwrap();
    let list = s.list("1.1.0", s.cnm_ipam("10.92.0.0/24"), json!({}));
    let c = Container::new("m").unwrap();
    let r = s
        .runtime
        .add_network_list(&list, &c.runtime_conf("eth0"))
        .unwrap();
    let listen = SocketAddr::from(([0, 0, 0, 0], 9000));
    let seen = tcp_roundtrip(outside.netns(), listen, c.netns(), (client, 9000).into()).unwrap();
    assert_eq!(
        seen.ip(),
        IpAddr::V4(host_out),
        "masqueraded as the host's address"
    );
    let rules = ruleset(&s);
    assert!(
        rules.contains("10.92.0.0/24") && rules.contains(&s.bridge),
        "{rules}"
    );

    // A second, internal network: no default route, no masquerade, nothing forwarded out; and
    // isolated from the first network.
    let internal_bridge = conformance::unique_ifname("ci");
    let internal = conformance::NetworkConfigList::from_value(&json!({
        "cniVersion": "1.1.0", "name": "inside", "plugins": [{
            "type": "cnm-bridge", "bridge": internal_bridge, "isGateway": true,
            "isDefaultGateway": true, "ipMasq": true, "internal": true,
            "dataDir": s.store_dir(), "ipam": s.cnm_ipam("10.91.0.0/24")}]
    }))
    .unwrap();
    let ci = Container::new("i").unwrap();
    let ri = s
        .runtime
        .add_network_list(&internal, &ci.runtime_conf("eth0"))
        .unwrap();
    let routes = ip(ci.netns(), &["-4", "route", "show", "default"]).unwrap();
    assert_eq!(
        routes.trim(),
        "",
        "an internal network has no default route"
    );
    assert!(
        ping(ci.netns(), "10.91.0.1".parse().unwrap()),
        "its gateway is reachable"
    );
    ip(ci.netns(), &["route", "add", "default", "via", "10.91.0.1"]).unwrap();
    assert!(
        !ping(ci.netns(), IpAddr::V4(client)),
        "internal: not forwarded out"
    );
    assert!(
        !ping(ci.netns(), addr_of(&r, true)),
        "isolated from the other network"
    );
    assert!(
        !ping(c.netns(), addr_of(&ri, true)),
        "isolated the other way too"
    );

    s.runtime
        .del_network_list(&internal, &ci.runtime_conf("eth0"))
        .unwrap();
    s.runtime
        .del_network_list(&list, &c.runtime_conf("eth0"))
        .unwrap();
    let rules = ruleset(&s);
    for gone in [
        "10.92.0.0",
        "10.91.0.0",
        s.bridge.as_str(),
        internal_bridge.as_str(),
    ] {
        assert!(
            !rules.contains(gone),
            "{gone} left in the ruleset:\n{rules}"
        );
    }
    // The bridges stay with their networks until GC finds them without endpoints.
    let mut links = s.host_links();
    links.retain(|l| !l.starts_with("cx"));
    links.sort();
    let mut bridges = [s.bridge.as_str(), internal_bridge.as_str()];
    bridges.sort();
    assert_eq!(
        links, bridges,
        "only the outside link and the bridges are left"
    );
    s.runtime.gc_network_list(&internal, &[]).unwrap();
    s.runtime.gc_network_list(&list, &[]).unwrap();
    let links = s.host_links();
    assert!(
        links.iter().all(|l| l.starts_with("cx")),
        "only the outside link is left after GC: {links:?}"
    );
    assert_eq!(
        ruleset(&s),
        rules,
        "GC of networks without endpoints left the ruleset as is"
    );
}

#[test]
fn every_log_line_of_a_call_names_its_container() {
    let Some(s) = Setup::new("every_log_line_of_a_call_names_its_container") else {
        return;
    };
    let list = s.list("1.1.0", s.cnm_ipam("10.90.0.0/24"), json!({}));
    let c = Container::new("log").unwrap();
    s.runtime
        .add_network_list(&list, &c.runtime_conf("eth0"))
        .unwrap();
    s.runtime
        .del_network_list(&list, &c.runtime_conf("eth0"))
        .unwrap();
    let bad = s.list("1.1.0", s.cnm_ipam("10.90.0.0/24"), json!({"mtu": 1}));
    s.runtime
        .add_network_list(&bad, &c.runtime_conf("eth0"))
        .unwrap_err();
    let log = std::fs::read_to_string(s.host.log_file()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    for step in [
        "reserved [10.90.0.2]",
        "created veth",
        "configured eth0",
        "deleted veth",
        "released [10.90.0.2]",
        "code=7",
    ] {
        assert!(log.contains(step), "no {step:?} in the log:\n{log}");
    }
    for line in &lines {
        assert!(
            line.contains(c.id()),
            "a line without the container ID: {line}"
        );
    }
    assert!(
        lines.iter().filter(|l| l.contains("cmd=\"ADD\"")).count() >= 4,
        "{log}"
    );
}

#[test]
fn hostile_paths_state_files_and_reused_names_change_nothing() {
    let Some(s) = Setup::new("hostile_paths_state_files_and_reused_names_change_nothing") else {
        return;
    };
    let c = Container::new("h").unwrap();
    let add = |list: &conformance::NetworkConfigList| {
        s.runtime.add_network_list(list, &c.runtime_conf("eth0"))
    };
    // Store paths that escape or are relative: refused as configuration, nothing made.
    for dir in ["relative/cnm", "/tmp/../etc/cnm"] {
        let ipam = json!({"type": "cnm-ipam", "subnet": "10.86.0.0/24", "dataDir": dir});
        let err = add(&s.list("1.0.0", ipam.clone(), json!({}))).unwrap_err();
        assert_eq!(code(&err), 7, "ipam.dataDir {dir}: {err}");
        let err =
            add(&s.list("1.0.0", s.cnm_ipam("10.86.0.0/24"), json!({"dataDir": dir}))).unwrap_err();
        assert_eq!(code(&err), 7, "dataDir {dir}: {err}");
        assert!(err.to_string().contains("absolute"), "{err}");
    }
    assert_eq!(s.host_links(), Vec::<String>::new());

    // State files replaced by symbolic links: refused; the link target is untouched.
    let target = s.host.state_dir().join("precious");
    std::fs::write(&target, "do not touch").unwrap();
    std::fs::create_dir_all(s.store_dir()).unwrap();
    for name in ["cnm.db", "cnm.db-wal"] {
        let link = s.store_dir().join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = add(&s.list("1.0.0", s.cnm_ipam("10.86.0.0/24"), json!({}))).unwrap_err();
        assert!(
            err.to_string().contains("not a regular file"),
            "{name}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch");
        assert_eq!(s.host_links(), Vec::<String>::new(), "{name}: links made");
        std::fs::remove_file(&link).unwrap();
    }

    // A network name reused with another subnet: refused, the first network untouched.
    let first = s.list("1.0.0", s.cnm_ipam("10.86.0.0/24"), json!({}));
    add(&first).unwrap();
    let other = Container::new("h2").unwrap();
    let second = s.list("1.0.0", s.cnm_ipam("10.85.0.0/24"), json!({}));
    let err = s
        .runtime
        .add_network_list(&second, &other.runtime_conf("eth0"))
        .unwrap_err();
    assert_eq!(code(&err), 7, "{err}");
    assert!(
        err.to_string().contains("already exists with subnet"),
        "{err}"
    );
    assert_eq!(link_names(other.netns()).unwrap(), ["lo"]);
    assert_eq!(s.stored_endpoints(), 1);
    // ... and the live network's bridge and rules gained nothing of the refused subnet.
    let gw = ip(
        s.host.netns(),
        &["-4", "-o", "addr", "show", "dev", &s.bridge],
    )
    .unwrap();
    assert!(
        gw.contains("10.86.0.1/24") && !gw.contains("10.85."),
        "{gw}"
    );
    let table = ruleset(&s);
    assert!(!table.contains("10.85."), "{table}");
    s.runtime
        .del_network_list(&first, &c.runtime_conf("eth0"))
        .unwrap();
    assert_eq!(
        s.host_links(),
        [s.bridge.as_str()],
        "the bridge stays until GC"
    );
}
