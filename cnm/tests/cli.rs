//! The `cnm` command against a store that cnm's real plugins filled: `cnm-bridge` + `cnm-ipam`
//! driven through the CNI protocol by the conformance runtime, with the "host" in a throwaway
//! namespace and the store in a temporary directory. The command only reads the store.

use std::path::Path;
use std::process::Output;

use conformance::{
    cnm_plugin_dir, require_plugins, require_root, unique_ifname, Container, Host,
    NetworkConfigList,
};
use serde_json::{json, Value};

const NETWORK: &str = "clinet";

/// Runs the built `cnm` with `args`, with no `CNM_DATA_DIR` from this process's environment.
fn cnm(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cnm"))
        .args(args)
        .env_remove("CNM_DATA_DIR")
        .output()
        .expect("run cnm")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// Runs `cnm --data-dir DIR ARGS --json`, which must succeed, and parses its output.
fn cnm_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--data-dir", dir.to_str().unwrap()];
    all.extend(args);
    all.push("--json");
    let out = cnm(&all);
    assert!(out.status.success(), "cnm {all:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("cnm {all:?}: {e}: {out:?}"))
}

/// Runs `cnm --data-dir DIR ARGS`, which must succeed, and returns its text.
fn cnm_text(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["--data-dir", dir.to_str().unwrap()];
    all.extend(args);
    let out = cnm(&all);
    assert!(out.status.success(), "cnm {all:?}: {out:?}");
    stdout(&out)
}

/// A failure: non-zero status, nothing on stdout, one line on stderr starting with `cnm: `.
fn assert_fails_with_one_line(out: &Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.starts_with("cnm: "), "{err:?}");
    err
}

/// The container-side interface's MAC and the addresses of an ADD result.
fn mac_and_addresses(result: &Value) -> (Value, Vec<Value>) {
    let ifaces = result["interfaces"].as_array().unwrap();
    let sandbox = ifaces.iter().find(|i| i.get("sandbox").is_some()).unwrap();
    let addrs = result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["address"].clone())
        .collect();
    (sandbox["mac"].clone(), addrs)
}

#[test]
fn the_command_shows_what_two_bridge_adds_made_and_nothing_after_del() {
    let test = "the_command_shows_what_two_bridge_adds_made_and_nothing_after_del";
    if !require_root(test) || !require_plugins(test, &cnm_plugin_dir(), &["cnm-bridge", "cnm-ipam"])
    {
        return;
    }
    let host = Host::new("cli").unwrap();
    let runtime = host.runtime(vec![cnm_plugin_dir()]).unwrap();
    let store = host.state_dir().join("cnm");
    let list = NetworkConfigList::from_value(&json!({
        "cniVersion": "1.1.0", "name": NETWORK,
        "plugins": [{
            "type": "cnm-bridge", "bridge": unique_ifname("cli"), "isGateway": true,
            "ipMasq": true, "dataDir": store, "capabilities": {"portMappings": true},
            "ipam": {"type": "cnm-ipam", "subnet": "10.96.7.0/24", "dataDir": store},
        }],
    }))
    .unwrap();
    let (c1, c2) = (
        Container::new("cli1").unwrap(),
        Container::new("cli2").unwrap(),
    );
    // The harness's container IDs share their first 12 characters within a process; these
    // differ there, so the table's short IDs tell them apart.
    let (mut rt1, mut rt2) = (c1.runtime_conf("eth0"), c2.runtime_conf("eth0"));
    rt1.container_id = format!("a1b2c3d4e5f6{}", &c1.id()[12..]);
    rt2.container_id = format!("f6e5d4c3b2a1{}", &c2.id()[12..]);
    rt1.capability_args.insert(
        "portMappings".into(),
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let r1 = runtime.add_network_list(&list, &rt1).unwrap();
    let r2 = runtime.add_network_list(&list, &rt2).unwrap();

    // endpoint ls: both containers, as their ADD results said, and the published port.
    let endpoints = cnm_json(&store, &["endpoint", "ls"]);
    let endpoints = endpoints.as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{endpoints:?}");
    for (c, rt, r, ports) in [
        (
            &c1,
            &rt1,
            &r1,
            json!([{"protocol": "tcp", "hostIP": null, "hostPort": 8080, "containerPort": 80}]),
        ),
        (&c2, &rt2, &r2, json!([])),
    ] {
        let e = endpoints
            .iter()
            .find(|e| e["containerID"] == rt.container_id.as_str())
            .unwrap_or_else(|| panic!("no endpoint of {} in {endpoints:?}", rt.container_id));
        let (mac, addresses) = mac_and_addresses(r);
        assert_eq!(e["network"], NETWORK);
        assert_eq!(e["ifname"], "eth0");
        assert_eq!(e["state"], "created");
        assert_eq!(e["mac"], mac);
        assert_eq!(e["sandbox"], c.path().to_str().unwrap());
        assert_eq!(e["addresses"].as_array().unwrap(), &addresses);
        assert_eq!(e["gateways"], json!(["10.96.7.1"]));
        assert_eq!(e["ports"], ports);
    }
    // Filtered by network: the same two; another network's: none.
    assert_eq!(
        cnm_json(&store, &["endpoint", "ls", NETWORK])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(cnm_json(&store, &["endpoint", "ls", "other"]), json!([]));

    // network ls and inspect.
    let networks = cnm_json(&store, &["network", "ls"]);
    assert_eq!(networks.as_array().unwrap().len(), 1, "{networks}");
    let net = &networks[0];
    assert_eq!(net["name"], NETWORK);
    assert_eq!(net["driver"], "cnm-bridge");
    assert_eq!(net["subnets"], json!(["10.96.7.0/24"]));
    assert_eq!(net["endpoints"], 2);
    assert_eq!(&cnm_json(&store, &["network", "inspect", NETWORK]), net);
    let inspected = cnm_text(&store, &["network", "inspect", NETWORK]);
    assert!(
        inspected.contains("cnm-bridge") && inspected.contains("10.96.7.0/24"),
        "{inspected}"
    );

    // The tables: short container IDs, aligned under their header, the port as docker shows it.
    let table = cnm_text(&store, &["endpoint", "ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let id_column = lines[0].find("CONTAINER ID").unwrap();
    let ports_column = lines[0].find("PORTS").unwrap();
    for (id, ports) in [
        (&rt1.container_id, "0.0.0.0:8080->80/tcp"),
        (&rt2.container_id, ""),
    ] {
        let short = &id[..12];
        let line = lines
            .iter()
            .find(|l| l.contains(short))
            .unwrap_or_else(|| panic!("no {short} in {table}"));
        assert_eq!(line.find(short), Some(id_column), "{table}");
        assert!(
            !line.contains(id.as_str()),
            "the table shortens IDs: {table}"
        );
        assert_eq!(
            line.get(ports_column..).unwrap_or_default(),
            ports,
            "{table}"
        );
    }
    let networks_table = cnm_text(&store, &["network", "ls"]);
    assert!(
        networks_table.lines().nth(1).unwrap().starts_with(NETWORK),
        "{networks_table}"
    );

    // After DEL of both, no endpoint is left; the network record stays, with none.
    runtime.del_network_list(&list, &rt1).unwrap();
    runtime.del_network_list(&list, &rt2).unwrap();
    assert_eq!(cnm_json(&store, &["endpoint", "ls"]), json!([]));
    assert_eq!(cnm_text(&store, &["endpoint", "ls"]).lines().count(), 1);
    for n in cnm_json(&store, &["network", "ls"]).as_array().unwrap() {
        assert_eq!(n["endpoints"], 0, "{n}");
    }
    // An unknown network of an existing store.
    let out = cnm(&[
        "--data-dir",
        store.to_str().unwrap(),
        "network",
        "inspect",
        "nope",
    ]);
    let err = assert_fails_with_one_line(&out);
    assert!(err.contains("no network named \"nope\""), "{err}");
}

#[test]
fn a_missing_store_lists_nothing_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never-made");
    assert_eq!(cnm_json(&missing, &["endpoint", "ls"]), json!([]));
    assert_eq!(cnm_json(&missing, &["network", "ls"]), json!([]));
    assert_eq!(
        cnm_text(&missing, &["network", "ls"]),
        "NAME   DRIVER   SUBNETS   ENDPOINTS\n"
    );
    assert!(!missing.exists());
    // CNM_DATA_DIR is the default for --data-dir.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnm"))
        .args(["endpoint", "ls", "--json"])
        .env("CNM_DATA_DIR", &missing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn inspect_of_an_unknown_network_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for name in ["nope", "not/a name"] {
        let out = cnm(&[
            "--data-dir",
            dir.to_str().unwrap(),
            "network",
            "inspect",
            name,
        ]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = assert_fails_with_one_line(&out);
        assert!(err.contains("no network named"), "{err}");
    }
    // A usage error is one line too, with status 2.
    let out = cnm(&["network", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_fails_with_one_line(&out);
}

#[test]
fn help_works_for_each_subcommand() {
    for args in [
        &["--help"][..],
        &["network", "--help"],
        &["network", "ls", "--help"],
        &["network", "inspect", "--help"],
        &["endpoint", "--help"],
        &["endpoint", "ls", "--help"],
        &["help", "endpoint", "ls"],
        &["gc", "--help"],
        &["demo", "--help"],
    ] {
        let out = cnm(args);
        assert!(out.status.success(), "cnm {args:?}: {out:?}");
        let text = stdout(&out);
        assert!(text.contains("Usage: cnm"), "cnm {args:?}: {text}");
        assert!(
            text.contains("--json") && text.contains("--data-dir"),
            "cnm {args:?}: {text}"
        );
    }
}
