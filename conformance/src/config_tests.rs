use serde_json::json;

use super::*;

fn list(v: Value) -> NetworkConfigList {
    NetworkConfigList::from_value(&v).unwrap()
}

#[test]
fn versions_compare_numerically() {
    let v = |s| CniVersion::parse(s).unwrap();
    assert!(v("0.10.0") > v("0.4.0"));
    assert!(v("1.0.0") >= v("0.4.0"));
    assert_eq!(v(""), CniVersion(0, 1, 0));
    assert_eq!(v("1"), CniVersion(1, 0, 0));
    assert_eq!(v("1.1.0").to_string(), "1.1.0");
    assert!(CniVersion::parse("1.0.0.0").is_err());
    assert!(CniVersion::parse("1.x").is_err());
}

#[test]
fn parses_a_list_like_libcni() {
    let l = list(json!({
        "cniVersion": "1.0.0", "name": "n", "disableCheck": "TRUE",
        "plugins": [{"type": "a", "capabilities": {"portMappings": true, "bandwidth": false}}]
    }));
    assert!(l.disable_check);
    assert!(!l.disable_gc);
    assert_eq!(l.plugins[0].plugin_type, "a");
    assert!(!l.plugins[0].capabilities["bandwidth"]);

    let bad = |v: Value| NetworkConfigList::from_value(&v).unwrap_err();
    assert_eq!(
        bad(json!({"plugins": [{"type": "a"}]})),
        ConfigError::Invalid("no name".into())
    );
    bad(json!({"name": "n"}));
    bad(json!({"name": "n", "plugins": []}));
    bad(json!({"name": "n", "plugins": [{"type": ""}]}));
    bad(json!({"name": "n", "plugins": [{"type": "a", "capabilities": {"x": 1}}]}));
    bad(json!({"name": "n", "cniVersion": 1, "plugins": [{"type": "a"}]}));
    bad(json!({"name": "n", "disableCheck": 1, "plugins": [{"type": "a"}]}));
    assert!(NetworkConfigList::from_bytes(b"[1]").is_err());
    assert!(NetworkConfigList::from_bytes(b"{").is_err());
}

#[test]
fn names_are_validated_like_libcni() {
    assert!(validate_id("container ID", "a1_b.c-d").is_ok());
    for bad in ["", "-a", "_a", "a b", "a/b", "ä"] {
        assert!(validate_id("container ID", bad).is_err(), "{bad:?}");
    }
    assert!(validate_ifname("eth0").is_ok());
    assert!(validate_ifname("123456789012345").is_ok());
    for bad in [
        "",
        "1234567890123456",
        ".",
        "..",
        "a/b",
        "a:b",
        "a b",
        "a\tb",
    ] {
        assert!(validate_ifname(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn stdin_replaces_name_and_version_and_threads_prev_result() {
    let l = list(json!({
        "cniVersion": "1.0.0", "name": "net",
        "plugins": [{"type": "a", "name": "other", "cniVersion": "0.1.0", "x": 1}]
    }));
    let prev = json!({"cniVersion": "1.0.0", "ips": []});
    let conf = plugin_stdin(&l, 0, Some(&prev), None);
    assert_eq!(
        Value::Object(conf),
        json!({"type": "a", "name": "net", "cniVersion": "1.0.0", "x": 1, "prevResult": prev})
    );
    assert!(!plugin_stdin(&l, 0, None, None).contains_key("prevResult"));
}

#[test]
fn runtime_config_only_for_declared_capabilities() {
    let l = list(json!({
        "cniVersion": "1.0.0", "name": "net",
        "plugins": [
            {"type": "a", "capabilities": {"portMappings": true, "bandwidth": false, "mac": true}},
            {"type": "b", "runtimeConfig": {"kept": true}},
            {"type": "c", "capabilities": {"ips": true}, "runtimeConfig": {"replaced": true}}
        ]
    }));
    let mut rt = RuntimeConf::default();
    rt.capability_args
        .insert("portMappings".into(), json!([{"hostPort": 8080}]));
    rt.capability_args
        .insert("bandwidth".into(), json!({"ingressRate": 1}));
    rt.capability_args
        .insert("ips".into(), json!(["10.0.0.1/24"]));
    // Declared true and given: injected. Declared false, or not given (mac): left out.
    assert_eq!(
        plugin_stdin(&l, 0, None, Some(&rt))["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080}]})
    );
    // Nothing to inject: the plugin's own key is left as written.
    assert_eq!(
        plugin_stdin(&l, 1, None, Some(&rt))["runtimeConfig"],
        json!({"kept": true})
    );
    // Something to inject: the whole key is replaced, as libcni's InjectConf does.
    assert_eq!(
        plugin_stdin(&l, 2, None, Some(&rt))["runtimeConfig"],
        json!({"ips": ["10.0.0.1/24"]})
    );
    assert!(!plugin_stdin(&l, 0, None, None).contains_key("runtimeConfig"));
}

#[test]
fn env_per_command() {
    let rt = RuntimeConf {
        container_id: "c1".into(),
        netns: "/run/netns/x".into(),
        ifname: "eth0".into(),
        args: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
        capability_args: Map::new(),
    };
    let path = [PathBuf::from("/a"), PathBuf::from("/b")];
    let env = plugin_env(Command::Del, Some(&rt), &path);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("CNI_COMMAND"), Some("DEL"));
    assert_eq!(get("CNI_CONTAINERID"), Some("c1"));
    assert_eq!(get("CNI_NETNS"), Some("/run/netns/x"));
    assert_eq!(get("CNI_IFNAME"), Some("eth0"));
    assert_eq!(get("CNI_ARGS"), Some("A=1;B=x=y"));
    assert_eq!(get("CNI_PATH"), Some("/a:/b"));
    assert_eq!(env.len(), 6);

    let gc = plugin_env(Command::Gc, Some(&rt), &path);
    assert_eq!(
        gc,
        vec![
            ("CNI_COMMAND".into(), "GC".into()),
            ("CNI_PATH".into(), "/a:/b".into())
        ]
    );
    assert_eq!(plugin_env(Command::Status, None, &path).len(), 2);
    assert_eq!(plugin_env(Command::Version, None, &path)[0].1, "VERSION");
    assert_eq!(cni_args(&[]), "");
}
