//! The runtime with fake plugins: GC, STATUS, VERSION and a plugin that hangs.

mod fake;

use conformance::{Command, Error, ExecError, RuntimeConf};
use fake::*;
use serde_json::json;

#[test]
fn gc_dels_stale_attachments_then_sends_the_valid_list() {
    let Some(s) = setup("gc_dels_stale_attachments_then_sends_the_valid_list") else {
        return;
    };
    three_plugins(&s.fakes, "1.1.0");
    let list = list("1.1.0");
    let keep = rt();
    let stale = RuntimeConf {
        container_id: "ctr-2".into(),
        ..rt()
    };
    s.runtime.add_network_list(&list, &keep).unwrap();
    s.runtime.add_network_list(&list, &stale).unwrap();
    s.fakes.take_calls();

    let valid = [conformance::Attachment {
        container_id: "ctr-1".into(),
        ifname: "eth0".into(),
    }];
    s.runtime.gc_network_list(&list, &valid).unwrap();
    let calls = s.fakes.take_calls();
    assert_eq!(plugins(&calls), ["c", "b", "a", "a", "b", "c"]);
    for del in &calls[..3] {
        assert_eq!(del.command(), "DEL");
        assert_eq!(del.env["CNI_CONTAINERID"], "ctr-2");
        assert_eq!(del.env["CNI_ARGS"], "IgnoreUnknown=1;K8S_POD_NAME=p");
        assert_eq!(del.stdin["prevResult"]["marker"], "c");
    }
    let want_valid = json!([{"containerID": "ctr-1", "ifname": "eth0"}]);
    for gc in &calls[3..] {
        let cni_path = s.runtime.cni_path.iter().map(|p| p.display().to_string());
        let cni_path = cni_path.collect::<Vec<_>>().join(":");
        assert_eq!(
            gc.env,
            env(&[("CNI_COMMAND", "GC"), ("CNI_PATH", &cni_path)])
        );
        assert_eq!(gc.stdin["cni.dev/valid-attachments"], want_valid);
        assert_eq!(gc.stdin["cni.dev/attachments"], want_valid);
        assert_eq!(gc.stdin["name"], "fakenet");
        assert!(gc.stdin.get("prevResult").is_none() && gc.stdin.get("runtimeConfig").is_none());
    }
    assert!(s.runtime.cached_result(&list, &stale).unwrap().is_none());
    assert!(s.runtime.cached_result(&list, &keep).unwrap().is_some());

    s.runtime.status_network_list(&list).unwrap();
    let calls = s.fakes.take_calls();
    assert_eq!(plugins(&calls), ["a", "b", "c"]);
    assert!(calls
        .iter()
        .all(|c| c.command() == "STATUS" && c.env.len() == 3));
}

#[test]
fn gc_keeps_going_and_status_stops_at_the_first_failure() {
    let Some(s) = setup("gc_keeps_going_and_status_stops_at_the_first_failure") else {
        return;
    };
    let busy = r#"{"cniVersion":"1.1.0","code":50,"msg":"plugin not available"}"#;
    s.fakes.plugin("a", &[("GC", "", 1), ("STATUS", busy, 1)]);
    s.fakes.plugin("b", &[("GC", "", 1)]);
    s.fakes.plugin("c", &[]);
    let list = list("1.1.0");
    let err = s.runtime.gc_network_list(&list, &[]).unwrap_err();
    assert!(matches!(&err, Error::Many(v) if v.len() == 2), "{err}");
    assert_eq!(plugins(&s.fakes.take_calls()), ["a", "b", "c"]);
    let err = s.runtime.status_network_list(&list).unwrap_err();
    assert_eq!(err.plugin_error().unwrap().code, Some(50));
    assert_eq!(plugins(&s.fakes.take_calls()), ["a"]);
}

#[test]
fn version_sends_the_asked_version_and_parses_the_answer() {
    let Some(s) = setup("version_sends_the_asked_version_and_parses_the_answer") else {
        return;
    };
    let answer = r#"{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}"#;
    s.fakes.plugin("a", &[("VERSION", answer, 0)]);
    let info = s.runtime.version("a", "0.4.0").unwrap();
    assert_eq!(info.cni_version, "1.1.0");
    assert_eq!(info.supported_versions, ["0.4.0", "1.0.0", "1.1.0"]);
    let call = s.fakes.take_calls().remove(0);
    assert_eq!(call.stdin, json!({"cniVersion": "0.4.0"}));
    assert_eq!(call.command(), "VERSION");
}

#[test]
fn a_hanging_plugin_is_killed_after_the_timeout() {
    let Some(mut s) = setup("a_hanging_plugin_is_killed_after_the_timeout") else {
        return;
    };
    // `exec` so that the process killed is the one holding stdout open.
    std::fs::write(s.fakes.bin.join("slow"), "#!/bin/sh\nexec sleep 30\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    let perm = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(s.fakes.bin.join("slow"), perm).unwrap();
    s.runtime.timeout = std::time::Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = s
        .runtime
        .invoke("slow", Command::Add, Some(&rt()), b"{}")
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Plugin {
                source: ExecError::Timeout { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
