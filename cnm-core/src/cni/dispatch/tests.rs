use std::cell::RefCell;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::*;
use crate::cni::result::IpConfig;

/// A plugin that records what it was called with.
#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
}

#[derive(Deserialize)]
struct FakeConf {
    #[serde(default)]
    panic: bool,
}

impl Plugin for Fake {
    type Config = FakeConf;
    const NAME: &'static str = "fake";
    const KNOWN_ARGS: &'static [&'static str] = &["IP"];

    fn add(&self, call: &Call<'_, FakeConf>, at: &Attach<'_>) -> Result<CniResult> {
        assert!(!call.conf.plugin.panic, "asked to panic");
        self.calls.borrow_mut().push(format!(
            "add {} {}",
            at.target.container_id, at.target.ifname
        ));
        Ok(CniResult {
            ips: vec![IpConfig {
                address: "10.0.0.2/24".parse().unwrap(),
                gateway: None,
                interface: None,
            }],
            ..CniResult::default()
        })
    }
    fn check(&self, _: &Call<'_, FakeConf>, _: &Attach<'_>) -> Result<()> {
        self.calls.borrow_mut().push("check".into());
        Ok(())
    }
    fn del(&self, _: &Call<'_, FakeConf>, at: &Detach<'_>) -> Result<()> {
        self.calls
            .borrow_mut()
            .push(format!("del netns={}", at.netns.is_some()));
        Ok(())
    }
    fn status(&self, _: &Call<'_, FakeConf>) -> Result<()> {
        self.calls.borrow_mut().push("status".into());
        Ok(())
    }
    fn gc(&self, _: &Call<'_, FakeConf>, valid: &[GcAttachment]) -> Result<()> {
        self.calls.borrow_mut().push(format!("gc {}", valid.len()));
        Ok(())
    }
}

const NETNS_SELF: &str = "/proc/self/ns/net";

fn call(vars: &[(&str, &str)], stdin: &[u8]) -> (Value, i32, Vec<String>) {
    let fake = Fake::default();
    let map: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    let reply = dispatch(&fake, |k| map.get(k).cloned(), &mut &stdin[..]);
    let out = if reply.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&reply.stdout).expect("stdout is JSON")
    };
    (out, reply.exit_code, fake.calls.into_inner())
}

fn env(command: &str) -> Vec<(&str, &str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", NETNS_SELF),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/usr/lib/cni"),
    ]
}

fn conf(version: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"cniVersion": version, "name": "n", "type": "fake"})).unwrap()
}

fn set<'a>(mut vars: Vec<(&'a str, &'a str)>, k: &'a str, v: &'a str) -> Vec<(&'a str, &'a str)> {
    vars.retain(|(key, _)| *key != k);
    vars.push((k, v));
    vars
}

/// Asserts an error reply with `code` whose message contains `needle`.
fn assert_error(reply: (Value, i32, Vec<String>), code: u32, needle: &str) {
    let (out, exit, calls) = reply;
    assert_eq!(exit, 1, "{out}");
    assert_eq!(out["code"], code, "{out}");
    assert!(out["msg"].as_str().unwrap().contains(needle), "{out}");
    assert!(out["details"].is_string(), "{out}");
    assert!(out["cniVersion"].is_string(), "{out}");
    assert!(calls.is_empty(), "plugin was called: {calls:?}");
}

#[test]
fn version_lists_every_supported_version() {
    for stdin in [
        &b"{\"cniVersion\":\"0.4.0\"}"[..],
        b"",
        b"{\"cniVersion\":\"9.9.9\"}",
    ] {
        let (out, exit, _) = call(&[("CNI_COMMAND", "VERSION")], stdin);
        assert_eq!(exit, 0);
        assert_eq!(
            out["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
    }
    let (out, _, _) = call(&[("CNI_COMMAND", "VERSION")], b"{\"cniVersion\":\"0.4.0\"}");
    assert_eq!(out["cniVersion"], "0.4.0");
}

#[test]
fn add_prints_the_result_in_the_config_version() {
    for v in SpecVersion::ALL {
        let (out, exit, calls) = call(&env("ADD"), &conf(v.as_str()));
        assert_eq!(exit, 0, "{out}");
        assert_eq!(out["cniVersion"], v.as_str());
        assert_eq!(
            out["ips"][0].get("version").is_some(),
            v.ips_carry_version()
        );
        assert_eq!(calls, ["add c1 eth0"]);
    }
}

#[test]
fn environment_errors_are_code_4() {
    assert_error(call(&[], &conf("1.0.0")), 4, "CNI_COMMAND is not set");
    assert_error(call(&env("BOGUS"), &conf("1.0.0")), 4, "not a CNI command");
    assert_error(
        call(&set(env("ADD"), "CNI_NETNS", ""), &conf("1.0.0")),
        4,
        "CNI_NETNS",
    );
    assert_error(
        call(&set(env("ADD"), "CNI_CONTAINERID", ""), &conf("1.0.0")),
        4,
        "CNI_CONTAINERID",
    );
    assert_error(
        call(&set(env("ADD"), "CNI_IFNAME", "a/b"), &conf("1.0.0")),
        4,
        "interface name",
    );
    assert_error(
        call(
            &set(env("ADD"), "CNI_IFNAME", "x".repeat(16).leak()),
            &conf("1.0.0"),
        ),
        4,
        "15 bytes",
    );
    assert_error(
        call(&set(env("ADD"), "CNI_CONTAINERID", "../x"), &conf("1.0.0")),
        4,
        "container ID",
    );
    assert_error(
        call(&set(env("ADD"), "CNI_ARGS", "FOO=1"), &conf("1.0.0")),
        4,
        "unknown key \"FOO\"",
    );
    assert_error(
        call(&set(env("ADD"), "CNI_ARGS", "garbage"), &conf("1.0.0")),
        4,
        "malformed",
    );
    let (_, exit, _) = call(
        &set(env("ADD"), "CNI_ARGS", "IgnoreUnknown=1;FOO=1"),
        &conf("1.0.0"),
    );
    assert_eq!(exit, 0);
}

#[test]
fn config_errors() {
    assert_error(call(&env("ADD"), b"{not json"), 6, "not valid JSON");
    assert_error(
        call(&env("ADD"), b"[1,2]"),
        6,
        "must be a JSON object, not an array",
    );
    assert_error(call(&env("ADD"), b"\xff\xfe\xfd"), 6, "not valid JSON");
    assert_error(call(&env("ADD"), b""), 6, "not valid JSON");
    let deep = "{\"a\":".repeat(200) + "1" + &"}".repeat(200);
    assert_error(call(&env("ADD"), deep.as_bytes()), 6, "recursion limit");
    assert_error(
        call(&env("ADD"), b"{\"name\":\"n\",\"type\":\"t\"}"),
        7,
        "cniVersion",
    );
    assert_error(call(&env("ADD"), &conf("0.2.0")), 1, "not supported");
    assert_error(call(&env("ADD"), &conf("2.0.0")), 1, "1.1.0");
    let big = vec![b' '; (crate::cni::config::MAX_STDIN + 1) as usize];
    assert_error(call(&env("ADD"), &big), 6, "larger than");
    let bad_type = br#"{"cniVersion":"1.0.0","name":"n","type":"t","panic":"yes"}"#;
    assert_error(call(&env("ADD"), bad_type), 7, "field panic");
}

#[test]
fn commands_need_their_spec_version() {
    assert_error(
        call(&env("CHECK"), &conf("0.3.1")),
        1,
        "CHECK needs cniVersion 0.4.0",
    );
    assert_error(
        call(&env("STATUS"), &conf("1.0.0")),
        1,
        "STATUS needs cniVersion 1.1.0",
    );
    assert_error(
        call(&env("GC"), &conf("0.4.0")),
        1,
        "GC needs cniVersion 1.1.0",
    );
    let (_, exit, calls) = call(&env("CHECK"), &conf("0.4.0"));
    assert_eq!((exit, calls), (0, vec!["check".to_string()]));
    let (_, exit, calls) = call(
        &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", "/x")],
        &conf("1.1.0"),
    );
    assert_eq!((exit, calls), (0, vec!["status".to_string()]));
}

#[test]
fn netns_must_exist_for_add_and_check_but_not_del() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let (missing, file, dirpath) = (
        missing.to_str().unwrap(),
        file.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    );
    for cmd in ["ADD", "CHECK"] {
        assert_error(
            call(&set(env(cmd), "CNI_NETNS", missing), &conf("1.0.0")),
            3,
            "does not exist",
        );
        assert_error(
            call(&set(env(cmd), "CNI_NETNS", file), &conf("1.0.0")),
            4,
            "regular file",
        );
        assert_error(
            call(&set(env(cmd), "CNI_NETNS", dirpath), &conf("1.0.0")),
            4,
            "directory",
        );
    }
    for netns in [missing, file, ""] {
        let (out, exit, calls) = call(&set(env("DEL"), "CNI_NETNS", netns), &conf("1.0.0"));
        assert_eq!((out, exit), (Value::Null, 0));
        assert_eq!(calls, ["del netns=false"]);
    }
    let (_, _, calls) = call(&env("DEL"), &conf("1.0.0"));
    assert_eq!(calls, ["del netns=true"]);
}

#[test]
fn gc_gets_the_valid_attachments() {
    let stdin = serde_json::to_vec(&json!({"cniVersion": "1.1.0", "name": "n", "type": "fake",
        "cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"},
                                      {"containerID": "b", "ifname": "eth0"}]}))
    .unwrap();
    let (_, exit, calls) = call(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")], &stdin);
    assert_eq!((exit, calls), (0, vec!["gc 2".to_string()]));
}

#[test]
fn a_panic_becomes_an_internal_error() {
    let stdin = br#"{"cniVersion":"0.4.0","name":"n","type":"t","panic":true}"#;
    let (out, exit, _) = call(&env("ADD"), stdin);
    assert_eq!(exit, 1);
    assert_eq!(out["code"], 100);
    assert_eq!(out["cniVersion"], "0.4.0");
    assert!(out["details"].as_str().unwrap().contains("asked to panic"));
}
