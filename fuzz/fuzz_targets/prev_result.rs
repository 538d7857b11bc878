//! `prevResult` (and a delegated plugin's result): `CniResult::from_json` in every spec version;
//! whatever parses must print in every version and parse back from the printed bytes, and
//! printing again must give the same bytes.
#![no_main]

use cnm_core::cni::{CniResult, SpecVersion};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for read in SpecVersion::ALL {
        let Ok(result) = CniResult::from_json(read, value.clone(), "prevResult") else {
            continue;
        };
        for print in SpecVersion::ALL {
            let printed = serde_json::to_vec(&result.to_json(print)).expect("prints");
            let again: Value = serde_json::from_slice(&printed).expect("printed JSON parses");
            let back = CniResult::from_json(print, again, "printed result").unwrap_or_else(|e| {
                panic!(
                    "read as {read}, printed as {print}: {e}\n{}",
                    String::from_utf8_lossy(&printed)
                )
            });
            let reprinted = serde_json::to_vec(&back.to_json(print)).expect("prints");
            assert_eq!(
                String::from_utf8_lossy(&printed),
                String::from_utf8_lossy(&reprinted),
                "read as {read}, printed as {print}"
            );
        }
    }
});
