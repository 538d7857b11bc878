//! cnm-bridge's options that change the kernel's setup, checked in the kernel after a CNI ADD.

mod cnm_bridge_setup;

use cnm_bridge_setup::*;
use conformance::{ip, ping, Container};
use serde_json::json;

#[test]
fn icc_off_mtu_hairpin_and_promisc() {
    let Some(s) = Setup::new("icc_off_mtu_hairpin_and_promisc") else {
        return;
    };
    let extra = json!({"enable_icc": false, "mtu": 1400, "hairpinMode": true, "promiscMode": true});
    let list = s.list("1.1.0", s.cnm_ipam("10.83.0.0/24"), extra);
    let (c1, c2) = (Container::new("o1").unwrap(), Container::new("o2").unwrap());
    let r1 = s
        .runtime
        .add_network_list(&list, &c1.runtime_conf("eth0"))
        .unwrap();
    let r2 = s
        .runtime
        .add_network_list(&list, &c2.runtime_conf("eth0"))
        .unwrap();

    // Inter-container communication off: the ports are isolated from each other, the gateway
    // (the bridge itself) is still reachable.
    assert!(
        !ping(c1.netns(), addr_of(&r2, true)),
        "c1 reached c2 with enable_icc false"
    );
    assert!(
        !ping(c2.netns(), addr_of(&r1, true)),
        "c2 reached c1 with enable_icc false"
    );
    assert!(
        ping(c1.netns(), "10.83.0.1".parse().unwrap()),
        "the gateway stays reachable"
    );

    let eth0 = ip(c1.netns(), &["-d", "link", "show", "dev", "eth0"]).unwrap();
    assert!(eth0.contains("mtu 1400"), "{eth0}");
    let host_veth = r1["interfaces"][1]["name"].as_str().unwrap();
    assert_eq!(r1["interfaces"][1]["mtu"], 1400, "1.1.0 reports the MTU");
    let port = ip(s.host.netns(), &["-d", "link", "show", "dev", host_veth]).unwrap();
    assert!(port.contains("mtu 1400"), "{port}");
    assert!(port.contains("hairpin on"), "{port}");
    assert!(port.contains("isolated on"), "{port}");
    let bridge = ip(s.host.netns(), &["link", "show", "dev", &s.bridge]).unwrap();
    assert!(bridge.contains("PROMISC"), "{bridge}");

    for c in [&c1, &c2] {
        s.runtime
            .del_network_list(&list, &c.runtime_conf("eth0"))
            .unwrap();
    }
    assert_eq!(
        s.host_links(),
        [s.bridge.as_str()],
        "the bridge stays until GC"
    );
}
