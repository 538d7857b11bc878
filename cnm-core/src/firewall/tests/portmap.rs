//! Port-mapping elements in a real table: added, read back, removed, in one batch each.

use super::*;

fn port(host_ip: Option<&str>, v6: bool, port: u16) -> PortMapKey {
    PortMapKey::Port {
        host_ip: host_ip.map(|a| a.parse().unwrap()),
        v6,
        protocol: crate::cni::config::Protocol::Tcp,
        host_port: port,
    }
}

#[test]
fn port_map_elements_are_added_checked_and_removed() {
    require_root!();
    let ns = netns();
    let mut nft = Nft::new_in(&ns).unwrap();
    nft.ensure_table().unwrap();
    assert_one_copy(&ns);
    let elems = [
        PortMapElement {
            key: port(None, false, 8080),
            target: Some("10.1.0.5:80".parse().unwrap()),
        },
        PortMapElement {
            key: port(Some("192.0.2.1"), false, 8081),
            target: Some("10.1.0.5:81".parse().unwrap()),
        },
        PortMapElement {
            key: port(None, true, 8080),
            target: Some("[fd00::5]:80".parse().unwrap()),
        },
        PortMapElement {
            key: PortMapKey::Hairpin {
                addr: "10.1.0.5".parse().unwrap(),
                bridge: "cni0".into(),
            },
            target: None,
        },
    ];
    nft.update_port_maps(&elems, &[]).unwrap();
    // Again: the same elements with the same targets are no change.
    nft.update_port_maps(&elems, &[]).unwrap();
    for e in &elems {
        assert!(nft.has_port_map_element(e).unwrap(), "{e:?}");
    }
    let text = exec_in(&ns, &["nft", "list", "table", "inet", "cnm"]);
    assert!(text.contains("tcp . 8080 : 10.1.0.5 . 80"), "{text}");
    assert!(
        text.contains("192.0.2.1 . tcp . 8081 : 10.1.0.5 . 81"),
        "{text}"
    );
    // Another target for a published port is refused, not shadowed.
    let other = PortMapElement {
        target: Some("10.1.0.6:80".parse().unwrap()),
        ..elems[0].clone()
    };
    assert!(!nft.has_port_map_element(&other).unwrap());
    assert!(matches!(
        nft.update_port_maps(&[other], &[]),
        Err(FirewallError::Exists { .. })
    ));
    let keys: Vec<_> = elems.iter().map(|e| e.key.clone()).collect();
    nft.update_port_maps(&[], &keys).unwrap();
    nft.update_port_maps(&[], &keys).unwrap();
    for e in &elems {
        assert!(!nft.has_port_map_element(e).unwrap(), "{e:?}");
    }
    nft.flush_conntrack(false, crate::cni::config::Protocol::Udp, 5353)
        .unwrap();
}
