use std::net::IpAddr;

use serde_json::{json, Value};

use super::*;
use crate::cni::result::{Interface, IpConfig};
use crate::ipam::IpamPlan;
use crate::store::{EndpointKey, ReservedAddress};

const NETNS: &str = "/run/netns/c1";
const MAC: &str = "0a:58:0a:63:00:02";

fn key(network: &str, id: &str) -> EndpointKey {
    EndpointKey {
        network: NetworkName::new(network).unwrap(),
        container_id: ContainerId::new(id).unwrap(),
        ifname: IfName::new("eth0").unwrap(),
    }
}

fn record(network: &str, state: EndpointState, addrs: &[&str], data: Value) -> EndpointRecord {
    EndpointRecord {
        key: key(network, "c1"),
        state,
        addresses: addrs
            .iter()
            .enumerate()
            .map(|(set_index, a)| ReservedAddress {
                set_index,
                addr: a.parse().unwrap(),
            })
            .collect(),
        firewall: Vec::new(),
        data,
    }
}

fn ip(address: &str, gateway: Option<&str>, interface: usize) -> IpConfig {
    IpConfig {
        address: address.parse().unwrap(),
        gateway: gateway.map(|g| g.parse().unwrap()),
        interface: Some(interface),
    }
}

fn sandbox_iface() -> Interface {
    Interface {
        name: "eth0".into(),
        mac: Some(MAC.into()),
        sandbox: Some(NETNS.into()),
        ..Interface::default()
    }
}

/// What `cnm-bridge` commits: bridge, host veth, then the container's interface.
fn bridge_result() -> Value {
    let host = |name: &str| Interface {
        name: name.into(),
        mac: Some("0a:00:00:00:00:01".into()),
        ..Interface::default()
    };
    CniResult {
        interfaces: vec![host("cnm0"), host("veth1234"), sandbox_iface()],
        ips: vec![
            ip("10.99.0.2/24", Some("10.99.0.1"), 2),
            ip("fd99::2/64", Some("fd99::1"), 2),
        ],
        ..CniResult::default()
    }
    .to_json(SpecVersion::LATEST)
}

/// What `cnm-macvlan` and `cnm-host` commit: the one container interface.
fn one_interface_result() -> Value {
    CniResult {
        interfaces: vec![sandbox_iface()],
        ips: vec![ip("10.98.0.7/16", Some("10.98.0.1"), 0)],
        ..CniResult::default()
    }
    .to_json(SpecVersion::LATEST)
}

fn binding(host_ip: Option<&str>, host_port: u16, container_port: u16) -> PortBinding {
    PortBinding {
        protocol: Protocol::Tcp,
        host_ip: host_ip.map(|h| h.parse().unwrap()),
        host_port,
        container_port,
    }
}

fn nets(addrs: &[&str]) -> Vec<IpNet> {
    addrs.iter().map(|a| a.parse().unwrap()).collect()
}

fn addrs(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn a_bridge_record_gives_the_container_side_and_its_published_ports() {
    let data = json!({
        "hostVeth": "veth1234",
        "mac": MAC,
        "result": bridge_result(),
        "portMappings": [{"protocol": "tcp", "hostIP": null, "hostPort": 8080, "containerPort": 80},
                         {"protocol": "udp", "hostIP": "127.0.0.1", "hostPort": 53, "containerPort": 5353}],
    });
    let info = EndpointInfo::from_record(&record(
        "net",
        EndpointState::Created,
        &["10.99.0.2", "fd99::2"],
        data,
    ));
    assert_eq!(info.state, EndpointState::Created);
    assert_eq!(info.mac.as_deref(), Some(MAC));
    assert_eq!(info.sandbox.as_deref(), Some(NETNS));
    assert_eq!(info.addresses, nets(&["10.99.0.2/24", "fd99::2/64"]));
    assert_eq!(info.gateways, addrs(&["10.99.0.1", "fd99::1"]));
    let udp = PortBinding {
        protocol: Protocol::Udp,
        ..binding(Some("127.0.0.1"), 53, 5353)
    };
    assert_eq!(info.ports, vec![binding(None, 8080, 80), udp]);
}

#[test]
fn a_bridge_record_from_before_port_recording_has_no_ports() {
    let data = json!({"hostVeth": "veth1234", "mac": MAC, "result": bridge_result()});
    let info = EndpointInfo::from_record(&record("net", EndpointState::Created, &[], data));
    assert!(info.ports.is_empty());
    assert_eq!(info.addresses.len(), 2);
}

#[test]
fn macvlan_and_host_records_give_their_one_interface() {
    let macvlan = json!({"mac": MAC, "netns": NETNS, "result": one_interface_result()});
    let host = json!({
        "device": {"name": "eth9", "mac": "02:00:00:00:00:09", "addresses": [], "up": true},
        "netns": NETNS,
        "result": one_interface_result(),
    });
    for data in [macvlan, host] {
        let info =
            EndpointInfo::from_record(&record("net", EndpointState::Created, &["10.98.0.7"], data));
        assert_eq!(info.mac.as_deref(), Some(MAC));
        assert_eq!(info.sandbox.as_deref(), Some(NETNS));
        assert_eq!(info.addresses, nets(&["10.98.0.7/16"]));
        assert_eq!(info.gateways, addrs(&["10.98.0.1"]));
        assert!(info.ports.is_empty());
    }
}

#[test]
fn an_endpoint_still_being_created_shows_its_reservations_and_notes() {
    // cnm-macvlan notes MAC and netns before the link exists; the result comes at commit.
    let data = json!({"mac": MAC, "netns": NETNS, "result": null});
    let info = EndpointInfo::from_record(&record(
        "net",
        EndpointState::Creating,
        &["10.98.0.7"],
        data,
    ));
    assert_eq!(info.state, EndpointState::Creating);
    assert_eq!(info.mac.as_deref(), Some(MAC));
    assert_eq!(info.sandbox.as_deref(), Some(NETNS));
    assert_eq!(info.addresses, nets(&["10.98.0.7/32"]));
    // cnm-bridge writes nothing before commit.
    let info = EndpointInfo::from_record(&record(
        "net",
        EndpointState::Creating,
        &["10.99.0.3"],
        Value::Null,
    ));
    assert_eq!((info.mac, info.sandbox), (None, None));
    assert_eq!(info.addresses, nets(&["10.99.0.3/32"]));
}

#[test]
fn ipam_and_portmap_records_give_what_they_have() {
    let ipam = EndpointInfo::from_record(&record(
        "net",
        EndpointState::Created,
        &["10.97.0.2", "fd97::2"],
        json!({}),
    ));
    assert_eq!(ipam.addresses, nets(&["10.97.0.2/32", "fd97::2/128"]));
    assert!(ipam.gateways.is_empty() && ipam.mac.is_none() && ipam.sandbox.is_none());

    let portmap =
        json!({"portMappings": [{"protocol": "tcp", "hostPort": 8443, "containerPort": 443}]});
    let info =
        EndpointInfo::from_record(&record("net.portmap", EndpointState::Created, &[], portmap));
    assert_eq!(info.network.as_str(), "net.portmap");
    assert!(info.addresses.is_empty());
    assert_eq!(info.ports, vec![binding(None, 8443, 443)]);
}

#[test]
fn a_corrupt_record_decodes_to_what_can_be_read() {
    let data = json!({"mac": 7, "result": "not a result", "portMappings": {"hostPort": 1}});
    let info =
        EndpointInfo::from_record(&record("net", EndpointState::Created, &["10.9.0.2"], data));
    assert_eq!(info.mac, None);
    assert_eq!(info.addresses, nets(&["10.9.0.2/32"]));
    assert!(info.ports.is_empty());
}

#[test]
fn port_bindings_print_like_docker_and_are_recorded_once() {
    assert_eq!(binding(None, 8080, 80).to_string(), "0.0.0.0:8080->80/tcp");
    assert_eq!(
        binding(Some("::1"), 8080, 80).to_string(),
        "[::1]:8080->80/tcp"
    );
    let mappings: Vec<PortMapping> = serde_json::from_value(json!([
        {"hostPort": 8080, "containerPort": 80},
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 53, "containerPort": 53, "protocol": "udp", "hostIP": "10.0.0.1"},
    ]))
    .unwrap();
    insta::assert_json_snapshot!(PortBinding::list(&mappings), @r#"
    [
      {
        "protocol": "tcp",
        "hostIP": null,
        "hostPort": 8080,
        "containerPort": 80
      },
      {
        "protocol": "udp",
        "hostIP": "10.0.0.1",
        "hostPort": 53,
        "containerPort": 53
      }
    ]
    "#);
}

fn open_store(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(dir).unwrap()
}

fn network(name: &str, driver: &str, subnet: &str) -> (NetworkRecord, IpamPlan) {
    let plan = IpamPlan::parse(json!({"subnet": subnet}).as_object().unwrap()).unwrap();
    let rec = NetworkRecord {
        name: NetworkName::new(name).unwrap(),
        driver: driver.into(),
        subnets: plan.subnets(),
        config: json!({"bridge": "cnm0"}),
    };
    (rec, plan)
}

#[test]
fn a_missing_store_is_empty_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("cnm");
    let inv = Inventory::open(&missing).unwrap();
    assert!(inv.networks().unwrap().is_empty());
    assert!(inv.endpoints(None).unwrap().is_empty());
    let name = NetworkName::new("net").unwrap();
    assert_eq!(inv.network(&name).unwrap(), None);
    assert!(!missing.exists(), "a look must not create the store");
}

#[test]
fn the_inventory_of_a_store_counts_and_lists_endpoints_by_network() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_store(dir.path());
    let (bridge, plan) = network("bridged", "cnm-bridge", "10.99.0.0/24");
    let (ipam, ipam_plan) = network("addressed", "cnm-ipam", "10.97.0.0/16");
    let b1 = key("bridged", "bbbb");
    let b2 = key("bridged", "aaaa");
    let i1 = key("addressed", "cccc");
    store
        .reserve_endpoint(&bridge, &b1, &plan.sets, &[])
        .unwrap();
    store
        .reserve_endpoint(&bridge, &b2, &plan.sets, &[])
        .unwrap();
    store
        .reserve_endpoint(&ipam, &i1, &ipam_plan.sets, &[])
        .unwrap();
    let data = json!({"hostVeth": "v", "mac": MAC, "result": bridge_result(),
        "portMappings": PortBinding::list(&[])});
    store.commit_endpoint(&b1, &data).unwrap();
    store.commit_endpoint(&i1, &json!({})).unwrap();
    drop(store);

    let inv = Inventory::open(dir.path()).unwrap();
    let networks = inv.networks().unwrap();
    let names: Vec<&str> = networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["addressed", "bridged"]);
    assert_eq!(networks[1].endpoints, 2);
    assert_eq!(networks[1].driver, "cnm-bridge");
    assert_eq!(networks[1].subnets, nets(&["10.99.0.0/24"]));
    let bridged = NetworkName::new("bridged").unwrap();
    assert_eq!(inv.network(&bridged).unwrap().as_ref(), Some(&networks[1]));

    let all = inv.endpoints(None).unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.container_id.as_str()).collect();
    assert_eq!(ids, ["cccc", "aaaa", "bbbb"]);
    // Reservations without a result get their network's prefix.
    assert_eq!(all[0].addresses, nets(&["10.97.0.2/16"]));
    assert_eq!(all[1].state, EndpointState::Creating);
    assert_eq!(all[1].addresses[0].prefix_len(), 24);
    // A committed bridge endpoint shows its result.
    assert_eq!(all[2].mac.as_deref(), Some(MAC));
    assert_eq!(inv.endpoints(Some(&bridged)).unwrap().len(), 2);
    let unknown = NetworkName::new("nope").unwrap();
    assert!(inv.endpoints(Some(&unknown)).unwrap().is_empty());
}

#[test]
fn the_json_of_networks_and_endpoints() {
    let info = EndpointInfo {
        network: NetworkName::new("net").unwrap(),
        container_id: ContainerId::new("c1").unwrap(),
        ifname: IfName::new("eth0").unwrap(),
        state: EndpointState::Created,
        mac: Some(MAC.into()),
        sandbox: Some(NETNS.into()),
        addresses: nets(&["10.99.0.2/24"]),
        gateways: addrs(&["10.99.0.1"]),
        ports: vec![binding(None, 8080, 80)],
    };
    insta::assert_json_snapshot!(info, @r#"
    {
      "network": "net",
      "containerID": "c1",
      "ifname": "eth0",
      "state": "created",
      "mac": "0a:58:0a:63:00:02",
      "sandbox": "/run/netns/c1",
      "addresses": [
        "10.99.0.2/24"
      ],
      "gateways": [
        "10.99.0.1"
      ],
      "ports": [
        {
          "protocol": "tcp",
          "hostIP": null,
          "hostPort": 8080,
          "containerPort": 80
        }
      ]
    }
    "#);
    let (rec, _) = network("net", "cnm-bridge", "10.99.0.0/24");
    let counts = HashMap::from([(rec.name.clone(), 1)]);
    insta::assert_json_snapshot!(network_info(rec, &counts), @r#"
    {
      "name": "net",
      "driver": "cnm-bridge",
      "subnets": [
        "10.99.0.0/24"
      ],
      "config": {
        "bridge": "cnm0"
      },
      "endpoints": 1
    }
    "#);
}
