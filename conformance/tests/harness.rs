//! The runtime itself, checked with fake plugins that record how they were called: environment,
//! stdin, order, namespace, and how failures come back. ADD, CHECK and DEL here; GC, STATUS,
//! VERSION and timeouts in `harness_more.rs`.

mod fake;

use conformance::{Command, Error, NetworkConfigList, RuntimeConf};
use fake::*;
use serde_json::json;

#[test]
fn add_builds_env_stdin_and_threads_prev_result() {
    let Some(s) = setup("add_builds_env_stdin_and_threads_prev_result") else {
        return;
    };
    three_plugins(&s.fakes, "1.0.0");
    let out = s.runtime.add_network_list(&list("1.0.0"), &rt()).unwrap();
    assert_eq!(out, json!({"cniVersion": "1.0.0", "marker": "c"}));

    let calls = s.fakes.take_calls();
    assert_eq!(plugins(&calls), ["a", "b", "c"]);
    let cni_path = format!(
        "{}:{}",
        s.host.state_dir().join("missing").display(),
        s.fakes.bin.display()
    );
    let want_env = env(&[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "ctr-1"),
        ("CNI_NETNS", "/run/netns/not-used-by-fakes"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p"),
        ("CNI_PATH", &cni_path),
    ]);
    let host_ns = format!("net:[{}]", inode(s.host.netns().path()));
    for call in &calls {
        assert_eq!(call.env, want_env, "env of {}", call.plugin);
        assert_eq!(
            call.netns, host_ns,
            "{} must run in the host netns",
            call.plugin
        );
        assert_eq!(call.stdin["name"], "fakenet");
        assert_eq!(call.stdin["cniVersion"], "1.0.0");
        assert_eq!(call.stdin["type"], call.plugin.as_str());
    }
    // Only a declares portMappings; nobody declares mac; c declares bandwidth, which is not given.
    assert_eq!(
        calls[0].stdin["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80}]})
    );
    assert!(calls[1].stdin.get("runtimeConfig").is_none());
    assert!(calls[2].stdin.get("runtimeConfig").is_none());
    assert!(calls[0].stdin.get("prevResult").is_none());
    assert_eq!(
        calls[1].stdin["prevResult"],
        json!({"cniVersion": "1.0.0", "marker": "a"})
    );
    assert_eq!(
        calls[2].stdin["prevResult"],
        json!({"cniVersion": "1.0.0", "marker": "b"})
    );

    let cached = s.runtime.cached_result(&list("1.0.0"), &rt()).unwrap();
    assert_eq!(cached, Some(out));
}

#[test]
fn check_and_del_get_the_cached_result_and_del_runs_in_reverse() {
    let Some(s) = setup("check_and_del_get_the_cached_result_and_del_runs_in_reverse") else {
        return;
    };
    three_plugins(&s.fakes, "0.4.0");
    let (list, rt) = (list("0.4.0"), rt());
    let final_result = s.runtime.add_network_list(&list, &rt).unwrap();
    s.fakes.take_calls();

    s.runtime.check_network_list(&list, &rt).unwrap();
    let calls = s.fakes.take_calls();
    assert_eq!(plugins(&calls), ["a", "b", "c"]);
    for call in &calls {
        assert_eq!(call.command(), "CHECK");
        assert_eq!(call.stdin["prevResult"], final_result);
    }

    s.runtime.del_network_list(&list, &rt).unwrap();
    let calls = s.fakes.take_calls();
    assert_eq!(plugins(&calls), ["c", "b", "a"]);
    for call in &calls {
        assert_eq!(call.command(), "DEL");
        assert_eq!(call.env["CNI_CONTAINERID"], "ctr-1");
        assert_eq!(call.stdin["prevResult"], final_result);
    }
    assert_eq!(
        calls[2].stdin["runtimeConfig"]["portMappings"][0]["hostPort"],
        8080
    );
    assert_eq!(s.runtime.cached_result(&list, &rt).unwrap(), None);

    // Without a cache DEL still runs every plugin, just without prevResult.
    s.runtime.del_network_list(&list, &rt).unwrap();
    let calls = s.fakes.take_calls();
    assert_eq!(plugins(&calls), ["c", "b", "a"]);
    assert!(calls.iter().all(|c| c.stdin.get("prevResult").is_none()));
}

#[test]
fn version_gates_and_disable_check() {
    let Some(s) = setup("version_gates_and_disable_check") else {
        return;
    };
    three_plugins(&s.fakes, "0.3.1");
    let old = list("0.3.1");
    s.runtime.add_network_list(&old, &rt()).unwrap();
    s.fakes.take_calls();
    // CHECK was added in 0.4.0; before that no prevResult on DEL either.
    let err = s.runtime.check_network_list(&old, &rt()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                command: Command::Check,
                ..
            }
        ),
        "{err}"
    );
    s.runtime.del_network_list(&old, &rt()).unwrap();
    let calls = s.fakes.take_calls();
    assert_eq!(plugins(&calls), ["c", "b", "a"]);
    assert!(calls.iter().all(|c| c.stdin.get("prevResult").is_none()));

    let mut disabled = list("1.0.0");
    disabled.disable_check = true;
    s.runtime.check_network_list(&disabled, &rt()).unwrap();
    assert!(s.fakes.take_calls().is_empty());
    // GC and STATUS do not exist before 1.1.0: no plugin sees them.
    s.runtime.status_network_list(&disabled).unwrap();
    s.runtime.gc_network_list(&disabled, &[]).unwrap();
    assert!(s.fakes.take_calls().is_empty());
}

#[test]
fn plugin_errors_come_back_parsed_and_stop_the_list() {
    let Some(s) = setup("plugin_errors_come_back_parsed_and_stop_the_list") else {
        return;
    };
    let cni_err = r#"{"cniVersion":"1.0.0","code":11,"msg":"try again later","details":"busy"}"#;
    s.fakes.plugin("a", &[("ADD", &result("1.0.0", "a"), 0)]);
    s.fakes.plugin("b", &[("ADD", cni_err, 1), ("DEL", "", 3)]);
    s.fakes.plugin("c", &[("ADD", &result("1.0.0", "c"), 0)]);
    let (list, rt) = (list("1.0.0"), rt());

    let err = s.runtime.add_network_list(&list, &rt).unwrap_err();
    let perr = err
        .plugin_error()
        .unwrap_or_else(|| panic!("not a plugin error: {err}"));
    assert_eq!(perr.code, Some(11));
    assert_eq!(
        (perr.msg.as_str(), perr.details.as_str()),
        ("try again later", "busy")
    );
    assert_eq!(perr.status.code(), Some(1));
    assert!(err.to_string().contains("plugin b failed (ADD)"), "{err}");
    // The list stops at the failure and nothing is cached; cleaning up is the caller's DEL.
    assert_eq!(plugins(&s.fakes.take_calls()), ["a", "b"]);
    assert_eq!(s.runtime.cached_result(&list, &rt).unwrap(), None);

    // No JSON on stdout: libcni's message built from stderr (here: none at all).
    let err = s.runtime.del_network_list(&list, &rt).unwrap_err();
    let perr = err.plugin_error().unwrap();
    assert_eq!((perr.code, perr.status.code()), (None, Some(3)));
    assert!(
        perr.msg
            .starts_with("netplugin failed with no error message"),
        "{}",
        perr.msg
    );
    // DEL also stops at the first failure, as libcni's does.
    assert_eq!(plugins(&s.fakes.take_calls()), ["c", "b"]);
}

#[test]
fn bad_results_and_bad_input_are_refused() {
    let Some(s) = setup("bad_results_and_bad_input_are_refused") else {
        return;
    };
    s.fakes.plugin("a", &[("ADD", &result("0.4.0", "a"), 0)]);
    s.fakes.plugin("b", &[("ADD", "not json", 0)]);
    let one = |ty: &str| {
        NetworkConfigList::from_value(&json!({
            "cniVersion": "1.0.0", "name": "fakenet", "plugins": [{"type": ty}]
        }))
        .unwrap()
    };
    let err = s.runtime.add_network_list(&one("a"), &rt()).unwrap_err();
    assert!(matches!(err, Error::BadOutput { .. }), "{err}");
    let err = s.runtime.add_network_list(&one("b"), &rt()).unwrap_err();
    assert!(matches!(err, Error::BadOutput { .. }), "{err}");
    let err = s
        .runtime
        .add_network_list(&one("absent"), &rt())
        .unwrap_err();
    assert!(matches!(err, Error::Find(_)), "{err}");
    s.fakes.take_calls();

    // Names libcni rejects never reach a plugin.
    for bad in [
        RuntimeConf {
            container_id: "-x".into(),
            ..rt()
        },
        RuntimeConf {
            ifname: "a-very-long-ifname".into(),
            ..rt()
        },
    ] {
        let err = s.runtime.add_network_list(&one("a"), &bad).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
    assert!(s.fakes.take_calls().is_empty());
}
