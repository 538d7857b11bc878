use super::*;
use serde_json::json;

/// A dual-stack bridge result with every field the newest version has.
fn sample() -> CniResult {
    CniResult {
        interfaces: vec![
            Interface {
                name: "cni0".into(),
                mac: Some("0a:58:0a:01:00:01".into()),
                mtu: Some(1500),
                ..Interface::default()
            },
            Interface {
                name: "eth0".into(),
                mac: Some("0a:58:0a:01:00:05".into()),
                mtu: Some(1500),
                sandbox: Some("/run/netns/blue".into()),
                ..Interface::default()
            },
        ],
        ips: vec![
            IpConfig {
                address: "10.1.0.5/24".parse().unwrap(),
                gateway: Some("10.1.0.1".parse().unwrap()),
                interface: Some(1),
            },
            IpConfig {
                address: "fd00:1::5/64".parse().unwrap(),
                gateway: Some("fd00:1::1".parse().unwrap()),
                interface: Some(1),
            },
        ],
        routes: vec![
            Route {
                priority: Some(100),
                mtu: Some(1400),
                ..Route::new(
                    "0.0.0.0/0".parse().unwrap(),
                    Some("10.1.0.1".parse().unwrap()),
                )
            },
            Route::new("::/0".parse().unwrap(), None),
        ],
        dns: Dns {
            nameservers: vec!["10.1.0.1".into()],
            domain: Some("example.org".into()),
            search: vec!["svc.example.org".into()],
            options: vec!["ndots:2".into()],
        },
    }
}

#[test]
fn snapshot_every_version() {
    for v in SpecVersion::ALL {
        insta::assert_json_snapshot!(format!("result_{v}"), sample().to_json(v));
    }
}

#[test]
fn empty_result_prints_dns_object() {
    insta::assert_json_snapshot!(CniResult::default().to_json(SpecVersion::V1_0_0), @r#"
    {
      "cniVersion": "1.0.0",
      "dns": {}
    }
    "#);
}

#[test]
fn round_trip_every_version() {
    for v in SpecVersion::ALL {
        let printed = sample().to_json(v);
        let parsed = CniResult::from_json(v, printed.clone(), "result").unwrap();
        // What a version cannot carry is dropped; what it can carry survives.
        assert_eq!(parsed.to_json(v), printed, "{v}");
        assert_eq!(parsed.ips, sample().ips, "{v}");
    }
    let full = CniResult::from_json(
        SpecVersion::V1_1_0,
        sample().to_json(SpecVersion::V1_1_0),
        "r",
    );
    assert_eq!(full.unwrap(), sample());
}

#[test]
fn convert_between_versions() {
    // A 0.4.0 prevResult printed as 1.0.0 loses `version`; printed back as 0.3.1 regains it.
    let old = sample().to_json(SpecVersion::V0_4_0);
    assert_eq!(old["ips"][0]["version"], "4");
    assert_eq!(old["ips"][1]["version"], "6");
    let model = CniResult::from_json(SpecVersion::V0_4_0, old, "prevResult").unwrap();
    let new = model.to_json(SpecVersion::V1_0_0);
    assert!(new["ips"][0].get("version").is_none());
    assert!(new["interfaces"][1].get("mtu").is_none());
    assert!(new["routes"][0].get("priority").is_none());
    let back = CniResult::from_json(SpecVersion::V1_0_0, new, "prevResult")
        .unwrap()
        .to_json(SpecVersion::V0_3_1);
    assert_eq!(back["ips"][1]["version"], "6");
    assert_eq!(back["cniVersion"], "0.3.1");
}

#[test]
fn rejects_inconsistent_results() {
    let wrong_family = json!({"ips": [{"version": "6", "address": "10.0.0.2/24"}]});
    let e = CniResult::from_json(SpecVersion::V0_4_0, wrong_family, "prevResult").unwrap_err();
    assert!(e.to_string().contains("ips[0].version"), "{e}");

    let bad_index = json!({"interfaces": [], "ips": [{"address": "10.0.0.2/24", "interface": 2}]});
    let e = CniResult::from_json(SpecVersion::V1_0_0, bad_index, "prevResult").unwrap_err();
    assert!(e.to_string().contains("interface is 2"), "{e}");

    let bad_addr = json!({"ips": [{"address": "10.0.0.300/24"}]});
    let e = CniResult::from_json(SpecVersion::V1_0_0, bad_addr, "prevResult").unwrap_err();
    assert!(e.to_string().contains("ips[0].address"), "{e}");

    let no_prefix = json!({"ips": [{"address": "10.0.0.3"}]});
    assert!(CniResult::from_json(SpecVersion::V1_0_0, no_prefix, "prevResult").is_err());

    let mixed_gw = json!({"ips": [{"address": "10.0.0.3/24", "gateway": "fd00::1"}]});
    assert!(CniResult::from_json(SpecVersion::V1_0_0, mixed_gw, "prevResult").is_err());
}

#[test]
fn accepts_reference_plugin_output() {
    // As printed by the reference bridge 1.1.1 for cniVersion 1.0.0.
    let reference = json!({
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "cni0", "mac": "3a:6c:1f:2b:8e:52"},
            {"name": "veth9c2a", "mac": "6e:2d:33:51:43:1f"},
            {"name": "eth0", "mac": "ae:8f:4c:e9:54:17", "sandbox": "/run/netns/x"}
        ],
        "ips": [{"interface": 2, "address": "10.22.0.2/24", "gateway": "10.22.0.1"}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {}
    });
    let r = CniResult::from_json(SpecVersion::V1_0_0, reference.clone(), "prevResult").unwrap();
    assert_eq!(r.to_json(SpecVersion::V1_0_0), reference);
}
