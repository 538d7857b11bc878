//! The library's `host` driver: an endpoint of a host network gives its container the host's own
//! network stack, as libnetwork's `host` driver does. Nothing is made: the sandbox is the host's
//! namespace itself (a sandbox made with `use_host_namespace`). CNI runtimes do this without
//! any plugin, so this driver has none; `cnm-host` is the host-*device* driver.

use std::path::Path;

use crate::cni::config::GcAttachment;
use crate::cni::env::Target;
use crate::cni::CniResult;
use crate::error::{Error, Result};
use crate::model::ModelError;
use crate::netns::Netns;

use super::{Driver, JoinRequest, NetworkConfig};

/// The store's driver name of host networks.
pub const PLUGIN: &str = "host";

/// libnetwork's `host` driver.
#[derive(Debug, Default)]
pub struct HostDriver;

impl Driver for HostDriver {
    fn name(&self) -> &'static str {
        "host"
    }

    fn plugin(&self) -> &'static str {
        PLUGIN
    }

    fn validate(&self, _: &NetworkConfig) -> Result<()> {
        Ok(())
    }

    /// Checks that the sandbox is the namespace the caller runs in (the host's).
    fn join(&self, _: &NetworkConfig, at: &JoinRequest<'_>) -> Result<CniResult> {
        self.verify_host(at)?;
        Ok(CniResult::default())
    }

    fn verify(&self, _: &NetworkConfig, at: &JoinRequest<'_>) -> Result<()> {
        self.verify_host(at)
    }

    fn leave(&self, _: &NetworkConfig, _: &Target, _: Option<&Path>) -> Result<()> {
        Ok(())
    }

    fn gc(&self, _: &NetworkConfig, _: &[GcAttachment]) -> Result<()> {
        Ok(())
    }

    fn status(&self, _: &NetworkConfig) -> Result<()> {
        Ok(())
    }
}

impl HostDriver {
    fn verify_host(&self, at: &JoinRequest<'_>) -> Result<()> {
        let here = Netns::current().map_err(Error::Netns)?;
        if !here.same_as(at.sandbox).map_err(Error::Netns)? {
            let who = at.target.container_id.to_string();
            return Err(ModelError::HostSandboxOnly(who).into());
        }
        Ok(())
    }
}
