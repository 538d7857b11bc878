//! cnm's own plugins driven through the harness exactly as a runtime drives them, next to the
//! reference plugins in the same run.

use std::path::PathBuf;

use conformance::{cnm_plugin_dir, require_plugins, require_root, Container, Host, RuntimeConf};

const CNM: [&str; 2] = ["cnm-bridge", "cnm-host"];
const ALL_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

fn setup(test: &str) -> Option<(Host, conformance::Runtime)> {
    if !require_root(test) || !require_plugins(test, &cnm_plugin_dir(), &CNM) {
        return None;
    }
    let host = Host::new("cnm").unwrap();
    let rt = host
        .runtime(vec![cnm_plugin_dir(), PathBuf::from("/usr/lib/cni")])
        .unwrap();
    Some((host, rt))
}

#[test]
fn version_through_the_runtime() {
    let Some((_host, rt)) = setup("version_through_the_runtime") else {
        return;
    };
    for plugin in CNM {
        for v in ALL_VERSIONS {
            let info = rt.version(plugin, v).unwrap();
            assert_eq!(info.cni_version, v, "{plugin}");
            assert_eq!(info.supported_versions, ALL_VERSIONS, "{plugin}");
        }
    }
}

#[test]
fn add_into_a_missing_netns_is_code_3_and_makes_nothing() {
    let Some((host, rt)) = setup("add_into_a_missing_netns_is_code_3_and_makes_nothing") else {
        return;
    };
    let c = Container::new("gone").unwrap();
    let rtc: RuntimeConf = RuntimeConf {
        netns: PathBuf::from("/run/netns/cnmt-no-such-namespace"),
        ..c.runtime_conf("eth0")
    };
    let before = conformance::link_names(host.netns()).unwrap();
    for v in ["0.4.0", "1.0.0", "1.1.0"] {
        let list = conformance::NetworkConfigList::from_value(&serde_json::json!({
            "cniVersion": v, "name": "cnmnet",
            "plugins": [{"type": "cnm-bridge", "bridge": "cnmt0",
                         "ipam": {"type": "cnm-ipam", "subnet": "10.98.0.0/24"}}]
        }))
        .unwrap();
        let err = rt.add_network_list(&list, &rtc).unwrap_err();
        let e = err.plugin_error().expect("a CNI error");
        assert_eq!(e.code, Some(3), "[{v}] {err}");
        assert!(e.msg.contains("does not exist"), "[{v}] {}", e.msg);
        assert_eq!(e.cni_version.as_deref(), Some(v));
    }
    assert_eq!(conformance::link_names(host.netns()).unwrap(), before);
}
