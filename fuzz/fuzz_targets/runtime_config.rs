//! `runtimeConfig` (the capability arguments: portMappings, ips, mac, ipRanges, dns), parsed on
//! its own and inside a network configuration, where errors must name the field.
#![no_main]

use cnm_core::cni::config::{ConfigError, NetConf, RuntimeConfig};
use cnm_core::driver::bridge::parse_mac;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let alone = serde_json::from_value::<RuntimeConfig>(value.clone());
    let conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "t", "runtimeConfig": value});
    let bytes = serde_json::to_vec(&conf).expect("prints");
    let within = NetConf::<Value>::parse(&bytes);
    match (&alone, &within) {
        (Ok(rc), Ok(c)) => {
            // ipRanges is opaque JSON here, and serde_json does not round-trip every float
            // exactly through text, so it is compared by presence only.
            let rt = &c.runtime_config;
            assert_eq!(rc.port_mappings, rt.port_mappings);
            assert_eq!(rc.ips, rt.ips);
            assert_eq!((&rc.mac, &rc.dns), (&rt.mac, &rt.dns));
            assert_eq!(rc.ip_ranges.is_some(), rt.ip_ranges.is_some());
            for pm in &rc.port_mappings {
                assert!(pm.host_port != 0 && pm.container_port != 0);
            }
            if let Some(mac) = &rc.mac {
                let _ = parse_mac(mac);
            }
        }
        // `null` is no runtimeConfig at all in a config.
        (Err(_), Ok(_)) => assert!(conf["runtimeConfig"].is_null()),
        // Wrapping adds a level of nesting, which may pass serde_json's limit of 128.
        (_, Err(ConfigError::Syntax(e))) => assert!(e.to_string().contains("recursion"), "{e}"),
        (Ok(_), Err(e)) => panic!("alone it parses, in a config: {e}"),
        (Err(_), Err(e)) => assert!(e.to_string().contains("runtimeConfig"), "{e}"),
    }
});
