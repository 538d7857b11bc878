//! The CNI protocol through the real binary: exec'd with environment and stdin as a runtime does,
//! stdout parsed as a runtime parses it. Bad input gets the right code and a message, and no
//! plugin code runs for it.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cnm-bridge");

struct Reply {
    out: Value,
    ok: bool,
}

fn exec(env: &[(&str, &str)], stdin: &[u8]) -> Reply {
    let mut child = Command::new(BIN)
        .env_clear()
        // Tests leave no log file on the machine.
        .env("CNM_LOG_FILE", "off")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cnm-bridge");
    let mut pipe = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // The plugin may stop reading early (oversized input): the writer then sees EPIPE.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let out = if output.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    };
    Reply {
        out,
        ok: output.status.success(),
    }
}

const NETNS: &str = "/proc/self/ns/net";

fn env(command: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "ctr1"),
        ("CNI_NETNS", NETNS),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/usr/lib/cni"),
    ]
}

fn with(
    mut vars: Vec<(&'static str, &'static str)>,
    k: &'static str,
    v: &'static str,
) -> Vec<(&'static str, &'static str)> {
    vars.retain(|(key, _)| *key != k);
    if !v.is_empty() {
        vars.push((k, v));
    }
    vars
}

fn conf(version: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "cniVersion": version, "name": "net1", "type": "cnm-bridge", "bridge": "cnm0",
        "ipam": {"type": "cnm-ipam", "subnet": "10.99.0.0/24"}
    }))
    .unwrap()
}

#[test]
fn version_reports_all_five() {
    for asked in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let r = exec(
            &[("CNI_COMMAND", "VERSION")],
            format!("{{\"cniVersion\":\"{asked}\"}}").as_bytes(),
        );
        assert!(r.ok);
        assert_eq!(r.out["cniVersion"], asked);
        assert_eq!(
            r.out["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
    }
    let r = exec(&[("CNI_COMMAND", "VERSION")], b"");
    assert!(r.ok);
    assert_eq!(r.out["cniVersion"], "1.1.0");
}

struct Case {
    what: &'static str,
    env: Vec<(&'static str, &'static str)>,
    stdin: Vec<u8>,
    code: u64,
    msg: &'static str,
}

/// A regular file posing as a netns; removed on drop, also when an assertion fails.
struct PlainFile(std::path::PathBuf);

impl Drop for PlainFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn cases() -> (PlainFile, Vec<Case>) {
    let dir = std::env::temp_dir();
    let plain_file = PlainFile(dir.join(format!("cnm-proto-plain-{}", std::process::id())));
    std::fs::write(&plain_file.0, "not a netns").unwrap();
    let plain: &'static str = plain_file.0.to_str().unwrap().to_owned().leak();
    let tmp: &'static str = dir.to_str().unwrap().to_owned().leak();
    let good = conf("1.0.0");
    let c = |what, env, stdin: &[u8], code, msg| Case {
        what,
        env,
        stdin: stdin.to_vec(),
        code,
        msg,
    };
    let cases = vec![
        c(
            "malformed JSON",
            env("ADD"),
            b"{\"cniVersion\":",
            6,
            "not valid JSON",
        ),
        c("JSON array", env("ADD"), b"[]", 6, "must be a JSON object"),
        c(
            "JSON string",
            env("ADD"),
            b"\"x\"",
            6,
            "must be a JSON object",
        ),
        c(
            "non-UTF-8",
            env("ADD"),
            b"{\"cniVersion\":\"\xff\"}",
            6,
            "not valid JSON",
        ),
        c(
            "no cniVersion",
            env("ADD"),
            br#"{"name":"n","type":"cnm-bridge"}"#,
            7,
            "cniVersion",
        ),
        c("unknown cniVersion", env("ADD"), &conf("0.9.9"), 1, "0.9.9"),
        c(
            "old cniVersion",
            env("ADD"),
            &conf("0.2.0"),
            1,
            "not supported",
        ),
        c(
            "no CNI_COMMAND",
            with(env("ADD"), "CNI_COMMAND", ""),
            &good,
            4,
            "CNI_COMMAND",
        ),
        c(
            "unknown CNI_COMMAND",
            with(env("ADD"), "CNI_COMMAND", "ATTACH"),
            &good,
            4,
            "ATTACH",
        ),
        c(
            "ADD without CNI_NETNS",
            with(env("ADD"), "CNI_NETNS", ""),
            &good,
            4,
            "CNI_NETNS",
        ),
        c(
            "CHECK without CNI_NETNS",
            with(env("CHECK"), "CNI_NETNS", ""),
            &good,
            4,
            "CNI_NETNS",
        ),
        c(
            "ADD without CNI_CONTAINERID",
            with(env("ADD"), "CNI_CONTAINERID", ""),
            &good,
            4,
            "CNI_CONTAINERID",
        ),
        c(
            "DEL without CNI_CONTAINERID",
            with(env("DEL"), "CNI_CONTAINERID", ""),
            &good,
            4,
            "CNI_CONTAINERID",
        ),
        c(
            "ADD without CNI_IFNAME",
            with(env("ADD"), "CNI_IFNAME", ""),
            &good,
            4,
            "CNI_IFNAME",
        ),
        c(
            "ADD without CNI_PATH",
            with(env("ADD"), "CNI_PATH", ""),
            &good,
            4,
            "CNI_PATH",
        ),
        c(
            "netns missing",
            with(env("ADD"), "CNI_NETNS", "/run/netns/cnm-no-such-ns"),
            &good,
            3,
            "does not exist",
        ),
        c(
            "netns is a regular file",
            with(env("ADD"), "CNI_NETNS", plain),
            &good,
            4,
            "regular file",
        ),
        c(
            "netns is a directory",
            with(env("CHECK"), "CNI_NETNS", tmp),
            &good,
            4,
            "directory",
        ),
        c(
            "netns of another kind",
            with(env("ADD"), "CNI_NETNS", "/proc/self/ns/uts"),
            &good,
            4,
            "another kind",
        ),
        c(
            "ifname too long",
            with(env("ADD"), "CNI_IFNAME", "abcdefghijklmnop"),
            &good,
            4,
            "15 bytes",
        ),
        c(
            "ifname dot",
            with(env("ADD"), "CNI_IFNAME", "."),
            &good,
            4,
            "reserved",
        ),
        c(
            "ifname dotdot",
            with(env("ADD"), "CNI_IFNAME", ".."),
            &good,
            4,
            "reserved",
        ),
        c(
            "ifname slash",
            with(env("ADD"), "CNI_IFNAME", "eth/0"),
            &good,
            4,
            "'/'",
        ),
        c(
            "ifname colon",
            with(env("ADD"), "CNI_IFNAME", "eth0:1"),
            &good,
            4,
            "':'",
        ),
        c(
            "ifname space",
            with(env("ADD"), "CNI_IFNAME", "eth 0"),
            &good,
            4,
            "whitespace",
        ),
        c(
            "container ID path",
            with(env("ADD"), "CNI_CONTAINERID", "../../etc"),
            &good,
            4,
            "container ID",
        ),
        c(
            "container ID slash",
            with(env("DEL"), "CNI_CONTAINERID", "a/b"),
            &good,
            4,
            "container ID",
        ),
        c(
            "container ID leading dash",
            with(env("ADD"), "CNI_CONTAINERID", "-rf"),
            &good,
            4,
            "container ID",
        ),
        c(
            "bad CNI_ARGS",
            with(env("ADD"), "CNI_ARGS", "novalue"),
            &good,
            4,
            "CNI_ARGS",
        ),
        c(
            "unknown CNI_ARGS key",
            with(env("ADD"), "CNI_ARGS", "FOO=bar"),
            &good,
            4,
            "IgnoreUnknown",
        ),
        c(
            "bad network name",
            env("ADD"),
            br#"{"cniVersion":"1.0.0","name":"a b","type":"cnm-bridge"}"#,
            7,
            "network name",
        ),
        c(
            "wrong field type",
            env("ADD"),
            br#"{"cniVersion":"1.0.0","name":"n","type":"cnm-bridge","mtu":"big"}"#,
            7,
            "field mtu",
        ),
        c(
            "CHECK on 0.3.1",
            env("CHECK"),
            &conf("0.3.1"),
            1,
            "CHECK needs cniVersion 0.4.0",
        ),
        c(
            "STATUS on 1.0.0",
            with(env("STATUS"), "CNI_NETNS", ""),
            &conf("1.0.0"),
            1,
            "STATUS needs cniVersion 1.1.0",
        ),
        c(
            "GC on 0.4.0",
            with(env("GC"), "CNI_NETNS", ""),
            &conf("0.4.0"),
            1,
            "GC needs cniVersion 1.1.0",
        ),
        c(
            "deep nesting",
            env("ADD"),
            ("[".repeat(5000) + &"]".repeat(5000)).as_bytes(),
            6,
            "recursion limit",
        ),
    ];
    (plain_file, cases)
}

#[test]
fn bad_input_gets_the_right_code_and_message() {
    let (_plain, cases) = cases();
    for case in cases {
        let r = exec(&case.env, &case.stdin);
        assert!(!r.ok, "{}: exit status 0", case.what);
        assert_eq!(r.out["code"], case.code, "{}: {}", case.what, r.out);
        let msg = r.out["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(case.msg), "{}: {msg:?}", case.what);
        assert!(r.out["details"].is_string(), "{}: {}", case.what, r.out);
        assert!(r.out["cniVersion"].is_string(), "{}: {}", case.what, r.out);
    }
}

#[test]
fn oversized_stdin_is_refused_without_reading_it_all() {
    let huge = vec![b' '; 100 << 20];
    let r = exec(&env("ADD"), &huge);
    assert!(!r.ok);
    assert_eq!(r.out["code"], 6);
    assert!(r.out["msg"].as_str().unwrap().contains("larger than 4 MiB"));
}

#[test]
fn error_output_uses_the_config_version() {
    let r = exec(&with(env("ADD"), "CNI_IFNAME", "bad/name"), &conf("0.4.0"));
    assert_eq!(r.out["cniVersion"], "0.4.0");
    let r = exec(&with(env("ADD"), "CNI_IFNAME", "bad/name"), b"garbage");
    assert_eq!(r.out["cniVersion"], "1.1.0");
}
