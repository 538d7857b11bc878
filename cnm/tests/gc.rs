//! `cnm gc` against endpoints that cnm's real plugins made (`cnm-bridge` + `cnm-ipam` through the
//! CNI protocol, the "host" a throwaway namespace): a container whose namespace vanished without
//! DEL loses its endpoint (store record, address, published port); a live one keeps its own.
//! The command runs inside the harness's host namespace, where the plugins' links and firewall
//! rules are.

use std::path::Path;
use std::process::Output;

use conformance::exec::command_in;
use conformance::{
    cnm_plugin_dir, link_names, require_plugins, require_root, unique_ifname, Container, Host,
    NetworkConfigList,
};
use serde_json::{json, Value};

const NETWORK: &str = "gcnet";

/// Runs the built `cnm --data-dir DIR ARGS` inside `host`'s network namespace.
fn cnm_in(host: &Host, dir: &Path, args: &[&str]) -> Output {
    command_in(host.netns(), env!("CARGO_BIN_EXE_cnm"))
        .unwrap()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("CNM_DATA_DIR")
        .output()
        .expect("run cnm")
}

/// Runs a `cnm` command that must succeed, and returns its stdout.
fn ok(host: &Host, dir: &Path, args: &[&str]) -> String {
    let out = cnm_in(host, dir, args);
    assert!(out.status.success(), "cnm {args:?}: {out:?}");
    assert!(out.stderr.is_empty(), "cnm {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The container IDs `cnm endpoint ls` lists.
fn listed(host: &Host, dir: &Path) -> Vec<String> {
    let endpoints = json_of(&ok(host, dir, &["endpoint", "ls", "--json"]));
    let ids = endpoints.as_array().unwrap().iter();
    ids.map(|e| e["containerID"].as_str().unwrap().to_owned())
        .collect()
}

/// cnm's nftables table in the host namespace.
fn ruleset(host: &Host) -> String {
    let out = command_in(host.netns(), "nft")
        .unwrap()
        .args(["list", "table", "inet", "cnm"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host-side veth and the container's address of an ADD result.
fn veth_and_address(result: &Value) -> (String, String) {
    let veth = result["interfaces"].as_array().unwrap().iter().find(|i| {
        i.get("sandbox").is_none() && i["name"].as_str().is_some_and(|n| n.starts_with("cnm"))
    });
    let veth = veth.unwrap_or_else(|| panic!("no host veth in {result}"));
    let addr = result["ips"][0]["address"].as_str().unwrap();
    let addr = addr.split('/').next().unwrap();
    (veth["name"].as_str().unwrap().to_owned(), addr.to_owned())
}

#[test]
fn gc_removes_the_endpoint_of_a_vanished_container_and_keeps_the_live_one() {
    let test = "gc_removes_the_endpoint_of_a_vanished_container_and_keeps_the_live_one";
    if !require_root(test) || !require_plugins(test, &cnm_plugin_dir(), &["cnm-bridge", "cnm-ipam"])
    {
        return;
    }
    let host = Host::new("gc").unwrap();
    let runtime = host.runtime(vec![cnm_plugin_dir()]).unwrap();
    let store = host.state_dir().join("cnm");
    let list = NetworkConfigList::from_value(&json!({
        "cniVersion": "1.1.0", "name": NETWORK,
        "plugins": [{
            "type": "cnm-bridge", "bridge": unique_ifname("gc"), "isGateway": true,
            "ipMasq": true, "dataDir": store, "capabilities": {"portMappings": true},
            "ipam": {"type": "cnm-ipam", "subnet": "10.96.9.0/24", "dataDir": store},
        }],
    }))
    .unwrap();
    let (dead, live) = (
        Container::new("gcdead").unwrap(),
        Container::new("gclive").unwrap(),
    );
    let mut rt_dead = dead.runtime_conf("eth0");
    rt_dead.capability_args.insert(
        "portMappings".into(),
        json!([{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"}]),
    );
    let rt_live = live.runtime_conf("eth0");
    let (dead_veth, dead_addr) =
        veth_and_address(&runtime.add_network_list(&list, &rt_dead).unwrap());
    let (live_veth, _) = veth_and_address(&runtime.add_network_list(&list, &rt_live).unwrap());
    let (dead_id, live_id) = (dead.id().to_owned(), live.id().to_owned());
    let mut both = vec![dead_id.clone(), live_id.clone()];
    both.sort();
    assert_eq!(listed(&host, &store), both);
    let dnat_target = format!("{dead_addr} . 80");
    assert!(ruleset(&host).contains(&dnat_target), "{}", ruleset(&host));

    // The dead container's namespace goes without DEL, as when a runtime crashes.
    drop(dead);
    let report = json_of(&ok(&host, &store, &["gc", "--json"]));
    assert_eq!(
        report,
        json!({
            "removed": [{"network": NETWORK, "containerID": dead_id, "ifname": "eth0"}],
            "kept": 1,
            "skipped": [],
        })
    );
    assert_eq!(listed(&host, &store), std::slice::from_ref(&live_id));
    let links = link_names(host.netns()).unwrap();
    assert!(
        !links.contains(&dead_veth),
        "{dead_veth} is left: {links:?}"
    );
    assert!(links.contains(&live_veth), "{live_veth} is gone: {links:?}");
    let rules = ruleset(&host);
    assert!(
        !rules.contains(&dnat_target),
        "the published port is left: {rules}"
    );

    // Again: nothing more to remove; the table form says so in one line.
    assert_eq!(
        ok(&host, &store, &["gc"]),
        "removed 0, kept 1 (container alive), skipped 0\n"
    );
    assert_eq!(listed(&host, &store), [live_id]);
    runtime.del_network_list(&list, &rt_live).unwrap();
}

#[test]
fn gc_of_a_missing_store_removes_nothing_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never-made");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnm"))
        .args(["gc", "--json", "--data-dir"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        json_of(&String::from_utf8_lossy(&out.stdout)),
        json!({"removed": [], "kept": 0, "skipped": []})
    );
    assert!(!missing.exists());
}
