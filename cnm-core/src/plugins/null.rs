//! `cnm-null`: the null driver behind CNI, the counterpart of the reference `loopback`.
//!
//! ADD brings the container's `CNI_IFNAME` (runtimes pass `lo`) up and returns it with its
//! addresses, or passes `prevResult` on unchanged when chained after another plugin (as the
//! reference does). CHECK verifies it is up. DEL does nothing and succeeds, also with the netns
//! gone: the loopback dies with its namespace, and libnetwork's null leaves it as it is (the
//! reference `loopback` sets it down instead). No store: there is nothing to remember.

use serde::Deserialize;

use crate::cni::config::GcAttachment;
use crate::cni::result::{Interface, IpConfig};
use crate::cni::{Attach, Call, CniResult, Detach, Plugin};
use crate::driver::null as driver;
use crate::error::Result;

/// No keys of its own.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NullConfig {}

/// The `cnm-null` plugin.
#[derive(Debug, Default)]
pub struct NullPlugin;

impl Plugin for NullPlugin {
    type Config = NullConfig;
    const NAME: &'static str = "cnm-null";

    fn add(&self, call: &Call<'_, NullConfig>, at: &Attach<'_>) -> Result<CniResult> {
        let name = at.target.ifname.as_str();
        let addrs = driver::bring_up(at.netns, name)?;
        if let Some(prev) = &call.conf.prev_result {
            return Ok(prev.clone());
        }
        Ok(CniResult {
            interfaces: vec![Interface {
                name: name.to_owned(),
                mac: Some("00:00:00:00:00:00".into()),
                sandbox: Some(at.netns.path().display().to_string()),
                ..Interface::default()
            }],
            ips: addrs
                .into_iter()
                .map(|address| IpConfig {
                    address,
                    gateway: None,
                    interface: Some(0),
                })
                .collect(),
            ..CniResult::default()
        })
    }

    fn check(&self, _: &Call<'_, NullConfig>, at: &Attach<'_>) -> Result<()> {
        Ok(driver::verify(at.netns, at.target.ifname.as_str())?)
    }

    fn del(&self, _: &Call<'_, NullConfig>, _: &Detach<'_>) -> Result<()> {
        Ok(())
    }

    fn status(&self, _: &Call<'_, NullConfig>) -> Result<()> {
        Ok(())
    }

    fn gc(&self, _: &Call<'_, NullConfig>, _: &[GcAttachment]) -> Result<()> {
        Ok(())
    }
}
