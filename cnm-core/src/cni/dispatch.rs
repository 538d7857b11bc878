//! The dispatcher: environment + stdin in, stdout bytes + exit status out. It is pure apart from
//! opening `CNI_NETNS` and whatever the plugin does, so every protocol error is unit-tested
//! without a kernel; only [`super::main`] touches the real process.

use std::ffi::OsString;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::json;

use super::config::{peek_version, read_stdin, ConfigError, GcAttachment, NetConf};
use super::delegate::Delegation;
use super::env::{Command, Env, Target};
use super::error::{CniError, ErrorCode};
use super::result::CniResult;
use super::version::SpecVersion;
use crate::error::{Error, Result};
use crate::netns::Netns;

/// A CNI plugin: one implementation of each command over its own config type.
pub trait Plugin {
    /// The plugin's own configuration keys.
    type Config: DeserializeOwned;
    /// Its name in messages, e.g. `cnm-bridge`.
    const NAME: &'static str;
    /// The `CNI_ARGS` keys it understands (others need `IgnoreUnknown`).
    const KNOWN_ARGS: &'static [&'static str] = &[];

    /// ADD: attach the container and return the result.
    fn add(&self, call: &Call<'_, Self::Config>, at: &Attach<'_>) -> Result<CniResult>;
    /// CHECK: verify the attachment still matches what ADD made.
    fn check(&self, call: &Call<'_, Self::Config>, at: &Attach<'_>) -> Result<()>;
    /// DEL: detach; must succeed when there is nothing left to delete.
    fn del(&self, call: &Call<'_, Self::Config>, at: &Detach<'_>) -> Result<()>;
    /// STATUS: whether ADD can succeed now.
    fn status(&self, call: &Call<'_, Self::Config>) -> Result<()>;
    /// GC: remove everything not in `valid`.
    fn gc(&self, call: &Call<'_, Self::Config>, valid: &[GcAttachment]) -> Result<()>;
    /// Checks the configuration beyond parsing, without touching the host: what the library
    /// does when a network is created.
    fn validate(&self, call: &Call<'_, Self::Config>) -> Result<()> {
        let _ = call;
        Ok(())
    }
}

/// One call: the parsed configuration, the environment and the raw stdin.
#[derive(Debug)]
pub struct Call<'a, C> {
    /// The parsed configuration.
    pub conf: NetConf<C>,
    /// The parsed environment.
    pub env: &'a Env,
    /// stdin as received, for delegation.
    pub stdin: &'a [u8],
}

impl<C> Call<'_, C> {
    /// The context for delegating to another plugin on `CNI_PATH`.
    pub fn delegation<'b>(
        &'b self,
        target: Option<&'b Target>,
        netns: Option<&'b Path>,
    ) -> Delegation<'b> {
        Delegation {
            path: &self.env.path,
            args: &self.env.args,
            target,
            netns,
            version: self.conf.cni_version,
        }
    }
}

/// ADD and CHECK: the container and its open network namespace.
#[derive(Debug)]
pub struct Attach<'a> {
    /// Container ID and interface name.
    pub target: &'a Target,
    /// The container's namespace, checked to be one.
    pub netns: &'a Netns,
}

/// DEL: the container, and its namespace if it still exists.
#[derive(Debug)]
pub struct Detach<'a> {
    /// Container ID and interface name.
    pub target: &'a Target,
    /// `CNI_NETNS` as given, if any.
    pub netns_path: Option<&'a Path>,
    /// The namespace, if it could be opened.
    pub netns: Option<&'a Netns>,
}

/// What the plugin process prints and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Bytes for stdout.
    pub stdout: Vec<u8>,
    /// Exit status: 0 on success, 1 on error.
    pub exit_code: i32,
}

enum Output {
    Json(serde_json::Value),
    Nothing,
}

/// Runs one plugin call from its environment (`var`) and stdin.
pub fn dispatch<P: Plugin>(
    plugin: &P,
    var: impl Fn(&str) -> Option<OsString>,
    stdin: &mut dyn Read,
) -> Reply {
    let raw = read_stdin(stdin);
    let version = raw
        .as_ref()
        .ok()
        .and_then(|b| peek_version(b))
        .unwrap_or(SpecVersion::LATEST);
    let outcome = catch_unwind(AssertUnwindSafe(|| run(plugin, &var, raw)));
    let error = match outcome {
        Ok(Ok(Output::Json(v))) => return success(&v),
        Ok(Ok(Output::Nothing)) => {
            return Reply {
                stdout: Vec::new(),
                exit_code: 0,
            }
        }
        Ok(Err(e)) => e.to_cni(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            CniError::new(
                ErrorCode::Internal,
                format!("{} panicked (a bug in cnm)", P::NAME),
            )
            .with_details(what)
        }
    };
    let mut stdout = serde_json::to_vec(&error.to_json(version)).expect("error serializes");
    stdout.push(b'\n');
    Reply {
        stdout,
        exit_code: 1,
    }
}

fn success(v: &serde_json::Value) -> Reply {
    let mut stdout = serde_json::to_vec(v).expect("result serializes");
    stdout.push(b'\n');
    Reply {
        stdout,
        exit_code: 0,
    }
}

fn run<P: Plugin>(
    plugin: &P,
    var: &dyn Fn(&str) -> Option<OsString>,
    raw: Result<Vec<u8>, ConfigError>,
) -> Result<Output> {
    let env = match Env::parse(var) {
        Ok(env) => env,
        Err(e) => {
            tracing::warn!(plugin = P::NAME, "refused: {e}");
            return Err(e.into());
        }
    };
    let (container, ifname) = match &env.command {
        Command::Add { target, .. }
        | Command::Check { target, .. }
        | Command::Del { target, .. } => (target.container_id.as_str(), target.ifname.as_str()),
        _ => ("", ""),
    };
    let span = tracing::info_span!(
        "cni",
        plugin = P::NAME,
        cmd = env.command.name(),
        container,
        ifname
    );
    let _entered = span.enter();
    let outcome = run_command(plugin, &env, raw);
    match &outcome {
        Ok(_) => tracing::info!("ok"),
        Err(e) => tracing::warn!(code = e.code().as_u32(), "failed: {}", e.to_cni().msg),
    }
    outcome
}

fn run_command<P: Plugin>(
    plugin: &P,
    env: &Env,
    raw: Result<Vec<u8>, ConfigError>,
) -> Result<Output> {
    let stdin = raw?;
    if env.command == Command::Version {
        return Ok(Output::Json(version_reply(&stdin)));
    }
    let call = Call {
        conf: NetConf::<P::Config>::parse(&stdin)?,
        env,
        stdin: &stdin,
    };
    let needs = |needs: SpecVersion| -> Result<()> {
        let has = call.conf.cni_version;
        if has < needs {
            return Err(ConfigError::CommandNeedsVersion {
                command: env.command.name(),
                needs,
                has,
            }
            .into());
        }
        Ok(())
    };
    match &env.command {
        Command::Add { target, netns } => {
            env.args.check_known(P::KNOWN_ARGS)?;
            let netns = Netns::open(netns).map_err(Error::ContainerNetns)?;
            let result = plugin.add(
                &call,
                &Attach {
                    target,
                    netns: &netns,
                },
            )?;
            Ok(Output::Json(result.to_json(call.conf.cni_version)))
        }
        Command::Check { target, netns } => {
            needs(SpecVersion::V0_4_0)?;
            env.args.check_known(P::KNOWN_ARGS)?;
            let netns = Netns::open(netns).map_err(Error::ContainerNetns)?;
            plugin.check(
                &call,
                &Attach {
                    target,
                    netns: &netns,
                },
            )?;
            Ok(Output::Nothing)
        }
        Command::Del { target, netns } => {
            // DEL must clean up even when the namespace is gone or bogus (SPEC §DEL).
            let opened = netns.as_deref().and_then(|p| Netns::open(p).ok());
            let at = Detach {
                target,
                netns_path: netns.as_deref(),
                netns: opened.as_ref(),
            };
            plugin.del(&call, &at)?;
            Ok(Output::Nothing)
        }
        Command::Status => {
            needs(SpecVersion::V1_1_0)?;
            plugin.status(&call)?;
            Ok(Output::Nothing)
        }
        Command::Gc => {
            needs(SpecVersion::V1_1_0)?;
            let valid = call.conf.valid_attachments.clone().unwrap_or_default();
            plugin.gc(&call, &valid)?;
            Ok(Output::Nothing)
        }
        Command::Version => unreachable!("answered above"),
    }
}

/// VERSION: echo the asked version when supported, else answer in the newest.
fn version_reply(stdin: &[u8]) -> serde_json::Value {
    let version = peek_version(stdin).unwrap_or(SpecVersion::LATEST);
    json!({
        "cniVersion": version,
        "supportedVersions": SpecVersion::ALL,
    })
}

#[cfg(test)]
mod tests;
