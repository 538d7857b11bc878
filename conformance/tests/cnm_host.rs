//! cnm-host next to the reference `host-device`, through the CNI protocol in throwaway
//! namespaces; the "host device" is a veth end in the host namespace whose peer sits in a
//! namespace of its own (the physical network).

mod cnm_drivers_setup;

use std::net::IpAddr;

use cnm_drivers_setup::*;
use conformance::{ip, link_names, ping, Container};
use serde_json::{json, Value};

fn host_list(
    s: &Setup,
    version: &str,
    plugin: &str,
    extra: Value,
) -> conformance::NetworkConfigList {
    let mut conf = json!({"type": plugin});
    if plugin.starts_with("cnm-") {
        conf["dataDir"] = json!(s.store_dir());
    }
    for (k, v) in extra.as_object().unwrap() {
        conf[k] = v.clone();
    }
    let name = if conf.get("ipam").is_some() {
        "hdipam"
    } else {
        "hdnet"
    };
    s.list(version, name, conf)
}

/// A host device with address 10.66.0.5/24, its peer 10.66.0.1/24 in the physical network.
fn device(s: &Setup) -> (String, Container) {
    let (dev, phys) = s.physical("10.66.0.1/24");
    ip(
        s.host.netns(),
        &["addr", "add", "10.66.0.5/24", "dev", &dev],
    )
    .unwrap();
    (dev, phys)
}

#[test]
fn host_device_moves_in_is_reachable_and_comes_back_like_host_device() {
    let test = "host_device_moves_in_is_reachable_and_comes_back_like_host_device";
    let Some(s) = Setup::new(
        test,
        &["cnm-host", "cnm-ipam"],
        &["host-device", "host-local"],
    ) else {
        return;
    };
    for version in VERSIONS {
        for plugin in plugins(version, "cnm-host", "host-device") {
            let cnm = plugin == "cnm-host";
            for with_ipam in [false, true] {
                eprintln!("[{version}] {plugin} ipam={with_ipam}");
                let (dev, phys) = device(&s);
                let mac_before = ip(s.host.netns(), &["-o", "link", "show", &dev]).unwrap();
                let extra = if with_ipam {
                    json!({"device": dev, "ipam": s.ipam(cnm, "10.66.0.0/24")})
                } else {
                    json!({"device": dev})
                };
                let list = host_list(&s, version, plugin, extra);
                let c = Container::new("hd").unwrap();
                let rt = c.runtime_conf("net1");
                let r = s.runtime.add_network_list(&list, &rt).unwrap();
                eprintln!("[{version}] {plugin}: {r}");
                assert!(!link_names(s.host.netns()).unwrap().contains(&dev));
                assert_eq!(link_names(c.netns()).unwrap(), ["lo", "net1"]);
                assert!(is_up(c.netns(), "net1"), "[{version}] {plugin}");
                let inside = addrs(c.netns(), "net1");
                eprintln!("[{version}] {plugin} ipam={with_ipam}: addresses inside {inside:?}");
                let want: IpAddr = match r["ips"][0]["address"].as_str() {
                    Some(a) if with_ipam => a.split('/').next().unwrap().parse().unwrap(),
                    _ => "10.66.0.5".parse().unwrap(),
                };
                let reachable = ping(phys.netns(), want);
                eprintln!("[{version}] {plugin} ipam={with_ipam}: {want} reachable from the peer: {reachable}");
                if cnm || with_ipam {
                    assert!(reachable, "[{version}] {plugin} ipam={with_ipam}");
                    assert_eq!(inside, [format!("{want}/24")]);
                }
                if version >= "0.4.0" && cnm {
                    s.runtime.check_network_list(&list, &rt).unwrap();
                }
                s.runtime.del_network_list(&list, &rt).unwrap();
                let back = link_names(s.host.netns()).unwrap().contains(&dev);
                let host_addrs = if back {
                    addrs(s.host.netns(), &dev)
                } else {
                    vec![]
                };
                let up = back && is_up(s.host.netns(), &dev);
                eprintln!("[{version}] {plugin} ipam={with_ipam}: back as {dev}: {back}, addresses {host_addrs:?}, up {up}");
                assert!(
                    back,
                    "[{version}] {plugin}: the device is back under its name"
                );
                assert_eq!(link_names(c.netns()).unwrap(), ["lo"]);
                if cnm {
                    assert_eq!(host_addrs, ["10.66.0.5/24"]);
                    assert!(up);
                    let shown = ip(s.host.netns(), &["-o", "link", "show", &dev]).unwrap();
                    assert_eq!(
                        shown.split("link/ether").nth(1),
                        mac_before.split("link/ether").nth(1)
                    );
                    assert!(ping(phys.netns(), "10.66.0.5".parse().unwrap()));
                    assert_eq!(s.stored_endpoints(), 0);
                }
                ip(s.host.netns(), &["link", "del", &dev]).unwrap();
            }

            // DEL with the container's namespace gone: a veth end dies with it (and its peer).
            let (dev, phys) = device(&s);
            let list = host_list(&s, version, plugin, json!({"device": dev}));
            let c = Container::new("gone").unwrap();
            let rt = c.runtime_conf("net1");
            s.runtime.add_network_list(&list, &rt).unwrap();
            drop(c);
            // Observed: the reference's DEL fails (code 999, "failed to open netns") here.
            let del = s.runtime.del_network_list(&list, &rt);
            eprintln!("[{version}] {plugin}: DEL with the netns gone: {del:?}");
            assert!(del.is_ok() || !cnm, "{del:?}");
            eprintln!(
                "[{version}] {plugin}: netns gone, then DEL: host has {:?}, physical network has {:?}",
                link_names(s.host.netns()).unwrap(),
                link_names(phys.netns()).unwrap()
            );
            assert!(!link_names(s.host.netns()).unwrap().contains(&dev));
            assert_eq!(s.stored_endpoints(), 0);
            if version >= "1.1.0" {
                s.runtime.status_network_list(&list).unwrap();
                s.runtime.gc_network_list(&list, &[]).unwrap();
            }
        }
    }
}

#[test]
fn host_device_bad_input_leaves_the_host_interface_alone() {
    let test = "host_device_bad_input_leaves_the_host_interface_alone";
    let Some(s) = Setup::new(test, &["cnm-host"], &["host-device"]) else {
        return;
    };
    for plugin in ["cnm-host", "host-device"] {
        let cnm = plugin == "cnm-host";
        let (dev, _phys) = device(&s);
        let (other, _phys2) = s.physical("10.55.0.1/24");
        let other_mac = ip(s.host.netns(), &["-o", "link", "show", &other]).unwrap();
        let other_mac = other_mac
            .split("link/ether ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        // The default route goes through `dev`.
        ip(
            s.host.netns(),
            &["route", "add", "default", "via", "10.66.0.1", "dev", &dev],
        )
        .unwrap();
        let cases: Vec<(Value, u64, String)> = vec![
            (json!({"device": "nosuchdev0"}), 7, "nosuchdev0".into()),
            (json!({}), 7, "device".into()),
            (json!({"device": dev}), 7, "allowDefaultRoute".into()),
            (
                json!({"device": dev, "hwaddr": other_mac, "allowDefaultRoute": true}),
                7,
                "name it once".into(),
            ),
        ];
        for (extra, want, needle) in cases {
            let list = host_list(&s, "1.0.0", plugin, extra.clone());
            let c = Container::new("bad").unwrap();
            let rt = c.runtime_conf("net1");
            let outcome = s.runtime.add_network_list(&list, &rt);
            eprintln!("{plugin} {extra}: {outcome:?}");
            if outcome.is_ok() {
                assert!(!cnm, "{extra}");
                s.runtime.del_network_list(&list, &rt).unwrap();
                continue;
            }
            let err = outcome.unwrap_err();
            assert_eq!(link_names(c.netns()).unwrap(), ["lo"], "{plugin} {extra}");
            if cnm {
                assert_eq!(code(&err), want, "{extra}: {err}");
                assert!(msg(&err).contains(&needle), "{extra}: {err}");
            }
            assert!(link_names(s.host.netns()).unwrap().contains(&dev));
            assert_eq!(addrs(s.host.netns(), &dev), ["10.66.0.5/24"]);
        }
        // Named by a second container while the first holds it.
        let list = host_list(&s, "1.0.0", plugin, json!({"device": other}));
        let c1 = Container::new("h1").unwrap();
        let c2 = Container::new("h2").unwrap();
        s.runtime
            .add_network_list(&list, &c1.runtime_conf("net1"))
            .unwrap();
        let err = s
            .runtime
            .add_network_list(&list, &c2.runtime_conf("net1"))
            .unwrap_err();
        eprintln!("{plugin} {other} again: {err}");
        if cnm {
            assert_eq!(code(&err), 7, "{err}");
            assert!(
                msg(&err).contains(&format!("already in container {}", c1.id())),
                "{err}"
            );
        }
        assert_eq!(link_names(c2.netns()).unwrap(), ["lo"]);
        // Observed: the reference's DEL fails (code 999, "failed to find net1") after its ADD
        // failed; cnm's succeeds (SPEC: DEL must succeed when there is nothing to delete).
        let del = s.runtime.del_network_list(&list, &c2.runtime_conf("net1"));
        eprintln!("{plugin}: DEL after the failed ADD: {del:?}");
        assert!(del.is_ok() || !cnm, "{del:?}");
        assert_eq!(
            link_names(c1.netns()).unwrap(),
            ["lo", "net1"],
            "{plugin}: DEL of c2 left c1's device"
        );
        s.runtime
            .del_network_list(&list, &c1.runtime_conf("net1"))
            .unwrap();
        assert!(link_names(s.host.netns()).unwrap().contains(&other));
        // The reference moved `dev` away with the default route on it, which took the route.
        let _ = ip(s.host.netns(), &["route", "del", "default"]);
        for d in [&dev, &other] {
            ip(s.host.netns(), &["link", "del", d]).unwrap();
        }
    }
    assert_eq!(s.stored_endpoints(), 0);
}

#[test]
fn a_taken_ifname_leaves_the_device_in_the_host_with_its_name_and_addresses() {
    let test = "a_taken_ifname_leaves_the_device_in_the_host_with_its_name_and_addresses";
    let Some(s) = Setup::new(test, &["cnm-host"], &["host-device"]) else {
        return;
    };
    for plugin in ["cnm-host", "host-device"] {
        let (dev, _phys) = device(&s);
        let list = host_list(&s, "1.0.0", plugin, json!({"device": dev}));
        let c = Container::new("taken").unwrap();
        // The container already has a `net1`: a veth end of its own.
        ip(
            c.netns(),
            &[
                "link", "add", "net1", "type", "veth", "peer", "name", "mine0",
            ],
        )
        .unwrap();
        let rt = c.runtime_conf("net1");
        let outcome = s.runtime.add_network_list(&list, &rt);
        eprintln!("{plugin}: ADD with net1 taken: {outcome:?}");
        let err = outcome.expect_err("net1 is taken");
        let mut inside = link_names(c.netns()).unwrap();
        inside.sort();
        if plugin == "cnm-host" {
            assert_eq!(code(&err), 4, "{err}");
            assert!(msg(&err).contains("already has an interface net1"), "{err}");
            assert_eq!(
                inside,
                ["lo", "mine0", "net1"],
                "nothing of the host's stays inside"
            );
            assert!(link_names(s.host.netns()).unwrap().contains(&dev));
            assert_eq!(addrs(s.host.netns(), &dev), ["10.66.0.5/24"]);
        } else {
            eprintln!("host-device: inside after the failed ADD: {inside:?}");
        }
        let del = s.runtime.del_network_list(&list, &rt);
        eprintln!("{plugin}: DEL after the failed ADD: {del:?}");
        if plugin == "cnm-host" {
            del.unwrap();
        }
        let _ = ip(s.host.netns(), &["link", "del", &dev]);
    }
    assert_eq!(s.stored_endpoints(), 0);
}
