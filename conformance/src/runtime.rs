//! A runtime that drives network configuration lists as libcni's `CNIConfig` does: the same
//! per-plugin configs, environment, ordering, version gates and result cache. Every plugin runs
//! inside the runtime's host namespace, never in the namespace of this process.

use std::path::PathBuf;
use std::time::Duration;

use cnm_core::netns::Netns;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::cache;
use crate::config::{
    plugin_env, plugin_stdin, validate_id, CniVersion, Command, NetworkConfigList, RuntimeConf,
};
use crate::error::Error;
use crate::exec::{exec_plugin, find_plugin};

const V0_4_0: CniVersion = CniVersion(0, 4, 0);
const V1_1_0: CniVersion = CniVersion(1, 1, 0);

/// A container attachment that GC must keep (spec 1.1.0 `cni.dev/valid-attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The container ID of the ADD.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface name of the ADD.
    pub ifname: String,
}

/// What a plugin answered to VERSION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The `cniVersion` of the answer.
    pub cni_version: String,
    /// The `supportedVersions` list.
    pub supported_versions: Vec<String>,
}

/// Runs plugins like libcni, with a host namespace, a CNI_PATH and a result cache directory.
#[derive(Debug)]
pub struct Runtime {
    /// CNI_PATH: the directories searched for plugin binaries, in order.
    pub cni_path: Vec<PathBuf>,
    /// Where the result cache lives (libcni's `CacheDir`).
    pub cache_dir: PathBuf,
    /// How long one plugin may run before it is killed.
    pub timeout: Duration,
    /// Variables added to every plugin's environment (e.g. `CNM_LOG_FILE`).
    pub extra_env: Vec<(String, String)>,
    host: Netns,
}

impl Runtime {
    /// A runtime whose plugins run inside `host`.
    pub fn new(cni_path: Vec<PathBuf>, cache_dir: impl Into<PathBuf>, host: Netns) -> Self {
        Runtime {
            cni_path,
            cache_dir: cache_dir.into(),
            timeout: Duration::from_secs(60),
            extra_env: Vec::new(),
            host,
        }
    }

    /// The namespace plugins run in.
    pub fn host(&self) -> &Netns {
        &self.host
    }

    /// Runs one plugin with a hand-made stdin and this runtime's environment for `command`.
    pub fn invoke(
        &self,
        plugin_type: &str,
        command: Command,
        rt: Option<&RuntimeConf>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let path = find_plugin(plugin_type, &self.cni_path)?;
        let mut env = plugin_env(command, rt, &self.cni_path);
        env.extend(self.extra_env.iter().cloned());
        exec_plugin(&path, &self.host, &env, stdin, self.timeout).map_err(|source| Error::Plugin {
            plugin: plugin_type.to_owned(),
            command,
            source,
        })
    }

    /// Runs plugin `index` of `list` with the config libcni would build for it.
    fn invoke_listed(
        &self,
        list: &NetworkConfigList,
        index: usize,
        command: Command,
        prev_result: Option<&Value>,
        rt: &RuntimeConf,
    ) -> Result<Vec<u8>, Error> {
        let conf = plugin_stdin(list, index, prev_result, Some(rt));
        let stdin = serde_json::to_vec(&conf).expect("a JSON map always serializes");
        self.invoke(&list.plugins[index].plugin_type, command, Some(rt), &stdin)
    }

    /// ADD: runs every plugin in order, each given the previous one's result, caches the last
    /// result and returns it.
    pub fn add_network_list(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
    ) -> Result<Value, Error> {
        validate_id("network name", &list.name)?;
        rt.validate()?;
        let mut result: Option<Value> = None;
        for (i, plugin) in list.plugins.iter().enumerate() {
            let out = self.invoke_listed(list, i, Command::Add, result.as_ref(), rt)?;
            result = Some(parse_result(list, &plugin.plugin_type, &out)?);
        }
        let result = result.expect("a list has at least one plugin");
        cache::write(&self.cache_dir, list, rt, &result).map_err(|e| self.cache_err(e))?;
        Ok(result)
    }

    /// CHECK: runs every plugin in order with the cached ADD result (from spec 0.4.0 on; a no-op
    /// when the list sets `disableCheck`).
    pub fn check_network_list(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
    ) -> Result<(), Error> {
        if list.version() < V0_4_0 {
            return Err(Error::Unsupported {
                command: Command::Check,
                version: list.cni_version.clone(),
            });
        }
        if list.disable_check {
            return Ok(());
        }
        let cached = self.cached_result(list, rt)?;
        for i in 0..list.plugins.len() {
            self.invoke_listed(list, i, Command::Check, cached.as_ref(), rt)?;
        }
        Ok(())
    }

    /// DEL: runs every plugin in reverse order with the cached ADD result (from spec 0.4.0 on),
    /// stopping at the first failure, and removes the cache entry once all succeeded.
    pub fn del_network_list(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
    ) -> Result<(), Error> {
        let cached = if list.version() >= V0_4_0 {
            // An unreadable cache must not block DEL: libcni drops it and goes on without.
            self.cached_result(list, rt).unwrap_or_else(|_| {
                let _ = cache::remove(&self.cache_dir, &list.name, rt);
                None
            })
        } else {
            None
        };
        for i in (0..list.plugins.len()).rev() {
            self.invoke_listed(list, i, Command::Del, cached.as_ref(), rt)?;
        }
        cache::remove(&self.cache_dir, &list.name, rt).map_err(|e| self.cache_err(e))
    }

    /// GC: DELs every cached attachment of this network that is not in `valid`, then (from spec
    /// 1.1.0 on) sends GC to every plugin with the valid list. Keeps going past failures.
    pub fn gc_network_list(
        &self,
        list: &NetworkConfigList,
        valid: &[Attachment],
    ) -> Result<(), Error> {
        if list.disable_gc {
            return Ok(());
        }
        let mut errors = Vec::new();
        let cached = cache::attachments(&self.cache_dir).map_err(|e| self.cache_err(e))?;
        for stale in cached.iter().filter(|a| a.network == list.name) {
            let key = Attachment {
                container_id: stale.rt.container_id.clone(),
                ifname: stale.rt.ifname.clone(),
            };
            if !valid.contains(&key) {
                if let Err(e) = self.del_network_list(list, &stale.rt) {
                    errors.push(e);
                }
            }
        }
        if list.version() >= V1_1_0 {
            let valid = serde_json::to_value(valid).expect("attachments serialize");
            // libcni sends both keys: the spec first named it "cni.dev/attachments" (libcni #1101).
            let extra = json!({"cni.dev/valid-attachments": valid, "cni.dev/attachments": valid});
            for i in 0..list.plugins.len() {
                if let Err(e) = self.invoke_bare(list, i, Command::Gc, &extra) {
                    errors.push(e);
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Many(errors)),
        }
    }

    /// STATUS: asks every plugin in order whether ADD can succeed, stopping at the first that
    /// says no (from spec 1.1.0 on; a no-op before).
    pub fn status_network_list(&self, list: &NetworkConfigList) -> Result<(), Error> {
        if list.version() < V1_1_0 {
            return Ok(());
        }
        for i in 0..list.plugins.len() {
            self.invoke_bare(list, i, Command::Status, &json!({}))?;
        }
        Ok(())
    }

    /// VERSION: asks plugin `plugin_type` which spec versions it supports.
    pub fn version(&self, plugin_type: &str, cni_version: &str) -> Result<VersionInfo, Error> {
        let stdin = serde_json::to_vec(&json!({ "cniVersion": cni_version })).expect("serializes");
        let out = self.invoke(plugin_type, Command::Version, None, &stdin)?;
        let bad = |reason: &str| Error::BadOutput {
            plugin: plugin_type.to_owned(),
            command: Command::Version,
            reason: reason.to_owned(),
        };
        let v: Value = serde_json::from_slice(&out).map_err(|e| bad(&e.to_string()))?;
        let cni_version = v["cniVersion"]
            .as_str()
            .ok_or_else(|| bad("no cniVersion"))?;
        let supported = v["supportedVersions"]
            .as_array()
            .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| bad("supportedVersions is not a list of strings"))?;
        Ok(VersionInfo {
            cni_version: cni_version.to_owned(),
            supported_versions: supported,
        })
    }

    /// The cached ADD result of an attachment, if any.
    pub fn cached_result(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
    ) -> Result<Option<Value>, Error> {
        cache::read_result(&self.cache_dir, &list.name, rt).map_err(|e| self.cache_err(e))
    }

    /// Runs plugin `index` for GC or STATUS: its object with the list's name and version, plus
    /// `extra` keys, and no container in the environment.
    fn invoke_bare(
        &self,
        list: &NetworkConfigList,
        index: usize,
        command: Command,
        extra: &Value,
    ) -> Result<Vec<u8>, Error> {
        let mut conf: Map<String, Value> = plugin_stdin(list, index, None, None);
        if let Value::Object(extra) = extra {
            conf.extend(extra.clone());
        }
        let stdin = serde_json::to_vec(&conf).expect("a JSON map always serializes");
        self.invoke(&list.plugins[index].plugin_type, command, None, &stdin)
    }

    fn cache_err(&self, source: std::io::Error) -> Error {
        Error::Cache {
            dir: self.cache_dir.clone(),
            source,
        }
    }
}

/// An ADD result must be a JSON object in exactly the list's version. (libcni accepts any version
/// of the same result family; a conformance harness holds plugins to the spec's wording.)
fn parse_result(list: &NetworkConfigList, plugin: &str, out: &[u8]) -> Result<Value, Error> {
    let bad = |reason: String| Error::BadOutput {
        plugin: plugin.to_owned(),
        command: Command::Add,
        reason,
    };
    let v: Value = serde_json::from_slice(out).map_err(|e| bad(e.to_string()))?;
    match v.get("cniVersion").and_then(Value::as_str) {
        Some(got) if got == list.cni_version => Ok(v),
        Some(got) => Err(bad(format!(
            "result has cniVersion {got:?}, config has {:?}",
            list.cni_version
        ))),
        None => Err(bad("result has no cniVersion".into())),
    }
}
