//! CNM drivers: each runs networks of one kind behind one interface, [`Driver`].
//!
//! libnetwork's driver interface is create/delete network, create/delete endpoint, join/leave
//! and endpoint operational info; CNI adds check, GC and status. A CNI ADD is "create the
//! endpoint and join it" in one step, and the kernel work of both happens at join time (the
//! veth is made with its peer already inside the sandbox), so [`Driver`] has the five CNI
//! operations in CNM words: `join`, `leave`, `verify`, `gc`, `status`, plus `validate` for
//! network creation. Operational info is the join's result.
//!
//! Every driver is one of cnm's CNI plugins run in the calling process ([`PluginDriver`]): a
//! network's configuration is the JSON a runtime hands the plugin, so a network made by a
//! runtime through CNI and one made through the library are the same network, in the same
//! store, run by the same code. A later driver (overlay) implements [`crate::cni::Plugin`] and
//! is registered in [`builtin`]; one that is not a plugin at all (the library's `host`) implements
//! [`Driver`] directly.

pub mod bridge;
pub mod host;
pub mod host_device;
pub mod l3;
pub mod macvlan;
pub mod null;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cni::config::{ConfigError, GcAttachment, NetConf};
use crate::cni::env::{CniArgs, Command, Env, SearchPath, Target};
use crate::cni::{Attach, Call, CniResult, Detach, Plugin};
use crate::error::{Error, Result};
use crate::netns::Netns;

/// A network's configuration: the CNI network configuration object its driver's plugin takes.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig(Map<String, Value>);

impl NetworkConfig {
    /// Wraps a configuration object; `cniVersion`, `name` and `type` are checked by the driver.
    pub fn new(config: Map<String, Value>) -> Self {
        NetworkConfig(config)
    }

    /// The configuration object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The bytes a call reads as stdin: the configuration with this call's `runtimeConfig`.
    fn stdin(&self, runtime: &Map<String, Value>) -> Vec<u8> {
        let mut conf = self.0.clone();
        if !runtime.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(runtime.clone()));
        }
        serde_json::to_vec(&conf).expect("a JSON map serializes")
    }
}

/// One endpoint's join: which container and interface, the sandbox, and per-call capabilities
/// (`runtimeConfig`: `portMappings`, `ips`, `mac`), as a runtime would pass them.
#[derive(Debug)]
pub struct JoinRequest<'a> {
    /// Container ID and interface name in the sandbox.
    pub target: &'a Target,
    /// The sandbox's network namespace.
    pub sandbox: &'a Netns,
    /// `runtimeConfig` for this call (empty for none).
    pub runtime: &'a Map<String, Value>,
}

/// The driver interface; object-safe, so a controller holds drivers of every kind side by side.
pub trait Driver: Send + Sync + std::fmt::Debug {
    /// The library's name for the driver, as libnetwork names them (`bridge`, `macvlan`, ...).
    fn name(&self) -> &'static str;
    /// The network configuration's `type` (the plugin's file name), also the store's driver.
    fn plugin(&self) -> &'static str;
    /// Checks a network configuration without touching the host.
    fn validate(&self, network: &NetworkConfig) -> Result<()>;
    /// Creates the endpoint and joins it to the sandbox (CNI ADD); the result is its
    /// operational info. Repeating it returns the first result.
    fn join(&self, network: &NetworkConfig, at: &JoinRequest<'_>) -> Result<CniResult>;
    /// Verifies the endpoint still is as `join` made it (CNI CHECK).
    fn verify(&self, network: &NetworkConfig, at: &JoinRequest<'_>) -> Result<()>;
    /// Leaves the sandbox and deletes the endpoint (CNI DEL); the sandbox may be gone, and
    /// nothing left to delete is success.
    fn leave(&self, network: &NetworkConfig, target: &Target, sandbox: Option<&Path>)
        -> Result<()>;
    /// Deletes every endpoint of the network not in `keep` (CNI GC).
    fn gc(&self, network: &NetworkConfig, keep: &[GcAttachment]) -> Result<()>;
    /// Whether a join can succeed now (CNI STATUS).
    fn status(&self, network: &NetworkConfig) -> Result<()>;
}

/// A cnm CNI plugin as a [`Driver`], called in this process (no exec).
#[derive(Debug)]
pub struct PluginDriver<P> {
    name: &'static str,
    plugin: P,
    /// `CNI_PATH` for plugins this one delegates to (an IPAM other than `cnm-ipam`).
    path: SearchPath,
}

impl<P: Plugin> PluginDriver<P> {
    /// The plugin `plugin` under the library name `name`; delegated plugins are looked up in
    /// `cni_path`.
    pub fn new(name: &'static str, plugin: P, cni_path: Vec<PathBuf>) -> Self {
        PluginDriver {
            name,
            plugin,
            path: SearchPath(cni_path),
        }
    }

    fn call<R>(
        &self,
        command: Command,
        stdin: &[u8],
        f: impl FnOnce(&Call<'_, P::Config>) -> Result<R>,
    ) -> Result<R> {
        let env = Env {
            command,
            args: CniArgs::default(),
            path: self.path.clone(),
        };
        let call = Call {
            conf: NetConf::<P::Config>::parse(stdin)?,
            env: &env,
            stdin,
        };
        if call.conf.plugin_type != P::NAME {
            return Err(ConfigError::invalid(
                "type",
                format!(
                    "network {} is a {} network, not {}",
                    call.conf.name,
                    call.conf.plugin_type,
                    P::NAME
                ),
            )
            .into());
        }
        let span = tracing::info_span!("driver", plugin = P::NAME, cmd = call.env.command.name());
        let _entered = span.enter();
        f(&call)
    }
}

fn attach_command(at: &JoinRequest<'_>, check: bool) -> Command {
    let (target, netns) = (at.target.clone(), at.sandbox.path().to_owned());
    if check {
        Command::Check { target, netns }
    } else {
        Command::Add { target, netns }
    }
}

impl<P> Driver for PluginDriver<P>
where
    P: Plugin + Send + Sync + std::fmt::Debug,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn plugin(&self) -> &'static str {
        P::NAME
    }

    fn validate(&self, network: &NetworkConfig) -> Result<()> {
        self.call(Command::Status, &network.stdin(&Map::new()), |call| {
            self.plugin.validate(call)
        })
    }

    fn join(&self, network: &NetworkConfig, at: &JoinRequest<'_>) -> Result<CniResult> {
        let stdin = network.stdin(at.runtime);
        self.call(attach_command(at, false), &stdin, |call| {
            let attach = Attach {
                target: at.target,
                netns: at.sandbox,
            };
            self.plugin.add(call, &attach)
        })
    }

    fn verify(&self, network: &NetworkConfig, at: &JoinRequest<'_>) -> Result<()> {
        let stdin = network.stdin(at.runtime);
        self.call(attach_command(at, true), &stdin, |call| {
            let attach = Attach {
                target: at.target,
                netns: at.sandbox,
            };
            self.plugin.check(call, &attach)
        })
    }

    fn leave(
        &self,
        network: &NetworkConfig,
        target: &Target,
        sandbox: Option<&Path>,
    ) -> Result<()> {
        let command = Command::Del {
            target: target.clone(),
            netns: sandbox.map(Path::to_owned),
        };
        self.call(command, &network.stdin(&Map::new()), |call| {
            let opened = sandbox.and_then(|p| Netns::open(p).ok());
            let at = Detach {
                target,
                netns_path: sandbox,
                netns: opened.as_ref(),
            };
            self.plugin.del(call, &at)
        })
    }

    fn gc(&self, network: &NetworkConfig, keep: &[GcAttachment]) -> Result<()> {
        self.call(Command::Gc, &network.stdin(&Map::new()), |call| {
            self.plugin.gc(call, keep)
        })
    }

    fn status(&self, network: &NetworkConfig) -> Result<()> {
        self.call(Command::Status, &network.stdin(&Map::new()), |call| {
            self.plugin.status(call)
        })
    }
}

/// The plugin drivers cnm ships, by library name: `bridge`, `macvlan`, `host-device`, `null`.
/// (The controller adds [`host::HostDriver`], which is not a plugin.)
pub fn builtin(cni_path: &[PathBuf]) -> Vec<Arc<dyn Driver>> {
    use crate::plugins::{bridge, host, macvlan, null};
    let path = || cni_path.to_vec();
    vec![
        Arc::new(PluginDriver::new("bridge", bridge::BridgePlugin, path())),
        Arc::new(PluginDriver::new("macvlan", macvlan::MacvlanPlugin, path())),
        Arc::new(PluginDriver::new("host-device", host::HostPlugin, path())),
        Arc::new(PluginDriver::new("null", null::NullPlugin, path())),
    ]
}

/// The error for a driver name that no registered driver has.
pub fn unknown(name: &str, known: &[Arc<dyn Driver>]) -> Error {
    let names: Vec<&str> = known.iter().map(|d| d.name()).collect();
    ConfigError::invalid(
        "driver",
        format!("no driver named {name:?}; cnm has {}", names.join(", ")),
    )
    .into()
}
