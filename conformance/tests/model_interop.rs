//! The library and the plugins share one store: a network made by a runtime's CNI ADD is
//! found and joined by the library, and a network made by the library is used by a runtime.

mod cnm_bridge_setup;

use std::net::{IpAddr, SocketAddr};

use cnm_bridge_setup::*;
use cnm_core::model::{Controller, ControllerConfig, EndpointOptions, NetworkOptions};
use conformance::{tcp_roundtrip, Container};
use serde_json::json;

fn controller(s: &Setup) -> Controller {
    Controller::new(ControllerConfig {
        data_dir: s.store_dir(),
        run_dir: s.host.state_dir().join("run"),
        ..ControllerConfig::default()
    })
    .unwrap()
}

#[test]
fn a_cni_network_is_joined_by_the_library_and_the_other_way_round() {
    let Some(s) = Setup::new("a_cni_network_is_joined_by_the_library_and_the_other_way_round")
    else {
        return;
    };
    // A runtime attaches c1 to "cnmnet" through the plugin binary.
    let list = s.list("1.1.0", s.cnm_ipam("10.98.0.0/24"), json!({}));
    let c1 = Container::new("c1").unwrap();
    let rt1 = c1.runtime_conf("eth0");
    let r1 = s.runtime.add_network_list(&list, &rt1).unwrap();
    let a1: IpAddr = addr_of(&r1, true);

    let c = controller(&s);
    let (lib_netns, lib_addr) = s
        .host
        .netns()
        .run(|| {
            // The library finds the runtime's network, its driver and subnet, and c1 on it.
            let net = c.network("cnmnet").unwrap();
            assert_eq!(net.driver(), "bridge");
            assert_eq!(net.subnets()[0].to_string(), "10.98.0.0/24");
            let keys: Vec<String> = net
                .endpoints()
                .unwrap()
                .iter()
                .map(|e| e.key.to_string())
                .collect();
            assert_eq!(keys, [format!("cnmnet/{}/eth0", c1.id())]);
            // ... and joins a container of its own to it, on the same bridge.
            let sandbox = c.new_sandbox("lib1", Default::default()).unwrap();
            let mut ep = net
                .create_endpoint("ep1", EndpointOptions::default())
                .unwrap();
            ep.join(&sandbox).unwrap();
            let addr = ep.driver_info().unwrap().addresses[0].addr();
            (sandbox.key().to_owned(), addr)
        })
        .unwrap();
    assert_ne!(lib_addr, a1, "one allocator for both");
    let lib_ns = cnm_core::netns::Netns::open(&lib_netns).unwrap();
    let seen = tcp_roundtrip(
        c1.netns(),
        SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 8080),
        &lib_ns,
        SocketAddr::new(a1, 8080),
    )
    .unwrap();
    assert_eq!(
        seen.ip(),
        lib_addr,
        "the library's container reaches the runtime's"
    );
    drop(lib_ns);

    // The runtime's CHECK still passes and its DEL removes only its own endpoint.
    s.runtime.check_network_list(&list, &rt1).unwrap();
    s.runtime.del_network_list(&list, &rt1).unwrap();
    assert_eq!(s.stored_endpoints(), 1, "the library's endpoint stays");

    s.host
        .netns()
        .run(|| {
            // Deleting the sandbox leaves its endpoint; the network then has none and goes,
            // and with the network the bridge cnm made.
            c.sandbox("lib1").unwrap().unwrap().delete().unwrap();
            c.network("cnmnet").unwrap().delete().unwrap();
            assert!(c.networks().unwrap().is_empty());

            // The other way round: the library makes a network ...
            c.new_network(
                "bridge",
                "libnet",
                NetworkOptions::default().ipv4("10.97.0.0/24".parse().unwrap()),
            )
            .unwrap();
        })
        .unwrap();
    assert!(s.host_links().is_empty(), "left: {:?}", s.host_links());

    // ... and a runtime attaches a container to it with a conflist of the same name.
    let list = conformance::NetworkConfigList::from_value(&json!({
        "cniVersion": "1.1.0", "name": "libnet",
        "plugins": [{
            "type": "cnm-bridge", "bridge": "cnmlib0", "isGateway": true, "ipMasq": true,
            "dataDir": s.store_dir(),
            "ipam": {"type": "cnm-ipam", "subnet": "10.97.0.0/24", "dataDir": s.store_dir()}
        }]
    }))
    .unwrap();
    let c2 = Container::new("c2").unwrap();
    let rt2 = c2.runtime_conf("eth0");
    s.runtime.add_network_list(&list, &rt2).unwrap();
    s.host
        .netns()
        .run(|| {
            let net = c.network("libnet").unwrap();
            assert_eq!(net.endpoints().unwrap().len(), 1);
        })
        .unwrap();
    s.runtime.del_network_list(&list, &rt2).unwrap();
    s.host
        .netns()
        .run(|| c.network("libnet").unwrap().delete().unwrap())
        .unwrap();
    assert_eq!(s.stored_endpoints(), 0);
    assert!(s.host_links().is_empty(), "left: {:?}", s.host_links());
}
