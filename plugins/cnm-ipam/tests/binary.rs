//! Runs the `cnm-ipam` binary as a runtime would: CNI env + config on stdin, for each spec
//! version that has CHECK; the store lives in a tempdir (`dataDir`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

struct Reply {
    ok: bool,
    out: Value,
}

fn run(cmd: &str, id: &str, args: &str, conf: &Value) -> Reply {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnm-ipam"))
        .env_clear()
        // Tests leave no log file on the machine.
        .env("CNM_LOG_FILE", "off")
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/nonexistent")
        .env("CNI_ARGS", args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cnm-ipam runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let out = if output.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&output.stdout).expect("stdout is JSON")
    };
    Reply {
        ok: output.status.success(),
        out,
    }
}

fn conf(version: &str, dir: &Path, ipam: Value) -> Value {
    let mut ipam = ipam;
    ipam["type"] = json!("cnm-ipam");
    ipam["dataDir"] = json!(dir.join("state"));
    json!({"cniVersion": version, "name": "testnet", "type": "bridge", "ipam": ipam})
}

fn address(r: &Reply) -> String {
    assert!(r.ok, "{}", r.out);
    r.out["ips"][0]["address"].as_str().unwrap().to_owned()
}

#[test]
fn add_del_readd_and_check_in_every_version() {
    for version in ["0.4.0", "1.0.0", "1.1.0"] {
        let dir = tempfile::tempdir().unwrap();
        let c = conf(
            version,
            dir.path(),
            json!({
                "subnet": "10.77.0.0/24",
                "routes": [{"dst": "0.0.0.0/0"}],
                "dns": {"nameservers": ["10.77.0.1"]}
            }),
        );
        let a = run("ADD", "ctr-a", "", &c);
        assert_eq!(address(&a), "10.77.0.2/24", "{version}");
        assert_eq!(a.out["ips"][0]["gateway"], "10.77.0.1");
        assert!(
            a.out["ips"][0].get("interface").is_none(),
            "an IPAM result has no interface"
        );
        assert_eq!(a.out["ips"][0].get("version").is_some(), version == "0.4.0");
        assert_eq!(a.out["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(a.out["dns"]["nameservers"][0], "10.77.0.1");
        assert_eq!(a.out["cniVersion"], version);
        assert_eq!(
            address(&run("ADD", "ctr-a", "", &c)),
            "10.77.0.2/24",
            "ADD is idempotent"
        );
        assert_eq!(address(&run("ADD", "ctr-b", "", &c)), "10.77.0.3/24");

        let mut with_prev = c.clone();
        with_prev["prevResult"] = a.out.clone();
        assert!(run("CHECK", "ctr-a", "", &with_prev).ok, "{version}");
        let missing = run("CHECK", "ctr-z", "", &c);
        assert!(!missing.ok && missing.out["code"] == 103, "{}", missing.out);

        assert!(run("DEL", "ctr-a", "", &c).ok);
        assert!(run("DEL", "ctr-a", "", &c).ok, "DEL of nothing succeeds");
        // Round-robin: the next container does not get the address just released.
        assert_eq!(address(&run("ADD", "ctr-a", "", &c)), "10.77.0.4/24");
        // CNI_ARGS IP= asks for a specific address.
        let asked = run("ADD", "ctr-c", "IP=10.77.0.50", &c);
        assert_eq!(address(&asked), "10.77.0.50/24");
        let taken = run("ADD", "ctr-d", "IP=10.77.0.50", &c);
        assert!(!taken.ok && taken.out["code"] == 102, "{}", taken.out);
    }
}

#[test]
fn dual_stack_exhaustion_gc_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let c = conf(
        "1.1.0",
        dir.path(),
        json!({"ranges": [
        [{"subnet": "10.78.0.0/30"}], [{"subnet": "fd78::/64"}]]}),
    );
    assert!(run("STATUS", "", "", &c).ok);
    let a = run("ADD", "ctr-a", "", &c);
    assert!(a.ok, "{}", a.out);
    assert_eq!(a.out["ips"][0]["address"], "10.78.0.2/30");
    assert_eq!(a.out["ips"][1]["address"], "fd78::2/64");
    let full = run("ADD", "ctr-b", "", &c);
    assert_eq!(full.out["code"], 102, "{}", full.out);
    let msg = full.out["msg"].as_str().unwrap();
    assert!(
        msg.contains("no free address in 10.78.0.0/30") && msg.contains("1 in use"),
        "{msg}"
    );
    let mut gc = c.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    assert!(run("GC", "", "", &gc).ok);
    assert!(run("ADD", "ctr-b", "", &c).ok, "GC freed the address");
}

#[test]
fn bad_configs_are_code_7_and_reserve_nothing() {
    for version in ["0.4.0", "1.0.0", "1.1.0"] {
        let dir = tempfile::tempdir().unwrap();
        let bad = [
            (json!({"subnet": "10.79.0.1/24"}), "write 10.79.0.0/24"),
            (
                json!({"ranges": [[{"subnet": "10.79.0.0/24"}], [{"subnet": "10.79.0.0/25"}]]}),
                "overlaps",
            ),
            (
                json!({"subnet": "10.79.0.0/24", "gateway": "10.80.0.1"}),
                "ipam.gateway",
            ),
        ];
        for (ipam, says) in bad {
            let r = run("ADD", "ctr-a", "", &conf(version, dir.path(), ipam));
            assert!(!r.ok);
            assert_eq!(r.out["code"], 7, "{}", r.out);
            let msg = r.out["msg"].as_str().unwrap();
            assert!(msg.contains(says), "{msg}");
        }
        assert!(
            !dir.path().join("state").exists(),
            "a bad config creates nothing"
        );
    }
}
