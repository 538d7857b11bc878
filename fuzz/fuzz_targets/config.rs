//! stdin of a bridge plugin: `NetConf<BridgeConfig>` → `BridgePlan`, and the `ipam` section →
//! `IpamPlan` → the requested addresses matched to range sets → one allocation per set.
//! Any JSON object is also tried as an `ipam` section on its own, so the IPAM validation is
//! reached without the fuzzer first having to build a whole valid config.
#![no_main]

use std::collections::HashSet;

use cnm_core::cni::config::{GcAttachment, NetConf};
use cnm_core::driver::bridge::{BridgeConfig, BridgePlan};
use cnm_core::ipam::allocator::{allocate, assign_requests};
use cnm_core::ipam::IpamPlan;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(data) {
        ipam(&obj, &[]);
    }
    let Ok(conf) = NetConf::<BridgeConfig>::parse(data) else {
        return;
    };
    let _ = BridgePlan::new(&conf);
    if let Some(valid) = &conf.valid_attachments {
        let _ = GcAttachment::keys(valid);
    }
    if let Some(section) = &conf.ipam {
        let requested: Vec<_> = conf.runtime_config.ips.iter().map(|r| r.addr).collect();
        ipam(&section.raw, &requested);
    }
});

fn ipam(section: &Map<String, Value>, requested: &[std::net::IpAddr]) {
    let Ok(plan) = IpamPlan::parse(section) else {
        return;
    };
    let _ = plan.subnets();
    let requests: Vec<_> = requested
        .iter()
        .map(|a| a.to_string().parse().expect("an address re-parses"))
        .collect();
    let Ok(assigned) = assign_requests(&plan.sets, &requests) else {
        return;
    };
    let none = HashSet::new();
    for (set, want) in plan.sets.iter().zip(assigned) {
        let first = allocate(set, &none, None, want);
        // Round-robin from the last address of the set must wrap round, not overflow.
        let last = set.ranges.last().map(|r| r.end);
        let wrapped = allocate(set, &none, last, None);
        if want.is_none() {
            let a = first.expect("an empty validated set has a free address");
            assert!(
                set.range_for(a).is_some() && !set.is_gateway(a),
                "{a} for {set}"
            );
            wrapped.expect("an empty validated set has a free address after its end");
        }
    }
}
