//! `cnm-host`: moves a host device into the container (the reference `host-device`'s job).

use serde::Deserialize;

use crate::cni::config::GcAttachment;
use crate::cni::{Attach, Call, CniResult, Detach, Plugin};
use crate::error::{Error, Result};

/// The reference `host-device` plugin's keys, accepted with the same meaning.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostConfig {
    /// Host device name.
    #[serde(default)]
    pub device: Option<String>,
    /// Host device MAC address.
    #[serde(default)]
    pub hwaddr: Option<String>,
}

/// The `cnm-host` plugin.
#[derive(Debug, Default)]
pub struct HostPlugin;

fn not_yet(what: &'static str) -> Error {
    Error::NotImplemented {
        plugin: HostPlugin::NAME,
        what,
    }
}

impl Plugin for HostPlugin {
    type Config = HostConfig;
    const NAME: &'static str = "cnm-host";

    fn add(&self, _: &Call<'_, HostConfig>, _: &Attach<'_>) -> Result<CniResult> {
        Err(not_yet("ADD"))
    }
    fn check(&self, _: &Call<'_, HostConfig>, _: &Attach<'_>) -> Result<()> {
        Err(not_yet("CHECK"))
    }
    fn del(&self, _: &Call<'_, HostConfig>, _: &Detach<'_>) -> Result<()> {
        Err(not_yet("DEL"))
    }
    fn status(&self, _: &Call<'_, HostConfig>) -> Result<()> {
        Err(not_yet("STATUS"))
    }
    fn gc(&self, _: &Call<'_, HostConfig>, _: &[GcAttachment]) -> Result<()> {
        Err(not_yet("GC"))
    }
}
