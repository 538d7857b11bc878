//! A network: a name, a driver, and the configuration the driver's plugin takes.

use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use serde_json::Map;

use super::controller::Inner;
use super::endpoint::Endpoint;
use super::{EndpointOptions, ModelError};
use crate::cni::config::NetworkName;
use crate::cni::env::Target;
use crate::cni::CniResult;
use crate::driver::{Driver, JoinRequest, NetworkConfig};
use crate::error::Result;
use crate::netns::Netns;
use crate::store::{EndpointRecord, Store};

/// libnetwork's `Network`: made by [`super::Controller::new_network`] or found in the store.
#[derive(Debug, Clone)]
pub struct Network {
    inner: Arc<Inner>,
    name: NetworkName,
    driver: Arc<dyn Driver>,
    config: NetworkConfig,
    subnets: Vec<IpNet>,
}

impl Network {
    pub(super) fn new(
        inner: Arc<Inner>,
        name: NetworkName,
        driver: Arc<dyn Driver>,
        config: NetworkConfig,
        subnets: Vec<IpNet>,
    ) -> Self {
        Network {
            inner,
            name,
            driver,
            config,
            subnets,
        }
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The driver's library name (`bridge`, ...).
    pub fn driver(&self) -> &'static str {
        self.driver.name()
    }

    /// The network's CNI configuration (what its driver's plugin takes on stdin).
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The subnets its endpoints are addressed from.
    pub fn subnets(&self) -> &[IpNet] {
        &self.subnets
    }

    /// A new endpoint on this network (libnetwork's `CreateEndpoint`). Its interface is made
    /// when it joins a sandbox: as in CNI, the driver creates it directly inside the sandbox.
    pub fn create_endpoint(&self, name: &str, options: EndpointOptions) -> Result<Endpoint> {
        // Endpoint names follow the rules of network names (letters, digits, `_.-`).
        NetworkName::new(name)?;
        Ok(Endpoint::new(self.clone(), name.to_owned(), options))
    }

    /// The endpoints of this network in the store, whoever made them.
    pub fn endpoints(&self) -> Result<Vec<EndpointRecord>> {
        Ok(super::Controller::from_inner(self.inner.clone())
            .store()?
            .endpoints(Some(&self.name))?)
    }

    /// Whether a join can succeed now (CNI STATUS).
    pub fn status(&self) -> Result<()> {
        self.driver.status(&self.config)
    }

    /// Deletes the network (libnetwork's `Network.Delete`); refused while endpoints remain.
    /// Host objects that outlive the network's endpoints (a bridge cnm made) go now: the
    /// driver's GC runs with no attachment to keep.
    pub fn delete(self) -> Result<()> {
        let mut store = super::Controller::from_inner(self.inner.clone()).store()?;
        let in_use = |store: &crate::store::SqliteStore| -> Result<()> {
            let count = store.endpoints(Some(&self.name))?.len();
            if count == 0 {
                return Ok(());
            }
            Err(ModelError::NetworkInUse {
                network: self.name.to_string(),
                count,
            }
            .into())
        };
        in_use(&store)?;
        self.driver.gc(&self.config, &[])?;
        if store.remove_network_if_unused(&self.name)? {
            tracing::info!("deleted network {}", self.name);
            return Ok(());
        }
        // Gone already (another process deleted it), or joined meanwhile.
        in_use(&store)
    }

    pub(super) fn join(
        &self,
        target: &Target,
        sandbox: &Netns,
        runtime: &Map<String, serde_json::Value>,
    ) -> Result<CniResult> {
        let at = JoinRequest {
            target,
            sandbox,
            runtime,
        };
        self.driver.join(&self.config, &at)
    }

    pub(super) fn verify(
        &self,
        target: &Target,
        sandbox: &Netns,
        runtime: &Map<String, serde_json::Value>,
    ) -> Result<()> {
        let at = JoinRequest {
            target,
            sandbox,
            runtime,
        };
        self.driver.verify(&self.config, &at)
    }

    pub(super) fn leave(&self, target: &Target, sandbox: Option<&Path>) -> Result<()> {
        self.driver.leave(&self.config, target, sandbox)
    }

    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    pub(super) fn is_host(&self) -> bool {
        self.driver.plugin() == crate::driver::host::PLUGIN
    }

    pub(super) fn is_null(&self) -> bool {
        self.driver.plugin() == "cnm-null"
    }
}
