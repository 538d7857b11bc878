//! kill -9 anywhere: the plugin kills itself right after its k-th side effect
//! (`CNM_FAULT_KILL_AFTER`, compiled into debug builds only), for every k; then the runtime does
//! what it does next (DEL, or GC) and nothing may be left: no link, no reservation, no nftables
//! element, no lock held, and the store readable.

mod cnm_bridge_setup;

use cnm_bridge_setup::*;
use cnm_core::store::{SqliteStore, Store};
use conformance::{link_names, Container, NetworkConfigList, RuntimeConf};
use serde_json::{json, Value};

/// More side effects than any ADD or DEL has: the loop must end before this.
const MAX_K: u32 = 40;

fn ruleset(s: &Setup) -> String {
    let out = conformance::exec::command_in(s.host.netns(), "nft")
        .unwrap()
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What may stay after recovery: the network's bridge after a DEL (a bridge stays with its
/// network until GC), nothing after GC.
#[derive(Clone, Copy, PartialEq)]
enum After {
    Del,
    Gc,
}

fn assert_nothing_left(s: &Setup, c: &Container, subnet: &str, what: &str, after: After) {
    let mut links = s.host_links();
    if after == After::Del && links == [s.bridge.as_str()] {
        // Back to a network without a bridge, so that the next ADD makes it again and every
        // kill point stays where it was.
        conformance::ip(s.host.netns(), &["link", "del", &s.bridge]).unwrap();
        links = s.host_links();
    }
    assert_eq!(links, Vec::<String>::new(), "{what}: links left");
    assert_eq!(
        link_names(c.netns()).unwrap(),
        ["lo"],
        "{what}: container side left"
    );
    let rules = ruleset(s);
    assert!(
        !rules.contains(subnet) && !rules.contains(&s.bridge),
        "{what}: nft elements left:\n{rules}"
    );
    let mut store = SqliteStore::open(&s.store_dir()).unwrap();
    assert_eq!(
        store.endpoints(None).unwrap().len(),
        0,
        "{what}: endpoints left"
    );
    store
        .check_writable()
        .unwrap_or_else(|e| panic!("{what}: store lock held: {e}"));
    let hl = s.host.state_dir().join("host-local").join("cnmnet");
    let reserved: Vec<String> = std::fs::read_dir(&hl)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        reserved.is_empty(),
        "{what}: host-local reservations left: {reserved:?}"
    );
}

fn with_fault<T>(s: &mut Setup, k: u32, f: impl FnOnce(&Setup) -> T) -> T {
    s.runtime
        .extra_env
        .push(("CNM_FAULT_KILL_AFTER".into(), k.to_string()));
    let out = f(s);
    s.runtime
        .extra_env
        .retain(|(k, _)| k != "CNM_FAULT_KILL_AFTER");
    out
}

/// The IPAMs to crash with, and the newest version each speaks (Debian's host-local 1.1.1
/// stops at 1.0.0).
fn ipams(s: &Setup) -> Vec<(&'static str, Value, &'static str)> {
    let host_local = json!({"type": "host-local", "subnet": "10.84.0.0/24",
        "dataDir": s.host.state_dir().join("host-local")});
    vec![
        ("cnm-ipam", s.cnm_ipam("10.84.0.0/24"), "1.1.0"),
        ("host-local", host_local, "1.0.0"),
    ]
}

/// Kills ADD after side effect k = 1, 2, ... until an ADD completes; after each kill, `recover`
/// does what a runtime would. IPAMs that cannot speak `needs` are skipped, with the reason.
fn each_add_kill(
    test: &str,
    needs: &str,
    recover: impl Fn(&Setup, &NetworkConfigList, &RuntimeConf),
    after: After,
) {
    let Some(mut s) = Setup::new(test) else {
        return;
    };
    for (name, ipam, version) in ipams(&s) {
        if version < needs {
            eprintln!("skipped: {test} [{name}]: needs CNI {needs}, {name} speaks up to {version}");
            continue;
        }
        let list = s.list(version, ipam, json!({}));
        let mut k = 1;
        loop {
            assert!(k < MAX_K, "[{name}] ADD never completed");
            let c = Container::new("k").unwrap();
            let rt = c.runtime_conf("eth0");
            let what = format!("[{name}] ADD killed after side effect {k}");
            match with_fault(&mut s, k, |s| s.runtime.add_network_list(&list, &rt)) {
                Err(e) => {
                    assert!(
                        e.plugin_error().is_none_or(|p| p.code.is_none()),
                        "{what}: not a kill: {e}"
                    );
                    recover(&s, &list, &rt);
                    assert_nothing_left(&s, &c, "10.84.0.0", &what, after);
                }
                Ok(_) => {
                    eprintln!(
                        "[{name}] ADD has {} side effects; each kill was repaired",
                        k - 1
                    );
                    assert!(
                        k > 5,
                        "[{name}] only {} side effects: is the fault hook compiled in?",
                        k - 1
                    );
                    s.runtime.del_network_list(&list, &rt).unwrap();
                    let what = format!("[{name}] after a full ADD");
                    assert_nothing_left(&s, &c, "10.84.0.0", &what, After::Del);
                    break;
                }
            }
            k += 1;
        }
    }
}

#[test]
fn add_killed_anywhere_then_del_leaves_nothing() {
    each_add_kill(
        "add_killed_anywhere_then_del_leaves_nothing",
        "0.4.0",
        |s, list, rt| {
            s.runtime.del_network_list(list, rt).unwrap();
        },
        After::Del,
    );
}

#[test]
fn add_killed_anywhere_then_gc_leaves_nothing() {
    each_add_kill(
        "add_killed_anywhere_then_gc_leaves_nothing",
        "1.1.0",
        |s, list, _| {
            s.runtime.gc_network_list(list, &[]).unwrap();
        },
        After::Gc,
    );
}

#[test]
fn del_killed_anywhere_then_del_again_leaves_nothing() {
    let Some(mut s) = Setup::new("del_killed_anywhere_then_del_again_leaves_nothing") else {
        return;
    };
    for (name, ipam, version) in ipams(&s) {
        let list = s.list(version, ipam, json!({}));
        let mut k = 1;
        loop {
            assert!(k < MAX_K, "[{name}] DEL never completed");
            let c = Container::new("d").unwrap();
            let rt = c.runtime_conf("eth0");
            s.runtime.add_network_list(&list, &rt).unwrap();
            let what = format!("[{name}] DEL killed after side effect {k}");
            let killed = with_fault(&mut s, k, |s| s.runtime.del_network_list(&list, &rt)).is_err();
            // The runtime calls DEL again (kubelet retries until DEL succeeds).
            s.runtime.del_network_list(&list, &rt).unwrap();
            assert_nothing_left(&s, &c, "10.84.0.0", &what, After::Del);
            if !killed {
                eprintln!(
                    "[{name}] DEL has {} side effects; each kill was repaired",
                    k - 1
                );
                assert!(k > 3, "[{name}] only {} side effects", k - 1);
                break;
            }
            k += 1;
        }
    }
}
