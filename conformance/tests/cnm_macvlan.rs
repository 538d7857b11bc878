//! cnm-macvlan next to the reference `macvlan`, through the CNI protocol in throwaway
//! namespaces; a veth end in the host namespace is the "physical" master, its peer sits in a
//! namespace of its own (the physical network) with an address.

mod cnm_drivers_setup;

use std::net::IpAddr;

use cnm_drivers_setup::*;
use conformance::{link_names, ping, Container};
use serde_json::{json, Value};

fn macvlan_list(
    s: &Setup,
    version: &str,
    plugin: &str,
    extra: Value,
) -> conformance::NetworkConfigList {
    let cnm = plugin.starts_with("cnm-");
    let mut conf = json!({"type": plugin, "ipam": s.ipam(cnm, "10.77.0.0/24")});
    if cnm {
        conf["dataDir"] = json!(s.store_dir());
    }
    for (k, v) in extra.as_object().unwrap() {
        conf[k] = v.clone();
    }
    s.list(version, "mvnet", conf)
}

fn first_addr(r: &Value) -> IpAddr {
    let a = r["ips"][0]["address"].as_str().unwrap();
    a.split('/').next().unwrap().parse().unwrap()
}

#[test]
fn macvlan_bridge_mode_two_containers_and_the_physical_network_like_macvlan() {
    let test = "macvlan_bridge_mode_two_containers_and_the_physical_network_like_macvlan";
    let Some(s) = Setup::new(
        test,
        &["cnm-macvlan", "cnm-ipam"],
        &["macvlan", "host-local"],
    ) else {
        return;
    };
    for version in VERSIONS {
        for plugin in plugins(version, "cnm-macvlan", "macvlan") {
            eprintln!("[{version}] {plugin}");
            let (master, phys) = s.physical("10.77.0.1/24");
            let list = macvlan_list(
                &s,
                version,
                plugin,
                json!({"master": master, "mode": "bridge"}),
            );
            let (c1, c2) = (Container::new("m1").unwrap(), Container::new("m2").unwrap());
            let (rt1, rt2) = (c1.runtime_conf("eth0"), c2.runtime_conf("eth0"));
            let r1 = s.runtime.add_network_list(&list, &rt1).unwrap();
            let r2 = s.runtime.add_network_list(&list, &rt2).unwrap();
            eprintln!("[{version}] {plugin}: {r1}");
            for (r, c) in [(&r1, &c1), (&r2, &c2)] {
                let ifaces = r["interfaces"].as_array().unwrap();
                assert_eq!(ifaces.len(), 1, "{r}");
                assert_eq!(ifaces[0]["name"], "eth0");
                assert_eq!(ifaces[0]["sandbox"], c.path().to_str().unwrap());
                assert_eq!(r["ips"][0]["interface"], 0);
                assert_eq!(link_names(c.netns()).unwrap(), ["lo", "eth0"]);
                let shown =
                    conformance::ip(c.netns(), &["-d", "-o", "link", "show", "eth0"]).unwrap();
                assert!(shown.contains("macvlan mode bridge"), "{shown}");
                let mac = ifaces[0]["mac"].as_str().unwrap();
                assert!(shown.contains(mac), "{shown} lacks {mac}");
            }
            let (a1, a2) = (first_addr(&r1), first_addr(&r2));
            assert!(ping(c1.netns(), a2), "[{version}] {plugin}: c1 -> c2");
            assert!(ping(c2.netns(), a1), "[{version}] {plugin}: c2 -> c1");
            let outside: IpAddr = "10.77.0.1".parse().unwrap();
            assert!(
                ping(c1.netns(), outside),
                "[{version}] {plugin}: c1 -> physical network"
            );
            assert!(
                ping(phys.netns(), a2),
                "[{version}] {plugin}: physical network -> c2"
            );

            if version >= "0.4.0" {
                s.runtime.check_network_list(&list, &rt1).unwrap();
                conformance::ip(c1.netns(), &["link", "set", "eth0", "down"]).unwrap();
                let err = s.runtime.check_network_list(&list, &rt1).unwrap_err();
                eprintln!("[{version}] {plugin}: CHECK with eth0 down: {err}");
                if plugin == "cnm-macvlan" {
                    assert_eq!(code(&err), 103, "{err}");
                }
                conformance::ip(c1.netns(), &["link", "set", "eth0", "up"]).unwrap();
            }

            // passthru on a master that already carries macvlans: a clear refusal, nothing made.
            let c3 = Container::new("m3").unwrap();
            let pt = macvlan_list(
                &s,
                version,
                plugin,
                json!({"master": master, "mode": "passthru"}),
            );
            let err = s
                .runtime
                .add_network_list(&pt, &c3.runtime_conf("eth0"))
                .unwrap_err();
            eprintln!("[{version}] {plugin}: passthru on a used master: {err}");
            assert_eq!(link_names(c3.netns()).unwrap(), ["lo"]);
            if plugin == "cnm-macvlan" {
                assert_eq!(code(&err), 7, "{err}");
                assert!(
                    msg(&err).contains(&format!("master {master} refused a passthru macvlan")),
                    "{err}"
                );
            }

            s.runtime.del_network_list(&list, &rt1).unwrap();
            assert_eq!(link_names(c1.netns()).unwrap(), ["lo"]);
            // DEL with the namespace gone succeeds and releases the address (SPEC §DEL).
            drop(c2);
            s.runtime.del_network_list(&list, &rt2).unwrap();
            s.runtime.del_network_list(&list, &rt2).unwrap();
            assert_eq!(s.stored_endpoints(), 0);
            assert!(link_names(s.host.netns()).unwrap().contains(&master));
            if version >= "1.1.0" {
                s.runtime.status_network_list(&list).unwrap();
                s.runtime.gc_network_list(&list, &[]).unwrap();
            }
        }
    }
}

#[test]
fn macvlan_bad_input_gets_code_7_and_makes_nothing() {
    let test = "macvlan_bad_input_gets_code_7_and_makes_nothing";
    let Some(s) = Setup::new(
        test,
        &["cnm-macvlan", "cnm-ipam"],
        &["macvlan", "host-local"],
    ) else {
        return;
    };
    let (master, _phys) = s.physical("10.77.0.1/24");
    let cases = [
        (json!({"master": "nosuchdev0"}), 7, "nosuchdev0"),
        (json!({"master": master, "mode": "sideways"}), 7, "sideways"),
        (json!({"master": master, "mtu": 65000}), 7, "mtu 65000"),
        (
            json!({"master": master, "linkInNetns": true}),
            2,
            "linkInNetns",
        ),
        (json!({}), 7, "master"),
    ];
    for plugin in ["cnm-macvlan", "macvlan"] {
        for (extra, want, names) in &cases {
            let list = macvlan_list(&s, "1.0.0", plugin, extra.clone());
            let c = Container::new("bad").unwrap();
            let rt = c.runtime_conf("eth0");
            let outcome = s.runtime.add_network_list(&list, &rt);
            eprintln!("{plugin} {extra}: {outcome:?}");
            if plugin != "cnm-macvlan" {
                // Observed: Debian's reference (1.1.1) ignores linkInNetns and succeeds.
                if outcome.is_ok() {
                    s.runtime.del_network_list(&list, &rt).unwrap();
                }
                continue;
            }
            let err = outcome.unwrap_err();
            assert_eq!(link_names(c.netns()).unwrap(), ["lo"]);
            assert_eq!(code(&err), *want, "{extra}: {err}");
            assert!(msg(&err).contains(names), "{extra}: {err}");
        }
    }
    assert_eq!(s.stored_endpoints(), 0);
}
