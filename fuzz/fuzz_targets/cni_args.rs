//! `CNI_ARGS`, `CNI_CONTAINERID`, `CNI_IFNAME`, `CNI_PATH` and `IP=` values, from any string.
#![no_main]

use cnm_core::cni::config::RequestedIp;
use cnm_core::cni::env::{CniArgs, ContainerId, IfName, SearchPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(args) = CniArgs::parse(s) {
        assert_eq!(args.raw(), s);
        let _ = args.check_known(&[]);
        let _ = args.check_known(&["IP", "MAC", "K8S_POD_NAME"]);
        if let Some(ip) = args.get("IP") {
            for part in ip.split(',') {
                let _ = part.parse::<RequestedIp>();
            }
        }
    }
    if let Ok(id) = ContainerId::new(s) {
        assert_eq!(id.as_str(), s);
        assert!(!s.is_empty() && s.len() <= 255 && !s.contains('/'));
    }
    if let Ok(name) = IfName::new(s) {
        assert_eq!(name.as_str(), s);
        assert!(!s.is_empty() && s.len() <= IfName::MAX_LEN && !s.contains('/'));
    }
    let path = SearchPath::parse(s);
    assert_eq!(SearchPath::parse(&path.joined()), path);
    let _ = s.parse::<RequestedIp>();
});
