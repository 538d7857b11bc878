//! Kernel tests of the firewall, each in throwaway network namespaces (never the machine's own);
//! `nft` is exec'd only here, to look at what the netlink code made.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::table::{decode_intervals, subnet_keys};
use super::*;
use crate::netns::{OwnedNetns, NETNS_RUN_DIR};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root to create network namespaces");
            return;
        }
    };
}

// After the macro: textual scope.
mod measure;
mod portmap;
mod traffic;

/// A throwaway named namespace `cnmt-fw-<pid>-<n>`, removed on drop.
fn netns() -> OwnedNetns {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "cnmt-fw-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    OwnedNetns::create(NETNS_RUN_DIR, &name).unwrap()
}

fn name(ns: &OwnedNetns) -> String {
    ns.path().file_name().unwrap().to_str().unwrap().to_owned()
}

/// Runs a command inside `ns` (through `ip netns exec`) and returns its stdout.
fn exec_in(ns: &OwnedNetns, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &name(ns)])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ip -n NS ...`
fn ip(ns: &OwnedNetns, args: &str) {
    let out = Command::new("ip")
        .args(["-n", &name(ns)])
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `nft -j list table inet cnm` as (chain names, set names, rule texts per chain).
fn listed(ns: &OwnedNetns) -> Value {
    let text = exec_in(ns, &["nft", "-j", "list", "table", "inet", "cnm"]);
    serde_json::from_str(&text).unwrap()
}

fn objects<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get(kind))
        .collect()
}

fn rules_of<'a>(v: &'a Value, chain: &str) -> Vec<&'a Value> {
    objects(v, "rule")
        .into_iter()
        .filter(|r| r["chain"] == chain)
        .collect()
}

fn assert_one_copy(ns: &OwnedNetns) {
    let v = listed(ns);
    let mut sets: Vec<_> = objects(&v, "set")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    sets.sort();
    assert_eq!(
        sets,
        [
            "bridges",
            "internal",
            "masq4",
            "masq6",
            "pmhp4",
            "pmhp6",
            "same_bridge"
        ]
    );
    assert_eq!(objects(&v, "map").len(), 4);
    assert_eq!(objects(&v, "chain").len(), 5);
    assert_eq!(rules_of(&v, "postrouting").len(), 4, "{v:#}");
    assert_eq!(rules_of(&v, "prerouting").len(), 4, "{v:#}");
    assert_eq!(rules_of(&v, "forward").len(), 5, "{v:#}");
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn subnet_keys_round_trip() {
    for s in [
        "10.66.0.0/24",
        "255.255.255.0/24",
        "0.0.0.0/0",
        "10.0.0.7/32",
    ] {
        let keys = subnet_keys(&net(s));
        let ints = keys
            .iter()
            .map(|(k, e)| {
                (
                    u128::from(u32::from_be_bytes(k[..].try_into().unwrap())),
                    *e,
                )
            })
            .collect();
        assert_eq!(
            decode_intervals(Set::Masq4, ints),
            vec![Element::Subnet(net(s))]
        );
    }
    assert_eq!(subnet_keys(&net("255.255.255.0/24")).len(), 1);
    for s in ["fd00:66::/64", "::/0", "ffff::/16"] {
        let keys = subnet_keys(&net(s));
        let ints = keys
            .iter()
            .map(|(k, e)| (u128::from_be_bytes(k[..].try_into().unwrap()), *e))
            .collect();
        assert_eq!(
            decode_intervals(Set::Masq6, ints),
            vec![Element::Subnet(net(s))]
        );
    }
}

#[test]
fn bad_bridge_names_are_rejected_before_any_kernel_call() {
    for bad in ["", "a/b", "x:1", "sixteen-bytes-xx", "a b", ".."] {
        assert!(matches!(
            table::ifname_key(bad),
            Err(FirewallError::InvalidName { .. })
        ));
    }
}

#[test]
fn ensure_table_twice_gives_one_copy() {
    require_root!();
    let ns = netns();
    let mut nft = Nft::new_in(&ns).unwrap();
    nft.ensure_table().unwrap();
    assert_one_copy(&ns);
    // nft reads back exactly the rules of the picture in mod.rs.
    let text = exec_in(&ns, &["nft", "list", "table", "inet", "cnm"]);
    for rule in [
        "ip saddr @masq4 ip daddr != @masq4 ip daddr != 224.0.0.0/4 masquerade",
        "ip6 saddr @masq6 ip6 daddr != @masq6 ip6 daddr != ff00::/8 masquerade",
        "iifname @internal drop",
        "oifname @internal drop",
        "iifname @bridges oifname @bridges iifname . oifname != @same_bridge drop",
    ] {
        assert!(text.contains(rule), "{rule:?} not in\n{text}");
    }
    nft.ensure_table().unwrap();
    assert_one_copy(&ns);
    // What a racing creator that lost sends: the whole batch is refused.
    assert!(matches!(
        nft.commit(&table::create_table_batch()),
        Err(FirewallError::Exists { .. })
    ));
    assert_one_copy(&ns);
    let v = listed(&ns);
    let chains = objects(&v, "chain");
    let post = chains.iter().find(|c| c["name"] == "postrouting").unwrap();
    assert_eq!(post["type"], "nat");
    assert_eq!(post["hook"], "postrouting");
    assert_eq!(post["prio"], 100);
    let fwd = chains.iter().find(|c| c["name"] == "forward").unwrap();
    assert_eq!(
        (fwd["type"].as_str(), fwd["policy"].as_str()),
        (Some("filter"), Some("accept"))
    );
    nft.delete_table().unwrap();
    nft.delete_table().unwrap();
}

#[test]
fn ensure_table_from_eight_sockets_at_once() {
    require_root!();
    let ns = netns();
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let mut nft = Nft::new_in(&ns).unwrap();
                barrier.wait();
                nft.ensure_table().unwrap();
            });
        }
    });
    assert_one_copy(&ns);
}

#[test]
fn network_elements_round_trip() {
    require_root!();
    let ns = netns();
    let mut nft = Nft::new_in(&ns).unwrap();
    nft.ensure_table().unwrap();
    let a = NetworkRules {
        bridge: "cnm-a",
        masq: vec![net("10.66.0.0/24"), net("fd00:66::/64")],
        internal: false,
    };
    let b = NetworkRules {
        bridge: "cnm-b",
        masq: vec![net("10.67.0.0/16")],
        internal: true,
    };
    nft.add_network(&a).unwrap();
    nft.add_network(&b).unwrap();
    nft.add_network(&a).unwrap(); // again: idempotent
    let mut m4 = nft.elements(Set::Masq4).unwrap();
    m4.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        m4,
        vec![
            Element::Subnet(net("10.66.0.0/24")),
            Element::Subnet(net("10.67.0.0/16"))
        ]
    );
    assert_eq!(
        nft.elements(Set::Masq6).unwrap(),
        vec![Element::Subnet(net("fd00:66::/64"))]
    );
    let mut br = nft.elements(Set::Bridges).unwrap();
    br.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        br,
        vec![
            Element::Ifname("cnm-a".into()),
            Element::Ifname("cnm-b".into())
        ]
    );
    assert!(nft
        .elements(Set::SameBridge)
        .unwrap()
        .contains(&Element::IfnamePair("cnm-b".into(), "cnm-b".into())));
    assert_eq!(
        nft.elements(Set::Internal).unwrap(),
        vec![Element::Ifname("cnm-b".into())]
    );
    // nft itself can read what we wrote.
    let text = exec_in(&ns, &["nft", "list", "table", "inet", "cnm"]);
    for shown in [
        "10.66.0.0/24",
        "fd00:66::/64",
        "\"cnm-a\" . \"cnm-a\"",
        "elements = { \"cnm-b\" }",
    ] {
        assert!(text.contains(shown), "{shown:?} not in\n{text}");
    }

    nft.remove_network(&a).unwrap();
    nft.remove_network(&a).unwrap(); // twice: still fine
    assert_eq!(
        nft.elements(Set::Masq4).unwrap(),
        vec![Element::Subnet(net("10.67.0.0/16"))]
    );
    assert!(nft.elements(Set::Masq6).unwrap().is_empty());
    assert_eq!(
        nft.elements(Set::Bridges).unwrap(),
        vec![Element::Ifname("cnm-b".into())]
    );
    nft.remove_network(&b).unwrap();
    for set in Set::ALL {
        assert!(nft.elements(set).unwrap().is_empty(), "{set:?}");
    }
    assert_one_copy(&ns);
    // Without the table: adding says so, removing is done.
    nft.delete_table().unwrap();
    assert!(matches!(
        nft.add_network(&a),
        Err(FirewallError::NotFound { .. })
    ));
    nft.remove_network(&a).unwrap();
    assert!(matches!(
        nft.elements(Set::Bridges),
        Err(FirewallError::NotFound { .. })
    ));
}

#[test]
fn delete_of_a_missing_element_fails_but_destroy_does_not() {
    require_root!();
    let ns = netns();
    let mut nft = Nft::new_in(&ns).unwrap();
    nft.ensure_table().unwrap();
    let a = NetworkRules {
        bridge: "cnm-a",
        masq: vec![net("10.66.0.0/24")],
        internal: false,
    };
    let err = nft.remove_network_by(&a, Removal::Delete).unwrap_err();
    assert!(matches!(err, FirewallError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("remove network cnm-a"), "{err}");
    nft.remove_network_by(&a, Removal::Destroy).unwrap();
}

#[test]
fn other_tables_are_untouched() {
    require_root!();
    let ns = netns();
    exec_in(
        &ns,
        &[
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            "10.9.0.0/16",
            "-j",
            "MASQUERADE",
        ],
    );
    exec_in(
        &ns,
        &["iptables", "-A", "FORWARD", "-i", "cnm-a", "-j", "DROP"],
    );
    exec_in(&ns, &["nft", "add table inet other; add chain inet other c { type filter hook forward priority 0; }; add rule inet other c counter accept"]);
    let before = exec_in(&ns, &["nft", "-j", "list", "ruleset"]);
    let mut nft = Nft::new_in(&ns).unwrap();
    nft.ensure_table().unwrap();
    let a = NetworkRules {
        bridge: "cnm-a",
        masq: vec![net("10.66.0.0/24")],
        internal: true,
    };
    nft.add_network(&a).unwrap();
    nft.remove_network(&a).unwrap();
    nft.delete_table().unwrap();
    let after = exec_in(&ns, &["nft", "-j", "list", "ruleset"]);
    let strip = |s: &str| {
        // Only compare the objects; the metainfo line does not matter.
        let v: Value = serde_json::from_str(s).unwrap();
        v["nftables"].as_array().unwrap()[1..].to_vec()
    };
    assert_eq!(strip(&before), strip(&after));
}
