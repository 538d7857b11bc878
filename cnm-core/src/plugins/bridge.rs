//! `cnm-bridge`: the CNM bridge driver behind CNI.

use serde::Deserialize;

use crate::cni::config::GcAttachment;
use crate::cni::{Attach, Call, CniResult, Detach, Plugin};
use crate::error::{Error, Result};

/// The reference `bridge` plugin's keys, accepted with the same meaning.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeConfig {
    /// Bridge device name (default `cni0`).
    #[serde(default)]
    pub bridge: Option<String>,
    /// Give the bridge the gateway address.
    #[serde(default)]
    pub is_gateway: bool,
    /// Make the gateway the container's default route.
    #[serde(default)]
    pub is_default_gateway: bool,
    /// MTU of the veth pair.
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// The `cnm-bridge` plugin.
#[derive(Debug, Default)]
pub struct BridgePlugin;

fn not_yet(what: &'static str) -> Error {
    Error::NotImplemented {
        plugin: BridgePlugin::NAME,
        what,
    }
}

impl Plugin for BridgePlugin {
    type Config = BridgeConfig;
    const NAME: &'static str = "cnm-bridge";
    const KNOWN_ARGS: &'static [&'static str] = &["IP"];

    fn add(&self, _: &Call<'_, BridgeConfig>, _: &Attach<'_>) -> Result<CniResult> {
        Err(not_yet("ADD"))
    }
    fn check(&self, _: &Call<'_, BridgeConfig>, _: &Attach<'_>) -> Result<()> {
        Err(not_yet("CHECK"))
    }
    fn del(&self, _: &Call<'_, BridgeConfig>, _: &Detach<'_>) -> Result<()> {
        Err(not_yet("DEL"))
    }
    fn status(&self, _: &Call<'_, BridgeConfig>) -> Result<()> {
        Err(not_yet("STATUS"))
    }
    fn gc(&self, _: &Call<'_, BridgeConfig>, _: &[GcAttachment]) -> Result<()> {
        Err(not_yet("GC"))
    }
}
