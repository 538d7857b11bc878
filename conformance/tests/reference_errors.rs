//! Debian's reference plugins given bad input or a broken attachment: errors come back as CNI
//! errors with a code, and DEL still cleans up (SPEC §DEL: it must succeed with the netns gone).

mod reference_setup;

use std::path::Path;
use std::time::{Duration, Instant};

use conformance::{ip, link_names, unique_name, Container, RuntimeConf};
use reference_setup::*;

/// Files named like an address in host-local's data directory: its reservations.
fn reservations(s: &RefSetup) -> Vec<String> {
    let dir = s.data_dir().join(NET);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect()
}

/// Waits until `name` is gone from the host: the kernel frees a dead namespace's veth pair
/// asynchronously.
fn wait_link_gone(s: &RefSetup, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !link_names(s.host.netns())
            .unwrap()
            .iter()
            .any(|l| l == name)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn add_into_a_missing_netns_fails_with_a_code() {
    for version in ["0.4.0", "1.0.0"] {
        let Some(s) = RefSetup::new("add_into_a_missing_netns_fails_with_a_code") else {
            return;
        };
        let missing = Path::new("/run/netns").join(unique_name("gone"));
        let rt = RuntimeConf {
            container_id: "missing-netns".into(),
            netns: missing.clone(),
            ifname: "eth0".into(),
            ..RuntimeConf::default()
        };
        let list = s.conflist(version);
        let err = s.runtime.add_network_list(&list, &rt).unwrap_err();
        let perr = err
            .plugin_error()
            .unwrap_or_else(|| panic!("[{version}] {err}"));
        assert!(perr.code.is_some(), "[{version}] no code: {perr}");
        assert!(
            perr.msg.contains(missing.to_str().unwrap()),
            "[{version}] {perr}"
        );
        eprintln!("[{version}] missing netns: {perr}");
        assert_eq!(s.runtime.cached_result(&list, &rt).unwrap(), None);
        assert_eq!(reservations(&s), Vec::<String>::new());
        // DEL of what never got added succeeds too.
        s.runtime.del_network_list(&list, &rt).unwrap();
    }
}

#[test]
fn del_succeeds_after_the_netns_is_gone() {
    for version in ["0.4.0", "1.0.0"] {
        let Some(s) = RefSetup::new("del_succeeds_after_the_netns_is_gone") else {
            return;
        };
        let list = s.conflist(version);
        let c = Container::new("gone").unwrap();
        let rt = c.runtime_conf("eth0");
        let result = s.runtime.add_network_list(&list, &rt).unwrap();
        let veth = host_veths(&result, &s.bridge).remove(0);
        assert_eq!(reservations(&s), [container_addr(&result).to_string()]);

        drop(c);
        s.runtime.del_network_list(&list, &rt).unwrap();
        assert_eq!(reservations(&s), Vec::<String>::new(), "[{version}]");
        assert_eq!(s.runtime.cached_result(&list, &rt).unwrap(), None);
        assert!(
            wait_link_gone(&s, &veth),
            "[{version}] {veth} outlived its netns"
        );
        s.runtime.del_network_list(&list, &rt).unwrap();
    }
}

#[test]
fn check_fails_when_the_container_interface_is_gone() {
    for version in ["0.4.0", "1.0.0"] {
        let Some(s) = RefSetup::new("check_fails_when_the_container_interface_is_gone") else {
            return;
        };
        let list = s.conflist(version);
        let c = Container::new("chk").unwrap();
        let rt = c.runtime_conf("eth0");
        s.runtime.add_network_list(&list, &rt).unwrap();
        s.runtime.check_network_list(&list, &rt).unwrap();

        ip(c.netns(), &["link", "del", "eth0"]).unwrap();
        let err = s.runtime.check_network_list(&list, &rt).unwrap_err();
        let perr = err
            .plugin_error()
            .unwrap_or_else(|| panic!("[{version}] {err}"));
        assert!(perr.code.is_some(), "[{version}] no code: {perr}");
        eprintln!("[{version}] CHECK without eth0: {err}");

        s.runtime.del_network_list(&list, &rt).unwrap();
        assert_eq!(reservations(&s), Vec::<String>::new(), "[{version}]");
    }
}

/// A config the IPAM plugin rejects: ADD fails with a code and reserves nothing. The reference
/// bridge (v1.1.1) does not roll back the veth pair it made before calling IPAM, and DEL with the
/// same config fails the same way; DEL with a corrected config must remove whatever is left.
#[test]
fn add_with_a_bad_ipam_config_fails_and_del_cleans_up() {
    for version in ["0.4.0", "1.0.0"] {
        let Some(s) = RefSetup::new("add_with_a_bad_ipam_config_fails_and_del_cleans_up") else {
            return;
        };
        let good = s.conflist(version);
        let mut bad = good.clone();
        bad.plugins[0].conf["ipam"]["subnet"] = "10.99.0.0/33".into();
        let c = Container::new("ipam").unwrap();
        let rt = c.runtime_conf("eth0");
        let err = s.runtime.add_network_list(&bad, &rt).unwrap_err();
        let perr = err
            .plugin_error()
            .unwrap_or_else(|| panic!("[{version}] {err}"));
        assert!(perr.code.is_some(), "[{version}] no code: {perr}");
        assert!(perr.msg.contains("10.99.0.0/33"), "[{version}] {perr}");
        assert_eq!(reservations(&s), Vec::<String>::new());
        let host_links = link_names(s.host.netns()).unwrap();
        eprintln!(
            "[{version}] after the failed ADD: host {host_links:?}, container {:?}",
            link_names(c.netns()).unwrap()
        );

        let err = s.runtime.del_network_list(&bad, &rt).unwrap_err();
        assert!(
            err.plugin_error().is_some_and(|e| e.code.is_some()),
            "{err}"
        );
        s.runtime.del_network_list(&good, &rt).unwrap();
        assert_eq!(link_names(c.netns()).unwrap(), ["lo"], "[{version}]");
        for link in host_links.iter().filter(|l| *l != "lo" && **l != s.bridge) {
            assert!(
                wait_link_gone(&s, link),
                "[{version}] {link} left in the host"
            );
        }
    }
}
