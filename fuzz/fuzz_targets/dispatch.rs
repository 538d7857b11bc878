//! A whole plugin call through `cnm_core::cni::dispatch`, with a fake plugin that does nothing.
//!
//! Input layout: everything up to the first `\n` chooses the environment, the rest is stdin.
//! Header byte 0 picks `CNI_COMMAND`, byte 1 which variables are set (bit i for variable i), byte
//! 2 `CNI_NETNS` from a fixed list (never a path from the input: opening a FIFO would block), byte
//! 3 what the fake plugin answers; the remaining header bytes, split on `|`, are
//! `CNI_CONTAINERID`, `CNI_IFNAME`, `CNI_ARGS` and `CNI_PATH`, taken as raw bytes (so not
//! always UTF-8). The reply must be JSON (or empty on success) and an error must carry a code.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use cnm_core::cni::config::GcAttachment;
use cnm_core::cni::{dispatch, Attach, Call, CniResult, Detach, Plugin};
use cnm_core::ipam::IpamConfigError;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const COMMANDS: [&str; 8] = [
    "ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC", "add", "FOO",
];
const NETNS: [&str; 5] = [
    "/proc/self/ns/net",
    "/nonexistent/netns",
    "/tmp",
    "/etc/hostname",
    "/dev/null",
];
const NAMES: [&str; 4] = ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];

/// Succeeds with `prevResult` (or an empty result), or fails, as byte 3 of the header says.
struct Fake {
    fail: bool,
}

/// The fake's own keys: anything.
type FakeConf = Value;

impl Fake {
    fn outcome(&self) -> cnm_core::Result<()> {
        if self.fail {
            return Err(IpamConfigError::NoRanges.into());
        }
        Ok(())
    }
}

impl Plugin for Fake {
    type Config = FakeConf;
    const NAME: &'static str = "fuzz-fake";
    const KNOWN_ARGS: &'static [&'static str] = &["IP"];

    fn add(&self, call: &Call<'_, FakeConf>, _: &Attach<'_>) -> cnm_core::Result<CniResult> {
        self.outcome()?;
        Ok(call.conf.prev_result.clone().unwrap_or_default())
    }
    fn check(&self, _: &Call<'_, FakeConf>, _: &Attach<'_>) -> cnm_core::Result<()> {
        self.outcome()
    }
    fn del(&self, _: &Call<'_, FakeConf>, _: &Detach<'_>) -> cnm_core::Result<()> {
        self.outcome()
    }
    fn status(&self, _: &Call<'_, FakeConf>) -> cnm_core::Result<()> {
        self.outcome()
    }
    fn gc(&self, _: &Call<'_, FakeConf>, valid: &[GcAttachment]) -> cnm_core::Result<()> {
        let _ = GcAttachment::keys(valid);
        self.outcome()
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, stdin) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let byte = |i: usize| head.get(i).copied().unwrap_or(0);
    let (command, set, netns) = (byte(0), byte(1), byte(2));
    let fake = Fake {
        fail: byte(3) & 1 == 1,
    };
    let values: Vec<&[u8]> = head
        .get(4..)
        .unwrap_or_default()
        .split(|&b| b == b'|')
        .collect();
    let var = |k: &str| -> Option<OsString> {
        let on = |bit: u8| set & (1 << bit) != 0;
        match k {
            "CNI_COMMAND" if on(0) => Some(COMMANDS[usize::from(command) % COMMANDS.len()].into()),
            "CNI_NETNS" if on(1) => Some(NETNS[usize::from(netns) % NETNS.len()].into()),
            _ => {
                let i = NAMES.iter().position(|n| *n == k)?;
                let v = values.get(i).copied().unwrap_or(b"x");
                on(2 + i as u8).then(|| OsString::from_vec(v.to_vec()))
            }
        }
    };
    let reply = dispatch(&fake, var, &mut &stdin[..]);
    if reply.exit_code == 0 && reply.stdout.is_empty() {
        return;
    }
    let out: Value = serde_json::from_slice(&reply.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&reply.stdout)
        )
    });
    assert!(out.is_object(), "{out}");
    assert!(out["cniVersion"].is_string(), "{out}");
    if reply.exit_code == 0 {
        assert!(out.get("code").is_none(), "{out}");
    } else {
        assert_eq!(reply.exit_code, 1);
        assert!(out["code"].is_u64(), "{out}");
        assert!(out["msg"].is_string(), "{out}");
        let msg = out["msg"].as_str().unwrap_or_default();
        assert!(!msg.contains("panicked"), "{out}");
    }
});
