//! Planning of mappings into elements, without a kernel.

use serde_json::json;

use super::*;
use crate::error::Error;

fn ips(addrs: &[&str]) -> Vec<IpConfig> {
    addrs
        .iter()
        .map(|a| IpConfig {
            address: a.parse().unwrap(),
            gateway: None,
            interface: Some(2),
        })
        .collect()
}

fn mappings(v: serde_json::Value) -> Vec<PortMapping> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn dual_stack_mapping_without_host_ip_publishes_both_families_and_hairpins() {
    let m = mappings(json!([{"hostPort": 8080, "containerPort": 80}]));
    let p = plan(&m, &ips(&["10.1.0.5/24", "fd00::5/64"]), Some("cni0")).unwrap();
    let keys: Vec<String> = p.elements.iter().map(|e| e.key.to_string()).collect();
    assert_eq!(
        keys,
        [
            "pm4any tcp 8080",
            "pm6any tcp 8080",
            "pmhp4 10.1.0.5 cni0",
            "pmhp6 fd00::5 cni0"
        ]
    );
    assert_eq!(p.elements[1].target, Some("[fd00::5]:80".parse().unwrap()));
}

#[test]
fn host_ip_of_a_family_the_container_lacks_names_the_entry() {
    let m = mappings(json!([
        {"hostPort": 1, "containerPort": 1},
        {"hostPort": 8080, "containerPort": 80, "hostIP": "fd00::1"}
    ]));
    let e = plan(&m, &ips(&["10.1.0.5/24"]), None).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(e.to_string().contains("portMappings[1].hostIP"), "{e}");
}

#[test]
fn the_same_host_port_twice_to_different_targets_is_refused() {
    let m = mappings(json!([
        {"hostPort": 8080, "containerPort": 80},
        {"hostPort": 8080, "containerPort": 81},
        {"hostPort": 8080, "containerPort": 80, "protocol": "udp"}
    ]));
    let e = plan(&m, &ips(&["10.1.0.5/24"]), None).unwrap_err();
    assert!(e.to_string().contains("portMappings[1]"), "{e}");
    let ok = plan(&m[..1], &ips(&["10.1.0.5/24"]), None).unwrap();
    assert_eq!(ok.elements.len(), 1, "no bridge, no hairpin element");
}
